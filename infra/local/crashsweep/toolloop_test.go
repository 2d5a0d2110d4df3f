package crashsweep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// The tool-loop paths: a mention answered by agent.Run with one of the shipped model clients
// against its stand-in — the chat-completions client (llm.Chat.Agent, fakellm) or the Bedrock
// one (llm.Bedrock.Agent, fakebedrock, ConverseStream's event stream) — which asks in its
// first turn for two tools, lookup, a read of the help desk's knowledge base, and
// open_ticket, which opens a ticket there (a side effect), and in its second answers quoting
// what they said. The model's requests and the help desk's are points like Slack's calls and
// DynamoDB's writes: a crash before, during (mid-stream, for the model) and after each model
// turn and each tool call. The help desk, like many ticket systems, does not deduplicate:
// every POST opens a ticket, so a tool run twice would show as two.

// toldUnknown: one answer, saying the ticket's outcome is unknown (with the call's key),
// because an attempt died between opening it and recording that it did.
const toldUnknown outcome = "one answer, the ticket's outcome told unknown"

const (
	toolIntro       = "Let me search the knowledge base and open a ticket."
	kbArticle       = "KB-7 Printer fires: unplug the printer, leave the room and call facilities on extension 5555."
	lookupCallID    = "call_kb"
	openTicketID    = "call_ticket"
	lookupInput     = `{"query":"printer on fire"}`
	ticketInput     = `{"title":"printer on fire"}`
	openTicketTitle = "printer on fire"
	// ticketStep is agent.Run's name for the second tool call of its first round (its
	// relay.Once step), whose key open_ticket is given.
	ticketStep = "agent:tool:0:1"
)

// toolScript is the chat-completions model's script: a first turn that calls both tools, then an answer quoting their
// results.
func toolScript(msgs []fakellm.Message) *fakellm.Reply {
	results := map[string]string{}
	for _, m := range msgs {
		if m.Role == "tool" {
			results[m.ToolCallID] = m.Content
		}
	}
	if len(results) == 0 {
		return &fakellm.Reply{Text: toolIntro, ToolCalls: []fakellm.ToolCall{
			{ID: lookupCallID, Name: "lookup", Arguments: lookupInput},
			{ID: openTicketID, Name: "open_ticket", Arguments: ticketInput},
		}}
	}
	return &fakellm.Reply{Text: "The knowledge base says: " + results[lookupCallID] + "\n\nAbout the ticket: " + results[openTicketID]}
}

// ticket is one ticket the help desk opened.
type ticket struct{ ID, Title, Key string }

// helpdesk is the service the tools call: GET /kb searches its knowledge base, POST /tickets
// opens a ticket and keeps the idempotency key it came with (so a person can find it by the
// key) without deduplicating on it.
type helpdesk struct {
	srv *httptest.Server

	mu      sync.Mutex
	tickets []ticket
}

func newHelpdesk() *helpdesk {
	h := &helpdesk{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /kb", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("q") == "" {
			http.Error(w, "q is required", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, kbArticle)
	})
	mux.HandleFunc("POST /tickets", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Title string `json:"title"`
		}
		key := r.Header.Get("Idempotency-Key")
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Title == "" || key == "" {
			http.Error(w, "want a JSON body with a title, and an Idempotency-Key header", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		t := ticket{ID: fmt.Sprintf("TK-%d", len(h.tickets)+1), Title: in.Title, Key: key}
		h.tickets = append(h.tickets, t)
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{"id": t.ID})
	})
	h.srv = httptest.NewServer(mux)
	return h
}

func (h *helpdesk) all() []ticket {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ticket(nil), h.tickets...)
}

// toolRun is what a run of the path keeps for its judge.
type toolRun struct {
	desk  *helpdesk
	model toolModel

	mu   sync.Mutex
	key  string   // OnceKey of the open_ticket call, as the handler saw it
	keys []string // the keys open_ticket was called with, one per call
}

type lookupIn struct {
	Query string `json:"query" jsonschema:"description=what to search for"`
}

type ticketIn struct {
	Title string `json:"title" jsonschema:"description=what the ticket is about"`
}

// toolModel is the path's model: a client of the shipped ones on its stand-in.
type toolModel interface {
	// client is the model as agent.Run calls it, its requests going through rt.
	client(rt http.RoundTripper) agent.Model
	// final is the text of the model's last turn: its answer to the conversation that brought
	// the tools' results, which must be the same on every attempt that asked.
	final() (string, error)
}

// chatModel is the chat-completions client on fakellm, scripted by toolScript.
type chatModel struct{ srv *fakellm.Server }

func newChatModel(r *run) toolModel {
	srv := fakellm.New(fakellm.Options{Reply: toolScript})
	if _, err := srv.Start(""); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = srv.Close() })
	return chatModel{srv}
}

func (m chatModel) client(rt http.RoundTripper) agent.Model {
	return (&llm.Chat{BaseURL: m.srv.APIURL(), Model: "sweep", HTTP: &http.Client{Transport: rt},
		APIKey: func(context.Context) (string, error) { return "sk-sweep", nil }}).Agent()
}

func (m chatModel) final() (string, error) {
	var final []fakellm.Message
	for _, req := range m.srv.Requests() {
		if req.Messages[len(req.Messages)-1].Role != "tool" {
			continue
		}
		if final != nil && !reflect.DeepEqual(final, req.Messages) {
			return "", fmt.Errorf("the model was given different tool results on different attempts:\n%+v\n%+v", final, req.Messages)
		}
		final = req.Messages
	}
	if final == nil {
		return "", errors.New("the model was never given the tools' results")
	}
	return toolScript(final).Text, nil
}

// bedrockModel is the Bedrock client on fakebedrock, scripted by bedrockTurns.
type bedrockModel struct{ srv *fakebedrock.Server }

const bedrockModelID = "anthropic.claude-sweep"

// bedrockTurns are toolScript's turns as fakebedrock scripts them: its second turn can quote
// the last tool result only, open_ticket's.
var bedrockTurns = []fakebedrock.Turn{
	{Text: toolIntro, Tools: []fakebedrock.ToolCall{
		{ID: "tooluse_kb", Name: "lookup", Input: json.RawMessage(lookupInput)},
		{ID: "tooluse_ticket", Name: "open_ticket", Input: json.RawMessage(ticketInput)},
	}},
	{Text: "I searched the knowledge base.\n\nAbout the ticket: " + fakebedrock.ToolResultPlaceholder},
}

func newBedrockModel(r *run) toolModel {
	srv := fakebedrock.New(fakebedrock.Options{AllowedModels: []string{bedrockModelID}})
	srv.SetTurns(bedrockTurns...)
	if _, err := srv.Start(""); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = srv.Close() })
	return bedrockModel{srv}
}

func (m bedrockModel) client(rt http.RoundTripper) agent.Model {
	cfg := aws.Config{Region: "us-west-2", Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient: &http.Client{Transport: ownBody(rt)}}
	return (&llm.Bedrock{Client: llm.NewBedrockClient(cfg, "", aws.String(m.srv.URL())), ModelID: bedrockModelID}).Agent()
}

func (m bedrockModel) final() (string, error) {
	var final []fakebedrock.Message
	for _, req := range m.srv.Requests() {
		if len(req.Messages) == 0 || len(req.Messages[len(req.Messages)-1].ToolResults) == 0 {
			continue
		}
		if final != nil && !reflect.DeepEqual(final, req.Messages) {
			return "", fmt.Errorf("the model was given different tool results on different attempts:\n%+v\n%+v", final, req.Messages)
		}
		final = req.Messages
	}
	if final == nil {
		return "", errors.New("the model was never given the tools' results")
	}
	results := final[len(final)-1].ToolResults
	return strings.ReplaceAll(bedrockTurns[1].Text, fakebedrock.ToolResultPlaceholder, results[len(results)-1].Text()), nil
}

// ownBody sends a copy of each request's body. The SDK closes the body it gave the transport
// as soon as the response arrives, and its body, closed, answers the transport's last read
// (after the bytes, to see that nothing follows them) with io.EOF as an error, so a stand-in
// that answers before that read tears the connection down and cuts the answer's stream. That
// race needs a server answering within microseconds of the request's last byte, which Bedrock
// does not; fakebedrock under the sweep's load sometimes does, and a clean run cut that way
// would list the path's points short.
func ownBody(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil && req.Body != http.NoBody {
			raw, err := io.ReadAll(req.Body)
			req.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("crashsweep: read the request body: %w", err)
			}
			req = req.Clone(req.Context())
			req.Body = io.NopCloser(bytes.NewReader(raw))
		}
		return rt.RoundTrip(req)
	})
}

// toolLoop registers a path's bot: a mention answered by agent.Run with the model on the
// run's stand-in and the two tools, every request of theirs through the run's invocation.
func toolLoop(model func(r *run) toolModel) func(r *run, b *relay.Router) {
	return func(r *run, b *relay.Router) { registerToolLoop(r, b, model(r)) }
}

func registerToolLoop(r *run, b *relay.Router, model toolModel) {
	st := &toolRun{desk: newHelpdesk(), model: model}
	r.t.Cleanup(st.desk.srv.Close)
	r.state = st
	chat := model.client(r.via(modelService))
	desk := &http.Client{Transport: r.via(helpdeskService), Timeout: 5 * time.Second}
	base := st.desk.srv.URL

	// lookup is a read: it tries again when the help desk fails or does not answer.
	lookup := agent.NewTool("lookup", "searches the help desk's knowledge base", func(ctx context.Context, in lookupIn, _ string) (string, error) {
		var last error
		for range 3 {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/kb?q="+url.QueryEscape(in.Query), nil)
			resp, err := desk.Do(req)
			if err != nil {
				last = err
				if ctx.Err() != nil {
					break
				}
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				return string(body), nil
			}
			last = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return "", fmt.Errorf("the knowledge base did not answer: %w", last)
	})
	// open_ticket opens a ticket, with the call's idempotency key. A 5xx answer means the help
	// desk opened nothing, so it tries again; no answer at all means it cannot know, and says so.
	open := agent.NewTool("open_ticket", "opens a help desk ticket", func(ctx context.Context, in ticketIn, key string) (string, error) {
		st.mu.Lock()
		st.keys = append(st.keys, key)
		st.mu.Unlock()
		body, _ := json.Marshal(map[string]string{"title": in.Title})
		for range 3 {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/tickets", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", key)
			resp, err := desk.Do(req)
			if err != nil {
				return "", fmt.Errorf("the help desk did not answer, so it is unknown whether the ticket was opened (key %s)", key)
			}
			var out struct {
				ID string `json:"id"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			switch {
			case resp.StatusCode >= 500:
				continue
			case resp.StatusCode != http.StatusCreated || err != nil || out.ID == "":
				return "", fmt.Errorf("the help desk refused the ticket: HTTP %d", resp.StatusCode)
			}
			return "opened ticket " + out.ID, nil
		}
		return "", errors.New("the help desk is unavailable; no ticket was opened")
	}, agent.SideEffects())

	relay.Event(b, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		st.mu.Lock()
		st.key = req.Session.OnceKey(ticketStep)
		st.mu.Unlock()
		// As the shipped bot streams a tool-loop answer: task cards and a Stop button.
		w, err := req.Stream(ctx, relay.StreamOptions{Tasks: relay.TasksTimeline, Stop: true})
		if err != nil || w.Done() {
			return err
		}
		msgs := []agent.Message{{Role: "user", Text: req.Payload.Text}}
		if _, err := agent.Run(ctx, req.Session, w, chat, msgs, []agent.Tool{lookup, open}, agent.Options{}); err != nil {
			return err
		}
		_, err = w.Finish(ctx)
		return err
	})
}

// judgeToolLoop: the thread shows the model's last answer once, finished (answercheck); the
// model was given the same tool results on every attempt that got them; the help desk opened
// at most one ticket, with the call's key; an answer that does not say the outcome is unknown
// names the one ticket there is, and one that does carries the call's key.
func judgeToolLoop(r *run) (outcome, error) {
	st := r.state.(*toolRun)
	tickets := st.desk.all()
	if len(tickets) > 1 {
		return "", fmt.Errorf("the help desk opened %d tickets (%+v): open_ticket ran more than once", len(tickets), tickets)
	}
	final, err := st.model.final()
	if err != nil {
		return "", err
	}
	channel, thread := r.vars["channel"], r.vars["thread"]
	rendered, err := judgeCards(r.slack.RenderedThread(channel, thread))
	if err != nil {
		return "", err
	}
	if err := answercheck.Judge(channel, thread, rendered, answercheck.Expect{Text: toolIntro + "\n\n" + final}).Err(); err != nil {
		return "", err
	}
	var text strings.Builder
	for _, m := range rendered {
		if m.Bot {
			text.WriteString(m.Text)
		}
	}
	answer := text.String()
	st.mu.Lock()
	key, keys := st.key, st.keys
	st.mu.Unlock()
	for _, k := range keys {
		if k != key {
			return "", fmt.Errorf("open_ticket was given the key %s; the call's key is %s", k, key)
		}
	}
	for _, t := range tickets {
		if t.Key != key || t.Title != openTicketTitle {
			return "", fmt.Errorf("the help desk has %+v; want the title %q and the call's key %s", t, openTicketTitle, key)
		}
	}
	if strings.Contains(answer, "unknown") {
		if !strings.Contains(answer, key) {
			return "", fmt.Errorf("the answer says the outcome is unknown without the call's key %s: %q", key, answer)
		}
		return toldUnknown, nil
	}
	if len(tickets) != 1 {
		return "", fmt.Errorf("the answer does not say the outcome is unknown, and the help desk has %d tickets: %q", len(tickets), answer)
	}
	if !strings.Contains(answer, "opened ticket "+tickets[0].ID) {
		return "", fmt.Errorf("the answer does not name the ticket %s: %q", tickets[0].ID, answer)
	}
	return answered, nil
}

// cardMarks start the lines of a cards summary (a message set whole shows its cards so).
var cardMarks = []string{"✓ ", "✗ ", "◐ ", "○ ", "• "}

// judgeCards checks the task cards the answer shows: each tool call's card at most once in
// the whole thread (a card drawn twice is a card repeated), in a final state (complete or
// error) once the answer is finished, whether drawn as cards or, in a message set whole, as
// the summary under its text. It returns the thread with the summaries taken out of the
// messages' text, for the answer's own judge.
func judgeCards(thread []fakeslack.Rendered) ([]fakeslack.Rendered, error) {
	seen := map[string]int{}
	var summarized []string
	out := make([]fakeslack.Rendered, len(thread))
	for i, m := range thread {
		out[i] = m
		if !m.Bot {
			continue
		}
		for _, c := range m.Tasks {
			seen[c.ID]++
			if c.Status != "complete" && c.Status != "error" {
				return nil, fmt.Errorf("card %s (%s) ends %q", c.ID, c.Title, c.Status)
			}
		}
		lines := strings.Split(m.Text, "\n")
		k := len(lines)
		for k > 0 && slices.ContainsFunc(cardMarks, func(mark string) bool { return strings.HasPrefix(lines[k-1], mark) }) {
			k--
		}
		for _, l := range lines[k:] {
			if !strings.HasPrefix(l, "✓ ") && !strings.HasPrefix(l, "✗ ") {
				return nil, fmt.Errorf("message %s summarizes a card not finished: %q", m.TS, l)
			}
			summarized = append(summarized, l)
		}
		out[i].Text = strings.Join(lines[:k], "\n")
	}
	for id, n := range seen {
		if n > 1 {
			return nil, fmt.Errorf("card %s is drawn %d times", id, n)
		}
	}
	if len(seen)+len(summarized) == 0 {
		return nil, errors.New("the answer shows no task card")
	}
	return out, nil
}

func toolLoopPaths() []*path {
	return []*path{
		{name: "tool loop, chat completions", register: toolLoop(newChatModel), setup: mention, judge: judgeToolLoop, allowed: []outcome{toldUnknown}},
		{name: "tool loop, Bedrock ConverseStream", register: toolLoop(newBedrockModel), setup: mention, judge: judgeToolLoop, allowed: []outcome{toldUnknown}},
	}
}

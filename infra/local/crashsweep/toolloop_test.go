package crashsweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// The tool-loop path: a mention answered by agent.Run with the chat-completions client
// (llm.Chat.Agent) against the model stand-in (fakellm), which asks in its first turn for two
// tools — lookup, a read of the help desk's knowledge base, and open_ticket, which opens a
// ticket there (a side effect) — and in its second answers quoting their results. The model's
// requests and the help desk's are points like Slack's calls and DynamoDB's writes: a crash
// before, during (mid-stream, for the model) and after each model turn and each tool call.
// The help desk, like many ticket systems, does not deduplicate: every POST opens a ticket,
// so a tool run twice would show as two.

// toldUnknown: one answer, saying the ticket's outcome is unknown (with the call's key),
// because an attempt died between opening it and recording that it did.
const toldUnknown outcome = "one answer, the ticket's outcome told unknown"

const (
	toolIntro       = "Let me search the knowledge base and open a ticket."
	kbArticle       = "KB-7 Printer fires: unplug the printer, leave the room and call facilities on extension 5555."
	lookupCallID    = "call_kb"
	openTicketID    = "call_ticket"
	openTicketTitle = "printer on fire"
	// ticketStep is agent.Run's name for the second tool call of its first round (its
	// relay.Once step), whose key open_ticket is given.
	ticketStep = "agent:tool:0:1"
)

// toolScript is the model: a first turn that calls both tools, then an answer quoting their
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
			{ID: lookupCallID, Name: "lookup", Arguments: `{"query":"printer on fire"}`},
			{ID: openTicketID, Name: "open_ticket", Arguments: `{"title":"` + openTicketTitle + `"}`},
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
	model *fakellm.Server

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

// toolLoop registers the path's bot: a mention answered by agent.Run with the model on the
// run's stand-in and the two tools, every request of theirs through the run's invocation.
func toolLoop(r *run, b *relay.Router) {
	st := &toolRun{desk: newHelpdesk(), model: fakellm.New(fakellm.Options{Reply: toolScript})}
	r.t.Cleanup(st.desk.srv.Close)
	if _, err := st.model.Start(""); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = st.model.Close() })
	r.state = st

	chat := &llm.Chat{BaseURL: st.model.APIURL(), Model: "sweep", HTTP: &http.Client{Transport: r.via(modelService)},
		APIKey: func(context.Context) (string, error) { return "sk-sweep", nil }}
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
		w, err := req.Stream(ctx, relay.StreamOptions{})
		if err != nil || w.Done() {
			return err
		}
		msgs := []agent.Message{{Role: "user", Text: req.Payload.Text}}
		if _, err := agent.Run(ctx, req.Session, w, chat.Agent(), msgs, []agent.Tool{lookup, open}, agent.Options{}); err != nil {
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
	var final []fakellm.Message
	for _, req := range st.model.Requests() {
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
	if _, err := oneAnswer(r, toolIntro+"\n\n"+toolScript(final).Text, nil); err != nil {
		return "", err
	}
	var text strings.Builder
	for _, m := range r.slack.RenderedThread(r.vars["channel"], r.vars["thread"]) {
		if m.Bot {
			text.WriteString(m.Text)
		}
	}
	answer := text.String()
	st.mu.Lock()
	key, keys := st.key, st.keys
	st.mu.Unlock()
	tickets := st.desk.all()
	if len(tickets) > 1 {
		return "", fmt.Errorf("the help desk opened %d tickets (%+v): open_ticket ran more than once", len(tickets), tickets)
	}
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

func toolLoopPath() *path {
	return &path{name: "agent tool loop (lookup, open_ticket)", register: toolLoop, setup: mention, judge: judgeToolLoop,
		allowed: []outcome{toldUnknown}}
}

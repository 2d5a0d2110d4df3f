package crashsweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// model is a deterministic model: its answer to anything is text, streamed in pieces of
// chunk characters; a request with a Partial answer gets the rest (as regenerating and
// skipping what was shown does with a deterministic model).
type model struct {
	text  string
	chunk int
	pause time.Duration // between chunks
}

func (m model) Respond(context.Context, string) (string, error) { return m.text, nil }

func (m model) Stream(ctx context.Context, req llm.Request, onDelta func(string) error) (llm.Result, error) {
	rest := []rune(m.text)[min(utf8.RuneCountInString(req.Partial), utf8.RuneCountInString(m.text)):]
	for len(rest) > 0 {
		if err := ctx.Err(); err != nil {
			return llm.Result{}, err
		}
		n := min(m.chunk, len(rest))
		if err := onDelta(string(rest[:n])); err != nil {
			return llm.Result{}, err
		}
		rest = rest[n:]
		if m.pause > 0 && len(rest) > 0 {
			select {
			case <-time.After(m.pause):
			case <-ctx.Done():
				return llm.Result{}, ctx.Err()
			}
		}
	}
	return llm.Result{Text: m.text, FinishReason: "stop"}, nil
}

// responder is a model that does not stream (the bot then answers with Reply).
type responder struct{ text string }

func (r responder) Respond(context.Context, string) (string, error) { return r.text, nil }

// answer is a deterministic answer of about n characters: words and paragraphs, with the
// characters JSON escapes (quotes, <, &) that size checks must count.
func answer(tag string, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s%d ", tag, i)
		switch {
		case i%40 == 39:
			b.WriteString("\n\n")
		case i%13 == 12:
			b.WriteString(`"a<b & c>" `)
		}
	}
	return strings.TrimSpace(b.String())
}

// outcome is what a person sees once a run settled.
type outcome string

const (
	answered     outcome = "one answer"
	toldNotOpen  outcome = "told the modal could not open"
	atMostOnce   outcome = "nothing shown (at most once: the call's answer was lost)"
	deadLettered outcome = "dead-lettered"
)

// path is one way an event goes through the worker.
type path struct {
	name string
	// register adds the routes (the shipped bot's, with the model the path needs) for a run.
	register func(r *run, b *relay.Router)
	// setup sets the scene in Slack and returns the queue message.
	setup func(r *run) string
	// judge says what a person sees, or why it is not one answer.
	judge func(r *run) (outcome, error)
	// allowed are the outcomes besides one answer that a fault may leave on this path.
	allowed []outcome
	// invocation is how long one invocation may run (default 30 s).
	invocation time.Duration
	// continues says the clean run's answer goes on in a new delivery.
	continues bool
}

func (p *path) deadline() time.Duration {
	if p.invocation > 0 {
		return p.invocation
	}
	return 30 * time.Second
}

func shipped(model llm.Responder) func(r *run, b *relay.Router) {
	return func(_ *run, b *relay.Router) {
		assistant.Register(b, assistant.Config{LLM: model, Model: "sweep", Metrics: metrics.New(io.Discard, "crashsweep")})
	}
}

// mention sets a user's message in a channel of the run's own and returns its mention.
func mention(r *run) string {
	channel, ts := fmt.Sprintf("C%d", r.n), "1700000000.000100"
	if _, err := r.slack.AddUserMessage(fakeslack.UserMessage{Channel: channel, User: "U0USER", Text: "<@UBOT> question", TS: ts}); err != nil {
		r.t.Fatal(err)
	}
	r.vars["channel"], r.vars["thread"] = channel, ts
	return envelopeOf(envelope.KindEvent, "app_mention", fixture.AppMention(fmt.Sprintf("Ev%d", r.n), channel, ts, "question"))
}

// directMessage is a user's message in a DM with the bot (the agent view: each message is a
// thread of its own).
func directMessage(r *run) string {
	channel, ts := fmt.Sprintf("D%d", r.n), "1700000000.000100"
	if _, err := r.slack.AddUserMessage(fakeslack.UserMessage{Channel: channel, User: "U0USER", Text: "question", TS: ts}); err != nil {
		r.t.Fatal(err)
	}
	r.vars["channel"], r.vars["thread"] = channel, ts
	var body map[string]any
	_ = json.Unmarshal([]byte(fixture.MessageTwin(fmt.Sprintf("EvDM%d", r.n), channel, ts, "question")), &body)
	ev := body["event"].(map[string]any)
	ev["channel_type"], ev["text"] = "im", "question"
	raw, _ := json.Marshal(body)
	return envelopeOf(envelope.KindEvent, "message", string(raw))
}

// oneAnswer checks the thread as a person reads it (answercheck): the bot's messages hold
// want exactly once, in order, none is streaming, and the buttons are under the last message
// only; and the working reaction is gone.
func oneAnswer(r *run, want string, actions []string) (outcome, error) {
	channel, thread := r.vars["channel"], r.vars["thread"]
	v := answercheck.Judge(channel, thread, r.slack.RenderedThread(channel, thread), answercheck.Expect{Text: want, Actions: actions})
	if err := v.Err(); err != nil {
		return "", err
	}
	if rs := r.slack.Reactions(); len(rs) != 0 {
		return "", fmt.Errorf("reactions left: %v", rs)
	}
	return answered, nil
}

var answerActions = answercheck.AnswerActions

func paths() []*path {
	short := model{text: answer("s", 1900), chunk: 300}
	slow := model{text: answer("c", 1700), chunk: 450, pause: 150 * time.Millisecond}
	long := model{text: answer("l", 14000), chunk: 700}
	parts := answer("p", 8500) // three posted parts
	brief := answer("b", 600)
	streamed := func(name string, m model) *path {
		return &path{name: name, register: shipped(m), setup: mention,
			judge: func(r *run) (outcome, error) { return oneAnswer(r, m.text, answerActions) }}
	}
	return append([]*path{
		streamed("streamed mention", short),
		memoryPath(short),
		streamed("long streamed answer (two messages)", long),
		{
			// The model takes longer than an invocation (1 s): each invocation sends what it
			// has a fifth of its time before the end and hands the answer to a new delivery,
			// which continues from it.
			name: "answer across invocations", register: shipped(slow), setup: mention, invocation: 400 * time.Millisecond, continues: true,
			judge: func(r *run) (outcome, error) { return oneAnswer(r, slow.text, answerActions) },
		},
		{
			name: "answer in an assistant thread (DM)", register: shipped(short), setup: directMessage,
			judge: func(r *run) (outcome, error) {
				out, err := oneAnswer(r, short.text, answerActions)
				if err != nil {
					return out, err
				}
				th, _ := r.slack.AssistantThread(r.vars["channel"], r.vars["thread"])
				if th.Status != "" || th.Title == "" {
					return "", fmt.Errorf("the thread's status is %q and its title %q: want it cleared and set", th.Status, th.Title)
				}
				return answered, nil
			},
		},
		{
			name: "answer posted in parts", register: shipped(responder{parts}), setup: mention,
			judge: func(r *run) (outcome, error) { return oneAnswer(r, parts, answerActions) },
		},
		{
			name: "/ask opens a modal", register: shipped(responder{brief}), allowed: []outcome{toldNotOpen, atMostOnce},
			setup: func(r *run) string {
				r.vars["trigger"], r.vars["response"] = r.slack.NewTrigger(), fmt.Sprintf("r%d", r.n)
				return envelopeOf(envelope.KindSlashCommand, "/ask", fixture.SlashCommand("/ask", "", r.vars["trigger"], r.slack.ResponseURL(r.vars["response"])))
			},
			judge: judgeModal,
		},
		{
			name: "/ask modal submitted", register: shipped(responder{brief}),
			setup: func(r *run) string {
				view, err := r.api().OpenView(r.slack.NewTrigger(), slack.ModalViewRequest{Type: slack.VTModal, CallbackID: assistant.CallbackAsk,
					Title:  slack.NewTextBlockObject(slack.PlainTextType, "Ask", false, false),
					Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.PlainTextType, "…", false, false), nil, nil)}}})
				if err != nil {
					r.t.Fatal(err)
				}
				r.vars["view"] = view.ID
				body := fixture.ViewSubmission(view.ID, assistant.CallbackAsk, "", "question", "text", "what is it?")
				return envelopeOf(envelope.KindInteraction, "view_submission", withTrigger(r, body, fmt.Sprintf("%d.1.sub%d", r.n, r.n)))
			},
			judge: func(r *run) (outcome, error) {
				v, ok := r.slack.View(r.vars["view"])
				if !ok {
					return "", errors.New("the modal is gone")
				}
				snippet := brief[:40]
				if n := strings.Count(string(v.Payload), snippet); n != 1 {
					return "", fmt.Errorf("the modal shows the answer %d times", n)
				}
				return answered, nil
			},
		},
		{
			name: "Regenerate click", register: shipped(responder{brief}),
			setup: func(r *run) string { return click(r, assistant.ActionRegenerate) },
			judge: func(r *run) (outcome, error) { return oneAnswer(r, brief, answerActions) },
		},
		{
			name: "feedback click", register: shipped(responder{brief}), allowed: []outcome{atMostOnce},
			setup: func(r *run) string { return click(r, assistant.ActionFeedback) },
			judge: func(r *run) (outcome, error) {
				n := 0
				for _, p := range r.slack.Posts() {
					if p.Method == "chat.postEphemeral" {
						n++
					}
				}
				switch n {
				case 0:
					return atMostOnce, nil
				case 1:
					return answered, nil
				}
				return "", fmt.Errorf("%d ephemeral thanks", n)
			},
		},
		{
			name: "assistant thread started", register: shipped(responder{brief}),
			setup: func(r *run) string {
				raw, err := os.ReadFile("../../../worker/assistant/testdata/assistant_thread_started.json")
				if err != nil {
					r.t.Fatal(err)
				}
				body := strings.Replace(string(raw), `"Ev0STARTED"`, fmt.Sprintf(`"EvAT%d"`, r.n), 1)
				return envelopeOf(envelope.KindEvent, "assistant_thread_started", body)
			},
			judge: func(r *run) (outcome, error) {
				th, ok := r.slack.AssistantThread("D0DM", "1515449600.000100")
				if !ok || len(th.Prompts) != 3 {
					return "", fmt.Errorf("the thread's suggested prompts: %+v", th)
				}
				return answered, nil
			},
		},
	}, toolLoopPaths()...)
}

// judgeModal: one modal open and no failure reported, or (the trigger expired before any
// attempt could hand it over) no modal and one message saying so, or (views.open's answer was
// lost and the trigger expired before the retry) nothing more; never both, never two.
func judgeModal(r *run) (outcome, error) {
	views := 0
	for _, v := range r.slack.Views() {
		if v.TriggerID == r.vars["trigger"] {
			views++
		}
	}
	var said []string
	for _, p := range r.slack.Posts() {
		if p.Method == fakeslack.ResponseURLMethod && p.ResponseID == r.vars["response"] {
			said = append(said, p.Text)
		}
	}
	switch {
	case views == 1 && len(said) == 0:
		return answered, nil
	case views == 0 && len(said) == 1 && strings.Contains(said[0], "could not open"):
		return toldNotOpen, nil
	case views == 0 && len(said) == 0:
		return atMostOnce, nil
	}
	return "", fmt.Errorf("%d modals opened and %d messages posted (%q)", views, len(said), said)
}

// click posts an answer of the bot's with the buttons and returns a click on action.
func click(r *run, action string) string {
	channel, thread := fmt.Sprintf("C%d", r.n), "1700000000.000100"
	if _, err := r.slack.AddUserMessage(fakeslack.UserMessage{Channel: channel, User: "U0USER", Text: "question", TS: thread}); err != nil {
		r.t.Fatal(err)
	}
	value, _ := json.Marshal(map[string]any{"p": "question", "c": channel, "ts": thread})
	regen := slack.NewActionBlock("slackrelay_actions", slack.NewButtonBlockElement(assistant.ActionRegenerate, string(value),
		slack.NewTextBlockObject(slack.PlainTextType, "Regenerate", false, false)))
	_, ts, err := r.api().PostMessage(channel, slack.MsgOptionTS(thread), slack.MsgOptionText("an earlier answer", false),
		slack.MsgOptionBlocks(slack.NewMarkdownBlock("", "an earlier answer"), regen))
	if err != nil {
		r.t.Fatal(err)
	}
	r.vars["channel"], r.vars["thread"], r.vars["message"] = channel, thread, ts
	v := "good"
	if action == assistant.ActionRegenerate {
		v = string(value)
	}
	return envelopeOf(envelope.KindInteraction, "block_actions", fixture.BlockActions(action, v, channel, ts, thread, fmt.Sprintf("1700000100.%06d", r.n)))
}

// withTrigger sets the trigger_id of an interactivity body.
func withTrigger(r *run, body, trigger string) string {
	form, err := url.ParseQuery(body)
	if err != nil {
		r.t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(form.Get("payload")), &p); err != nil {
		r.t.Fatal(err)
	}
	p["trigger_id"] = trigger
	raw, _ := json.Marshal(p)
	return url.Values{"payload": {string(raw)}}.Encode()
}

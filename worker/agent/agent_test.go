package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

const channel, ts = "C0AGENT", "1700000002.000100"

// scripted is a model that asks for a ticket, then answers with what the tool said.
type scripted struct {
	mu     sync.Mutex
	calls  []agent.TurnRequest
	always bool // always ask for another tool call
	tool   string
	// failAfterTools fails the first turn that has tool results to read (once).
	failAfterTools bool
}

func (m *scripted) Turn(_ context.Context, req agent.TurnRequest, onText func(string) error) (agent.Turn, error) {
	m.mu.Lock()
	m.calls = append(m.calls, req)
	m.mu.Unlock()
	var results []agent.ToolResult
	for _, msg := range req.Messages {
		results = append(results, msg.ToolResults...)
	}
	if m.failAfterTools && len(results) > 0 {
		m.failAfterTools = false
		return agent.Turn{}, errors.New("model unavailable")
	}
	name := m.tool
	if name == "" {
		name = "open_ticket"
	}
	var t agent.Turn
	if len(results) == 0 || m.always {
		t = agent.Turn{Text: "Let me open a ticket.", ToolCalls: []agent.ToolCall{{ID: fmt.Sprintf("call-%d", len(m.calls)), Name: name, Input: json.RawMessage(`{"title":"printer on fire"}`)}}}
	} else {
		last := results[len(results)-1]
		if last.IsError {
			t = agent.Turn{Text: "I could not be sure: " + last.Content}
		} else {
			t = agent.Turn{Text: "Done: " + last.Content + "."}
		}
	}
	text := t.Text
	if req.Partial != "" {
		text = strings.TrimPrefix(text, req.Partial)
	}
	if err := onText(text); err != nil {
		return agent.Turn{}, err
	}
	return t, nil
}

func (m *scripted) turns() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.calls) }

type ticketIn struct {
	Title string `json:"title" jsonschema:"description=what the ticket is about"`
}

type bot struct {
	model   *scripted
	opened  atomic.Int32
	opts    agent.Options
	tasks   relay.TaskDisplay // the stream's cards (none when empty)
	results []agent.Result
}

func (b *bot) register(r *relay.Router) {
	open := agent.NewTool("open_ticket", "opens a ticket", func(_ context.Context, in ticketIn, key string) (string, error) {
		n := b.opened.Add(1)
		return fmt.Sprintf("ticket T-%d %q", n, in.Title), nil
	}, agent.SideEffects())
	relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		w, err := req.Stream(ctx, relay.StreamOptions{Tasks: b.tasks})
		if err != nil || w.Done() {
			return err
		}
		res, err := agent.Run(ctx, req.Session, w, b.model, []agent.Message{{Role: "user", Text: req.Payload.Text}}, []agent.Tool{open}, b.opts)
		if err != nil {
			return err
		}
		b.results = append(b.results, res)
		_, err = w.Finish(ctx)
		return err
	})
}

func answer(t *testing.T, s *fakeslack.Server) string {
	t.Helper()
	var texts []string
	for _, m := range s.RenderedThread(channel, ts) {
		if m.Bot {
			texts = append(texts, m.Text)
		}
	}
	return strings.Join(texts, "|")
}

func mention(id string) string { return fixture.AppMention(id, channel, ts, "my printer is on fire") }

func TestAToolIsCalledOnceAndTheAnswerUsesIt(t *testing.T) {
	b := &bot{model: &scripted{}}
	h := relaytest.New(t, b.register)
	got := h.DeliverBody(t, "mention.json", mention("EvA1"))
	if got.Err != nil || b.opened.Load() != 1 || b.model.turns() != 2 {
		t.Fatalf("got %+v, opened %d, turns %d; want one ticket and two turns", got, b.opened.Load(), b.model.turns())
	}
	want := `Let me open a ticket.` + "\n\n" + `Done: ticket T-1 "printer on fire".`
	if a := answer(t, h.Slack); a != want {
		t.Fatalf("the thread shows %q, want %q", a, want)
	}
	spec := b.model.calls[0].Tools
	if len(spec) != 1 || !strings.Contains(string(spec[0].Schema), `"title"`) || !strings.Contains(string(spec[0].Schema), "what the ticket is about") {
		t.Errorf("the model was offered %+v, want open_ticket with a schema of its input", spec)
	}
}

func TestACrashBetweenTheToolAndItsRecordIsNotCalledAgain(t *testing.T) {
	b := &bot{model: &scripted{}}
	h := relaytest.New(t, b.register)
	h.CrashAfter("once:agent:tool:0:0") // the ticket is opened, then the worker dies
	got := h.DeliverBody(t, "mention.json", mention("EvA2"))
	if b.opened.Load() != 1 {
		t.Fatalf("the ticket was opened %d times, want once", b.opened.Load())
	}
	a := answer(t, h.Slack)
	if got.Deliveries != 2 || !strings.Contains(a, "I could not be sure: the outcome of this call is unknown") || strings.Count(a, "Let me open a ticket.") != 1 {
		t.Fatalf("got %+v, thread %q; want one answer saying the outcome is unknown", got, a)
	}
	if b.model.turns() != 2 {
		t.Errorf("the model was asked %d times; want 2 (the first turn is replayed from the journal)", b.model.turns())
	}
}

func TestASlackFailureAfterTheToolReplaysItsResult(t *testing.T) {
	b := &bot{model: &scripted{}}
	h := relaytest.New(t, b.register)
	h.Slack.FailNext("chat.stopStream", 1, "internal_error")
	got := h.DeliverBody(t, "mention.json", mention("EvA3"))
	want := `Let me open a ticket.` + "\n\n" + `Done: ticket T-1 "printer on fire".`
	if got.Err != nil || got.Runs < 2 || b.opened.Load() != 1 || answer(t, h.Slack) != want {
		t.Fatalf("got %+v, opened %d, thread %q; want one ticket and the answer once", got, b.opened.Load(), answer(t, h.Slack))
	}
}

func TestToolRoundsAreBounded(t *testing.T) {
	b := &bot{model: &scripted{always: true}, opts: agent.Options{MaxRounds: 3}}
	h := relaytest.New(t, b.register)
	got := h.DeliverBody(t, "mention.json", mention("EvA4"))
	if got.Err != nil || b.opened.Load() != 2 || len(b.results) != 1 || b.results[0].Stopped == "" {
		t.Fatalf("got %+v, opened %d, results %+v; want 2 tool rounds then a stop note", got, b.opened.Load(), b.results)
	}
	if a := answer(t, h.Slack); !strings.Contains(a, "I stopped after 3 rounds") {
		t.Errorf("thread %q lacks the stop note", a)
	}
}

func TestAnUnknownToolIsToldToTheModel(t *testing.T) {
	b := &bot{model: &scripted{tool: "delete_everything"}}
	h := relaytest.New(t, b.register)
	got := h.DeliverBody(t, "mention.json", mention("EvA5"))
	if got.Err != nil || b.opened.Load() != 0 || !strings.Contains(answer(t, h.Slack), "there is no tool named delete_everything") {
		t.Fatalf("got %+v, thread %q", got, answer(t, h.Slack))
	}
}

func TestABadToolIsAPermanentFailure(t *testing.T) {
	bad := agent.NewTool("no spaces allowed", "x", func(context.Context, ticketIn, string) (string, error) { return "", nil })
	h := relaytest.New(t, func(r *relay.Router) {
		relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
			w, err := req.Stream(ctx, relay.StreamOptions{})
			if err != nil {
				return err
			}
			_, err = agent.Run(ctx, req.Session, w, &scripted{}, nil, []agent.Tool{bad}, agent.Options{})
			return err
		})
	})
	got := h.DeliverBody(t, "mention.json", mention("EvA6"))
	if len(got.DeadLetters) != 1 || !strings.Contains(got.DeadLetters[0].Reason, "tool name") {
		t.Fatalf("got %+v; want a permanent failure naming the tool", got)
	}
	_ = errors.New
}

// plain answers at once, without tools.
type plain struct{}

func (plain) Turn(_ context.Context, req agent.TurnRequest, onText func(string) error) (agent.Turn, error) {
	text := strings.TrimPrefix("The printer is fine.", req.Partial)
	return agent.Turn{Text: "The printer is fine."}, onText(text)
}

// The journal's cost of a tool round, against the same answer without tools: the side-effecting
// tool's intent and its result. The turns' own records ride on the stream's writes, and the
// flush before the tool is the stream's start, which the answer without tools writes too.
func TestTheJournalWritesOfAToolRound(t *testing.T) {
	none := relaytest.New(t, func(r *relay.Router) {
		relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
			w, err := req.Stream(ctx, relay.StreamOptions{})
			if err != nil {
				return err
			}
			if _, err := agent.Run(ctx, req.Session, w, plain{}, nil, nil, agent.Options{}); err != nil {
				return err
			}
			_, err = w.Finish(ctx)
			return err
		})
	})
	base := none.DeliverBody(t, "mention.json", mention("EvW0"))
	b := &bot{model: &scripted{}}
	h := relaytest.New(t, b.register)
	round := h.DeliverBody(t, "mention.json", mention("EvW1"))
	if base.Err != nil || round.Err != nil || b.opened.Load() != 1 {
		t.Fatalf("base %+v, round %+v", base, round)
	}
	if extra := round.JournalWrites - base.JournalWrites; extra != 2 {
		t.Errorf("a side-effecting tool round adds %d journal writes (%d against %d), want 2: the tool's intent and its result",
			extra, round.JournalWrites, base.JournalWrites)
	}
	t.Logf("journal writes: an answer without tools %d, with one side-effecting tool round %d", base.JournalWrites, round.JournalWrites)

	// With cards, the round's card is shown pending/in progress before the tool runs and
	// complete after it (one write each, with the call that carries it).
	c := &bot{model: &scripted{}, tasks: relay.TasksTimeline}
	hc := relaytest.New(t, c.register)
	carded := hc.DeliverBody(t, "mention.json", mention("EvW2"))
	if carded.Err != nil {
		t.Fatal(carded.Err)
	}
	if extra := carded.JournalWrites - round.JournalWrites; extra != 2 {
		t.Errorf("cards add %d journal writes to a tool round (%d against %d), want 2: the card in progress, then complete",
			extra, carded.JournalWrites, round.JournalWrites)
	}
	t.Logf("journal writes: with one side-effecting tool round and its card %d", carded.JournalWrites)
}

// cards is the task cards the thread's answer shows.
func cards(s *fakeslack.Server) ([]fakeslack.Task, string) {
	var out []fakeslack.Task
	plan := ""
	for _, m := range s.RenderedThread(channel, ts) {
		if m.Bot {
			out = append(out, m.Tasks...)
			plan += m.Plan
		}
	}
	return out, plan
}

// Each tool call shows as a card that ends complete with what the tool said; as a plan, the
// plan's title counts the steps.
func TestEachToolCallShowsAsACard(t *testing.T) {
	for _, display := range []relay.TaskDisplay{relay.TasksTimeline, relay.TasksPlan} {
		t.Run(string(display), func(t *testing.T) {
			b := &bot{model: &scripted{}, tasks: display}
			h := relaytest.New(t, b.register)
			got := h.DeliverBody(t, "mention.json", mention("EvC1"))
			c, plan := cards(h.Slack)
			want := []fakeslack.Task{{ID: "tool-0-0", Title: "open_ticket", Status: "complete",
				Details: `{"title":"printer on fire"}`, Output: `ticket T-1 "printer on fire"`}}
			if got.Err != nil || fmt.Sprint(c) != fmt.Sprint(want) {
				t.Fatalf("got %+v, cards %+v; want %+v", got, c, want)
			}
			if wantPlan := map[relay.TaskDisplay]string{relay.TasksPlan: "Done in 1 step"}[display]; plan != wantPlan {
				t.Errorf("plan title %q, want %q", plan, wantPlan)
			}
			want2 := `Let me open a ticket.` + "\n\n" + `Done: ticket T-1 "printer on fire".`
			if a := answer(t, h.Slack); a != want2 {
				t.Errorf("the thread shows %q, want %q", a, want2)
			}
		})
	}
}

// A redelivery replays the recorded steps: each card is drawn once, in its last state, and a
// recorded call's card is not shown in progress again.
func TestCardsAfterACrashShowOnceInTheirLastState(t *testing.T) {
	for _, fault := range []string{"once:agent:tool:0:0", "stream:", "the second turn fails"} {
		t.Run(fault, func(t *testing.T) {
			b := &bot{model: &scripted{}, tasks: relay.TasksTimeline}
			h := relaytest.New(t, b.register)
			if fault == "the second turn fails" {
				// The first turn, the tool's result and its card are recorded; the retry
				// replays them and asks the model again.
				b.model.failAfterTools = true
			} else {
				h.CrashAfter(fault)
			}
			got := h.DeliverBody(t, "mention.json", mention("EvC2"))
			c, _ := cards(h.Slack)
			if got.Deliveries < 2 || len(c) != 1 || c[0].ID != "tool-0-0" || b.opened.Load() != 1 {
				t.Fatalf("got %+v, cards %+v, opened %d; want a redelivery, one card, one ticket", got, c, b.opened.Load())
			}
			a := answer(t, h.Slack)
			unknown := strings.Contains(a, "outcome of this call is unknown")
			if st := map[bool]string{true: "error", false: "complete"}[unknown]; c[0].Status != st {
				t.Errorf("card %+v, want status %s (answer %q)", c[0], st, a)
			}
			// After the card showed complete (or error), no call sent it in progress again.
			for _, st := range h.Slack.Streams() {
				final := false
				for _, call := range st.Calls {
					if strings.Contains(string(call.Chunks), `"status":"complete"`) || strings.Contains(string(call.Chunks), `"status":"error"`) {
						final = true
					} else if final && strings.Contains(string(call.Chunks), `"status":"in_progress"`) {
						t.Errorf("%s sent the card in progress after it was finished: %s", call.Method, call.Chunks)
					}
				}
			}
		})
	}
}

// slow streams its answer a word every 50 ms until its context ends or the stream refuses
// more, and says which stopped it.
type slow struct {
	mu    sync.Mutex
	cause error
}

func (m *slow) Turn(ctx context.Context, req agent.TurnRequest, onText func(string) error) (agent.Turn, error) {
	var text strings.Builder
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			m.mu.Lock()
			m.cause = context.Cause(ctx)
			m.mu.Unlock()
			return agent.Turn{Text: text.String()}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		w := fmt.Sprintf("w%d ", i)
		text.WriteString(w)
		if err := onText(w); err != nil {
			m.mu.Lock()
			m.cause = err // the stream noticed the stop at a flush
			m.mu.Unlock()
			return agent.Turn{Text: text.String()}, err
		}
		if i > 400 {
			return agent.Turn{Text: text.String()}, nil
		}
	}
}

// A Stop click while the model writes: its request ends (its context cancelled with cause
// relay.ErrStopped, or the stream refusing the next piece at a flush), the answer ends with
// what was shown and a note, and a second click changes nothing.
func TestStopMidAnswer(t *testing.T) {
	m := &slow{}
	var res agent.Result
	h := relaytest.New(t, func(r *relay.Router) {
		relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
			w, err := req.Stream(ctx, relay.StreamOptions{Stop: true, Tasks: relay.TasksTimeline, FlushEvery: 100 * time.Millisecond})
			if err != nil || w.Done() {
				return err
			}
			if res, err = agent.Run(ctx, req.Session, w, m, nil, nil, agent.Options{}); err != nil {
				return err
			}
			_, err = w.Finish(ctx)
			return err
		})
	})
	done := make(chan relaytest.Result)
	go func() { done <- h.DeliverBody(t, "mention.json", mention("EvS1")) }()
	if !h.WaitForStream(channel, ts, 5*time.Second) {
		t.Fatal("the answer did not start streaming")
	}
	time.Sleep(300 * time.Millisecond)
	clicked := time.Now()
	if c := h.ClickStop(t, channel, ts); c.Err != nil || c.Route != "stop" {
		t.Fatalf("the click: %+v", c)
	}
	got := <-done
	took := time.Since(clicked)
	m.mu.Lock()
	cause := m.cause
	m.mu.Unlock()
	if got.Err != nil || !errors.Is(cause, relay.ErrStopped) || res.Stopped == "" {
		t.Fatalf("answer %+v, model's end %v, result %+v; want the model cancelled by the stop", got, cause, res)
	}
	a := answer(t, h.Slack)
	if !strings.HasSuffix(a, "_Stopped._") || strings.Count(a, "Stopped") != 1 || !strings.HasPrefix(a, "w0 w1 ") {
		t.Fatalf("the thread shows %q, want what was shown then the note", a)
	}
	st := h.Slack.Streams()
	if len(st) != 1 || st[0].State != fakeslack.StreamStopped {
		t.Fatalf("streams %+v, want one, stopped", st)
	}
	t.Logf("Stop click → answer finished: %v", took)
	// A second click on the finished answer: nothing changes.
	calls := len(st[0].Calls)
	if c := h.ClickStop(t, channel, ts); c.Err != nil {
		t.Fatal(c.Err)
	}
	if a2 := answer(t, h.Slack); a2 != a || len(h.Slack.Streams()[0].Calls) != calls {
		t.Errorf("a click on the finished answer changed it: %q", a2)
	}
}

// permanentOnce fails its first turn for good (access denied, say), then answers.
type permanentOnce struct {
	mu    sync.Mutex
	turns int
}

func (m *permanentOnce) Turn(_ context.Context, req agent.TurnRequest, onText func(string) error) (agent.Turn, error) {
	m.mu.Lock()
	m.turns++
	n := m.turns
	m.mu.Unlock()
	if n == 1 {
		return agent.Turn{}, relay.Permanent(errors.New("access denied to the model"))
	}
	return agent.Turn{Text: "Fixed now."}, onText(strings.TrimPrefix("Fixed now.", req.Partial))
}

// A turn's permanent failure dead-letters the event and is not recorded: the dead letter,
// replayed once the cause is fixed, asks the model again.
func TestAPermanentTurnFailureIsNotRecorded(t *testing.T) {
	m := &permanentOnce{}
	h := relaytest.New(t, func(r *relay.Router) {
		relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
			w, err := req.Stream(ctx, relay.StreamOptions{})
			if err != nil || w.Done() {
				return err
			}
			if _, err := agent.Run(ctx, req.Session, w, m, nil, nil, agent.Options{}); err != nil {
				return err
			}
			_, err = w.Finish(ctx)
			return err
		})
	})
	got := h.DeliverBody(t, "mention.json", mention("EvP1"))
	if len(got.DeadLetters) != 1 || !strings.Contains(got.DeadLetters[0].Reason, "access denied") {
		t.Fatalf("got %+v, want one dead letter naming the failure", got)
	}
	again := h.Redeliver(t, got)
	if again.Err != nil || m.turns != 2 || answer(t, h.Slack) != "Fixed now." {
		t.Fatalf("replay %+v, turns %d, thread %q; want the model asked again and the answer", again, m.turns, answer(t, h.Slack))
	}
}

package agent_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

func TestUsageAddsUpTheTurns(t *testing.T) {
	t.Parallel()
	res := agent.Result{ToolCalls: 3, Turns: []agent.Turn{
		{InputTokens: 1200, OutputTokens: 40, CachedTokens: 1000, ModelMillis: 850},
		{InputTokens: 1300, OutputTokens: 60, CachedTokens: 1100, CacheWriteTokens: 150, ModelMillis: 1150},
		{Text: "a model that reports nothing"},
	}}
	want := agent.Usage{InputTokens: 2500, OutputTokens: 100, CachedTokens: 2100, CacheWriteTokens: 150,
		ModelCalls: 3, ToolCalls: 3, ModelTime: 2 * time.Second}
	if got := res.Usage(); got != want {
		t.Errorf("Usage() = %+v, want %+v", got, want)
	}
	if got := (agent.Result{}).Usage(); got != (agent.Usage{}) {
		t.Errorf("Usage() of no turns = %+v, want zero", got)
	}
}

// costly is the scripted model with usage on each turn: 100 input tokens (60 cached) and 10
// output tokens, 5 ms in the model.
type costly struct {
	scripted
	calls atomic.Int32
}

func (m *costly) Turn(ctx context.Context, req agent.TurnRequest, onText func(string) error) (agent.Turn, error) {
	m.calls.Add(1)
	t, err := m.scripted.Turn(ctx, req, onText)
	t.InputTokens, t.CachedTokens, t.OutputTokens, t.ModelMillis = 100, 60, 10, 5
	return t, err
}

// A turn recorded by an attempt that crashed is counted once, with what it cost then: the
// next attempt replays it without the model and adds its own turn.
func TestUsageCountsRecordedTurnsOnce(t *testing.T) {
	model := &costly{}
	var results []agent.Result
	open := agent.NewTool("open_ticket", "opens a ticket", func(_ context.Context, in ticketIn, _ string) (string, error) {
		return fmt.Sprintf("ticket %q", in.Title), nil
	}, agent.SideEffects())
	h := relaytest.New(t, func(r *relay.Router) {
		relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
			w, err := req.Stream(ctx, relay.StreamOptions{})
			if err != nil || w.Done() {
				return err
			}
			res, err := agent.Run(ctx, req.Session, w, model, []agent.Message{{Role: "user", Text: req.Payload.Text}}, []agent.Tool{open}, agent.Options{})
			if err != nil {
				return err
			}
			results = append(results, res)
			_, err = w.Finish(ctx)
			return err
		})
	})
	h.CrashAfter("once:agent:tool:0:0")
	got := h.DeliverBody(t, "mention.json", mention("EvUsage1"))
	if got.Err != nil || got.Runs != 2 || len(results) != 1 {
		t.Fatalf("got %+v with %d results; want two runs (a crash, then the answer) and one result", got, len(results))
	}
	if n := model.calls.Load(); n != 2 {
		t.Fatalf("the model was called %d times, want 2 (the recorded first turn is replayed)", n)
	}
	want := agent.Usage{InputTokens: 200, CachedTokens: 120, OutputTokens: 20, ModelCalls: 2, ToolCalls: 1, ModelTime: 10 * time.Millisecond}
	if u := results[0].Usage(); u != want {
		t.Errorf("Usage() = %+v, want %+v", u, want)
	}
}

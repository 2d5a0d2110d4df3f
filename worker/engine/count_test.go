package engine

import (
	"context"
	"testing"

	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/worker/relay"
)

// A daily counter that cannot be added to after the completion does not bring the message
// back: the event is answered and recorded; only the counter misses it.
func TestAFailedCountDoesNotRetryTheEvent(t *testing.T) {
	t.Parallel()
	s := store(t)
	q := &fakeQueue{}
	var counted []int64
	h := &handlerFunc{fn: func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		n, err := req.DailyCount(ctx, "tokens")
		if err != nil {
			return err
		}
		counted = append(counted, n)
		req.CountDaily("tokens", 50)
		if len(counted) == 1 {
			failUpdates(s, func(n int) bool { return n == 2 }) // the completion's write is 1, the count's 2
		}
		return nil
	}}
	p := newEngine(t, h, q, s)
	ev := mention(t, "1")
	if out, _ := p.HandleSQS(context.Background(), ev); len(out.BatchItemFailures) != 0 || len(q.sent) != 0 {
		t.Fatalf("failures %v, DLQ sends %d; want the message acknowledged", out.BatchItemFailures, len(q.sent))
	}
	failUpdates(s, nil)
	if out, _ := p.HandleSQS(context.Background(), copyOf(ev, "dup", "1")); len(out.BatchItemFailures) != 0 || h.calls.Load() != 1 {
		t.Fatalf("a copy after the completion: failures %v, handler runs %d; want a duplicate (1 run)", out.BatchItemFailures, h.calls.Load())
	}
	// Another event of the team counts as usual.
	if out, _ := p.HandleSQS(context.Background(), mention(t, "1")); len(out.BatchItemFailures) != 0 {
		t.Fatalf("second event: %v", out.BatchItemFailures)
	}
	if out, _ := p.HandleSQS(context.Background(), mention(t, "1")); len(out.BatchItemFailures) != 0 {
		t.Fatalf("third event: %v", out.BatchItemFailures)
	}
	if want := []int64{0, 0, 50}; len(counted) != 3 || counted[0] != want[0] || counted[1] != want[1] || counted[2] != want[2] {
		t.Errorf("the counter read %v before each event, want %v (the first event's add failed)", counted, want)
	}
}

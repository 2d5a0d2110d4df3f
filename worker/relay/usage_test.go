package relay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// meteredBot answers a mention with its workspace's count so far, keeps what the answer
// cost and counts its tokens; failFirst makes its first run fail after the reply.
type meteredBot struct {
	failFirst bool
	runs      int
	seen      []int64
}

func (b *meteredBot) register(r *relay.Router) {
	relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		b.runs++
		n, err := req.DailyCount(ctx, "tokens")
		if err != nil {
			return err
		}
		b.seen = append(b.seen, n)
		if _, err := req.Reply(ctx, fmt.Sprintf("%s has used %d tokens today", req.Team(), n)); err != nil {
			return err
		}
		price := 0.0042
		req.SetUsage(relay.Usage{Model: "model-a", InputTokens: 900, CachedTokens: 600, OutputTokens: 100, ModelCalls: 2, ToolCalls: 1,
			ModelTime: 1500 * time.Millisecond, CostUSD: &price, Team: "ignored: the delivery's"})
		req.CountDaily("tokens", 1000)
		if b.failFirst && b.runs == 1 {
			return errors.New("connection reset after the reply")
		}
		return nil
	})
}

func TestUsageIsKeptAndCountedWhenTheEventCompletes(t *testing.T) {
	b := &meteredBot{failFirst: true}
	h := relaytest.New(t, b.register)
	got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvU1", "C0USAGE", "1700000005.000100", "how much?"))
	if got.Err != nil || got.Runs != 2 || len(got.Posts) != 1 {
		t.Fatalf("got %+v; want two runs (a failure after the reply, then the completion) and one reply", got)
	}
	price := 0.0042
	want := &relay.Usage{Model: "model-a", Team: "T0001", InputTokens: 900, CachedTokens: 600, OutputTokens: 100, ModelCalls: 2,
		ToolCalls: 1, ModelTime: 1500 * time.Millisecond, CostUSD: &price}
	if diff := cmp.Diff(want, got.Usage); diff != "" {
		t.Errorf("usage on the record (-want +got):\n%s", diff)
	}
	// The failed run's count was never added: the counter holds the one completion's.
	if n := h.DailyCount("T0001", "tokens"); n != 1000 {
		t.Errorf("T0001's tokens today = %d, want 1000 (counted once, when the event completed)", n)
	}
	// A redelivery of the answered event runs nothing and counts nothing.
	again := h.Redeliver(t, got)
	if !again.Duplicate || again.Runs != 0 || h.DailyCount("T0001", "tokens") != 1000 {
		t.Errorf("redelivery: %+v, counter %d; want a duplicate and the counter unchanged", again, h.DailyCount("T0001", "tokens"))
	}
	// The next event reads the count; another workspace's counter is its own.
	next := h.DeliverBody(t, "mention.json", fixture.AppMention("EvU2", "C0USAGE", "1700000006.000100", "and now?"))
	if next.Err != nil || len(next.Posts) != 1 || next.Posts[0].Text != "T0001 has used 1000 tokens today" {
		t.Errorf("next answer: %+v", next)
	}
	if n := h.DailyCount("T0002", "tokens"); n != 0 {
		t.Errorf("T0002's tokens today = %d, want 0", n)
	}
	if !cmp.Equal(b.seen, []int64{0, 0, 1000}) {
		t.Errorf("counts read by the runs = %v, want [0 0 1000]", b.seen)
	}
	// The day after, the count starts again.
	h.Advance(24 * time.Hour)
	if n := h.DailyCount("T0001", "tokens"); n != 0 {
		t.Errorf("T0001's tokens the next day = %d, want 0", n)
	}
}

// An event whose handler keeps no usage has none on its record.
func TestNoUsageWithoutSetUsage(t *testing.T) {
	h := relaytest.New(t, func(r *relay.Router) {
		relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
			_, err := req.Reply(ctx, "hi")
			return err
		})
	})
	got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvU3", "C0USAGE", "1700000007.000100", "hi"))
	if got.Err != nil || got.Usage != nil {
		t.Errorf("got %+v with usage %+v; want none", got, got.Usage)
	}
}

package relay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// ticketBot opens a ticket for a mention (an effect outside Slack) and replies with its id;
// when the outcome of an earlier attempt's opening is unknown, it says so instead.
type ticketBot struct {
	opened atomic.Int32
	keys   []string
	fail   func(n int32) error
	opts   []relay.OnceOption
}

func (b *ticketBot) register(r *relay.Router) {
	relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		id, err := relay.Once(ctx, req.Session, "ticket", func(ctx context.Context, key string) (string, error) {
			n := b.opened.Add(1)
			b.keys = append(b.keys, key)
			if b.fail != nil {
				if err := b.fail(n); err != nil {
					return "", err
				}
			}
			return fmt.Sprintf("T-%d", n), nil
		}, b.opts...)
		switch {
		case errors.Is(err, relay.ErrOutcomeUnknown):
			_, err = req.Reply(ctx, "I may have opened a ticket already; look for key "+req.OnceKey("ticket"))
			return err
		case err != nil:
			return err
		}
		_, err = req.Reply(ctx, "opened "+id)
		return err
	})
}

func mentionOf(id string) string {
	return fixture.AppMention(id, "C0ONCE", "1700000001.000100", "open a ticket")
}

func TestOnceRunsTheEffectOnceAcrossASlackFailure(t *testing.T) {
	b := &ticketBot{}
	h := relaytest.New(t, b.register)
	h.Slack.FailNext("chat.postMessage", 1, "internal_error")
	got := h.DeliverBody(t, "mention.json", mentionOf("EvO1"))
	if got.Err != nil || got.Runs != 2 || b.opened.Load() != 1 || len(got.Posts) != 1 || got.Posts[0].Text != "opened T-1" {
		t.Fatalf("got %+v, opened %d; want the ticket opened once and its id replied once", got, b.opened.Load())
	}
	if again := h.Redeliver(t, got); !again.Duplicate || b.opened.Load() != 1 {
		t.Fatalf("redelivery: %+v, opened %d", again, b.opened.Load())
	}
}

func TestOnceAfterACrashBetweenEffectAndRecordSaysTheOutcomeIsUnknown(t *testing.T) {
	b := &ticketBot{}
	h := relaytest.New(t, b.register)
	h.CrashAfter("once:ticket") // dies after opening the ticket, before recording it
	got := h.DeliverBody(t, "mention.json", mentionOf("EvO2"))
	if b.opened.Load() != 1 {
		t.Fatalf("the ticket was opened %d times, want once", b.opened.Load())
	}
	if got.Deliveries != 2 || len(got.Posts) != 1 || !strings.Contains(got.Posts[0].Text, "may have opened") {
		t.Fatalf("got %+v; want the second delivery to say the outcome is unknown, once", got)
	}
	if !strings.Contains(got.Posts[0].Text, b.keys[0]) {
		t.Errorf("reply %q does not name the effect's key %q", got.Posts[0].Text, b.keys[0])
	}
}

func TestOnceRepeatableRunsAgainAfterACrash(t *testing.T) {
	b := &ticketBot{opts: []relay.OnceOption{relay.Repeatable()}}
	h := relaytest.New(t, b.register)
	h.CrashAfter("post") // after the reply's post: the lookup's deferred result is lost with it
	got := h.DeliverBody(t, "mention.json", mentionOf("EvO3"))
	if got.Deliveries != 2 || len(got.Posts) != 1 || got.Posts[0].Text != "opened T-1" {
		t.Fatalf("got %+v; want one reply", got)
	}
	if n := b.opened.Load(); n != 1 && n != 2 {
		t.Fatalf("a repeatable effect ran %d times", n)
	}
}

func TestOnceKeepsTheKeyAcrossRetries(t *testing.T) {
	b := &ticketBot{fail: func(n int32) error {
		if n == 1 {
			return errors.New("ticket service: 503")
		}
		return nil
	}}
	h := relaytest.New(t, b.register)
	got := h.DeliverBody(t, "mention.json", mentionOf("EvO4"))
	if got.Err != nil || b.opened.Load() != 2 || len(got.Posts) != 1 || got.Posts[0].Text != "opened T-2" {
		t.Fatalf("got %+v, opened %d; want a retry after the service's failure", got, b.opened.Load())
	}
	if len(b.keys) != 2 || b.keys[0] != b.keys[1] || len(b.keys[0]) != 32 {
		t.Errorf("keys %q, want the same 32-character key on both runs", b.keys)
	}
}

func TestOncePermanentFailureIsRecordedAndNotRunAgain(t *testing.T) {
	b := &ticketBot{fail: func(int32) error { return relay.Permanent(errors.New("ticket service: project archived")) }}
	h := relaytest.New(t, b.register)
	got := h.DeliverBody(t, "mention.json", mentionOf("EvO5"))
	if len(got.DeadLetters) != 1 || got.DeadLetters[0].Class != "permanent" || b.opened.Load() != 1 {
		t.Fatalf("got %+v, opened %d; want one run and a permanent dead letter", got, b.opened.Load())
	}
	// The dead letter replayed: the recorded failure comes back without a second run.
	replay := h.Redeliver(t, got)
	if b.opened.Load() != 1 || len(replay.DeadLetters) != 1 || !strings.Contains(replay.DeadLetters[0].Reason, "project archived") {
		t.Fatalf("replay: %+v, opened %d; want the recorded failure, no second run", replay, b.opened.Load())
	}
}

func TestOnceNameUsedTwiceIsRefused(t *testing.T) {
	h := relaytest.New(t, func(r *relay.Router) {
		relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
			run := func(context.Context, string) (int, error) { return 1, nil }
			if _, err := relay.Once(ctx, req.Session, "x", run); err != nil {
				return err
			}
			_, err := relay.Once(ctx, req.Session, "x", run)
			return err
		})
	})
	got := h.DeliverBody(t, "mention.json", mentionOf("EvO6"))
	if len(got.DeadLetters) != 1 || !strings.Contains(got.DeadLetters[0].Reason, "one step name used twice") {
		t.Fatalf("got %+v; want ErrStepTwice as a permanent failure", got)
	}
}

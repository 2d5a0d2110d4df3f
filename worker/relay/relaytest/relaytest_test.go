package relaytest_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// echo is a bot that replies to a mention with its text, after whatever before does.
func echo(runs *atomic.Int32, before func(n int32) error) func(r *relay.Router) {
	return func(r *relay.Router) {
		relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
			n := runs.Add(1)
			if before != nil {
				if err := before(n); err != nil {
					return err
				}
			}
			_, err := req.Reply(ctx, "echo: "+req.Payload.Text)
			return err
		})
	}
}

func mention(id, ts string) string { return fixture.AppMention(id, "C0ECHO", ts, "hello") }

func TestAnsweredOnceAndADuplicateDoesNothing(t *testing.T) {
	var runs atomic.Int32
	h := relaytest.New(t, echo(&runs, nil))
	first := h.DeliverBody(t, "mention.json", mention("Ev1", "1700000000.000100"))
	if first.Err != nil || first.Route != "app_mention" || first.Runs != 1 || len(first.Posts) != 1 || !strings.Contains(first.Posts[0].Text, "echo:") {
		t.Fatalf("first delivery: %+v", first)
	}
	again := h.DeliverBody(t, "mention.json", mention("Ev1", "1700000000.000100"))
	if !again.Duplicate || again.Runs != 0 || len(again.Posts) != 0 {
		t.Fatalf("Slack's retry of the same event: %+v, want a duplicate that posts nothing", again)
	}
}

func TestASlackErrorIsRetriedAndAnsweredOnce(t *testing.T) {
	var runs atomic.Int32
	h := relaytest.New(t, echo(&runs, nil))
	h.Slack.FailNext("chat.postMessage", 1, "internal_error")
	got := h.DeliverBody(t, "mention.json", mention("Ev2", "1700000000.000200"))
	if got.Err != nil || got.Runs != 2 || got.Deliveries != 2 || len(got.Posts) != 1 {
		t.Fatalf("got %+v, want a failed run, a retry and one post", got)
	}
}

func TestALostSlackResponseDoesNotPostTwice(t *testing.T) {
	var runs atomic.Int32
	h := relaytest.New(t, echo(&runs, nil))
	h.Slack.LoseResponseNext("chat.postMessage", 1)
	got := h.DeliverBody(t, "mention.json", mention("Ev3", "1700000000.000300"))
	if got.Err != nil || got.Runs < 2 || len(got.Posts) != 1 {
		t.Fatalf("got %+v, want the retry to find the post that took effect", got)
	}
}

func TestACrashAfterThePostDoesNotPostTwice(t *testing.T) {
	var runs atomic.Int32
	h := relaytest.New(t, echo(&runs, nil))
	h.CrashAfter("post")
	got := h.DeliverBody(t, "mention.json", mention("Ev4", "1700000000.000400"))
	if got.Err != nil || got.Deliveries != 2 || got.Runs != 2 || got.Attempt != 2 || len(got.Posts) != 1 {
		t.Fatalf("got %+v, want a crash after the post, a second delivery that resumes, one post", got)
	}
}

func TestAPermanentFailureIsDeadLetteredWithoutRetry(t *testing.T) {
	var runs atomic.Int32
	h := relaytest.New(t, echo(&runs, func(int32) error { return relay.Permanent(errors.New("the question is not one we answer")) }))
	got := h.DeliverBody(t, "mention.json", mention("Ev5", "1700000000.000500"))
	if got.Runs != 1 || len(got.DeadLetters) != 1 || got.DeadLetters[0].Class != "permanent" || !strings.Contains(got.DeadLetters[0].Reason, "not one we answer") || len(got.Posts) != 0 {
		t.Fatalf("got %+v, want one run and a permanent dead letter", got)
	}
}

func TestAPanicIsRetriedThenExhausted(t *testing.T) {
	var runs atomic.Int32
	h := relaytest.New(t, echo(&runs, func(int32) error { panic("boom") }), relaytest.MaxReceiveCount(3))
	got := h.DeliverBody(t, "mention.json", mention("Ev6", "1700000000.000600"))
	if got.Runs != 3 || len(got.DeadLetters) != 1 || got.DeadLetters[0].Class != "exhausted" || !strings.Contains(got.DeadLetters[0].Reason, "panicked") {
		t.Fatalf("got %+v, want 3 runs and an exhausted dead letter naming the panic", got)
	}
}

func TestAMissingScopeFailsAsSlackWould(t *testing.T) {
	var runs atomic.Int32
	h := relaytest.New(t, echo(&runs, nil), relaytest.Scopes("app_mentions:read"), relaytest.MaxReceiveCount(2))
	got := h.DeliverBody(t, "mention.json", mention("Ev7", "1700000000.000700"))
	if len(got.Posts) != 0 || got.Err == nil || !strings.Contains(got.Err.Error(), "missing_scope") {
		t.Fatalf("got %+v, want missing_scope and no post", got)
	}
}

func TestAnUnroutedPayloadIsAcknowledged(t *testing.T) {
	h := relaytest.New(t, func(r *relay.Router) {})
	got := h.DeliverBody(t, "mention.json", mention("Ev8", "1700000000.000800"))
	if got.Route != "" || got.Type != "app_mention" || got.Runs != 0 || got.Deliveries != 1 {
		t.Fatalf("got %+v, want an unrouted delivery acknowledged once", got)
	}
}

func TestARegistrationMistakeFailsTheTest(t *testing.T) {
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		relaytest.New(ft, func(r *relay.Router) { relay.Command(r, "ask", nil) })
	}()
	<-done
	if !ft.failed || !strings.Contains(ft.msg, "must start with /") {
		t.Fatalf("failed=%v msg=%q, want the registration mistake reported", ft.failed, ft.msg)
	}
}

type fakeT struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = strings.TrimSpace(strings.ReplaceAll(format, "%v", "")) + ": " + errString(args)
	runtimeGoexit()
}

func TestRedeliverIsTheSameMessageAgain(t *testing.T) {
	var runs atomic.Int32
	h := relaytest.New(t, echo(&runs, nil))
	first := h.DeliverBody(t, "mention.json", mention("Ev9", "1700000000.000900"))
	again := h.Redeliver(t, first)
	if first.Message == "" || !again.Duplicate || again.Runs != 0 || len(again.Posts) != 0 || runs.Load() != 1 {
		t.Fatalf("redelivery: %+v, want a duplicate of the answered message", again)
	}
}

func TestJournalWritesAreCounted(t *testing.T) {
	var runs atomic.Int32
	h := relaytest.New(t, echo(&runs, nil))
	got := h.DeliverBody(t, "mention.json", mention("EvW1", "1700000000.001100"))
	// The reply's intent before chat.postMessage, then the completion (its ts goes with it).
	if got.JournalWrites != 2 {
		t.Fatalf("JournalWrites = %d, want 2 (the post's intent, the completion)", got.JournalWrites)
	}
	if again := h.Redeliver(t, got); again.JournalWrites != 0 {
		t.Fatalf("a duplicate wrote %d times, want 0", again.JournalWrites)
	}
}

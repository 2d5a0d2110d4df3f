package relaytest_test

import (
	"context"
	"testing"

	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// register is the bot docs/handlers.md writes: a thank-you in the thread of a message that
// got a :tada:.
func register(r *relay.Router) {
	relay.Event(r, "reaction_added", thank, relay.Skip(notTada))
}

func thank(ctx context.Context, req *relay.Request[slackevents.ReactionAddedEvent]) error {
	_, err := req.Reply(ctx, "Thanks for the :tada:, <@"+req.Payload.User+">!")
	return err
}

func notTada(_ context.Context, ev *slackevents.ReactionAddedEvent) string {
	if ev.Reaction != "tada" {
		return "not a tada"
	}
	return ""
}

func TestThanks(t *testing.T) {
	t.Parallel()
	h := relaytest.New(t, register)
	got := h.Deliver(t, "testdata/reaction_added.json")
	if got.Err != nil {
		t.Fatal(got.Err)
	}
	if len(got.Posts) != 1 || got.Posts[0].Channel != "C0CHAN" || got.Posts[0].ThreadTS != "1515449522.000016" ||
		got.Posts[0].Text != "Thanks for the :tada:, <@U0USER>!" {
		t.Fatalf("posts = %+v, want one thank-you in the thread of 1515449522.000016", got.Posts)
	}
	// Slack delivers the event again (a retry): nothing more is posted.
	if again := h.Deliver(t, "testdata/reaction_added.json"); !again.Duplicate || len(again.Posts) != 0 {
		t.Errorf("second delivery: duplicate=%v posts=%d, want a duplicate that posts nothing", again.Duplicate, len(again.Posts))
	}
}

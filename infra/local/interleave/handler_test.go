package interleave

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// variant is what the test handler answers a mention with: the effects of the shipped bot's
// paths (a streamed answer with buttons under it, a multi-part reply) with fixed text, so
// that what the thread must show is known. Every word of the text is distinct, so a repeated
// piece shows.
type variant struct {
	name string
	// ack is a reply posted before the answer (a step of its own, Session.Named); "" none.
	ack string
	// answer is streamed with Session.Stream (stream) or posted with Reply in as many
	// messages as it takes; either way the button goes under its last message.
	answer string
	stream bool
	// disabled answers with a message updated in place instead of chat.*Stream.
	disabled bool
	// piece is how much of the answer one Append carries; flush is StreamOptions.FlushChars
	// (FlushEvery is an hour: flushes are decided by size alone).
	piece, flush int
}

// want is the thread's bot messages, concatenated, as they must read once the event is
// answered.
func (v variant) want() string { return v.ack + v.answer }

// words is n distinct words "<tag>0001 <tag>0002 …".
func words(tag string, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%s%04d ", tag, i)
	}
	return b.String()
}

// variants are what a schedule's handler may answer, with the weight of each.
var variants = []struct {
	weight int
	v      variant
}{
	// A short streamed answer: chat.startStream, two appends, chat.stopStream with the button.
	{35, variant{name: "stream", answer: words("s", 20), stream: true, piece: 10, flush: 40}},
	// An acknowledgement first, then the streamed answer: two steps in one run.
	{25, variant{name: "ack+stream", ack: words("a", 6), answer: words("s", 20), stream: true, piece: 10, flush: 40}},
	// A reply in two messages (over relay.MaxPartRunes), the button under the second.
	{20, variant{name: "reply", answer: words("r", 700)}},
	// The stream's other form (StreamOptions.Disabled, as when Slack refuses streaming): a
	// post, then chat.update with the text so far.
	{10, variant{name: "updated in place", answer: words("u", 20), stream: true, piece: 10, flush: 40, disabled: true}},
	// A streamed answer longer than one message (relay.MaxAnswerMessageChars): it goes on in
	// a second message.
	{10, variant{name: "long stream", answer: words("l", 2000), stream: true, piece: 1000, flush: 3000}},
}

// pickVariant draws a variant by weight.
func pickVariant(rng *rand.Rand) variant {
	total := 0
	for _, v := range variants {
		total += v.weight
	}
	r := rng.IntN(total)
	for _, v := range variants {
		if r < v.weight {
			return v.v
		}
		r -= v.weight
	}
	panic("unreachable")
}

// buttonAction is the action_id of the button under the answer.
const buttonAction = "regenerate"

// button is the block under the answer's last message.
func button() slack.Block {
	return slack.NewActionBlock("answer_actions",
		slack.NewButtonBlockElement(buttonAction, "again", slack.NewTextBlockObject(slack.PlainTextType, "Regenerate", false, false)))
}

// register adds the test handler to b: app_mention answers with the schedule's variant.
func register(b *relay.Router) {
	relay.Event(b, "app_mention", mention, relay.Name("answer"))
}

// mention is the test handler. Like the shipped bot it is written the obvious way — reply,
// then stream the answer and finish it with buttons — and resumes as the relay documents: an
// answer whose text is complete is only finished, one begun is continued from Stream.Text.
func mention(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
	inv := invocationOf(ctx)
	if inv == nil {
		return relay.Permanent(fmt.Errorf("interleave: the handler runs outside any invocation"))
	}
	v := inv.s.variant
	if v.ack != "" {
		if _, err := req.Named("ack").Reply(ctx, v.ack); err != nil {
			return err
		}
	}
	if !v.stream {
		_, err := req.Reply(ctx, v.answer, relay.WithBlocks(button()))
		return err
	}
	w, err := req.Stream(ctx, relay.StreamOptions{FlushChars: v.flush, FlushEvery: time.Hour, Disabled: v.disabled})
	if err != nil {
		return err
	}
	if w.Done() {
		return nil
	}
	if !w.Complete() {
		shown := w.Text()
		rest, ok := strings.CutPrefix(v.answer, shown)
		if !ok {
			inv.s.violatef("%s: Stream.Text() is not a beginning of the answer: %.200q", inv.name(), shown)
			return relay.Permanent(fmt.Errorf("interleave: the recorded text is not the answer's beginning"))
		}
		for rest != "" {
			n := min(v.piece, len(rest))
			actx := ctx
			if inv.yieldNow() {
				actx = nearDeadline{ctx}
			}
			if err := w.Append(actx, rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
	}
	_, err = w.Finish(ctx, button())
	return err
}

// nearDeadline is the handler's context when the scheduler says the invocation's time runs
// out: its deadline is a second away, so Append sends what it has and asks to continue in a
// new delivery (relay's own yield path), whatever the real clock says.
type nearDeadline struct{ context.Context }

// Deadline is a second from now.
func (nearDeadline) Deadline() (time.Time, bool) { return time.Now().Add(time.Second), true }

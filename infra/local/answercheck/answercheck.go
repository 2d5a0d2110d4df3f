// Package answercheck judges a bot's answer in a Slack thread by what a Slack client shows,
// the rendering of the local Slack server (fakeslack.Rendered), not by the Web API's `text`:
// an answer streamed and then repeated in chat.stopStream's blocks is one message in the API's
// view but the answer twice on the screen. It is the one place where the end-to-end suite, the
// demo, `make bench` and the Lambda-mode tests decide that an event was answered exactly once:
//
//   - the thread holds at least one message of the bot, and none of them is still streaming;
//   - their texts, concatenated in thread order, are the expected answer, exactly, once (an
//     answer longer than one message continues in the next; white space where one message
//     ends and the next begins does not show and is not compared), and no message is empty;
//   - the expected actions (Regenerate, feedback) are shown once each, under the last message
//     and under no other.
//
// A streamed message may show one Stop button (relay.StopActionID) above its text, finished
// or not: it is not one of the answer's actions.
package answercheck

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// AnswerActions are the action_ids under every answer of the shipped bot, in display order:
// the Regenerate button, then the feedback buttons.
var AnswerActions = []string{assistant.ActionRegenerate, assistant.ActionFeedback}

// RegeneratedActions are the action_ids under an answer replaced by a Regenerate click: the
// same buttons as under every answer.
var RegeneratedActions = AnswerActions

// Expect is the answer a thread should show.
type Expect struct {
	// Text is the whole answer, exactly as the model or responder gave it; "" when the caller
	// does not know it: then the text is only checked for repeats (its beginning shown once,
	// no two messages alike).
	Text string
	// Actions are the action_ids shown under the answer's last message, in display order, each
	// once; nil or empty: no actions at all.
	Actions []string
}

// Answer is the shipped bot's answer text: the text with Regenerate and feedback under it.
func Answer(text string) Expect { return Expect{Text: text, Actions: AnswerActions} }

// Regenerated is an answer after a Regenerate click: the new text with Regenerate under it.
func Regenerated(text string) Expect { return Expect{Text: text, Actions: RegeneratedActions} }

// Outcome is what a thread shows of an answer, from best to worst as a user sees it.
type Outcome int

// The outcomes. Judge gives the first that applies in the order Missing, Doubled,
// Streaming, Wrong, else Answered.
const (
	// Answered: the answer, once, finished, its actions once under its last message.
	Answered Outcome = iota + 1
	// Missing: no message of the bot in the thread (lost, or not yet there).
	Missing
	// Streaming: a message of the bot is still streaming (and nothing is shown twice).
	Streaming
	// Doubled: text or actions shown more than once, finished or not.
	Doubled
	// Wrong: finished and shown once, but not the answer: incomplete, different, an empty
	// message, actions missing or elsewhere than under the last message.
	Wrong
)

func (o Outcome) String() string {
	switch o {
	case Answered:
		return "answered once"
	case Missing:
		return "missing"
	case Streaming:
		return "still streaming"
	case Doubled:
		return "shown twice"
	case Wrong:
		return "wrong"
	}
	return "unknown"
}

// Verdict is Judge's finding on one thread.
type Verdict struct {
	Channel, Thread string
	Outcome         Outcome
	// Messages are the bot's messages in the thread (its parent left out), in thread order.
	Messages []fakeslack.Rendered
	// Text is their texts concatenated: the answer as a reader reads it.
	Text string
	// Problems say what is wrong, one entry per finding (empty when Answered).
	Problems []string
}

// OK reports whether the thread shows the answer exactly once.
func (v Verdict) OK() bool { return v.Outcome == Answered }

// Err is nil when the thread shows the answer exactly once, else an error naming the
// thread, the outcome, the problems and the bot's messages (long texts shortened).
func (v Verdict) Err() error {
	if v.OK() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "thread %s of %s: %s", v.Thread, v.Channel, v.Outcome)
	if len(v.Problems) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(v.Problems, "; "))
	}
	b.WriteString("; the bot's messages:")
	if len(v.Messages) == 0 {
		b.WriteString(" none")
	}
	for _, m := range v.Messages {
		state := "finished"
		if m.Streaming {
			state = "streaming"
		}
		fmt.Fprintf(&b, " [%s %s, %d characters %q, actions %v]", m.TS, state, utf8.RuneCountInString(m.Text), Shorten(m.Text, 60), m.Actions)
	}
	return errors.New(b.String())
}

// Judge judges thread (the messages of the thread threadTS of channel as a client shows them,
// fakeslack.Server.RenderedThread or fakeslack.Client.RenderedThread) against want.
func Judge(channel, threadTS string, thread []fakeslack.Rendered, want Expect) Verdict {
	v := Verdict{Channel: channel, Thread: threadTS}
	var text strings.Builder
	for _, m := range thread {
		if m.Bot && m.TS != threadTS {
			// A streamed message's Stop button stays above its text once the answer is
			// finished (chat.stopStream cannot take a chunk back; a click then does nothing):
			// it is part of the answer's messages, not an action under the answer. More than
			// one in a message is doubled.
			if n := stopButtons(m.Actions); n > 1 {
				v.Messages = append(v.Messages, m)
				v.Outcome, v.Problems = Doubled, []string{fmt.Sprintf("message %s shows %d Stop buttons", m.TS, n)}
				return v
			}
			m.Actions = slices.DeleteFunc(slices.Clone(m.Actions), func(a string) bool { return a == relay.StopActionID })
			v.Messages = append(v.Messages, m)
			text.WriteString(m.Text)
		}
	}
	v.Text = text.String()
	if len(v.Messages) == 0 {
		v.Outcome, v.Problems = Missing, []string{"no message of the bot in the thread"}
		return v
	}
	var streaming []string
	for _, m := range v.Messages {
		if m.Streaming {
			streaming = append(streaming, "message "+m.TS+" is still streaming")
		}
	}
	if v.Problems = doubled(v, want); len(v.Problems) > 0 {
		v.Outcome, v.Problems = Doubled, append(v.Problems, streaming...)
		return v
	}
	if len(streaming) > 0 {
		v.Outcome, v.Problems = Streaming, streaming
		return v
	}
	if v.Problems = wrong(v, want); len(v.Problems) > 0 {
		v.Outcome = Wrong
		return v
	}
	v.Outcome = Answered
	return v
}

// headChars is how much of the answer's beginning must not be shown twice.
const headChars = 60

// doubled lists what the thread shows more than once: the answer, its beginning, a message's
// text, an action.
func doubled(v Verdict, want Expect) []string {
	var out []string
	if want.Text != "" {
		if n := strings.Count(v.Text, want.Text); n > 1 {
			out = append(out, fmt.Sprintf("the whole answer is shown %d times", n))
		}
	}
	head := want.Text
	if head == "" {
		head = v.Messages[0].Text
	}
	if head = firstRunes(strings.TrimSpace(head), headChars); head != "" {
		if n := strings.Count(v.Text, head); n > 1 && len(out) == 0 {
			out = append(out, fmt.Sprintf("the answer's beginning %q is shown %d times", head, n))
		}
	}
	for i, a := range v.Messages {
		for _, b := range v.Messages[i+1:] {
			if strings.TrimSpace(a.Text) != "" && a.Text == b.Text {
				out = append(out, fmt.Sprintf("messages %s and %s show the same text", a.TS, b.TS))
			}
		}
	}
	counts := map[string]int{}
	for _, m := range v.Messages {
		for _, a := range m.Actions {
			counts[a]++
		}
	}
	for _, a := range want.Actions {
		if counts[a] > 1 {
			out = append(out, fmt.Sprintf("action %s is shown %d times", a, counts[a]))
		}
	}
	return out
}

func stopButtons(actions []string) int {
	n := 0
	for _, a := range actions {
		if a == relay.StopActionID {
			n++
		}
	}
	return n
}

// wrong lists how a thread that shows nothing twice differs from the answer.
func wrong(v Verdict, want Expect) []string {
	var out []string
	if want.Text != "" && !sameText(v.Messages, want.Text) {
		switch {
		case strings.HasPrefix(want.Text, v.Text):
			out = append(out, fmt.Sprintf("incomplete: %d of the answer's %d characters shown", utf8.RuneCountInString(v.Text), utf8.RuneCountInString(want.Text)))
		default:
			at := commonPrefix(v.Text, want.Text)
			out = append(out, fmt.Sprintf("not the answer: from character %d it shows %q where the answer has %q (%d characters shown, the answer has %d)",
				utf8.RuneCountInString(v.Text[:at]), Shorten(v.Text[at:], 40), Shorten(want.Text[at:], 40), utf8.RuneCountInString(v.Text), utf8.RuneCountInString(want.Text)))
		}
	}
	for _, m := range v.Messages {
		if strings.TrimSpace(m.Text) == "" {
			out = append(out, "message "+m.TS+" shows no text")
		}
	}
	last := len(v.Messages) - 1
	for _, m := range v.Messages[:last] {
		if len(m.Actions) > 0 {
			out = append(out, fmt.Sprintf("message %s, not the answer's last, shows actions %v", m.TS, m.Actions))
		}
	}
	if got := v.Messages[last].Actions; !slices.Equal(got, want.Actions) && (len(got) > 0 || len(want.Actions) > 0) {
		out = append(out, fmt.Sprintf("the last message shows actions %v, want %v", got, want.Actions))
	}
	return out
}

// sameText reports whether msgs, read one after the other, show want: each message's text is
// the next piece of want, white space at the joins aside (an answer posted in parts is cut
// between messages at a space or a line break, and each part trimmed).
func sameText(msgs []fakeslack.Rendered, want string) bool {
	rest := want
	for i, m := range msgs {
		piece := m.Text
		if i > 0 {
			rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
			piece = strings.TrimLeftFunc(piece, unicode.IsSpace)
		}
		if i < len(msgs)-1 {
			piece = strings.TrimRightFunc(piece, unicode.IsSpace)
		}
		var ok bool
		if rest, ok = strings.CutPrefix(rest, piece); !ok {
			return false
		}
	}
	return strings.TrimSpace(rest) == "" && (len(msgs) > 1 || rest == "")
}

// commonPrefix is the length in bytes of the longest common beginning of a and b, at a rune
// boundary.
func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	for n > 0 && n < len(a) && !utf8.RuneStart(a[n]) {
		n--
	}
	return n
}

// firstRunes is s cut to at most n runes.
func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// Shorten is s for a log line: whole when it has at most 2n runes, else its first and last
// n runes around an ellipsis.
func Shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= 2*n {
		return s
	}
	return string(r[:n]) + "…" + string(r[len(r)-n:])
}

// Threads reads a thread as a Slack client shows it. *fakeslack.Client satisfies it (the
// server in another process); InProcess adapts a *fakeslack.Server.
type Threads interface {
	RenderedThread(ctx context.Context, channel, threadTS string) ([]fakeslack.Rendered, error)
}

var (
	_ Threads = (*fakeslack.Client)(nil)
	_ Threads = InProcess{}
)

// InProcess reads threads from a local Slack server in this process.
type InProcess struct{ Server *fakeslack.Server }

// RenderedThread is the server's RenderedThread; it never fails.
func (p InProcess) RenderedThread(_ context.Context, channel, threadTS string) ([]fakeslack.Rendered, error) {
	return p.Server.RenderedThread(channel, threadTS), nil
}

// Check reads the thread threadTS of channel and judges it against want.
func Check(ctx context.Context, th Threads, channel, threadTS string, want Expect) (Verdict, error) {
	thread, err := th.RenderedThread(ctx, channel, threadTS)
	if err != nil {
		return Verdict{}, fmt.Errorf("read thread %s of %s: %w", threadTS, channel, err)
	}
	return Judge(channel, threadTS, thread, want), nil
}

// pollEvery is how often Await reads the thread again.
const pollEvery = 50 * time.Millisecond

// Await reads the thread threadTS of channel until it shows the answer exactly once, or until
// timeout or ctx ends; it returns the last verdict, with an error (the verdict's, or the read
// error) when the thread did not get there. A thread that shows text twice is not waited on
// further: nothing can take it back.
func Await(ctx context.Context, th Threads, channel, threadTS string, want Expect, timeout time.Duration) (Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		v, err := Check(ctx, th, channel, threadTS, want)
		switch {
		case err != nil && ctx.Err() == nil:
			return v, err
		case err == nil && (v.OK() || v.Outcome == Doubled):
			return v, v.Err()
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = v.Err()
			}
			return v, fmt.Errorf("not answered once within %v: %w", timeout, err)
		case <-t.C:
		}
	}
}

package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// shown is the answer as a person reading the thread sees it: each of the bot's messages
// rendered as Slack does (streamed text, then chat.stopStream's blocks under it; a message
// set by chat.update or posted with blocks shows its blocks), in order.
func shown(t *testing.T, f *fixture) []string {
	t.Helper()
	var out []string
	for _, r := range f.slack.RenderedThread(testChannel, testTS) {
		if r.Bot && r.TS != testTS {
			out = append(out, r.Text)
		}
	}
	return out
}

// answerOnce checks that the thread shows answer exactly once, in order, nothing streaming.
func answerOnce(t *testing.T, f *fixture, answer string) []fakeslack.Rendered {
	t.Helper()
	var bot []fakeslack.Rendered
	var text strings.Builder
	for _, r := range f.slack.RenderedThread(testChannel, testTS) {
		if !r.Bot || r.TS == testTS {
			continue
		}
		bot = append(bot, r)
		if r.Streaming {
			t.Errorf("message %s is still streaming", r.TS)
		}
		text.WriteString(r.Text)
	}
	if got := text.String(); strings.ReplaceAll(got, "\n", "") != strings.ReplaceAll(answer, "\n", "") {
		t.Errorf("the thread shows %d messages holding %d characters:\n%.300q…\nwant the answer once (%d characters):\n%.300q…",
			len(bot), len(got), got, len(answer), answer)
	}
	return bot
}

// words is an answer of n words, "w1 w2 …", with tag in every word.
func words(tag string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d ", tag, i+1)
	}
	return out
}

func streamAll(t *testing.T, w *Stream, pieces []string) {
	t.Helper()
	for _, p := range pieces {
		if err := w.Append(context.Background(), p); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
}

// textCalls counts the calls to Slack that carried answer text.
func textCalls(f *fixture) int {
	n := 0
	for _, m := range []string{"chat.startStream", "chat.appendStream", "chat.stopStream", "chat.postMessage", "chat.update"} {
		n += f.slack.Calls(m)
	}
	return n
}

func buttons() slack.Block {
	return slack.NewActionBlock("actions", slack.NewButtonBlockElement("regen", "v", slack.NewTextBlockObject(slack.PlainTextType, "Regenerate", false, false)))
}

func TestStreamAnswersInOneGrowingMessage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	w, err := f.session().Stream(ctx, StreamOptions{FlushChars: 40, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	answer := words("a", 60)
	streamAll(t, w, answer)
	ts, err := w.Finish(ctx, buttons())
	if err != nil {
		t.Fatal(err)
	}
	streams := f.slack.Streams()
	if len(streams) != 1 || len(ts) != 1 || streams[0].TS != ts[0] {
		t.Fatalf("%d streams, Finish returned %v; want one stream, its ts", len(streams), ts)
	}
	st := streams[0]
	if st.State != fakeslack.StreamStopped || st.RecipientUserID != "U0USER" || st.RecipientTeamID != "T0001" {
		t.Errorf("stream state %s, recipients %s/%s; want stopped, U0USER/T0001", st.State, st.RecipientUserID, st.RecipientTeamID)
	}
	if appends := st.Count("chat.appendStream"); appends < 5 {
		t.Errorf("%d appendStream calls: the text was not sent as it grew", appends)
	}
	// The blocks under the answer are only the buttons: the text is not repeated in them.
	var blocks []map[string]any
	if err := json.Unmarshal(st.Blocks, &blocks); err != nil || len(blocks) != 1 || blocks[0]["type"] != "actions" {
		t.Errorf("stopStream blocks = %s, want only the buttons", st.Blocks)
	}
	if st.Metadata == nil || st.Metadata.Payload["dedupe_key"] != f.lease.Key() {
		t.Errorf("stopped stream metadata = %+v, want the dedupe key", st.Metadata)
	}
	msgs := answerOnce(t, f, strings.Join(answer, ""))
	if len(msgs) != 1 || len(msgs[0].Actions) != 1 {
		t.Errorf("messages %+v, want one with the button under it", msgs)
	}
	// One journal write per call that carried text.
	if w, c := f.writes(), textCalls(f); w != c {
		t.Errorf("%d journal writes for %d calls carrying text, want one each", w, c)
	}
	// A redelivery after the answer was finished does nothing.
	f.retry()
	again, _ := f.session().Stream(ctx, StreamOptions{})
	if !again.Done() {
		t.Error("Done() = false after the answer was finished")
	}
	calls := textCalls(f)
	streamAll(t, again, words("b", 5))
	if _, err := again.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if textCalls(f) != calls {
		t.Error("a redelivery after the answer was finished called Slack")
	}
}

// A worker killed mid-stream: the next attempt continues the answer from the text the
// journal holds (the model is asked to continue it), sets the message whose last append is
// uncertain whole, and never starts a second message or repeats text.
func TestStreamCutShortContinuesFromWhatWasShown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		crash bool // died (nothing after the last write kept) or failed (released)
	}{{"worker killed", true}, {"attempt failed", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ctx := context.Background()
			answer := words("w", 80)
			w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 30, FlushEvery: time.Hour})
			streamAll(t, w, answer[:37]) // … and the attempt ends: no Finish
			if tc.crash {
				f.crash()
			} else {
				f.retry()
			}
			w2, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 30, FlushEvery: time.Hour})
			done := w2.Text()
			if !strings.HasPrefix(strings.Join(answer, ""), done) || done == "" {
				t.Fatalf("Text() = %q, want a beginning of the answer", done)
			}
			// The model continues from Text(): the rest of the answer after it.
			rest := strings.TrimPrefix(strings.Join(answer, ""), done)
			streamAll(t, w2, []string{rest})
			if _, err := w2.Finish(ctx, buttons()); err != nil {
				t.Fatal(err)
			}
			msgs := answerOnce(t, f, strings.Join(answer, ""))
			if len(msgs) != 1 {
				t.Errorf("the answer took %d messages, want the one the first attempt started", len(msgs))
			}
			if n := len(f.slack.Streams()); n != 1 {
				t.Errorf("%d streams started, want 1", n)
			}
		})
	}
}

// chat.startStream took effect but its answer was lost: the next attempt finds the stream in
// the thread and adopts it instead of starting a second one.
func TestLostStreamStartIsAdopted(t *testing.T) {
	t.Parallel()
	for _, fault := range []string{"lose", "fail"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ctx := context.Background()
			f.faults.at("chat.startStream", 1, fault)
			answer := words("s", 40)
			w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 30, FlushEvery: time.Hour})
			if err := w.Append(ctx, strings.Join(answer[:10], "")); err == nil {
				t.Fatal("no error although startStream's answer was lost")
			}
			f.retry()
			w2, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 30, FlushEvery: time.Hour})
			rest := strings.TrimPrefix(strings.Join(answer, ""), w2.Text())
			streamAll(t, w2, []string{rest})
			if _, err := w2.Finish(ctx); err != nil {
				t.Fatal(err)
			}
			answerOnce(t, f, strings.Join(answer, ""))
			if n, want := len(f.slack.Streams()), map[string]int{"lose": 1, "fail": 0}[fault]+map[string]int{"lose": 0, "fail": 1}[fault]; n != want {
				t.Errorf("%d streams, want %d", n, want)
			}
		})
	}
}

func TestStreamFallsBackToAPostWhenStreamingIsRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.slack.FailNext("chat.startStream", 1, "feature_not_enabled")
	w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 30, FlushEvery: time.Hour})
	answer := words("c", 40)
	streamAll(t, w, answer)
	if _, err := w.Finish(ctx, buttons()); err != nil {
		t.Fatal(err)
	}
	msgs := answerOnce(t, f, strings.Join(answer, ""))
	if len(msgs) != 1 || len(f.slack.Streams()) != 0 || len(msgs[0].Actions) != 1 {
		t.Fatalf("%d messages, %d streams; want one posted message with its button and no stream", len(msgs), len(f.slack.Streams()))
	}
	if f.slack.Calls("chat.update") < 3 {
		t.Errorf("%d updates: the post did not grow with the answer", f.slack.Calls("chat.update"))
	}
}

func TestStreamRateLimitedMidwayKeepsBuffering(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 10, FlushEvery: time.Hour})
	streamAll(t, w, words("d", 5))
	f.slack.RateLimitNext("chat.appendStream", 1, time.Second)
	answer := words("d", 40)
	streamAll(t, w, answer[5:])
	if _, err := w.Finish(ctx); err != nil {
		t.Fatalf("finish after a 429 mid-stream: %v", err)
	}
	answerOnce(t, f, strings.Join(answer, ""))
}

// An answer longer than a message continues in further messages, each within Slack's
// limits, the buttons under the last one only.
func TestLongAnswerContinuesInAnotherMessage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	w, _ := f.session().Stream(ctx, StreamOptions{})
	long := strings.Repeat("0123456<8>\n", 4500) // 49,500 characters, with characters JSON escapes
	for i := 0; i < len(long); i += 2500 {
		if err := w.Append(ctx, long[i:min(i+2500, len(long))]); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := w.Finish(ctx, buttons(), buttons())
	if err != nil {
		t.Fatal(err)
	}
	msgs := answerOnce(t, f, long)
	if len(ts) != len(msgs) || len(msgs) < 5 {
		t.Errorf("answer in %d messages (Finish said %d), want at least 5 of at most %d characters", len(msgs), len(ts), MaxAnswerMessageChars)
	}
	for i, m := range msgs {
		if n := len([]rune(m.Text)); n > MaxAnswerMessageChars {
			t.Errorf("message %d holds %d characters", i+1, n)
		}
		if want := 0; i == len(msgs)-1 {
			if len(m.Actions) != 2 {
				t.Errorf("last message has actions %v, want the two buttons", m.Actions)
			}
		} else if len(m.Actions) != want {
			t.Errorf("message %d has actions %v", i+1, m.Actions)
		}
	}
}

// With streaming off, or refused by Slack, a post whose answer was lost (the worker died
// right after Slack accepted it) is found by its metadata and continued, not posted twice.
func TestLostFallbackPostIsAdoptedNotRepeated(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		disabled bool
	}{{"streaming off", true}, {"streaming refused on every attempt", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ctx := context.Background()
			if !tc.disabled {
				f.slack.FailNext("chat.startStream", 2, "feature_not_enabled")
			}
			f.faults.at("chat.postMessage", 1, "lose")
			answer := words("p", 30)
			w, _ := f.session().Stream(ctx, StreamOptions{Disabled: tc.disabled, FlushChars: 10, FlushEvery: time.Hour})
			if err := w.Append(ctx, strings.Join(answer[:10], "")); err == nil {
				t.Fatal("no error although the post's answer was lost")
			}
			f.crash()
			w2, _ := f.session().Stream(ctx, StreamOptions{Disabled: tc.disabled, FlushChars: 10, FlushEvery: time.Hour})
			streamAll(t, w2, []string{strings.TrimPrefix(strings.Join(answer, ""), w2.Text())})
			if _, err := w2.Finish(ctx); err != nil {
				t.Fatal(err)
			}
			if msgs := answerOnce(t, f, strings.Join(answer, "")); len(msgs) != 1 {
				t.Errorf("%d messages, want the one post, adopted and finished", len(msgs))
			}
		})
	}
}

// A stream near the end of Slack's window is stopped and the answer goes on in a new message.
func TestStreamNearItsLifetimeContinuesInANewMessage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 1, FlushEvery: time.Millisecond, Lifetime: 400 * time.Millisecond})
	answer := words("l", 30)
	for _, p := range answer {
		if err := w.Append(ctx, p); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if _, err := w.Finish(ctx, buttons()); err != nil {
		t.Fatal(err)
	}
	msgs := answerOnce(t, f, strings.Join(answer, ""))
	if len(msgs) < 2 {
		t.Errorf("%d messages, want the answer continued in a new message after the stream's window", len(msgs))
	}
	for _, st := range f.slack.Streams() {
		if st.EndedBy != "chat.stopStream" {
			t.Errorf("stream %s ended by %q, want stopped by the worker before its window", st.TS, st.EndedBy)
		}
	}
}

// Slack ending a stream by itself (its window, an idle stream) is not an error: the answer
// continues in a new message, and a last message whose stream ended before Finish is set
// whole with its buttons.
func TestStreamEndedBySlackContinues(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 20, FlushEvery: time.Hour})
	answer := words("e", 40)
	streamAll(t, w, answer[:10])
	f.slack.SetStreamLifetime(time.Nanosecond) // every stream is over as soon as it started
	streamAll(t, w, answer[10:30])
	f.slack.SetStreamLifetime(0)
	streamAll(t, w, answer[30:39])
	f.slack.SetStreamLifetime(time.Nanosecond)
	streamAll(t, w, answer[39:])
	if _, err := w.Finish(ctx, buttons()); err != nil {
		t.Fatal(err)
	}
	msgs := answerOnce(t, f, strings.Join(answer, ""))
	if len(msgs) < 2 || len(msgs[len(msgs)-1].Actions) != 1 {
		t.Errorf("%d messages, the last with actions %v; want the answer continued after Slack ended its stream, the button under the last", len(msgs), msgs[len(msgs)-1].Actions)
	}
}

// Near the invocation's deadline Append sends what it has and asks to continue; the next
// invocation goes on in the same stream.
func TestStreamYieldsBeforeTheDeadlineAndContinues(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 1000, FlushEvery: time.Hour, YieldBefore: 400 * time.Millisecond})
	answer := words("y", 50)
	var err error
	i := 0
	for ; i < len(answer) && err == nil; i++ {
		err = w.Append(ctx, answer[i])
		time.Sleep(10 * time.Millisecond)
	}
	if c, _ := failure.Classify(err); !errors.Is(err, failure.ErrContinue) || c != failure.Continue {
		t.Fatalf("Append near the deadline = %v (class %v), want ErrContinue", err, c)
	}
	f.retry()
	w2, _ := f.session().Stream(context.Background(), StreamOptions{FlushChars: 1000, FlushEvery: time.Hour})
	if got := w2.Text(); got != strings.Join(answer[:i], "") {
		t.Fatalf("Text() after the yield = %q, want everything appended before it", got)
	}
	streamAll(t, w2, answer[i:])
	if _, err := w2.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if msgs := answerOnce(t, f, strings.Join(answer, "")); len(msgs) != 1 {
		t.Errorf("%d messages, want one stream across both invocations", len(msgs))
	}
	if st := f.slack.Streams()[0]; st.Count("chat.stopStream") != 1 {
		t.Errorf("the stream was stopped %d times, want once at the end", st.Count("chat.stopStream"))
	}
}

// A record of the earlier release, mid-answer: its streamed message is set whole with the new
// answer; finished: nothing is sent.
func TestStreamRecordOfTheEarlierRelease(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	client, _ := f.rt.Slack(ctx, Tenant{})
	_, ts, err := client.StartStreamContext(ctx, testChannel, slack.MsgOptionTS(testTS), slack.MsgOptionRecipientUserID("U0USER"),
		slack.MsgOptionRecipientTeamID("T0001"), slack.MsgOptionMarkdownText("old half answ"))
	if err != nil {
		t.Fatal(err)
	}
	f.setLegacy(t, "stream#1/1", `{"kind":"stream","value":"`+ts+`"}`)
	w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 10, FlushEvery: time.Hour})
	if w.Text() != "" || w.Done() {
		t.Fatalf("Text() = %q, Done() = %v for a legacy record mid-answer; want the answer regenerated", w.Text(), w.Done())
	}
	answer := words("n", 30)
	streamAll(t, w, answer)
	if _, err := w.Finish(ctx, buttons()); err != nil {
		t.Fatal(err)
	}
	if msgs := answerOnce(t, f, strings.Join(answer, "")); len(msgs) != 1 || msgs[0].TS != ts {
		t.Errorf("%d messages, want the old stream's message set whole with the new answer", len(msgs))
	}
	g := setup(t)
	g.setLegacy(t, "stream#1/1", `{"kind":"stream","value":"1.1","done":true,"chars":10}`)
	g.setLegacy(t, "stream#1/done", `{"kind":"stream","done":true}`)
	if w, _ := g.session().Stream(ctx, StreamOptions{}); !w.Done() {
		t.Error("a finished answer of the earlier release is not Done")
	}
}

// An answer longer than the journal keeps is cut with a note, and still finished.
func TestAnswerLongerThanTheJournalKeepsIsCut(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	w, _ := f.session().Stream(ctx, StreamOptions{FlushEvery: time.Hour, FlushChars: 50000})
	chunk := strings.Repeat("x", 10000)
	for range maxAnswerBytes/len(chunk) + 5 {
		if err := w.Append(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Finish(ctx, buttons()); err != nil {
		t.Fatal(err)
	}
	var total int
	msgs := f.slack.RenderedThread(testChannel, testTS)
	for _, m := range msgs {
		if m.Bot {
			total += len(strings.ReplaceAll(m.Text, "\n", ""))
			if m.Streaming {
				t.Errorf("message %s left streaming", m.TS)
			}
		}
	}
	last := msgs[len(msgs)-1]
	if !strings.Contains(last.Text, "cut here") || total > maxAnswerBytes+200 || len(last.Actions) != 1 {
		t.Errorf("%d characters shown, last message ends %q; want at most %d and the cut note, the button under it", total, last.Text[max(0, len(last.Text)-60):], maxAnswerBytes)
	}
}

// An answer the handler cannot finish (a permanent failure) leaves nothing streaming, and a
// replay continues it in a new message.
func TestAbandonedAnswerIsStoppedAndReplayed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	answer := words("x", 40)
	w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 20, FlushEvery: time.Hour})
	streamAll(t, w, answer[:15])
	w.Abandon(ctx)
	for _, m := range f.slack.RenderedThread(testChannel, testTS) {
		if m.Streaming {
			t.Fatalf("message %s still streaming after Abandon", m.TS)
		}
	}
	f.retry() // the dead letter replayed
	w2, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 20, FlushEvery: time.Hour})
	streamAll(t, w2, []string{strings.TrimPrefix(strings.Join(answer, ""), w2.Text())})
	if _, err := w2.Finish(ctx, buttons()); err != nil {
		t.Fatal(err)
	}
	answerOnce(t, f, strings.Join(answer, ""))
}

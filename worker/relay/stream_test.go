package relay

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/infra/local/localslack"
)

// threadMessages reads the thread as a Slack client sees it now: ts → text.
func threadMessages(t *testing.T, f *fixture) map[string]string {
	t.Helper()
	client := slack.New(testToken, slack.OptionAPIURL(f.slack.APIURL()))
	msgs, _, _, err := client.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: testChannel, Timestamp: testTS, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range msgs {
		if m.Timestamp != testTS {
			out[m.Timestamp] = m.Text
		}
	}
	return out
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
	ts, err := w.Finish(ctx, slack.NewDividerBlock())
	if err != nil {
		t.Fatal(err)
	}
	streams := f.slack.Streams()
	if len(streams) != 1 || len(ts) != 1 || streams[0].TS != ts[0] {
		t.Fatalf("%d streams, Finish returned %v; want one stream, its ts", len(streams), ts)
	}
	st := streams[0]
	if st.State != localslack.StreamStopped || st.Text != strings.Join(answer, "") || st.RecipientUserID != "U0USER" || st.RecipientTeamID != "T0001" {
		t.Errorf("stream state %s, recipients %s/%s, text %q…; want stopped, U0USER/T0001, the whole answer", st.State, st.RecipientUserID, st.RecipientTeamID, st.Text[:min(30, len(st.Text))])
	}
	if appends := len(st.Calls) - 2; appends < 5 {
		t.Errorf("%d appendStream calls: the text was not sent as it grew", appends)
	}
	if st.Metadata == nil || st.Metadata.Payload["dedupe_key"] != f.lease.Key() {
		t.Errorf("stopped stream metadata = %+v, want the dedupe key", st.Metadata)
	}
	// A redelivery after the answer was finished does nothing.
	f.lease.nextAttempt()
	again, _ := f.session().Stream(ctx, StreamOptions{})
	if !again.Done() {
		t.Error("Done() = false after the answer was finished")
	}
	streamAll(t, again, words("b", 5))
	if _, err := again.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.slack.Streams()); n != 1 || f.slack.Calls("chat.update") != 0 {
		t.Errorf("after a redelivery: %d streams, %d updates; want nothing new", n, f.slack.Calls("chat.update"))
	}
}

// A worker killed mid-stream: the redelivery runs the model again and finishes the same
// message with the whole new answer, never a second message.
func TestStreamCutShortIsFinishedInTheSameMessage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 10, FlushEvery: time.Hour})
	streamAll(t, w, words("first", 20)) // … and the worker dies: no Finish
	f.lease.nextAttempt()
	w2, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 10, FlushEvery: time.Hour})
	second := words("second", 30)
	streamAll(t, w2, second)
	ts, err := w2.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.slack.Streams()); n != 1 {
		t.Fatalf("%d streams, want the one the first attempt started", n)
	}
	msgs := threadMessages(t, f)
	if len(msgs) != 1 || len(ts) != 1 || msgs[ts[0]] != strings.Join(second, "") {
		t.Errorf("thread = %v, want one message holding the whole second answer", msgs)
	}
	if st := f.slack.Streams()[0]; st.State != localslack.StreamStopped {
		t.Errorf("stream state %s, want stopped", st.State)
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
	if _, err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := threadMessages(t, f)
	if len(msgs) != 1 || len(f.slack.Streams()) != 0 {
		t.Fatalf("thread %v, %d streams; want one posted message and no stream", msgs, len(f.slack.Streams()))
	}
	for _, text := range msgs {
		if text != strings.Join(answer, "") {
			t.Errorf("message = %q…, want the whole answer", text[:min(40, len(text))])
		}
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
	if st := f.slack.Streams()[0]; st.Text != strings.Join(answer, "") {
		t.Errorf("streamed %q…, want the whole answer despite the 429", st.Text[:min(40, len(st.Text))])
	}
}

func TestLongAnswerContinuesInAnotherMessage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	w, _ := f.session().Stream(ctx, StreamOptions{})
	long := strings.Repeat("0123456789", 5000) // 50,000 characters
	for i := 0; i < len(long); i += 2500 {
		if err := w.Append(ctx, long[i:i+2500]); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := w.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs := threadMessages(t, f)
	if len(ts) != 2 || len(msgs) != 2 || msgs[ts[0]]+msgs[ts[1]] != long {
		t.Errorf("answer in %d messages (%v), want 2 that together hold the whole answer", len(msgs), ts)
	}
}

// With streaming off, or refused by Slack, a post whose answer was lost (the worker died
// right after Slack accepted it) is found by its metadata and finished, not posted twice.
func TestLostFallbackPostIsAdoptedNotRepeated(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		disabled bool
	}{
		{"streaming off", true},
		{"streaming refused on every attempt", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ctx := context.Background()
			if !tc.disabled {
				f.slack.FailNext("chat.startStream", 2, "feature_not_enabled")
			}
			f.faults.at("chat.postMessage", 1, "lose")
			w, _ := f.session().Stream(ctx, StreamOptions{Disabled: tc.disabled, FlushChars: 10, FlushEvery: time.Hour})
			if err := w.Append(ctx, strings.Join(words("first", 10), "")); err == nil {
				t.Fatal("no error although the post's answer was lost")
			}
			f.lease.nextAttempt()
			w2, _ := f.session().Stream(ctx, StreamOptions{Disabled: tc.disabled, FlushChars: 10, FlushEvery: time.Hour})
			second := words("second", 20)
			streamAll(t, w2, second)
			if _, err := w2.Finish(ctx); err != nil {
				t.Fatal(err)
			}
			msgs := threadMessages(t, f)
			if len(msgs) != 1 {
				t.Fatalf("thread = %v, want the one post, adopted and finished", msgs)
			}
			for _, text := range msgs {
				if text != strings.Join(second, "") {
					t.Errorf("message = %q…, want the whole second answer", text[:min(40, len(text))])
				}
			}
		})
	}
}

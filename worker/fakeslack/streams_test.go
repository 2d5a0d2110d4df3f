package fakeslack

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// startDMStream seeds a user's question in D1 and starts a stream replying to it.
func startDMStream(t *testing.T, s *Server, api *slack.Client, opts ...slack.MsgOption) (parent, ts string) {
	t.Helper()
	parent, err := s.AddUserMessage(UserMessage{Channel: "D1", User: "U1", Text: "why?"})
	if err != nil {
		t.Fatal(err)
	}
	_, ts, err = api.StartStreamContext(context.Background(), "D1", append([]slack.MsgOption{slack.MsgOptionTS(parent)}, opts...)...)
	if err != nil {
		t.Fatalf("chat.startStream in a DM: got %v, want ok", err)
	}
	return parent, ts
}

func threadText(t *testing.T, api *slack.Client, ch, parent, ts string) slack.Message {
	t.Helper()
	msgs, _, _, err := api.GetConversationRepliesContext(context.Background(),
		&slack.GetConversationRepliesParameters{ChannelID: ch, Timestamp: parent, IncludeAllMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Timestamp == ts {
			return m
		}
	}
	t.Fatalf("conversations.replies %v: no message %s", msgs, ts)
	return slack.Message{}
}

func TestStreamGrowsAndStops(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	api := newAPI(s)
	ctx := context.Background()
	parent, ts := startDMStream(t, s, api, slack.MsgOptionMarkdownText("The answer"))

	if _, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText(" is")); err != nil {
		t.Fatalf("chat.appendStream: got %v, want ok", err)
	}
	if got := threadText(t, api, "D1", parent, ts).Text; got != "The answer is" {
		t.Fatalf("streaming message text = %q, want %q", got, "The answer is")
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "D1", ts, slack.MsgOptionText("replaced", false)); slackErrCode(err) != "streaming_state_conflict" {
		t.Fatalf("chat.update while streaming: got %v, want streaming_state_conflict", err)
	}
	st, ok := s.Stream("D1", ts)
	if !ok || st.State != Streaming || st.ThreadTS != parent || len(st.Calls) != 2 {
		t.Fatalf("Stream while streaming = %+v, want state streaming in thread %s with 2 calls", st, parent)
	}
	if n, none := st.Count("chat.startStream"), st.Count("chat.stopStream"); n != 1 || none != 0 {
		t.Errorf("Count: %d chat.startStream and %d chat.stopStream calls, want 1 and 0", n, none)
	}

	meta := slack.SlackMetadata{EventType: "relay_answer", EventPayload: map[string]any{"job": "j-1"}}
	button := slack.NewActionBlock("actions", slack.NewButtonBlockElement("slackrelay_regenerate", "again",
		slack.NewTextBlockObject(slack.PlainTextType, "Regenerate", false, false)))
	if _, _, err := api.StopStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText(" 42."),
		slack.MsgOptionBlocks(button), slack.MsgOptionMetadata(meta)); err != nil {
		t.Fatalf("chat.stopStream: got %v, want ok", err)
	}
	m := threadText(t, api, "D1", parent, ts)
	if m.Text != "The answer is 42." || m.Metadata.EventType != "relay_answer" || len(m.Blocks.BlockSet) != 1 {
		t.Fatalf("stopped message = text %q metadata %+v %d blocks, want the whole answer, relay_answer, 1 block",
			m.Text, m.Metadata, len(m.Blocks.BlockSet))
	}
	for _, method := range []string{"chat.appendStream", "chat.stopStream"} {
		var err error
		if method == "chat.appendStream" {
			_, _, err = api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText(" more"))
		} else {
			_, _, err = api.StopStreamContext(ctx, "D1", ts)
		}
		if slackErrCode(err) != "message_not_in_streaming_state" {
			t.Errorf("%s after the stop: got %v, want message_not_in_streaming_state", method, err)
		}
	}
	st, _ = s.Stream("D1", ts)
	if st.State != StreamStopped || st.EndedBy != "chat.stopStream" || st.Text != "The answer is 42." ||
		st.Metadata == nil || st.Metadata.EventType != "relay_answer" || st.Blocks == nil || st.StoppedAt.IsZero() {
		t.Fatalf("Stream after the stop = %+v, want stopped by chat.stopStream with the text, blocks and metadata", st)
	}
	var methods []string
	for _, c := range st.Calls {
		methods = append(methods, c.Method+":"+c.MarkdownText)
	}
	if got, want := strings.Join(methods, "|"), "chat.startStream:The answer|chat.appendStream: is|chat.stopStream: 42."; got != want {
		t.Fatalf("stream calls = %q, want %q", got, want)
	}
	// Once stopped, the message is an ordinary one: chat.update may finish it.
	if _, _, _, err := api.UpdateMessageContext(ctx, "D1", ts, slack.MsgOptionText("edited", false)); err != nil {
		t.Fatalf("chat.update after the stop: got %v, want ok", err)
	}
	if n := len(s.Posts()); n != 0 {
		t.Fatalf("Posts() = %d, want 0: a stream is recorded in Streams, not Posts", n)
	}
}

func TestStreamRecipientRule(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{ChannelKinds: map[string]ChannelKind{"GMPIM": MPIM}})
	api := newAPI(s)
	tests := []struct {
		channel    string
		user, team string
		want       string
	}{
		{"C1", "", "", "missing_recipient_team_id"},
		{"C1", "U1", "", "missing_recipient_team_id"},
		{"C1", "", "T1", "missing_recipient_user_id"},
		{"C1", "U1", "T1", ""},
		{"G1", "", "", "missing_recipient_team_id"},
		{"GMPIM", "U1", "", "missing_recipient_team_id"},
		{"D1", "", "", ""},
		{"D1", "U1", "T1", ""},
	}
	for _, tc := range tests {
		opts := []slack.MsgOption{slack.MsgOptionTS("1700000000.000100")}
		if tc.user != "" {
			opts = append(opts, slack.MsgOptionRecipientUserID(tc.user))
		}
		if tc.team != "" {
			opts = append(opts, slack.MsgOptionRecipientTeamID(tc.team))
		}
		_, ts, err := api.StartStreamContext(context.Background(), tc.channel, opts...)
		if got := slackErrCode(err); got != tc.want || (tc.want == "" && (err != nil || ts == "")) {
			t.Errorf("chat.startStream in %s with user %q team %q: got ts %q, %v; want %q", tc.channel, tc.user, tc.team, ts, err, tc.want)
		}
	}
	if got := len(s.Streams()); got != 3 {
		t.Fatalf("Streams() = %d, want the 3 started", got)
	}
}

func TestStreamEndsWhenIdle(t *testing.T) {
	t.Parallel()
	clock := newClock()
	var out bytes.Buffer
	s, _ := newTest(t, Options{Now: clock.Now, StreamIdleTimeout: time.Second, Out: lockedWriter{&sync.Mutex{}, &out}})
	api := newAPI(s)
	ctx := context.Background()
	_, ts := startDMStream(t, s, api)

	clock.Advance(999 * time.Millisecond)
	if _, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText("still here")); err != nil {
		t.Fatalf("append %v after the start: got %v, want ok", 999*time.Millisecond, err)
	}
	clock.Advance(time.Second) // a full idle timeout since that append
	if _, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText(" too late")); slackErrCode(err) != "message_not_in_streaming_state" {
		t.Fatalf("append after the idle timeout: got %v, want message_not_in_streaming_state", err)
	}
	st, _ := s.Stream("D1", ts)
	wantStop := st.StartedAt.Add(999*time.Millisecond + time.Second)
	if st.State != StreamStopped || st.EndedBy != "idle" || !st.StoppedAt.Equal(wantStop) || st.Text != "still here" {
		t.Fatalf("Stream = %+v, want stopped by idle at %v with text %q", st, wantStop, "still here")
	}
	// An answer resumed later is finished with chat.update.
	if _, _, _, err := api.UpdateMessageContext(ctx, "D1", ts, slack.MsgOptionText("still here, finished", false)); err != nil {
		t.Fatalf("chat.update of an idle-ended stream: got %v, want ok", err)
	}
	if !strings.Contains(out.String(), "ended by itself after 1s") || strings.Count(out.String(), "ended by itself") != 1 {
		t.Fatalf("Out = %q, want one line saying the stream ended by itself after 1s", out.String())
	}
}

func TestStreamEndsAfterLifetime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		// lifetime, when set, is given to SetStreamLifetime (over the control API) after the start.
		lifetime time.Duration
		// appends are when, after the start, appends are made and accepted.
		appends []time.Duration
		// end is when, after the start, the stream has ended by itself as endedBy.
		end     time.Duration
		endedBy string
	}{
		{"default lifetime despite appends", Options{}, 0,
			[]time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5*time.Minute - time.Millisecond},
			DefaultStreamLifetime, "lifetime"},
		{"lifetime option", Options{StreamLifetime: 10 * time.Second}, 0,
			[]time.Duration{4 * time.Second, 8 * time.Second}, 10 * time.Second, "lifetime"},
		{"idle before the lifetime", Options{StreamIdleTimeout: time.Minute}, 0,
			[]time.Duration{50 * time.Second}, 110 * time.Second, "idle"},
		{"lifetime set on an open stream", Options{}, 2 * time.Second,
			[]time.Duration{time.Second}, 2 * time.Second, "lifetime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			tc.opts.Now = clock.Now
			s, base := newTest(t, tc.opts)
			api := newAPI(s)
			ctx := context.Background()
			start := clock.Now()
			_, ts := startDMStream(t, s, api)
			if tc.lifetime > 0 {
				if err := (&Client{BaseURL: base}).SetStreamLifetime(ctx, tc.lifetime); err != nil {
					t.Fatal(err)
				}
			}
			for _, at := range tc.appends {
				clock.Advance(start.Add(at).Sub(clock.Now()))
				if _, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText("x")); err != nil {
					t.Fatalf("append %v after the start: got %v, want ok", at, err)
				}
			}
			clock.Advance(start.Add(tc.end).Sub(clock.Now()))
			if _, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText("y")); slackErrCode(err) != "message_not_in_streaming_state" {
				t.Fatalf("append %v after the start: got %v, want message_not_in_streaming_state", tc.end, err)
			}
			if _, _, err := api.StopStreamContext(ctx, "D1", ts); slackErrCode(err) != "message_not_in_streaming_state" {
				t.Fatalf("stop %v after the start: got %v, want message_not_in_streaming_state", tc.end, err)
			}
			st, _ := s.Stream("D1", ts)
			if st.State != StreamStopped || st.EndedBy != tc.endedBy || !st.StoppedAt.Equal(start.Add(tc.end)) {
				t.Fatalf("Stream = %+v, want ended by %q at start+%v", st, tc.endedBy, tc.end)
			}
			if _, _, _, err := api.UpdateMessageContext(ctx, "D1", ts, slack.MsgOptionText("finished", false)); err != nil {
				t.Fatalf("chat.update of a stream that ended by itself: got %v, want ok", err)
			}
		})
	}
}

func TestSetStreamLifetimeAndReset(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s, base := newTest(t, Options{Now: clock.Now, StreamLifetime: time.Hour, StreamIdleTimeout: 2 * time.Hour})
	api := newAPI(s)
	c := &Client{BaseURL: base}
	ctx := context.Background()
	if err := c.SetStreamLifetime(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	s.Reset() // back to the hour of Options
	_, ts := startDMStream(t, s, api)
	clock.Advance(59 * time.Minute)
	if st, _ := s.Stream("D1", ts); st.State != Streaming {
		t.Fatalf("stream after Reset and 59 minutes is %s, want streaming (Options.StreamLifetime of an hour)", st.State)
	}
	if err := c.SetStreamLifetime(ctx, 0); err != nil { // 0: the Options value
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if st, _ := s.Stream("D1", ts); st.EndedBy != "lifetime" {
		t.Fatalf("stream after an hour ended by %q, want lifetime", st.EndedBy)
	}
	if err := c.SetStreamLifetime(ctx, -time.Second); err != nil {
		t.Fatalf("SetStreamLifetime(-1s) over HTTP: %v, want the default restored", err)
	}
}

func TestStreamErrors(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	api := newAPI(s)
	_, ts := startDMStream(t, s, api)
	_, chunkTS := startDMStream(t, s, api, slack.MsgOptionChunks(slack.NewMarkdownTextChunk("chunked")))
	user, err := s.AddUserMessage(UserMessage{Channel: "D1", User: "U1", Text: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	_, plain, err := api.PostMessageContext(context.Background(), "D1", slack.MsgOptionText("plain", false))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"12,000 characters", []string{"ts", ts, "markdown_text", strings.Repeat("a", MaxStreamChunk)}, ""},
		{"12,001 characters", []string{"ts", ts, "markdown_text", strings.Repeat("a", MaxStreamChunk+1)}, "msg_too_long"},
		{"beyond the message limit", []string{"ts", ts, "markdown_text", strings.Repeat("b", MaxStreamChunk)}, ""},
		{"grows past the message limit", []string{"ts", ts, "markdown_text", strings.Repeat("c", MaxStreamChunk)}, ""},
		{"past the message limit", []string{"ts", ts, "markdown_text", strings.Repeat("d", MaxStreamText-3*MaxStreamChunk+1)}, "msg_too_long"},
		{"no content", []string{"ts", ts}, "markdown_text_or_chunks_required"},
		{"both kinds of content", []string{"ts", ts, "markdown_text", "x", "chunks", `[{"type":"markdown_text","text":"y"}]`}, "cannot_provide_both_markdown_text_and_chunks"},
		{"chunks on a markdown stream", []string{"ts", ts, "chunks", `[{"type":"markdown_text","text":"y"}]`}, "streaming_mode_mismatch"},
		{"markdown on a chunk stream", []string{"ts", chunkTS, "markdown_text", "y"}, "streaming_mode_mismatch"},
		{"chunks on a chunk stream", []string{"ts", chunkTS, "chunks", `[{"type":"markdown_text","text":" more"},{"type":"task_update","id":"1","title":"t"}]`}, ""},
		{"broken chunks", []string{"ts", chunkTS, "chunks", `{"type":"markdown_text"}`}, "invalid_chunks"},
		{"unknown message", []string{"ts", "1700009999.000100", "markdown_text", "x"}, "message_not_found"},
		{"a user's message", []string{"ts", user, "markdown_text", "x"}, "message_not_owned_by_app"},
		{"a posted message", []string{"ts", plain, "markdown_text", "x"}, "message_not_in_streaming_state"},
		{"missing channel", []string{"channel", "", "ts", ts, "markdown_text", "x"}, "channel_not_found"},
	}
	for _, tc := range tests {
		r := form(t, base, "chat.appendStream", vals(append([]string{"channel", "D1"}, tc.args...)...))
		if (tc.want == "" && !r.ok()) || (tc.want != "" && r.str("error") != tc.want) {
			t.Errorf("%s: chat.appendStream = %v, want %q (\"\" = ok)", tc.name, r.body, tc.want)
		}
	}
	if st, _ := s.Stream("D1", chunkTS); st.Text != "chunked more" || len(st.Calls) != 2 {
		t.Fatalf("chunk stream = %+v, want text %q from its markdown_text chunks and 2 calls", st, "chunked more")
	}
	if st, _ := s.Stream("D1", ts); len([]rune(st.Text)) != 3*MaxStreamChunk {
		t.Fatalf("stream text is %d characters, want %d (refused appends add nothing)", len([]rune(st.Text)), 3*MaxStreamChunk)
	}
	if r := form(t, base, "chat.startStream", vals("channel", "D1", "markdown_text", strings.Repeat("a", MaxStreamChunk+1))); r.str("error") != "msg_too_long" {
		t.Fatalf("chat.startStream with 12,001 characters = %v, want msg_too_long", r.body)
	}
	if r := form(t, base, "chat.stopStream", vals("channel", "D1", "ts", ts, "metadata", `{"event_payload":{}}`)); r.str("error") != "invalid_metadata_format" {
		t.Fatalf("chat.stopStream with metadata without event_type = %v, want invalid_metadata_format", r.body)
	}
	if st, _ := s.Stream("D1", ts); st.State != Streaming {
		t.Fatalf("stream after a refused stop is %s, want still streaming", st.State)
	}
}

func TestStreamRateLimit(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s, _ := newTest(t, Options{Now: clock.Now, RateLimits: map[string]int{"chat.appendStream": 2}, StreamIdleTimeout: time.Hour})
	api := newAPI(s)
	ctx := context.Background()
	_, ts := startDMStream(t, s, api)
	_, other := startDMStream(t, s, api)
	appendTo := func(ts string) error {
		_, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText("x"))
		return err
	}
	for i := range 2 {
		if err := appendTo(ts); err != nil {
			t.Fatalf("append %d within the limit: got %v, want ok", i+1, err)
		}
		clock.Advance(10 * time.Second)
	}
	var rl *slack.RateLimitedError
	if err := appendTo(ts); !errors.As(err, &rl) || rl.RetryAfter != 40*time.Second {
		t.Fatalf("third append in a minute: got %v, want a rate limit with Retry-After 40s", err)
	}
	if err := appendTo(other); err != nil {
		t.Fatalf("append to another stream: got %v, want ok (limits count per stream)", err)
	}
	clock.Advance(40 * time.Second)
	if err := appendTo(ts); err != nil {
		t.Fatalf("append once the first left the window: got %v, want ok", err)
	}
	if st, _ := s.Stream("D1", ts); st.Text != "xxx" {
		t.Fatalf("stream text = %q, want %q (the limited call adds nothing)", st.Text, "xxx")
	}
}

func TestStreamOut(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s, _ := newTest(t, Options{Out: lockedWriter{&sync.Mutex{}, &out}, BotName: "slackrelay"})
	api := newAPI(s)
	ctx := context.Background()
	parent, ts := startDMStream(t, s, api, slack.MsgOptionMarkdownText("Deploys failed"))
	if _, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText(" because\nthe migration timed out.")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.StopStreamContext(ctx, "D1", ts, slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "relay_answer"})); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"slack ▸ #D1 U1: why?",
		"slack ▸ #D1 (thread " + parent + ") slackrelay: ▶ stream " + ts + ": Deploys failed",
		"slack ▸ #D1 (stream " + ts + ") + because the migration timed out.",
		"slack ▸ #D1 (stream " + ts + ") ■ stopped, 47 chars in 3 calls [metadata relay_answer]",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Out =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// BenchmarkAppendStream measures one chat.appendStream through slack-go over loopback.
func BenchmarkAppendStream(b *testing.B) {
	s := New(Options{Token: testToken, StreamIdleTimeout: time.Hour})
	if _, err := s.Start(""); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	api := newAPI(s)
	ctx := context.Background()
	chunk := slack.MsgOptionMarkdownText("tok ")
	var ts string
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%(MaxStreamText/8) == 0 { // a fresh stream long before the message limit
			var err error
			if _, ts, err = api.StartStreamContext(ctx, "D1"); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, err := api.AppendStreamContext(ctx, "D1", ts, chunk); err != nil {
			b.Fatal(err)
		}
	}
}

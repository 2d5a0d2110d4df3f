package fakeslack

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPostMessage(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	var outMu sync.Mutex
	now := time.Unix(1_700_000_123, 0).UTC()
	s, base := newTest(t, Options{Out: lockedWriter{&outMu, &out}, Now: func() time.Time { return now }})

	meta := `{"event_type":"relay_job","event_payload":{"job_id":"j-1","attempt":2}}`
	r1 := form(t, base, "chat.postMessage", vals("channel", "C123", "text", "hello world", "metadata", meta))
	if !r1.ok() || r1.str("channel") != "C123" || r1.str("ts") == "" {
		t.Fatalf("form post = %v, want ok in C123 with a ts", r1.body)
	}
	msg, _ := r1.body["message"].(map[string]any)
	if msg["text"] != "hello world" || msg["ts"] != r1.str("ts") || msg["bot_id"] != "BBOT" || msg["user"] != "UBOT" {
		t.Fatalf("message = %v, want the bot's (UBOT, BBOT) text with ts %s", msg, r1.str("ts"))
	}
	r2 := postJSON(t, base, "chat.postMessage", testToken, map[string]any{
		"channel": "C123", "text": "in thread", "thread_ts": r1.str("ts"),
		"blocks":   []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "hi"}}},
		"metadata": map[string]any{"event_type": "relay_reply", "event_payload": map[string]any{"k": "v"}},
	})
	if !r2.ok() {
		t.Fatalf("json post = %v, want ok", r2.body)
	}
	if !(r2.str("ts") > r1.str("ts")) {
		t.Fatalf("ts not increasing: got %q then %q", r1.str("ts"), r2.str("ts"))
	}
	if m, _ := r2.body["message"].(map[string]any); m["thread_ts"] != r1.str("ts") {
		t.Fatalf("reply message = %v, want thread_ts %s", m, r1.str("ts"))
	}
	form(t, base, "chat.postMessage", vals("channel", "C999", "text", "elsewhere"))

	posts := s.Posts()
	if len(posts) != 3 {
		t.Fatalf("got %d posts (%+v), want 3", len(posts), posts)
	}
	p := posts[0]
	if p.Method != "chat.postMessage" || p.Channel != "C123" || p.Text != "hello world" || p.TS != r1.str("ts") ||
		p.ThreadTS != "" || !p.At.Equal(now) {
		t.Fatalf("post[0] = %+v, want the first chat.postMessage at %v", p, now)
	}
	if p.Metadata == nil || p.Metadata.EventType != "relay_job" || p.Metadata.Payload["job_id"] != "j-1" ||
		p.Metadata.Payload["attempt"] != float64(2) {
		t.Fatalf("post[0].Metadata = %+v, want relay_job {job_id j-1, attempt 2}", p.Metadata)
	}
	p = posts[1]
	if p.ThreadTS != r1.str("ts") || p.Metadata == nil || p.Metadata.EventType != "relay_reply" || len(p.Blocks) == 0 {
		t.Fatalf("post[1] = %+v, want a threaded relay_reply with blocks", p)
	}
	if got := s.PostsFor("C123"); len(got) != 2 {
		t.Fatalf("PostsFor(C123) = %d posts, want 2", len(got))
	}
	if got := s.PostsFor("C999"); len(got) != 1 || got[0].Text != "elsewhere" {
		t.Fatalf("PostsFor(C999) = %+v, want the one post \"elsewhere\"", got)
	}

	outMu.Lock()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	outMu.Unlock()
	if len(lines) != 3 {
		t.Fatalf("Out lines = %q, want 3", lines)
	}
	want := "slack ▸ #C123 (thread " + r1.str("ts") + ") bot: in thread"
	if !strings.HasPrefix(lines[1], want) {
		t.Fatalf("Out line = %q, want prefix %q", lines[1], want)
	}
	if strings.Contains(out.String(), testToken) {
		t.Fatal("Out leaks the token")
	}
}

func TestPostMessageErrors(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{MissingChannels: []string{"CGONE"}, ArchivedChannels: []string{"COLD"}})
	tests := []struct {
		name   string
		method string
		kv     []string
		want   string
	}{
		{"no channel", "chat.postMessage", []string{"text", "x"}, "channel_not_found"},
		{"missing channel", "chat.postMessage", []string{"channel", "CGONE", "text", "x"}, "channel_not_found"},
		{"archived", "chat.postMessage", []string{"channel", "COLD", "text", "x"}, "is_archived"},
		{"too long", "chat.postMessage", []string{"channel", "C1", "text", strings.Repeat("é", MaxTextLength+1)}, "msg_too_long"},
		{"no text", "chat.postMessage", []string{"channel", "C1"}, "no_text"},
		{"bad metadata", "chat.postMessage", []string{"channel", "C1", "text", "x", "metadata", "{nope"}, "invalid_metadata_format"},
		{"bad blocks", "chat.postMessage", []string{"channel", "C1", "blocks", "[{"}, "invalid_blocks_format"},
		{"unknown method", "files.upload", nil, "unknown_method"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := form(t, base, tc.method, vals(tc.kv...))
			if r.status != http.StatusOK || r.ok() || r.str("error") != tc.want {
				t.Fatalf("got status %d body %v, want 200 error %s", r.status, r.body, tc.want)
			}
		})
	}
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", strings.Repeat("é", MaxTextLength))); !r.ok() {
		t.Fatalf("text of exactly MaxTextLength: got %v, want ok", r.body)
	}
	if got := len(s.Posts()); got != 1 {
		t.Fatalf("posts = %d, want 1", got)
	}
	if got, want := s.Calls("chat.postMessage"), len(tests)-1+1; got != want {
		t.Fatalf("Calls = %d, want %d", got, want)
	}
}

func TestUpdateDeleteAndEphemeral(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "working…"))
	u := form(t, base, "chat.update", vals("channel", "C1", "ts", r.str("ts"), "text", "done"))
	if !u.ok() || u.str("ts") != r.str("ts") || u.str("text") != "done" {
		t.Fatalf("chat.update = %v, want ok with ts %s and text done", u.body, r.str("ts"))
	}
	if u := form(t, base, "chat.update", vals("channel", "C1", "ts", "1.200000", "text", "x")); u.str("error") != "message_not_found" {
		t.Fatalf("update of unknown ts = %v, want message_not_found", u.body)
	}
	rep := form(t, base, "conversations.replies", vals("channel", "C1", "ts", r.str("ts")))
	msgs, _ := rep.body["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["text"] != "done" || msgs[0].(map[string]any)["edited"] == nil {
		t.Fatalf("replies after update = %v, want the one edited message \"done\"", rep.body)
	}

	// A bot token changes only the bot's own messages.
	userTS, err := s.AddUserMessage(UserMessage{Channel: "C1", User: "U1", Text: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	if u := form(t, base, "chat.update", vals("channel", "C1", "ts", userTS, "text", "x")); u.str("error") != "cant_update_message" {
		t.Fatalf("update of a user's message = %v, want cant_update_message", u.body)
	}
	if d := form(t, base, "chat.delete", vals("channel", "C1", "ts", userTS)); d.str("error") != "cant_delete_message" {
		t.Fatalf("delete of a user's message = %v, want cant_delete_message", d.body)
	}
	if d := form(t, base, "chat.delete", vals("channel", "C1", "ts", r.str("ts"))); !d.ok() || d.str("ts") != r.str("ts") {
		t.Fatalf("chat.delete = %v, want ok with ts %s", d.body, r.str("ts"))
	}
	if d := form(t, base, "chat.delete", vals("channel", "C1", "ts", r.str("ts"))); d.str("error") != "message_not_found" {
		t.Fatalf("second chat.delete = %v, want message_not_found", d.body)
	}
	if rep := form(t, base, "conversations.replies", vals("channel", "C1", "ts", r.str("ts"))); rep.str("error") != "thread_not_found" {
		t.Fatalf("replies of a deleted message = %v, want thread_not_found", rep.body)
	}

	e := form(t, base, "chat.postEphemeral", vals("channel", "C1", "user", "U7", "text", "only you"))
	if !e.ok() || e.str("message_ts") == "" {
		t.Fatalf("chat.postEphemeral = %v, want ok with message_ts", e.body)
	}
	if e := form(t, base, "chat.postEphemeral", vals("channel", "C1", "text", "nobody")); e.str("error") != "user_not_in_channel" {
		t.Fatalf("chat.postEphemeral without user = %v, want user_not_in_channel", e.body)
	}
	posts := s.Posts()
	if len(posts) != 2 || posts[1].Method != "chat.postEphemeral" || posts[1].User != "U7" || posts[1].Text != "only you" {
		t.Fatalf("posts = %+v, want the message then the ephemeral post to U7", posts)
	}
}

func TestReactions(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	steps := []struct {
		method, name, want string // want "" means ok
	}{
		{"reactions.add", "eyes", ""},
		{"reactions.add", "eyes", "already_reacted"},
		{"reactions.add", ":white_check_mark:", ""},
		{"reactions.remove", "eyes", ""},
		{"reactions.remove", "eyes", "no_reaction"},
		{"reactions.remove", "x", "no_reaction"},
	}
	for i, st := range steps {
		r := form(t, base, st.method, vals("channel", "C1", "timestamp", "1700000000.000100", "name", st.name))
		if st.want == "" && !r.ok() || st.want != "" && r.str("error") != st.want {
			t.Fatalf("step %d %s %s = %v, want error %q", i, st.method, st.name, r.body, st.want)
		}
	}
	want := Reaction{Channel: "C1", Timestamp: "1700000000.000100", Name: "white_check_mark"}
	if got := s.Reactions(); len(got) != 1 || got[0] != want {
		t.Fatalf("Reactions() = %+v, want [%+v]", got, want)
	}
	for _, tc := range []struct{ name, channel, ts, emoji, want string }{
		{"no channel", "", "1.000001", "x", "channel_not_found"},
		{"no timestamp", "C1", "", "x", "no_item_specified"},
		{"no name", "C1", "1.000001", "::", "invalid_name"},
	} {
		if r := form(t, base, "reactions.add", vals("channel", tc.channel, "timestamp", tc.ts, "name", tc.emoji)); r.str("error") != tc.want {
			t.Errorf("reactions.add %s = %v, want %s", tc.name, r.body, tc.want)
		}
	}
	if got, want := s.Calls("reactions.add"), 3+3; got != want {
		t.Fatalf("Calls(reactions.add) = %d, want %d", got, want)
	}
}

// Messages shows a conversation as the Web API returns it: posts, streams with their text
// so far and state, updates applied, seeded user messages.
func TestMessages(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	if _, err := s.AddUserMessage(UserMessage{Channel: "C1", User: "U1", Text: "question", TS: "1700000000.000050"}); err != nil {
		t.Fatal(err)
	}
	post := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "first", "thread_ts", "1700000000.000050"))
	form(t, base, "chat.update", vals("channel", "C1", "ts", post.str("ts"), "text", "first, edited"))
	st := form(t, base, "chat.startStream", vals("channel", "C1", "thread_ts", "1700000000.000050", "markdown_text", "stre",
		"recipient_user_id", "U1", "recipient_team_id", "T0001"))
	form(t, base, "chat.appendStream", vals("channel", "C1", "ts", st.str("ts"), "markdown_text", "aming"))
	got := s.Messages("C1")
	if len(got) != 3 {
		t.Fatalf("%d messages, want 3: %+v", len(got), got)
	}
	if got[0].Bot || got[0].Text != "question" {
		t.Errorf("message 1 = %+v, want the user's question", got[0])
	}
	if !got[1].Bot || got[1].Text != "first, edited" || !got[1].Edited || got[1].ThreadTS != "1700000000.000050" {
		t.Errorf("message 2 = %+v, want the bot's edited reply in the thread", got[1])
	}
	if !got[2].Bot || got[2].Text != "streaming" || !got[2].Streaming {
		t.Errorf("message 3 = %+v, want the bot's stream, still streaming, with its text so far", got[2])
	}
	if all := s.Messages(""); len(all) != 3 {
		t.Errorf("Messages(\"\") = %d messages, want 3", len(all))
	}
	form(t, base, "chat.postMessage", vals("channel", "C1", "text", "not in the thread"))
	form(t, base, "chat.postMessage", vals("channel", "C2", "text", "another channel", "thread_ts", "1700000000.000050"))
	replies := s.BotReplies("C1", "1700000000.000050")
	if len(replies) != 2 || replies[0].TS != post.str("ts") || replies[1].TS != st.str("ts") || !replies[1].Streaming {
		t.Errorf("BotReplies = %+v, want the edited post and the stream still streaming, nothing else", replies)
	}
}

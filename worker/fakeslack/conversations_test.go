package fakeslack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
)

func TestConversationsReplies(t *testing.T) {
	t.Parallel()
	_, base := newTest(t, Options{})
	parent := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "parent",
		"metadata", `{"event_type":"relay_job","event_payload":{"job_id":"j-9"}}`))
	pts := parent.str("ts")
	reply1 := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "reply 1", "thread_ts", pts,
		"metadata", `{"event_type":"relay_reply","event_payload":{"n":1}}`))
	form(t, base, "chat.postMessage", vals("channel", "C1", "text", "other"))
	form(t, base, "chat.postMessage", vals("channel", "C1", "text", "reply 2", "thread_ts", pts))
	form(t, base, "reactions.add", vals("channel", "C1", "timestamp", pts, "name", "eyes"))

	r := form(t, base, "conversations.replies", vals("channel", "C1", "ts", pts, "include_all_metadata", "true"))
	msgs, _ := r.body["messages"].([]any)
	if !r.ok() || len(msgs) != 3 || r.body["has_more"] != false {
		t.Fatalf("replies = %v, want ok, 3 messages, has_more false", r.body)
	}
	first := msgs[0].(map[string]any)
	if first["text"] != "parent" || first["reply_count"] != float64(2) || first["thread_ts"] != pts {
		t.Fatalf("parent = %v, want text parent, reply_count 2, thread_ts %s", first, pts)
	}
	md, _ := first["metadata"].(map[string]any)
	if md["event_type"] != "relay_job" || md["event_payload"].(map[string]any)["job_id"] != "j-9" {
		t.Fatalf("parent metadata = %v, want relay_job {job_id j-9}", first["metadata"])
	}
	if rs, _ := first["reactions"].([]any); len(rs) != 1 {
		t.Fatalf("parent reactions = %v, want [eyes]", first["reactions"])
	}
	second := msgs[1].(map[string]any)
	if second["text"] != "reply 1" || second["metadata"].(map[string]any)["event_type"] != "relay_reply" {
		t.Fatalf("reply = %v, want reply 1 with relay_reply metadata", second)
	}
	if msgs[2].(map[string]any)["text"] != "reply 2" {
		t.Fatalf("reply 2 = %v, want text reply 2", msgs[2])
	}

	// Without include_all_metadata, no metadata; JSON + bearer works too; a reply's ts finds
	// the whole thread.
	r = postJSON(t, base, "conversations.replies", testToken, map[string]any{"channel": "C1", "ts": reply1.str("ts")})
	msgs, _ = r.body["messages"].([]any)
	if len(msgs) != 3 || msgs[0].(map[string]any)["metadata"] != nil || msgs[1].(map[string]any)["metadata"] != nil {
		t.Fatalf("replies by a reply's ts without include_all_metadata = %v, want the 3 messages without metadata", r.body)
	}
}

func TestConversationsRepliesErrors(t *testing.T) {
	t.Parallel()
	_, base := newTest(t, Options{MissingChannels: []string{"CGONE"}})
	pts := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "parent")).str("ts")
	tests := []struct {
		name string
		kv   []string
		want string
	}{
		{"unknown ts", []string{"channel", "C1", "ts", "1.000001"}, "thread_not_found"},
		{"no ts", []string{"channel", "C1"}, "thread_not_found"},
		{"thread in another channel", []string{"channel", "C2", "ts", pts}, "thread_not_found"},
		{"missing channel", []string{"channel", "CGONE", "ts", pts}, "channel_not_found"},
		{"no channel", []string{"ts", pts}, "channel_not_found"},
		{"made-up cursor", []string{"channel", "C1", "ts", pts, "cursor", "abc"}, "invalid_cursor"},
		{"cursor of another shape", []string{"channel", "C1", "ts", pts, "cursor", "bmV4dDox"}, "invalid_cursor"},
		{"limit not a number", []string{"channel", "C1", "ts", pts, "limit", "ten"}, "invalid_limit"},
		{"negative limit", []string{"channel", "C1", "ts", pts, "limit", "-1"}, "invalid_limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if r := form(t, base, "conversations.replies", vals(tc.kv...)); r.ok() || r.str("error") != tc.want {
				t.Fatalf("got %v, want error %s", r.body, tc.want)
			}
		})
	}
}

// seedThread puts a user's question in channel and n bot replies with metadata, with other
// messages (a top-level one, a reply in another thread) between them, and returns the
// question's ts and the replies' texts in order.
func seedThread(t *testing.T, s *Server, channel string, n int) (string, []string) {
	t.Helper()
	api := slack.New(testToken, slack.OptionAPIURL(s.APIURL()))
	ctx := context.Background()
	parent, err := s.AddUserMessage(UserMessage{Channel: channel, User: "U1", Text: "a long question"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.AddUserMessage(UserMessage{Channel: channel, User: "U2", Text: "another question"})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for i := range n {
		text := fmt.Sprintf("part %d", i+1)
		if _, _, err := api.PostMessageContext(ctx, channel, slack.MsgOptionText(text, false), slack.MsgOptionTS(parent),
			slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "relay_reply", EventPayload: map[string]any{"part": i + 1}})); err != nil {
			t.Fatalf("post reply %d: %v", i+1, err)
		}
		texts = append(texts, text)
		if i%4 == 0 {
			if _, err := s.AddUserMessage(UserMessage{Channel: channel, User: "U2", Text: "noise", ThreadTS: other}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := api.PostMessageContext(ctx, channel, slack.MsgOptionText("top-level noise", false)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return parent, texts
}

func TestRepliesPaginationWithSlackGo(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	parent, want := seedThread(t, s, "C1", 24) // 25 messages with the parent: pages of 10, 10, 5
	api := slack.New(testToken, slack.OptionAPIURL(s.APIURL()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, withMeta := range []bool{true, false} {
		t.Run(fmt.Sprintf("include_all_metadata=%v", withMeta), func(t *testing.T) {
			var all []slack.Message
			var pageSizes []int
			var hasMores []bool
			cursor := ""
			for range 10 {
				msgs, hasMore, next, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
					ChannelID: "C1", Timestamp: parent, Limit: 10, Cursor: cursor, IncludeAllMetadata: withMeta})
				if err != nil {
					t.Fatalf("page %d: %v", len(pageSizes)+1, err)
				}
				all = append(all, msgs...)
				pageSizes = append(pageSizes, len(msgs))
				hasMores = append(hasMores, hasMore)
				if hasMore != (next != "") {
					t.Fatalf("page %d: has_more %v with next_cursor %q, want both or neither", len(pageSizes), hasMore, next)
				}
				if next == "" {
					break
				}
				cursor = next
			}
			if diff := cmp.Diff([]int{10, 10, 5}, pageSizes); diff != "" {
				t.Fatalf("page sizes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]bool{true, true, false}, hasMores); diff != "" {
				t.Fatalf("has_more per page (-want +got):\n%s", diff)
			}
			if p := all[0]; p.Timestamp != parent || p.User != "U1" || p.Text != "a long question" || p.ReplyCount != 24 {
				t.Fatalf("first message = %+v, want the parent %s by U1 with reply_count 24", p.Msg, parent)
			}
			var got []string
			for i, m := range all[1:] {
				got = append(got, m.Text)
				if m.ThreadTimestamp != parent || m.BotID != "BBOT" {
					t.Errorf("reply %d = %+v, want a bot reply in thread %s", i+1, m.Msg, parent)
				}
				if i > 0 && !(m.Timestamp > all[i].Timestamp) {
					t.Errorf("reply %d ts %s not after %s", i+1, m.Timestamp, all[i].Timestamp)
				}
				hasMeta := m.Metadata.EventType == "relay_reply" && m.Metadata.EventPayload["part"] == float64(i+1)
				if hasMeta != withMeta {
					t.Errorf("reply %d metadata = %+v, want present: %v", i+1, m.Metadata, withMeta)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("replies in order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRepliesLimitClampedTo1000(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	parent, err := s.AddUserMessage(UserMessage{Channel: "C1", User: "U1", Text: "busy thread"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1100 {
		if _, err := s.AddUserMessage(UserMessage{Channel: "C1", User: "U2", Text: fmt.Sprint(i), ThreadTS: parent}); err != nil {
			t.Fatal(err)
		}
	}
	api := slack.New(testToken, slack.OptionAPIURL(s.APIURL()))
	for _, tc := range []struct {
		name  string
		limit int
		want  int
	}{
		{"default", 0, 1000},
		{"above the maximum", 5000, 1000},
		{"what the worker asks", 200, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, hasMore, next, err := api.GetConversationRepliesContext(context.Background(),
				&slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: parent, Limit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != tc.want || !hasMore || next == "" {
				t.Fatalf("got %d messages, has_more %v, next_cursor %q; want %d, true, a cursor", len(msgs), hasMore, next, tc.want)
			}
		})
	}
}

func TestConversationsHistory(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{MissingChannels: []string{"CGONE"}})
	parent, _ := seedThread(t, s, "C1", 3) // top level: question, other question, 1 noise post
	api := slack.New(testToken, slack.OptionAPIURL(s.APIURL()))
	meta := `{"event_type":"relay_note","event_payload":{}}`
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "latest", "metadata", meta)); !r.ok() {
		t.Fatalf("post = %v, want ok", r.body)
	}

	var texts []string
	var pages int
	params := &slack.GetConversationHistoryParameters{ChannelID: "C1", Limit: 2, IncludeAllMetadata: true}
	for pages < 10 {
		resp, err := api.GetConversationHistoryContext(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range resp.Messages {
			texts = append(texts, m.Text)
			if m.Timestamp == parent && m.ReplyCount != 3 {
				t.Errorf("parent in history = %+v, want reply_count 3", m.Msg)
			}
			if (m.Metadata.EventType == "relay_note") != (m.Text == "latest") {
				t.Errorf("message %q metadata = %+v, want relay_note only on \"latest\"", m.Text, m.Metadata)
			}
		}
		if !resp.HasMore {
			break
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
	want := []string{"latest", "top-level noise", "another question", "a long question"}
	if diff := cmp.Diff(want, texts); diff != "" || pages != 2 {
		t.Fatalf("history newest first over %d pages, want 2 (-want +got):\n%s", pages, diff)
	}

	resp, err := api.GetConversationHistoryContext(context.Background(), &slack.GetConversationHistoryParameters{ChannelID: "C1"})
	if err != nil || len(resp.Messages) != 4 || resp.Messages[0].Metadata.EventType != "" {
		t.Fatalf("history without include_all_metadata = %+v, %v; want 4 messages without metadata", resp, err)
	}
	resp, err = api.GetConversationHistoryContext(context.Background(), &slack.GetConversationHistoryParameters{ChannelID: "C2"})
	if err != nil || len(resp.Messages) != 0 || resp.HasMore {
		t.Fatalf("history of an empty channel = %+v, %v; want no messages", resp, err)
	}
	_, err = api.GetConversationHistoryContext(context.Background(), &slack.GetConversationHistoryParameters{ChannelID: "CGONE"})
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "channel_not_found" {
		t.Fatalf("history of a missing channel: got %v, want channel_not_found", err)
	}
}

func TestAddUserMessage(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{MissingChannels: []string{"CGONE"}})
	ts, err := s.AddUserMessage(UserMessage{Channel: "C1", User: "U1", Text: "later", TS: "1800000000.000100"})
	if err != nil || ts != "1800000000.000100" {
		t.Fatalf("AddUserMessage with ts = %q, %v; want 1800000000.000100", ts, err)
	}
	// The server's own timestamps stay after every seeded one.
	if next, err := s.AddUserMessage(UserMessage{Channel: "C1", User: "U1", Text: "next"}); err != nil || next <= ts {
		t.Fatalf("next ts = %q, %v; want after %s", next, err, ts)
	}
	tests := []struct {
		name string
		m    UserMessage
		want string
	}{
		{"no channel", UserMessage{User: "U1", Text: "x"}, "without a channel"},
		{"missing channel", UserMessage{Channel: "CGONE", User: "U1", Text: "x"}, "MissingChannels"},
		{"no user", UserMessage{Channel: "C1", Text: "x"}, "without a user"},
		{"no text", UserMessage{Channel: "C1", User: "U1"}, "without text"},
		{"bad ts", UserMessage{Channel: "C1", User: "U1", Text: "x", TS: "1700000000.1"}, "not a Slack timestamp"},
		{"signed ts", UserMessage{Channel: "C1", User: "U1", Text: "x", TS: "+1700000000.000001"}, "not a Slack timestamp"},
		{"bad thread_ts", UserMessage{Channel: "C1", User: "U1", Text: "x", ThreadTS: "soon"}, "not a Slack timestamp"},
		{"reply before its parent", UserMessage{Channel: "C1", User: "U1", Text: "x", TS: "1700000000.000100", ThreadTS: "1700000001.000100"}, "not after"},
		{"duplicate ts", UserMessage{Channel: "C1", User: "U2", Text: "x", TS: ts}, "already has"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, err := s.AddUserMessage(tc.m); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AddUserMessage(%+v) = %q, %v; want an error containing %q", tc.m, got, err, tc.want)
			}
		})
	}
}

package localslack

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestControlAPI(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &Client{BaseURL: base}

	if err := c.Fail(ctx, "chat.postMessage", 1, "fatal_error"); err != nil {
		t.Fatal(err)
	}
	if err := c.RateLimit(ctx, "chat.postMessage", 1, 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.FailHTTP(ctx, "chat.postMessage", 1, 503); err != nil {
		t.Fatal(err)
	}
	if err := c.FailHTTP(ctx, "chat.postMessage", 1, 200); err == nil || !strings.Contains(err.Error(), "status_must_be_4xx_or_5xx") {
		t.Fatalf("FailHTTP with status 200: got %v, want status_must_be_4xx_or_5xx", err)
	}
	if err := c.Fail(ctx, "chat.postMessage", 1, ""); err == nil || !strings.Contains(err.Error(), "error_required") {
		t.Fatalf("Fail without an error code: got %v, want error_required", err)
	}
	if err := c.Fail(ctx, "", 1, "x"); err == nil || !strings.Contains(err.Error(), "method_required") {
		t.Fatalf("Fail without a method: got %v, want method_required", err)
	}
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "x")); r.str("error") != "fatal_error" {
		t.Fatalf("1st = %d %v, want fatal_error", r.status, r.body)
	}
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "x")); r.status != 429 || r.header.Get("Retry-After") != "3" {
		t.Fatalf("2nd = %d Retry-After %q, want 429 Retry-After 3", r.status, r.header.Get("Retry-After"))
	}
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "x")); r.status != 503 {
		t.Fatalf("3rd = %d, want 503", r.status)
	}

	parent, err := c.AddUserMessage(ctx, UserMessage{Channel: "C1", User: "U5", Text: "question"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddUserMessage(ctx, UserMessage{Channel: "C1", Text: "who?"}); err == nil {
		t.Fatal("AddUserMessage without a user succeeded, want an error")
	}
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "through", "thread_ts", parent,
		"metadata", `{"event_type":"e","event_payload":{"a":"b"}}`)); !r.ok() {
		t.Fatalf("4th = %v, want ok", r.body)
	}
	form(t, base, "reactions.add", vals("channel", "C1", "timestamp", parent, "name", "eyes"))
	rep := form(t, base, "conversations.replies", vals("channel", "C1", "ts", parent))
	if msgs, _ := rep.body["messages"].([]any); len(msgs) != 2 || msgs[0].(map[string]any)["user"] != "U5" {
		t.Fatalf("replies = %v, want the seeded question by U5 then the reply", rep.body)
	}

	hc := &Client{BaseURL: strings.TrimSuffix(base, "/"), HTTP: &http.Client{Timeout: 5 * time.Second}}
	posts, err := hc.Posts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(posts) != 1 || posts[0].Text != "through" || posts[0].Metadata == nil ||
		posts[0].Metadata.Payload["a"] != "b" || posts[0].TS == "" || posts[0].ThreadTS != parent {
		t.Fatalf("control posts = %+v, want the one reply \"through\" with metadata", posts)
	}
	if n, err := hc.Calls(ctx, "chat.postMessage"); err != nil || n != 4 {
		t.Fatalf("control calls = %d, %v; want 4", n, err)
	}
	if rs, err := hc.Reactions(ctx); err != nil || len(rs) != 1 || rs[0].Name != "eyes" {
		t.Fatalf("control reactions = %+v, %v; want [eyes]", rs, err)
	}

	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	posts, err = c.Posts(ctx)
	if err != nil || len(posts) != 0 || posts == nil {
		t.Fatalf("posts after reset = %v, %v; want an empty list", posts, err)
	}
	if n, err := c.Calls(ctx, "chat.postMessage"); err != nil || n != 0 {
		t.Fatalf("calls after reset = %d, %v; want 0", n, err)
	}
	if len(s.Reactions()) != 0 {
		t.Fatal("reactions survive reset")
	}
	if r := form(t, base, "conversations.replies", vals("channel", "C1", "ts", parent)); r.str("error") != "thread_not_found" {
		t.Fatalf("seeded thread after reset = %v, want thread_not_found", r.body)
	}
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "after")); !(r.str("ts") > parent) {
		t.Fatalf("ts after reset = %q, want later than %q", r.str("ts"), parent)
	}
}

func TestControlAPIBadRequests(t *testing.T) {
	t.Parallel()
	_, base := newTest(t, Options{})
	for _, tc := range []struct{ path, body, want string }{
		{"/_control/fail", `{`, "invalid_json"},
		{"/_control/messages", `[]`, "invalid_json"},
		{"/_control/messages", `{"channel":"C1","user":"U1","text":"x","ts":"yesterday"}`, "not a Slack timestamp"},
	} {
		resp, err := http.Post(strings.TrimSuffix(base, "/")+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b := new(strings.Builder)
		_, _ = io.Copy(b, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(b.String(), tc.want) {
			t.Errorf("POST %s %s: got %d %s, want 400 with %q", tc.path, tc.body, resp.StatusCode, b, tc.want)
		}
	}
}

package fakeslack

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
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
		{"/_control/streamlifetime", `{}`, "seconds_required"},
		{"/_control/streamlifetime", `{"seconds":-1}`, "seconds_required"},
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

// Another process can issue triggers and read views, streams and assistant threads.
func TestControlAPIRecords(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &Client{BaseURL: base}
	api := newAPI(s)

	trig, err := c.NewTrigger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := api.OpenViewContext(ctx, trig, modal("Ask", "question?"))
	if err != nil {
		t.Fatalf("views.open with a trigger from the control API: got %v, want ok", err)
	}
	inView, err := c.NewViewTrigger(ctx, opened.View.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.PushViewContext(ctx, inView, modal("More", "details")); err != nil {
		t.Fatalf("views.push with a view trigger from the control API: got %v, want ok", err)
	}
	if _, err := c.NewViewTrigger(ctx, "V404"); err == nil || !strings.Contains(err.Error(), "V404") {
		t.Fatalf("NewViewTrigger of an unknown view: got %v, want an error naming it", err)
	}
	views, err := c.Views(ctx)
	if err != nil || len(views) != 2 || views[0].ID != opened.View.ID || views[1].RootViewID != opened.View.ID {
		t.Fatalf("Views = %+v, %v; want the opened view then the pushed one", views, err)
	}
	v, err := c.View(ctx, opened.View.ID)
	if err != nil || v.Hash != opened.View.Hash || v.Title != "Ask" || len(v.History) != 1 || v.TriggerID != trig {
		t.Fatalf("View = %+v, %v; want the opened view with its hash, title, trigger and one change", v, err)
	}
	if _, err := c.View(ctx, "V404"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("View of an unknown id: got %v, want an HTTP 404 error", err)
	}

	_, ts, err := api.StartStreamContext(ctx, "D1", slack.MsgOptionMarkdownText("partial"))
	if err != nil {
		t.Fatal(err)
	}
	if err := api.SetAssistantThreadsStatusContext(ctx, slack.AssistantThreadsSetStatusParameters{
		ChannelID: "D1", ThreadTS: ts, Status: "is thinking…"}); err != nil {
		t.Fatal(err)
	}
	streams, err := c.Streams(ctx)
	if err != nil || len(streams) != 1 || streams[0].TS != ts || streams[0].Text != "partial" || streams[0].State != Streaming {
		t.Fatalf("Streams = %+v, %v; want the one streaming message with its text so far", streams, err)
	}
	threads, err := c.AssistantThreads(ctx)
	if err != nil || len(threads) != 1 || threads[0].Status != "is thinking…" || threads[0].ThreadTS != ts {
		t.Fatalf("AssistantThreads = %+v, %v; want the one thread with its status", threads, err)
	}

	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	views, err1 := c.Views(ctx)
	streams, err2 := c.Streams(ctx)
	threads, err3 := c.AssistantThreads(ctx)
	if err := errors.Join(err1, err2, err3); err != nil || views == nil || len(views)+len(streams)+len(threads) != 0 {
		t.Fatalf("after Reset: %d views, %d streams, %d threads, %v; want empty lists", len(views), len(streams), len(threads), err)
	}
	if _, err := api.OpenViewContext(ctx, trig, modal("Ask", "again")); slackErrCode(err) != "invalid_trigger_id" {
		t.Fatalf("views.open with a trigger issued before Reset: got %v, want invalid_trigger_id", err)
	}
}

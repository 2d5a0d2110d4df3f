package fakeslack

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
)

// respond posts body to a response_url as a bot does, and returns the HTTP status and body.
func respond(t *testing.T, u string, body any) (int, string) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(u, "application/json", strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// mustRespond posts body and fails the test unless it is accepted.
func mustRespond(t *testing.T, u string, body any) {
	t.Helper()
	if code, msg := respond(t, u, body); code != http.StatusOK {
		t.Fatalf("response_url post %v: HTTP %d %s, want accepted", body, code, msg)
	}
}

// refreshBlocks is an answer under a Refresh button, as a bot sends it with slack-go.
func refreshBlocks(text string) []slack.Block {
	return []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil),
		slack.NewActionBlock("", slack.NewButtonBlockElement("refresh", "x", slack.NewTextBlockObject(slack.PlainTextType, "Refresh", false, false))),
	}
}

// A slash command's in_channel answer is a message in the channel; a click on its button
// replaces it through the click's response_url with replace_original: the channel still
// holds one message, with the same ts, now showing the new answer.
func TestResponseURLClickReplacesTheClickedMessage(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	cmd := s.ResponseURLFrom("cmd", Origin{Channel: "C1", User: "U1"})
	if err := slack.PostWebhook(cmd, &slack.WebhookMessage{Text: "price: 100", ResponseType: slack.ResponseTypeInChannel,
		Blocks: &slack.Blocks{BlockSet: refreshBlocks("price: 100")}}); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages("C1")
	if len(msgs) != 1 || !msgs[0].Bot || msgs[0].User != "UBOT" {
		t.Fatalf("messages %+v, want the bot's answer in C1", msgs)
	}
	ts := msgs[0].TS
	if r, ok := s.Rendered("C1", ts); !ok || r.Text != "price: 100" || !cmp.Equal(r.Actions, []string{"refresh"}) || r.VisibleTo != "" {
		t.Fatalf("rendered %+v %v, want the answer under its button, seen by everyone", r, ok)
	}

	click := s.ResponseURLFrom("click", Origin{Channel: "C1", User: "U2", MessageTS: ts})
	if err := slack.PostWebhook(click, &slack.WebhookMessage{Text: "price: 101", ResponseType: slack.ResponseTypeInChannel,
		ReplaceOriginal: true, Blocks: &slack.Blocks{BlockSet: refreshBlocks("price: 101")}}); err != nil {
		t.Fatal(err)
	}
	want := []Rendered{{Channel: "C1", TS: ts, User: "UBOT", Bot: true, Text: "price: 101", Actions: []string{"refresh"}}}
	if diff := cmp.Diff(want, s.RenderedChannel("C1", "U2")); diff != "" {
		t.Errorf("the channel after the click (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, s.RenderedThread("C1", ts)); diff != "" {
		t.Errorf("RenderedThread after the click (-want +got):\n%s", diff)
	}
	posts := s.Posts()
	if len(posts) != 2 {
		t.Fatalf("posts %+v, want the answer and its replacement", posts)
	}
	if p := posts[1]; p.Method != ResponseURLMethod || p.ResponseID != "click" || p.Channel != "C1" || p.TS != ts || !p.ReplaceOriginal {
		t.Errorf("replacement post %+v, want the click's replace_original of %s in C1", p, ts)
	}

	// Without replace_original the click's answer is a second message: what a bot that
	// forgets it shows.
	mustRespond(t, click, map[string]any{"text": "price: 102", "response_type": "in_channel"})
	if got := s.RenderedChannel("C1", ""); len(got) != 2 || got[0].Text != "price: 101" || got[1].Text != "price: 102" {
		t.Errorf("the channel after a click answered without replace_original: %+v, want two messages", got)
	}
}

// A click on an ephemeral message replaces that ephemeral message, which stays shown to its
// user alone (Slack's replacement keeps the original's kind, whatever response_type says).
func TestResponseURLReplacesAnEphemeralMessage(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	api := newAPI(s)
	ts, err := api.PostEphemeral("C1", "U1", slack.MsgOptionText("pick one", false), slack.MsgOptionBlocks(refreshBlocks("pick one")...))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Ephemerals("C1", "U1"); len(got) != 1 || got[0].TS != ts || got[0].Text != "pick one" || got[0].VisibleTo != "U1" {
		t.Fatalf("ephemerals of U1 %+v, want the ephemeral message %s", got, ts)
	}
	click := s.ResponseURLFrom("click", Origin{Channel: "C1", User: "U1", MessageTS: ts, Ephemeral: true})
	mustRespond(t, click, map[string]any{"text": "picked", "replace_original": true, "response_type": "in_channel"})
	want := []Rendered{{Channel: "C1", TS: ts, User: "UBOT", Bot: true, Text: "picked", VisibleTo: "U1"}}
	if diff := cmp.Diff(want, s.Ephemerals("C1", "U1")); diff != "" {
		t.Errorf("U1's ephemeral messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, s.RenderedChannel("C1", "U1")); diff != "" {
		t.Errorf("C1 as U1 sees it (-want +got):\n%s", diff)
	}
	if got := s.Messages("C1"); len(got) != 0 {
		t.Errorf("C1 holds %+v, want no message: the replaced one is still ephemeral", got)
	}
	if p := s.Posts()[1]; p.TS != ts || p.User != "U1" || p.Channel != "C1" {
		t.Errorf("replacement post %+v, want the ephemeral message %s of U1", p, ts)
	}
}

// delete_original deletes the clicked message; what the post carries comes as a new one.
func TestResponseURLDeleteOriginal(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	api := newAPI(s)
	_, first, err := api.PostMessage("C1", slack.MsgOptionBlocks(refreshBlocks("first")...))
	if err != nil {
		t.Fatal(err)
	}
	_, second, err := api.PostMessage("C1", slack.MsgOptionBlocks(refreshBlocks("second")...))
	if err != nil {
		t.Fatal(err)
	}
	if err := slack.PostWebhook(s.ResponseURLFrom("del", Origin{Channel: "C1", User: "U1", MessageTS: first}),
		&slack.WebhookMessage{DeleteOriginal: true}); err != nil {
		t.Fatal(err)
	}
	if got := s.Messages("C1"); len(got) != 1 || got[0].TS != second {
		t.Fatalf("C1 holds %+v, want only %s: the clicked message deleted", got, second)
	}
	if _, ok := s.Rendered("C1", first); ok {
		t.Error("the deleted message still renders")
	}
	mustRespond(t, s.ResponseURLFrom("del2", Origin{Channel: "C1", User: "U1", MessageTS: second}),
		map[string]any{"delete_original": true, "text": "done", "response_type": "in_channel"})
	got := s.RenderedChannel("C1", "U1")
	if len(got) != 1 || got[0].TS == second || got[0].Text != "done" {
		t.Errorf("C1 shows %+v, want the second message gone and a new one saying done", got)
	}
	// The message is gone: another replace_original or delete_original of it is refused.
	u := s.ResponseURLFrom("del", Origin{Channel: "C1", User: "U1", MessageTS: first})
	if code, msg := respond(t, u, map[string]any{"text": "again", "replace_original": true}); code != http.StatusNotFound || msg != "message_not_found" {
		t.Errorf("replacing a deleted message: HTTP %d %s, want 404 message_not_found", code, msg)
	}
}

// in_channel is a message everyone sees, in the history; ephemeral (the default) a message
// only the user who ran the command sees, never in the history.
func TestResponseURLInChannelAndEphemeral(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	u := s.ResponseURLFrom("cmd", Origin{Channel: "C1", User: "U1"})
	mustRespond(t, u, map[string]any{"text": "only you"})
	mustRespond(t, u, map[string]any{"text": "everyone", "response_type": "in_channel"})

	if got := s.Messages("C1"); len(got) != 1 || got[0].Text != "everyone" {
		t.Errorf("C1's history %+v, want only the in_channel answer", got)
	}
	hist, err := newAPI(s).GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: "C1"})
	if err != nil || len(hist.Messages) != 1 || hist.Messages[0].Text != "everyone" {
		t.Errorf("conversations.history: %v %+v, want only the in_channel answer", err, hist)
	}
	eph := s.Ephemerals("C1", "U1")
	if len(eph) != 1 || eph[0].Text != "only you" || eph[0].VisibleTo != "U1" {
		t.Errorf("U1's ephemeral messages %+v, want the ephemeral answer", eph)
	}
	if got := s.Ephemerals("C1", "U2"); len(got) != 0 {
		t.Errorf("U2 is shown %+v, want nothing", got)
	}
	if r, ok := s.Rendered("C1", eph[0].TS); !ok || r.VisibleTo != "U1" {
		t.Errorf("Rendered(the ephemeral answer) = %+v %v, want it shown to U1", r, ok)
	}
	texts := func(rs []Rendered) (out []string) {
		for _, r := range rs {
			out = append(out, r.Text)
		}
		return out
	}
	if got := texts(s.RenderedChannel("C1", "U1")); !cmp.Equal(got, []string{"only you", "everyone"}) {
		t.Errorf("C1 as U1 sees it: %q", got)
	}
	if got := texts(s.RenderedChannel("C1", "U2")); !cmp.Equal(got, []string{"everyone"}) {
		t.Errorf("C1 as U2 sees it: %q", got)
	}
	posts := s.Posts()
	if posts[0].User != "U1" || posts[0].Channel != "C1" || posts[0].TS == "" || posts[1].User != "" {
		t.Errorf("posts %+v, want the ephemeral one to U1 and the in_channel one to nobody in particular", posts)
	}
}

// thread_ts puts a response_url answer in the thread.
func TestResponseURLThreadTS(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	parent, err := s.AddUserMessage(UserMessage{Channel: "C1", User: "U1", Text: "question"})
	if err != nil {
		t.Fatal(err)
	}
	mustRespond(t, s.ResponseURLFrom("a", Origin{Channel: "C1", User: "U1"}),
		map[string]any{"text": "answer", "response_type": "in_channel", "thread_ts": parent})
	got := s.RenderedThread("C1", parent)
	if len(got) != 2 || got[1].Text != "answer" || got[1].ThreadTS != parent {
		t.Errorf("thread %+v, want the question and the answer in it", got)
	}
	if ch := s.RenderedChannel("C1", "U1"); len(ch) != 1 || ch[0].Text != "question" {
		t.Errorf("channel %+v, want the reply in its thread only", ch)
	}
}

// A response_url takes five posts; the sixth is refused and changes nothing.
func TestResponseURLSixthPostRefused(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	u := s.ResponseURLFrom("cmd", Origin{Channel: "C1", User: "U1"})
	for i := range ResponseURLUses {
		if err := slack.PostWebhook(u, &slack.WebhookMessage{Text: "part", ResponseType: "in_channel"}); err != nil {
			t.Fatalf("post %d: %v", i+1, err)
		}
	}
	if code, msg := respond(t, u, map[string]any{"text": "sixth", "response_type": "in_channel"}); code != http.StatusNotFound || msg != "used_url" {
		t.Fatalf("sixth post: HTTP %d %s, want 404 used_url", code, msg)
	}
	if err := slack.PostWebhook(u, &slack.WebhookMessage{Text: "seventh"}); err == nil {
		t.Error("slack-go: a seventh post went through")
	}
	if n, m := len(s.Posts()), len(s.Messages("C1")); n != ResponseURLUses || m != ResponseURLUses {
		t.Errorf("%d posts, %d messages, want %d each", n, m, ResponseURLUses)
	}
	// A response_url whose origin is unknown is held to the same count.
	plain := s.ResponseURL("plain")
	for range ResponseURLUses {
		mustRespond(t, plain, map[string]any{"text": "x"})
	}
	if code, _ := respond(t, plain, map[string]any{"text": "x"}); code != http.StatusNotFound {
		t.Errorf("sixth post to a plain response_url: HTTP %d, want 404", code)
	}
}

// A response_url lasts 30 minutes from the command or interaction, on the server's clock.
func TestResponseURLExpires(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s, _ := newTest(t, Options{Now: clock.Now})
	u := s.ResponseURLFrom("cmd", Origin{Channel: "C1", User: "U1"})
	clock.Advance(ResponseURLLifetime - time.Second)
	mustRespond(t, u, map[string]any{"text": "just in time", "response_type": "in_channel"})
	clock.Advance(2 * time.Second)
	if code, msg := respond(t, u, map[string]any{"text": "too late", "response_type": "in_channel"}); code != http.StatusNotFound || msg != "expired_url" {
		t.Fatalf("post after 30 min: HTTP %d %s, want 404 expired_url", code, msg)
	}
	if got := s.Messages("C1"); len(got) != 1 {
		t.Errorf("C1 holds %+v, want only the post in time", got)
	}
	// A plain response_url's 30 minutes start when ResponseURL issues it.
	plain := s.ResponseURL("plain")
	clock.Advance(ResponseURLLifetime + time.Second)
	if code, msg := respond(t, plain, map[string]any{"text": "x"}); code != http.StatusNotFound || msg != "expired_url" {
		t.Errorf("plain response_url after 30 min: HTTP %d %s, want 404 expired_url", code, msg)
	}
}

// A slash command has no original message: replace_original replaces nothing (the answer
// comes as a new message, as Slack does it), delete_original deletes nothing.
func TestResponseURLSlashCommandHasNoOriginal(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	u := s.ResponseURLFrom("cmd", Origin{Channel: "C1", User: "U1"})
	mustRespond(t, u, map[string]any{"text": "thinking…", "response_type": "in_channel"})
	mustRespond(t, u, map[string]any{"text": "done", "response_type": "in_channel", "replace_original": true})
	got := s.RenderedChannel("C1", "U1")
	if len(got) != 2 || got[0].Text != "thinking…" || got[1].Text != "done" {
		t.Errorf("C1 shows %+v, want both answers: a command's replace_original replaces nothing", got)
	}
	mustRespond(t, u, map[string]any{"delete_original": true})
	if n := len(s.RenderedChannel("C1", "U1")); n != 2 {
		t.Errorf("C1 shows %d messages after a command's delete_original, want 2", n)
	}
}

// A click's replace_original needs the clicked message: one the server never had is refused
// and nothing is recorded.
func TestResponseURLUnknownOriginalRefused(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	u := s.ResponseURLFrom("click", Origin{Channel: "C1", User: "U1", MessageTS: "1515449601.000200"})
	if code, msg := respond(t, u, map[string]any{"text": "new", "replace_original": true}); code != http.StatusNotFound || msg != "message_not_found" {
		t.Errorf("replacing a message the server never had: HTTP %d %s, want 404 message_not_found", code, msg)
	}
	if n := len(s.Posts()); n != 0 {
		t.Errorf("%d posts recorded, want none", n)
	}
	// Without replace_original the click's answer needs no original.
	mustRespond(t, u, map[string]any{"text": "new"})
	if got := s.Ephemerals("C1", "U1"); len(got) != 1 {
		t.Errorf("U1 is shown %+v, want the click's ephemeral answer", got)
	}
}

// Other processes issue response_urls with an origin and read ephemeral messages and the
// channel through the control API.
func TestResponseURLOverControlAPI(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	c, ctx := &Client{BaseURL: base}, context.Background()
	u, err := c.ResponseURLFrom(ctx, "cmd", Origin{Channel: "C1", User: "U1"})
	if err != nil || u != s.ResponseURL("cmd") {
		t.Fatalf("ResponseURLFrom = %q, %v; want %q", u, err, s.ResponseURL("cmd"))
	}
	mustRespond(t, u, map[string]any{"text": "only you"})
	mustRespond(t, u, map[string]any{"text": "everyone", "response_type": "in_channel"})
	eph, err := c.Ephemerals(ctx, "C1", "U1")
	if err != nil || len(eph) != 1 || eph[0].Text != "only you" {
		t.Errorf("Ephemerals = %+v, %v", eph, err)
	}
	ch, err := c.RenderedChannel(ctx, "C1", "U2")
	if err != nil || len(ch) != 1 || ch[0].Text != "everyone" {
		t.Errorf("RenderedChannel as U2 = %+v, %v", ch, err)
	}
	if none, err := c.Ephemerals(ctx, "C1", "U2"); err != nil || none == nil || len(none) != 0 {
		t.Errorf("Ephemerals of U2 = %#v, %v; want an empty list", none, err)
	}
	plain, err := c.ResponseURLFrom(ctx, "plain", Origin{})
	if err != nil || plain != s.ResponseURL("plain") {
		t.Errorf("ResponseURLFrom without an origin = %q, %v", plain, err)
	}
}

// Reset forgets ephemeral messages and response_urls: a used-up id takes posts again.
func TestResponseURLReset(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	u := s.ResponseURLFrom("cmd", Origin{Channel: "C1", User: "U1"})
	for range ResponseURLUses {
		mustRespond(t, u, map[string]any{"text": "x"})
	}
	s.Reset()
	if got := s.Ephemerals("C1", ""); len(got) != 0 {
		t.Errorf("ephemerals after Reset: %+v", got)
	}
	mustRespond(t, u, map[string]any{"text": "x"})
	if got := s.Ephemerals("C1", ""); len(got) != 0 {
		t.Errorf("after Reset the response_url's origin is forgotten, yet it showed %+v", got)
	}
}

package fakeslack

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// testClock is a clock a test moves by hand (Options.Now).
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *testClock { return &testClock{now: time.Unix(1_700_000_000, 0).UTC()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// slackErrCode is the Slack error code in err ("" when err is not a Slack error answer).
func slackErrCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

func newAPI(s *Server) *slack.Client {
	return slack.New(testToken, slack.OptionAPIURL(s.APIURL()))
}

// modal is a small modal as the worker builds it with slack-go.
func modal(title, text string) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:       slack.VTModal,
		CallbackID: "slackrelay_ask",
		Title:      slack.NewTextBlockObject(slack.PlainTextType, title, false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil),
		}},
	}
}

// testdataView reads a view payload from testdata/ and lets the caller change it.
func testdataView(t *testing.T, name string, change func(map[string]any)) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(v)
	}
	return v
}

func TestViewsOpenTriggers(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s, _ := newTest(t, Options{Now: clock.Now})
	api := newAPI(s)
	ctx := context.Background()
	open := func(trigger string) (*slack.ViewResponse, error) {
		return api.OpenViewContext(ctx, trigger, modal("Ask", "hello"))
	}

	fresh := s.NewTrigger()
	clock.Advance(TriggerLifetime) // still valid at exactly its lifetime
	resp, err := open(fresh)
	if err != nil {
		t.Fatalf("views.open with a trigger %s old: got %v, want ok", TriggerLifetime, err)
	}
	if !strings.HasPrefix(resp.View.ID, "V") || resp.View.Hash == "" || resp.View.RootViewID != resp.View.ID ||
		resp.View.CallbackID != "slackrelay_ask" || resp.View.Title == nil || resp.View.Title.Text != "Ask" {
		t.Fatalf("views.open view = %+v, want an id V…, a hash, itself as root, the callback id and title sent", resp.View)
	}
	if v, ok := s.ViewByTrigger(fresh); !ok || v.ID != resp.View.ID {
		t.Errorf("ViewByTrigger(fresh) = %+v, %v; want view %s", v, ok, resp.View.ID)
	}
	if _, ok := s.ViewByTrigger("no-such-trigger"); ok {
		t.Error("ViewByTrigger found a view for a trigger never used")
	}

	late := s.NewTrigger()
	clock.Advance(TriggerLifetime + time.Millisecond)
	tests := []struct {
		name, trigger, want string
	}{
		{"exchanged", fresh, "exchanged_trigger_id"},
		{"expired", late, "expired_trigger_id"},
		{"unknown", "1700000000.99.0123456789abcdef", "invalid_trigger_id"},
		{"malformed", "not-a-trigger", "invalid_trigger_id"},
	}
	for _, tc := range tests {
		if _, err := open(tc.trigger); slackErrCode(err) != tc.want {
			t.Errorf("views.open with a %s trigger: got %v, want %s", tc.name, err, tc.want)
		}
	}
	// A refused trigger is not used up by the refusal; an expired one stays expired.
	if _, err := open(late); slackErrCode(err) != "expired_trigger_id" {
		t.Errorf("views.open with the expired trigger again: got %v, want expired_trigger_id", err)
	}
	if got := len(s.Views()); got != 1 {
		t.Fatalf("Views() holds %d views, want the 1 opened", got)
	}
}

func TestViewsUpdateHash(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	api := newAPI(s)
	ctx := context.Background()
	first := modal("Ask", "question?")
	first.ExternalID = "ask-1"
	opened, err := api.OpenViewContext(ctx, s.NewTrigger(), first)
	if err != nil {
		t.Fatal(err)
	}
	id, h0 := opened.View.ID, opened.View.Hash

	up1, err := api.UpdateViewContext(ctx, modal("Ask", "working on it…"), "", h0, id)
	if err != nil {
		t.Fatalf("views.update with the current hash: got %v, want ok", err)
	}
	h1 := up1.View.Hash
	if h1 == "" || h1 == h0 || up1.View.ID != id {
		t.Fatalf("views.update answered id %q hash %q, want id %q and a hash other than %q", up1.View.ID, h1, id, h0)
	}
	if _, err := api.UpdateViewContext(ctx, modal("Ask", "stale"), "", h0, id); slackErrCode(err) != "hash_conflict" {
		t.Fatalf("views.update with the replaced hash: got %v, want hash_conflict", err)
	}
	up2, err := api.UpdateViewContext(ctx, modal("Answer", "42"), "ask-1", h1, "")
	if err != nil {
		t.Fatalf("views.update by external_id: got %v, want ok", err)
	}
	up3, err := api.UpdateViewContext(ctx, modal("Answer", "42, again"), "", "", id)
	if err != nil {
		t.Fatalf("views.update without a hash: got %v, want ok", err)
	}
	if up3.View.Hash == up2.View.Hash || up2.View.Hash == h1 {
		t.Fatalf("hashes %q, %q, %q: want a new one on every update", h1, up2.View.Hash, up3.View.Hash)
	}
	for _, tc := range []struct{ viewID, externalID string }{{"V404", ""}, {"", "no-such-view"}} {
		if _, err := api.UpdateViewContext(ctx, modal("x", "y"), tc.externalID, "", tc.viewID); slackErrCode(err) != "not_found" {
			t.Errorf("views.update of view_id %q external_id %q: got %v, want not_found", tc.viewID, tc.externalID, err)
		}
	}

	v, ok := s.View(id)
	if !ok {
		t.Fatalf("View(%s) not found", id)
	}
	if v.Hash != up3.View.Hash || v.Title != "Answer" || v.ExternalID != "ask-1" || !strings.Contains(string(v.Payload), "42, again") {
		t.Fatalf("View(%s) = %+v, want the last update (hash %s, title Answer, external id ask-1)", id, v, up3.View.Hash)
	}
	var methods, hashes []string
	for _, c := range v.History {
		methods, hashes = append(methods, c.Method), append(hashes, c.Hash)
	}
	wantMethods := "views.open views.update views.update views.update"
	if got := strings.Join(methods, " "); got != wantMethods {
		t.Fatalf("history methods = %q, want %q (refused updates leave no trace)", got, wantMethods)
	}
	if got, want := strings.Join(hashes, " "), strings.Join([]string{h0, h1, up2.View.Hash, up3.View.Hash}, " "); got != want {
		t.Fatalf("history hashes = %q, want %q", got, want)
	}
}

func TestViewsPushLimit(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	api := newAPI(s)
	ctx := context.Background()
	root, err := api.OpenViewContext(ctx, s.NewTrigger(), modal("Root", "1"))
	if err != nil {
		t.Fatal(err)
	}
	prev := root.View.ID
	for i := 2; i <= MaxViewStack; i++ {
		trig, err := s.NewViewTrigger(prev)
		if err != nil {
			t.Fatal(err)
		}
		pushed, err := api.PushViewContext(ctx, trig, modal("Pushed", "n"))
		if err != nil {
			t.Fatalf("push %d: got %v, want ok", i, err)
		}
		if pushed.View.RootViewID != root.View.ID || pushed.View.PreviousViewID != prev {
			t.Fatalf("push %d: root %q previous %q, want root %q previous %q", i,
				pushed.View.RootViewID, pushed.View.PreviousViewID, root.View.ID, prev)
		}
		prev = pushed.View.ID
	}
	trig, err := s.NewViewTrigger(prev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.PushViewContext(ctx, trig, modal("Fourth", "4")); slackErrCode(err) != "push_limit_reached" {
		t.Fatalf("push beyond %d views: got %v, want push_limit_reached", MaxViewStack, err)
	}
	// A trigger from outside any modal has no stack to push onto.
	if _, err := api.PushViewContext(ctx, s.NewTrigger(), modal("Lost", "?")); slackErrCode(err) != "not_found" {
		t.Fatalf("push with a trigger from outside a modal: got %v, want not_found", err)
	}
	if _, err := s.NewViewTrigger("V404"); err == nil {
		t.Fatal("NewViewTrigger of an unknown view succeeded, want an error")
	}
	if got := len(s.Views()); got != MaxViewStack {
		t.Fatalf("Views() = %d views, want %d", got, MaxViewStack)
	}
}

func TestViewValidation(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	tests := []struct {
		name    string
		change  func(map[string]any)
		want    string
		message string // a line of response_metadata.messages, for invalid_arguments
	}{
		{"valid", nil, "", ""},
		{"home tab type", func(v map[string]any) { v["type"] = "home" }, "invalid_arguments", "[json-pointer:/view/type]"},
		{"no title", func(v map[string]any) { delete(v, "title") }, "invalid_arguments", "missing required field: title"},
		{"title too long", func(v map[string]any) {
			v["title"] = map[string]any{"type": "plain_text", "text": strings.Repeat("t", MaxViewTitle+1)}
		}, "invalid_arguments", "[json-pointer:/view/title/text]"},
		{"no blocks", func(v map[string]any) { delete(v, "blocks") }, "invalid_arguments", "missing required field: blocks"},
		{"too many blocks", func(v map[string]any) {
			blocks := make([]any, MaxViewBlocks+1)
			for i := range blocks {
				blocks[i] = map[string]any{"type": "divider"}
			}
			v["blocks"] = blocks
		}, "invalid_arguments", "must provide at most 100 items"},
		{"100 blocks", func(v map[string]any) {
			blocks := make([]any, MaxViewBlocks)
			for i := range blocks {
				blocks[i] = map[string]any{"type": "divider"}
			}
			v["blocks"] = blocks
		}, "", ""},
		{"section at its limit", func(v map[string]any) {
			v["blocks"] = []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": strings.Repeat("s", MaxSectionText)}}}
		}, "", ""},
		{"section text too long", func(v map[string]any) {
			v["blocks"] = []any{map[string]any{"type": "divider"},
				map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": strings.Repeat("s", MaxSectionText+1)}}}
		}, "invalid_arguments", "must be less than 3001 characters [json-pointer:/view/blocks/1/text/text]"},
		{"header too long", func(v map[string]any) {
			v["blocks"] = []any{map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": strings.Repeat("h", MaxHeaderText+1)}}}
		}, "invalid_arguments", "[json-pointer:/view/blocks/0/text/text]"},
		{"button text too long", func(v map[string]any) {
			v["blocks"] = []any{map[string]any{"type": "actions", "elements": []any{map[string]any{"type": "button", "action_id": "b",
				"text": map[string]any{"type": "plain_text", "text": strings.Repeat("b", MaxButtonText+1)}}}}}
		}, "invalid_arguments", "[json-pointer:/view/blocks/0/elements/0/text/text]"},
		{"too large", func(v map[string]any) { v["private_metadata"] = strings.Repeat("m", MaxViewBytes) }, "view_too_large", ""},
		{"same external_id as an open view", nil, "duplicate_external_id", ""},
	}
	for _, tc := range tests {
		view := testdataView(t, "view-ask.json", tc.change)
		view["external_id"] = "ask " + tc.name // each valid view opens its own modal
		if tc.want == "duplicate_external_id" {
			view["external_id"] = "ask valid"
		}
		r := postJSON(t, base, "views.open", testToken, map[string]any{"trigger_id": s.NewTrigger(), "view": view})
		if tc.want == "" {
			if !r.ok() {
				t.Fatalf("%s: views.open = %v, want ok", tc.name, r.body)
			}
			continue
		}
		msgs, _ := json.Marshal(r.body["response_metadata"])
		if r.ok() || r.str("error") != tc.want || !strings.Contains(string(msgs), tc.message) {
			t.Errorf("%s: views.open = %v, want %s with a message containing %q", tc.name, r.body, tc.want, tc.message)
		}
	}
	// The form encoding carries the view as a JSON string; a missing view is named.
	if r := form(t, base, "views.open", vals("trigger_id", s.NewTrigger())); r.str("error") != "invalid_arguments" {
		t.Fatalf("views.open without a view = %v, want invalid_arguments", r.body)
	}
	if r := form(t, base, "views.update", vals("view", `{"type":"modal","title":{"type":"plain_text","text":"x"},"blocks":[]}`)); r.str("error") != "invalid_arguments" {
		t.Fatalf("views.update without view_id or external_id = %v, want invalid_arguments", r.body)
	}
}

// Modals need no scope, as Slack's method pages say.
func TestViewsNeedNoScope(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{Scopes: []string{}})
	api := newAPI(s)
	resp, err := api.OpenViewContext(context.Background(), s.NewTrigger(), modal("Ask", "hi"))
	if err != nil {
		t.Fatalf("views.open with no scopes: got %v, want ok", err)
	}
	if _, err := api.UpdateViewContext(context.Background(), modal("Ask", "bye"), "", resp.View.Hash, resp.View.ID); err != nil {
		t.Fatalf("views.update with no scopes: got %v, want ok", err)
	}
}

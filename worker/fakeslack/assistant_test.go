package fakeslack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
)

// agentScopes are the repository manifest's scopes plus assistant:write, which the
// suggested prompts and title need.
func agentScopes(t *testing.T) []string {
	return append(repoManifestScopes(t), "assistant:write")
}

func TestAssistantStatus(t *testing.T) {
	t.Parallel()
	clock := newClock()
	var out bytes.Buffer
	s, _ := newTest(t, Options{Now: clock.Now, Out: lockedWriter{&sync.Mutex{}, &out}})
	api := newAPI(s)
	ctx := context.Background()
	thread, err := s.AddUserMessage(UserMessage{Channel: "D1", User: "U1", Text: "summarise #incidents"})
	if err != nil {
		t.Fatal(err)
	}
	setStatus := func(status string, loading ...string) error {
		return api.SetAssistantThreadsStatusContext(ctx, slack.AssistantThreadsSetStatusParameters{
			ChannelID: "D1", ThreadTS: thread, Status: status, LoadingMessages: loading})
	}
	current := func() AssistantThread {
		th, ok := s.AssistantThread("D1", thread)
		if !ok {
			t.Fatalf("AssistantThread(D1, %s) not found", thread)
		}
		return th
	}

	if err := setStatus("is thinking…", "Reading the channel", "Asking the model"); err != nil {
		t.Fatalf("setStatus: got %v, want ok", err)
	}
	if th := current(); th.Status != "is thinking…" || !cmp.Equal(th.LoadingMessages, []string{"Reading the channel", "Asking the model"}) {
		t.Fatalf("thread = %+v, want the status and its two loading messages", th)
	}
	t0 := clock.Now()
	if err := setStatus(""); err != nil {
		t.Fatalf("setStatus with an empty status: got %v, want ok", err)
	}
	if th := current(); th.Status != "" || th.LoadingMessages != nil {
		t.Fatalf("thread after an empty status = %+v, want no status", th)
	}

	// The app's reply in the thread clears the status; a reply elsewhere does not.
	clock.Advance(time.Second)
	t1 := clock.Now()
	if err := setStatus("is writing…"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "D1", slack.MsgOptionText("unrelated", false)); err != nil {
		t.Fatal(err)
	}
	if th := current(); th.Status != "is writing…" {
		t.Fatalf("status after a reply outside the thread = %q, want it kept", th.Status)
	}
	if _, _, err := api.PostMessageContext(ctx, "D1", slack.MsgOptionText("the answer", false), slack.MsgOptionTS(thread)); err != nil {
		t.Fatal(err)
	}
	if th := current(); th.Status != "" {
		t.Fatalf("status after the app's reply in the thread = %q, want cleared", th.Status)
	}

	// A stream started in the thread is a reply too.
	if err := setStatus("is thinking…"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.StartStreamContext(ctx, "D1", slack.MsgOptionTS(thread)); err != nil {
		t.Fatal(err)
	}
	if th := current(); th.Status != "" {
		t.Fatalf("status after a stream started in the thread = %q, want cleared", th.Status)
	}

	// Without a reply, a status goes away after StatusLifetime.
	if err := setStatus("is stuck…"); err != nil {
		t.Fatal(err)
	}
	t2 := clock.Now()
	clock.Advance(StatusLifetime - time.Millisecond)
	if th := current(); th.Status != "is stuck…" {
		t.Fatalf("status just before %s = %q, want kept", StatusLifetime, th.Status)
	}
	clock.Advance(time.Millisecond)
	th := current()
	want := []AssistantChange{
		{Method: "assistant.threads.setStatus", Status: "is thinking…", LoadingMessages: []string{"Reading the channel", "Asking the model"}, At: t0},
		{Method: "assistant.threads.setStatus", Cleared: "empty_status", At: t0},
		{Method: "assistant.threads.setStatus", Status: "is writing…", At: t1},
		{Cleared: "reply", At: t1},
		{Method: "assistant.threads.setStatus", Status: "is thinking…", At: t1},
		{Cleared: "reply", At: t1},
		{Method: "assistant.threads.setStatus", Status: "is stuck…", At: t2},
		{Cleared: "timeout", At: t2.Add(StatusLifetime)},
	}
	if diff := cmp.Diff(want, th.History); th.Status != "" || diff != "" {
		t.Fatalf("status %q, history (-want +got):\n%s", th.Status, diff)
	}
	for _, line := range []string{"status: is thinking… (2 loading messages)", "status cleared by an empty status",
		"status cleared by the app's reply", "status cleared after 2m0s without a reply"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("Out lacks %q:\n%s", line, out.String())
		}
	}
}

func TestAssistantStatusLimits(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	api := newAPI(s)
	loading := make([]string, MaxLoadingMessages+1)
	for i := range loading {
		loading[i] = fmt.Sprintf("step %d", i)
	}
	err := api.SetAssistantThreadsStatusContext(context.Background(), slack.AssistantThreadsSetStatusParameters{
		ChannelID: "D1", ThreadTS: "1700000000.000100", Status: "busy", LoadingMessages: loading})
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "invalid_arguments" || len(se.ResponseMetadata.Messages) != 1 ||
		!strings.Contains(se.ResponseMetadata.Messages[0], "at most 10") {
		t.Fatalf("setStatus with %d loading messages: got %#v, want invalid_arguments saying at most 10", len(loading), err)
	}
	// A JSON body carries loading_messages as an array; ten are fine.
	r := postJSON(t, base, "assistant.threads.setStatus", testToken, map[string]any{
		"channel_id": "D1", "thread_ts": "1700000000.000100", "status": "busy", "loading_messages": loading[:MaxLoadingMessages]})
	if !r.ok() {
		t.Fatalf("setStatus with 10 loading messages in JSON = %v, want ok", r.body)
	}
	for _, tc := range []struct{ name, channel, ts, want string }{
		{"no channel", "", "1700000000.000100", "channel_not_found"},
		{"no thread", "D1", "", "invalid_thread_ts"},
		{"bad thread", "D1", "yesterday", "invalid_thread_ts"},
	} {
		if r := form(t, base, "assistant.threads.setStatus", vals("channel_id", tc.channel, "thread_ts", tc.ts, "status", "x")); r.str("error") != tc.want {
			t.Errorf("setStatus with %s = %v, want %s", tc.name, r.body, tc.want)
		}
	}
}

// setStatus takes either chat:write or assistant:write; the other two methods need
// assistant:write.
func TestAssistantScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scopes                    []string
		status, prompts, setTitle string // the error each call gets ("" = ok)
	}{
		{[]string{"chat:write"}, "", "missing_scope", "missing_scope"},
		{[]string{"assistant:write"}, "", "", ""},
		{[]string{"reactions:write"}, "missing_scope", "missing_scope", "missing_scope"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.scopes, ","), func(t *testing.T) {
			t.Parallel()
			s, _ := newTest(t, Options{Scopes: tc.scopes})
			api := newAPI(s)
			ctx := context.Background()
			const ts = "1700000000.000100"
			errs := map[string]error{
				"assistant.threads.setStatus": api.SetAssistantThreadsStatusContext(ctx, slack.AssistantThreadsSetStatusParameters{
					ChannelID: "D1", ThreadTS: ts, Status: "is thinking…"}),
				"assistant.threads.setSuggestedPrompts": api.SetAssistantThreadsSuggestedPromptsContext(ctx, slack.AssistantThreadsSetSuggestedPromptsParameters{
					ChannelID: "D1", ThreadTS: ts, Prompts: []slack.AssistantThreadsPrompt{{Title: "a", Message: "b"}}}),
				"assistant.threads.setTitle": api.SetAssistantThreadsTitleContext(ctx, slack.AssistantThreadsSetTitleParameters{
					ChannelID: "D1", ThreadTS: ts, Title: "t"}),
			}
			wantCode := map[string]string{"assistant.threads.setStatus": tc.status,
				"assistant.threads.setSuggestedPrompts": tc.prompts, "assistant.threads.setTitle": tc.setTitle}
			for method, err := range errs {
				if got := slackErrCode(err); got != wantCode[method] {
					t.Errorf("%s with %v: got %v, want %q", method, tc.scopes, err, wantCode[method])
				}
				var se slack.SlackErrorResponse
				if errors.As(err, &se) && se.Err == "missing_scope" {
					needed, _ := RequiredScope(method, "")
					if se.Needed != needed || se.Provided != strings.Join(tc.scopes, ",") {
						t.Errorf("%s: needed %q provided %q, want needed %q provided %q", method, se.Needed, se.Provided,
							needed, strings.Join(tc.scopes, ","))
					}
				}
			}
		})
	}
}

func TestAssistantPromptsAndTitle(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s, base := newTest(t, Options{Scopes: agentScopes(t), Out: lockedWriter{&sync.Mutex{}, &out}})
	api := newAPI(s)
	ctx := context.Background()
	thread, err := s.AddUserMessage(UserMessage{Channel: "D1", User: "U1", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	prompts := []slack.AssistantThreadsPrompt{
		{Title: "Summarise", Message: "Summarise this channel"},
		{Title: "Explain", Message: "Explain the last incident"},
		{Title: "Draft", Message: "Draft a status update"},
		{Title: "Translate", Message: "Translate to French"},
	}
	if err := api.SetAssistantThreadsSuggestedPromptsContext(ctx, slack.AssistantThreadsSetSuggestedPromptsParameters{
		ChannelID: "D1", ThreadTS: thread, Title: "Try these", Prompts: prompts}); err != nil {
		t.Fatalf("setSuggestedPrompts with 4 prompts: got %v, want ok", err)
	}
	five := append(prompts, slack.AssistantThreadsPrompt{Title: "Fifth", Message: "one too many"})
	err = api.SetAssistantThreadsSuggestedPromptsContext(ctx, slack.AssistantThreadsSetSuggestedPromptsParameters{
		ChannelID: "D1", ThreadTS: thread, Prompts: five})
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "invalid_arguments" || !strings.Contains(strings.Join(se.ResponseMetadata.Messages, " "), "at most 4") {
		t.Fatalf("setSuggestedPrompts with 5 prompts: got %#v, want invalid_arguments saying at most 4", err)
	}
	for _, tc := range []struct{ name, prompts, want string }{
		{"no prompts", "", "invalid_arguments"},
		{"empty list", "[]", "invalid_arguments"},
		{"prompt without a message", `[{"title":"x"}]`, "invalid_arguments"},
		{"not JSON", `[{`, "invalid_arguments"},
	} {
		if r := form(t, base, "assistant.threads.setSuggestedPrompts", vals("channel_id", "D1", "thread_ts", thread, "prompts", tc.prompts)); r.str("error") != tc.want {
			t.Errorf("setSuggestedPrompts with %s = %v, want %s", tc.name, r.body, tc.want)
		}
	}
	// Without thread_ts, the prompts go to the channel's latest message.
	if r := form(t, base, "assistant.threads.setSuggestedPrompts", vals("channel_id", "D2", "prompts", `[{"title":"a","message":"b"}]`)); r.str("error") != "missing_thread_ts" {
		t.Fatalf("setSuggestedPrompts without thread_ts in an empty channel = %v, want missing_thread_ts", r.body)
	}
	if err := api.SetAssistantThreadsSuggestedPromptsContext(ctx, slack.AssistantThreadsSetSuggestedPromptsParameters{
		ChannelID: "D1", Prompts: prompts[:1]}); err != nil {
		t.Fatalf("setSuggestedPrompts without thread_ts: got %v, want ok", err)
	}
	if err := api.SetAssistantThreadsTitleContext(ctx, slack.AssistantThreadsSetTitleParameters{
		ChannelID: "D1", ThreadTS: thread, Title: "Incident summary"}); err != nil {
		t.Fatalf("setTitle: got %v, want ok", err)
	}
	if r := form(t, base, "assistant.threads.setTitle", vals("channel_id", "D1", "thread_ts", thread)); r.str("error") != "invalid_arguments" {
		t.Fatalf("setTitle without a title = %v, want invalid_arguments", r.body)
	}

	th, ok := s.AssistantThread("D1", thread)
	wantPrompts := make([]Prompt, len(prompts))
	for i, p := range prompts {
		wantPrompts[i] = Prompt{Title: p.Title, Message: p.Message}
	}
	// The 1-prompt call without thread_ts went to the latest message, the user's question,
	// replacing the 4 prompts.
	if !ok || th.Title != "Incident summary" || th.PromptsTitle != "" || !cmp.Equal(th.Prompts, wantPrompts[:1]) {
		t.Fatalf("thread = %+v, want the title and the last call's 1 prompt", th)
	}
	if first := th.History[0]; first.PromptsTitle != "Try these" || !cmp.Equal(first.Prompts, wantPrompts) {
		t.Fatalf("first change = %+v, want the 4 prompts titled \"Try these\"", first)
	}
	var methods []string
	for _, c := range th.History {
		methods = append(methods, c.Method)
	}
	if got, want := strings.Join(methods, " "), "assistant.threads.setSuggestedPrompts assistant.threads.setSuggestedPrompts assistant.threads.setTitle"; got != want {
		t.Fatalf("history = %q, want %q", got, want)
	}
	if !strings.Contains(out.String(), `(thread `+thread+`) prompts "Try these": Summarise · Explain · Draft · Translate`) ||
		!strings.Contains(out.String(), "(thread "+thread+") title: Incident summary") {
		t.Fatalf("Out lacks the prompts or title line:\n%s", out.String())
	}
}

package fakebedrock_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
)

func start(t *testing.T, opts fakebedrock.Options) (*fakebedrock.Server, *bedrockruntime.Client) {
	t.Helper()
	srv := fakebedrock.New(opts)
	url, err := srv.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	client := bedrockruntime.NewFromConfig(awsclient.Local(), func(o *bedrockruntime.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = aws.NopRetryer{}
	})
	return srv, client
}

func text(role types.ConversationRole, texts ...string) types.Message {
	m := types.Message{Role: role}
	for _, s := range texts {
		m.Content = append(m.Content, &types.ContentBlockMemberText{Value: s})
	}
	return m
}

// read drains a ConverseStream answer into its text, its stop reason and the stream's error.
func read(out *bedrockruntime.ConverseStreamOutput) (string, string, error) {
	stream := out.GetStream()
	defer stream.Close()
	var b strings.Builder
	stop := ""
	for ev := range stream.Events() {
		switch e := ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			if t, ok := e.Value.Delta.(*types.ContentBlockDeltaMemberText); ok {
				b.WriteString(t.Value)
			}
		case *types.ConverseStreamOutputMemberMessageStop:
			stop = string(e.Value.StopReason)
		}
	}
	return b.String(), stop, stream.Err()
}

// The SDK client decodes the stand-in's answer: the same text for the same conversation, the
// stop reason, and the line printed per request.
func TestTheSDKReadsTheAnswer(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	srv, client := start(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 12}, Out: &out})
	in := &bedrockruntime.ConverseStreamInput{ModelId: aws.String("anthropic.claude-x"), Messages: []types.Message{text(types.ConversationRoleUser, "hi")}}
	for range 2 {
		resp, err := client.ConverseStream(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		got, stop, err := read(resp)
		want := srv.AnswerText([]fakebedrock.Message{{Role: "user", Texts: []string{"hi"}}}, 0)
		if err != nil || got != want || stop != "end_turn" || len(strings.Fields(got)) != 12 {
			t.Errorf("answer %q stop %q err %v, want %q end_turn", got, stop, err, want)
		}
	}
	if !strings.Contains(out.String(), "bedrock ▸ stream of 12 tokens after 1 message (model anthropic.claude-x)") {
		t.Errorf("printed %q", out.String())
	}
}

// What Bedrock refuses of a conversation, the stand-in refuses with ValidationException.
func TestConversationsBedrockRefuses(t *testing.T) {
	t.Parallel()
	_, client := start(t, fakebedrock.Options{})
	user, assistant := types.ConversationRoleUser, types.ConversationRoleAssistant
	tests := []struct {
		name string
		msgs []types.Message
		want string
	}{
		{"starts with the assistant", []types.Message{text(assistant, "hi"), text(user, "q")}, "must start with a user message"},
		{"two user messages", []types.Message{text(user, "a"), text(user, "b")}, "must alternate"},
		{"blank text", []types.Message{text(user, "a", " ")}, "messages.0.content.1 is blank"},
		{"prefill ending in a space", []types.Message{text(user, "a"), text(assistant, "The answer ")}, "trailing whitespace"},
	}
	for _, tt := range tests {
		_, err := client.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{ModelId: aws.String("m"), Messages: tt.msgs})
		var ve *types.ValidationException
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want a ValidationException saying %q", tt.name, err, tt.want)
		}
	}
}

// Another process drives the stand-in through the control API.
func TestControlAPI(t *testing.T) {
	t.Parallel()
	srv, client := start(t, fakebedrock.Options{})
	ctl := &fakebedrock.Client{BaseURL: srv.URL()}
	ctx := context.Background()
	if err := ctl.SetPace(ctx, fakebedrock.Pace{AnswerTokens: 3}); err != nil {
		t.Fatal(err)
	}
	if err := ctl.ThrottleNext(ctx, 1, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ctl.SetScript(ctx, "scripted words here and more"); err != nil {
		t.Fatal(err)
	}
	in := &bedrockruntime.ConverseStreamInput{ModelId: aws.String("m"), Messages: []types.Message{text(types.ConversationRoleUser, "q")}}
	_, err := client.ConverseStream(ctx, in)
	var te *types.ThrottlingException
	if !errors.As(err, &te) {
		t.Fatalf("first call: %v, want ThrottlingException", err)
	}
	resp, err := client.ConverseStream(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := read(resp); err != nil || got != "scripted words here" {
		t.Errorf("answer %q, %v; want the script cut to 3 words", got, err)
	}
	reqs, err := ctl.Requests(ctx)
	if err != nil || len(reqs) != 2 || reqs[0].Status != http.StatusTooManyRequests || reqs[0].Fault != fakebedrock.FaultThrottle || reqs[1].Status != http.StatusOK {
		t.Errorf("requests %+v, %v", reqs, err)
	}
	if err := ctl.Reset(ctx); err != nil || len(srv.Requests()) != 0 || srv.Pace() != (fakebedrock.Pace{}) {
		t.Errorf("after reset: %v, %d requests, pace %+v", err, len(srv.Requests()), srv.Pace())
	}
}

// An unsigned request is refused as Bedrock refuses it; a server starts once.
func TestUnsignedRequestsAreRefused(t *testing.T) {
	t.Parallel()
	srv := fakebedrock.New(fakebedrock.Options{})
	url, err := srv.Start("")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url+"model/m/converse-stream", "application/json", strings.NewReader(`{"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("X-Amzn-ErrorType"), "UnrecognizedClientException") {
		t.Errorf("unsigned: HTTP %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	if _, err := srv.Start(""); err == nil {
		t.Error("a second Start succeeded")
	}
	if err := srv.Close(); err != nil || srv.Close() != nil {
		t.Errorf("Close: %v", err)
	}
}

// Tool blocks are checked as Bedrock checks them; scripted turns answer by the rounds of tool
// results in the conversation and quote the last result; the control API sets them.
func TestToolBlocksAndTurns(t *testing.T) {
	t.Parallel()
	srv, client := start(t, fakebedrock.Options{})
	ctx := context.Background()
	user, assistant := types.ConversationRoleUser, types.ConversationRoleAssistant
	use := func(id string) types.Message {
		return types.Message{Role: assistant, Content: []types.ContentBlock{&types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
			ToolUseId: aws.String(id), Name: aws.String("lookup"), Input: document.NewLazyDocument(map[string]any{"q": "x"})}}}}
	}
	result := func(id, text string) types.Message {
		return types.Message{Role: user, Content: []types.ContentBlock{&types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{
			ToolUseId: aws.String(id), Status: types.ToolResultStatusError, Content: []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: text}}}}}}
	}
	tools := &types.ToolConfiguration{Tools: []types.Tool{&types.ToolMemberToolSpec{Value: types.ToolSpecification{
		Name: aws.String("lookup"), InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(map[string]any{"type": "object"})}}}}}
	conv := []types.Message{text(user, "q"), use("t1"), result("t1", "forty two")}
	bad := []struct {
		name  string
		msgs  []types.Message
		tools *types.ToolConfiguration
		want  string
	}{
		{"no toolConfig", conv, nil, "toolConfig field must be defined"},
		{"another id", []types.Message{text(user, "q"), use("t1"), result("t2", "r")}, tools, "does not match a toolUse"},
		{"no result", []types.Message{text(user, "q"), use("t1"), text(user, "and?")}, tools, "Expected toolResult blocks at messages.2.content for the following Ids: t1"},
	}
	for _, tt := range bad {
		_, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("m"), Messages: tt.msgs, ToolConfig: tt.tools})
		var ve *types.ValidationException
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want a ValidationException saying %q", tt.name, err, tt.want)
		}
	}

	ctl := &fakebedrock.Client{BaseURL: srv.URL()}
	if err := ctl.SetTurns(ctx, fakebedrock.Turn{Text: "first", Tools: []fakebedrock.ToolCall{{ID: "t1", Name: "lookup"}}},
		fakebedrock.Turn{Text: "It said " + fakebedrock.ToolResultPlaceholder}); err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct {
		msgs       []types.Message
		text, stop string
	}{{conv[:1], "first", "tool_use"}, {conv, "It said forty two", "end_turn"}} {
		out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String("m"), Messages: tt.msgs, ToolConfig: tools})
		if err != nil {
			t.Fatal(err)
		}
		if got, stop, err := read(out); got != tt.text || stop != tt.stop || err != nil {
			t.Errorf("turn %d: %q %s %v; want %q %s", i, got, stop, err, tt.text, tt.stop)
		}
	}
	reqs := srv.Requests()
	last := reqs[len(reqs)-1].Messages
	want := fakebedrock.ToolResultBlock{ToolUseID: "t1", Status: "error", Texts: []string{"forty two"}}
	if len(last) != 3 || len(last[1].ToolUses) != 1 || last[1].ToolUses[0].Name != "lookup" || string(last[1].ToolUses[0].Input) != `{"q":"x"}` ||
		len(last[2].ToolResults) != 1 || last[2].ToolResults[0].Text() != "forty two" || last[2].ToolResults[0].Status != want.Status {
		t.Errorf("recorded %+v", last)
	}
}

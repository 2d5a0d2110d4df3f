package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithydocument "github.com/aws/smithy-go/document"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// BedrockAgent is a Bedrock client as the model of an agent (agent.Model): each Turn is one
// ConverseStream call, with the agent's tools offered (toolConfig) and its conversation sent
// with the tool calls and results in Bedrock's blocks.
//
// The conversation: a user's message is a user message of text; the model's message is an
// assistant message of its text and a toolUse block per call (toolUseId, name, input as a
// document); the results of a turn's calls (role "tool") are a user message of toolResult
// blocks (toolUseId, the content as text, status "error" when the result is an error).
// Consecutive messages of one role are one message, blank text is left out, and a
// conversation that does not start (end) with the user's message gets one before (after) it,
// as Stream does; a message of role "system" joins the system prompt.
//
// Everything else is Stream's: the system prompt, MaxTokens and Temperature of the client
// (its Tools are not offered: the turn's are), the timeouts, the continuation of a Partial
// turn (Prefill or regenerated), the errors in their failure classes, the metrics.
type BedrockAgent struct {
	*Bedrock
	// Log, when set, gets Stream's line for each turn; it should carry the caller's ids.
	Log *slog.Logger
}

var _ agent.Model = BedrockAgent{}

// Agent returns b as an agent's model.
func (b *Bedrock) Agent() BedrockAgent { return BedrockAgent{Bedrock: b} }

// WithLog returns a whose turns log to log: one BedrockAgent serves every delivery, and each
// delivery's logger carries its ids.
func (a BedrockAgent) WithLog(log *slog.Logger) agent.Model {
	a.Log = log
	return a
}

// Turn answers req with one ConverseStream call, streaming the text after req.Partial to
// onText. The Turn's text includes Partial; its tool calls are the toolUse blocks of the
// answer; InputTokens are all the tokens the call read (cached ones included: inputTokens,
// cacheReadInputTokens and cacheWriteInputTokens), CachedTokens and CacheWriteTokens the
// cache's, OutputTokens those it wrote, ModelMillis the call's duration. An error is
// Stream's, classified as Stream classifies it.
func (a BedrockAgent) Turn(ctx context.Context, req agent.TurnRequest, onText func(text string) error) (agent.Turn, error) {
	msgs, system, err := converseAgentMessages(req.Messages)
	if err != nil {
		err = failure.AsPermanent(a.named(err))
		a.countError(err)
		return agent.Turn{}, err
	}
	tools := make([]Tool, len(req.Tools))
	for i, t := range req.Tools {
		tools[i] = Tool{Name: t.Name, Description: t.Description, Schema: t.Schema}
	}
	res, err := a.stream(ctx, Request{Partial: req.Partial, Log: a.Log}, &converseOverride{messages: msgs, system: system, tools: tools}, onText)
	if err != nil {
		return agent.Turn{}, err
	}
	turn := agent.Turn{Text: res.Text, InputTokens: res.Usage.PromptTokens + res.Usage.CacheReadTokens + res.Usage.CacheWriteTokens,
		OutputTokens: res.Usage.CompletionTokens, CachedTokens: res.Usage.CacheReadTokens, CacheWriteTokens: res.Usage.CacheWriteTokens,
		ModelMillis: res.Duration.Milliseconds()}
	for _, u := range res.ToolUses {
		turn.ToolCalls = append(turn.ToolCalls, agent.ToolCall{ID: u.ID, Name: u.Name, Input: u.Input})
	}
	return turn, nil
}

// converseAgentMessages turns an agent's conversation into a Converse conversation (see
// BedrockAgent), returning its system messages apart.
func converseAgentMessages(msgs []agent.Message) ([]types.Message, []string, error) {
	var out []types.Message
	var system []string
	add := func(role types.ConversationRole, blocks ...types.ContentBlock) {
		if len(blocks) == 0 {
			return
		}
		if n := len(out); n > 0 && out[n-1].Role == role {
			out[n-1].Content = append(out[n-1].Content, blocks...)
			return
		}
		out = append(out, types.Message{Role: role, Content: blocks})
	}
	text := func(s string) []types.ContentBlock {
		if strings.TrimSpace(s) == "" {
			return nil
		}
		return []types.ContentBlock{&types.ContentBlockMemberText{Value: s}}
	}
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem:
			system = append(system, m.Text)
		case RoleAssistant:
			blocks := text(m.Text)
			for _, c := range m.ToolCalls {
				input, err := toolInput(c.Input)
				if err != nil {
					return nil, nil, fmt.Errorf("message %d: the input of tool call %s (%s): %w", i, c.ID, c.Name, err)
				}
				blocks = append(blocks, &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
					ToolUseId: aws.String(c.ID), Name: aws.String(c.Name), Input: document.NewLazyDocument(input)}})
			}
			add(types.ConversationRoleAssistant, blocks...)
		case "tool":
			var blocks []types.ContentBlock
			for _, r := range m.ToolResults {
				content := r.Content
				if strings.TrimSpace(content) == "" {
					content = "(no output)"
				}
				b := types.ToolResultBlock{ToolUseId: aws.String(r.CallID),
					Content: []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: content}}}
				if r.IsError {
					b.Status = types.ToolResultStatusError
				}
				blocks = append(blocks, &types.ContentBlockMemberToolResult{Value: b})
			}
			add(types.ConversationRoleUser, blocks...)
		default:
			add(types.ConversationRoleUser, text(m.Text)...)
		}
	}
	if len(out) > 0 && out[0].Role != types.ConversationRoleUser {
		out = append([]types.Message{{Role: types.ConversationRoleUser, Content: text(bedrockThreadStart)}}, out...)
	}
	if len(out) == 0 || out[len(out)-1].Role != types.ConversationRoleUser {
		add(types.ConversationRoleUser, text(bedrockEmptyPrompt)...)
	}
	return out, system, nil
}

// toolInput is a tool call's JSON input as a document's value ({} when empty), its numbers
// kept as written.
func toolInput(raw json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v), nil
}

// numbers replaces the json.Numbers in v by document numbers, which the SDK writes as they
// are.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return smithydocument.Number(x)
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

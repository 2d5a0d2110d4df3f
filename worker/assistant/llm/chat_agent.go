package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/slackrelay/slackrelay/worker/agent"
)

// ChatAgent is a Chat as the model of an agent (agent.Model): each Turn is one streamed chat
// completion with the agent's tools offered as functions (`tools: [{type: "function",
// function: {name, description, parameters}}]`), the calls the model makes (`delta.tool_calls`,
// their arguments put together from their pieces) coming back as the turn's ToolCalls. The
// conversation is sent in the chat-completions shape: an assistant turn with its
// `tool_calls`, then one `{"role": "tool", "tool_call_id", "content"}` message per result (a
// failed one's content starting "error: "). A turn's Partial is continued as Stream continues
// Request.Partial (Chat.Prefill: prefilled or regenerated); the turn's usage is the server's
// (stream_options.include_usage; prompt_tokens_details.cached_tokens as CachedTokens), its
// ModelMillis the stream's duration. Errors are Stream's, classified the same (429 a rate
// limit, 5xx and a stream's timeouts and cuts transient, other 4xx permanent), and an error
// from onText comes back wrapped, matching it (errors.Is, errors.As).
type ChatAgent struct {
	Chat *Chat
	// System is the system prompt (empty: Chat.System).
	System string
	// MaxTokens caps each turn's length in tokens (0: the server's default).
	MaxTokens int
	// Log, when set, gets Stream's line per turn (usage, timings).
	Log *slog.Logger
}

var _ agent.Model = (*ChatAgent)(nil)

// Agent returns c as the model of an agent (agent.Run), with c's system prompt.
func (c *Chat) Agent() *ChatAgent { return &ChatAgent{Chat: c} }

// WithLog returns a copy of a whose turns log to log: one ChatAgent serves every delivery,
// and each delivery's logger carries its ids.
func (a *ChatAgent) WithLog(log *slog.Logger) agent.Model {
	c := *a
	c.Log = log
	return &c
}

// Turn streams one turn of the model (agent.Model).
func (a *ChatAgent) Turn(ctx context.Context, req agent.TurnRequest, onText func(text string) error) (agent.Turn, error) {
	extra := &wireExtra{messages: chatAgentMessages(req.Messages), tools: chatAgentTools(req.Tools)}
	plain := make([]Message, len(extra.messages)) // for the log's count
	for i, m := range extra.messages {
		plain[i] = Message{Role: m.Role, Content: m.Content}
	}
	res, err := a.Chat.stream(ctx, Request{System: a.System, Messages: plain, MaxTokens: a.MaxTokens, Partial: req.Partial, Log: a.Log}, extra, onText)
	if err != nil {
		return agent.Turn{}, err
	}
	// prompt_tokens counts the cached tokens in it.
	turn := agent.Turn{Text: res.Text, InputTokens: res.Usage.PromptTokens, OutputTokens: res.Usage.CompletionTokens,
		CachedTokens: res.Usage.CacheReadTokens, ModelMillis: res.Duration.Milliseconds()}
	for i, u := range res.ToolUses {
		id := u.ID
		if id == "" { // some local servers leave it out; the result must name the call
			id = fmt.Sprintf("call_%d", i)
		}
		turn.ToolCalls = append(turn.ToolCalls, agent.ToolCall{ID: id, Name: u.Name, Input: u.Input})
	}
	return turn, nil
}

// wireExtra is what an agent's turn sends instead of Request.Messages: its messages in the
// chat-completions shape, and the tools on offer.
type wireExtra struct {
	messages []wireMessage
	tools    []wireTool
}

// wireTool is a function offered to the model.
type wireTool struct {
	Type     string       `json:"type"` // "function"
	Function wireFunction `json:"function"`
}

type wireFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
}

// wireToolCall is a call in an assistant message.
type wireToolCall struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"` // "function"
	Function wireFunctionCall `json:"function"`
}

type wireFunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// toolCallDelta is a piece of a call in a streamed answer: the first piece of call Index has
// its id and name, the following ones more of its arguments.
type toolCallDelta struct {
	Index    *int             `json:"index"`
	ID       string           `json:"id"`
	Function wireFunctionCall `json:"function"`
}

// chatAgentMessages is the conversation in the chat-completions shape.
func chatAgentMessages(msgs []agent.Message) []wireMessage {
	out := make([]wireMessage, 0, len(msgs))
	for _, m := range msgs {
		switch {
		case m.Role == "tool" || len(m.ToolResults) > 0:
			for _, r := range m.ToolResults {
				content := r.Content
				if r.IsError {
					content = "error: " + content
				}
				out = append(out, wireMessage{Role: "tool", ToolCallID: r.CallID, Content: content})
			}
		case len(m.ToolCalls) > 0:
			wm := wireMessage{Role: RoleAssistant, Content: m.Text}
			for _, c := range m.ToolCalls {
				args := strings.TrimSpace(string(c.Input))
				if args == "" {
					args = "{}"
				}
				wm.ToolCalls = append(wm.ToolCalls, wireToolCall{ID: c.ID, Type: "function", Function: wireFunctionCall{Name: c.Name, Arguments: args}})
			}
			out = append(out, wm)
		default:
			out = append(out, wireMessage{Role: m.Role, Content: m.Text})
		}
	}
	return out
}

// chatAgentTools are the tools as functions. A schema's "$schema" and "$id" are left out
// (some servers refuse them in parameters); an empty one is an object without properties.
func chatAgentTools(specs []agent.ToolSpec) []wireTool {
	out := make([]wireTool, 0, len(specs))
	for _, s := range specs {
		params := s.Schema
		var fields map[string]json.RawMessage
		if json.Unmarshal(params, &fields) == nil && (fields["$schema"] != nil || fields["$id"] != nil) {
			delete(fields, "$schema")
			delete(fields, "$id")
			if raw, err := json.Marshal(fields); err == nil {
				params = raw
			}
		}
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out = append(out, wireTool{Type: "function", Function: wireFunction{Name: s.Name, Description: s.Description, Parameters: params}})
	}
	return out
}

// chatToolCalls puts together the calls of an answer from their pieces.
type chatToolCalls struct {
	calls map[int]*chatToolCall
	last  int
}

type chatToolCall struct {
	id, name string
	args     strings.Builder
}

// add takes pieces of calls. A piece without an index belongs to the call named by its id, or
// to the last call when it has none (servers that send each call whole leave it out).
func (t *chatToolCalls) add(pieces ...toolCallDelta) {
	if t.calls == nil {
		t.calls = map[int]*chatToolCall{}
	}
	for _, p := range pieces {
		i := t.last
		switch {
		case p.Index != nil:
			i = *p.Index
		case p.ID != "":
			i = len(t.calls)
			for k, c := range t.calls {
				if c.id == p.ID {
					i = k
				}
			}
		}
		c, ok := t.calls[i]
		if !ok {
			c = &chatToolCall{}
			t.calls[i] = c
		}
		t.last = i
		if p.ID != "" {
			c.id = p.ID
		}
		if p.Function.Name != "" {
			c.name = p.Function.Name
		}
		c.args.WriteString(p.Function.Arguments)
	}
}

// done returns the calls in the order of their indexes; arguments must be JSON (empty means
// {}).
func (t *chatToolCalls) done() ([]ToolUse, error) {
	if len(t.calls) == 0 {
		return nil, nil
	}
	idx := make([]int, 0, len(t.calls))
	for i := range t.calls {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]ToolUse, 0, len(idx))
	for _, i := range idx {
		c := t.calls[i]
		args := strings.TrimSpace(c.args.String())
		if args == "" {
			args = "{}"
		}
		if c.name == "" {
			return nil, fmt.Errorf("%w: tool call %d has no function name", ErrStreamFailed, i)
		}
		if !json.Valid([]byte(args)) {
			return nil, fmt.Errorf("%w: the arguments of tool %q (%d bytes) are not JSON", ErrStreamFailed, c.name, len(args))
		}
		out = append(out, ToolUse{ID: c.id, Name: c.name, Input: json.RawMessage(args)})
	}
	return out, nil
}

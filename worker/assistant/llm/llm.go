// Package llm is the slow external call the shipped handlers make: an OpenAI-compatible
// chat-completions client (Chat: one answer with Respond, or the answer as it is written with
// Stream), a client of Amazon Bedrock's ConverseStream API (Bedrock, the same two), or, when
// none is configured, a demo responder that waits a while and answers (or streams its answer
// in pieces), so the long-work path can be shown and tested without a network. History turns
// a thread's earlier messages into the messages of a request.
package llm

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"
)

// Responder answers a prompt.
type Responder interface {
	Respond(ctx context.Context, prompt string) (string, error)
}

// Streamer answers a conversation piece by piece: onDelta gets each piece of text as it
// arrives (never an empty one), in order; an error from onDelta stops the stream and is
// returned as it is. The Result holds the whole answer; on an error it holds what had
// arrived before it (Text, FirstToken). A Request with a Partial answer is continued:
// onDelta gets only the text after Partial, never any of Partial, and Result.Text is
// Partial followed by it.
type Streamer interface {
	Stream(ctx context.Context, req Request, onDelta func(text string) error) (Result, error)
}

var (
	_ Responder = (*Chat)(nil)
	_ Streamer  = (*Chat)(nil)
	_ Responder = (*Bedrock)(nil)
	_ Streamer  = (*Bedrock)(nil)
	_ Responder = Demo{}
	_ Streamer  = Demo{}
)

// Message roles.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one message of a conversation.
type Message struct {
	// Role is RoleUser, RoleAssistant or RoleSystem.
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is one conversation to answer.
type Request struct {
	// System is the system prompt; empty uses the client's (Chat.System).
	System string
	// Messages are the conversation, oldest first; the last is the prompt to answer (see
	// History, which builds them from a thread).
	Messages []Message
	// MaxTokens caps the answer's length in tokens (0: the server's default). Resuming, it
	// caps what the server writes: the whole answer when it regenerates, the continuation
	// when it is prefilled.
	MaxTokens int
	// Partial is the beginning of the answer already shown (by an attempt that was cut: a
	// crash, the end of an invocation), to be continued rather than repeated: onDelta gets
	// only the text after it, and Result.Text is Partial followed by that text. Chat.Prefill
	// chooses how the server is asked. Empty: a new answer. Partial should end at a
	// character boundary, as text shown in Slack does; one cut inside a multi-byte
	// character is completed by the first piece, which then begins with the rest of that
	// character (valid UTF-8 only after Partial).
	Partial string
	// Log, when set, gets one line per answer with its token usage and timings; it should
	// carry the caller's ids.
	Log *slog.Logger
}

// Usage is the token count the server reported for one answer (zero when it sent none). It is
// plain data, ready to be kept with the answer's record.
type Usage struct {
	// PromptTokens are the tokens read (chat completions: prompt_tokens, the cached ones
	// included; Bedrock: inputTokens, which leaves out the cached ones below);
	// CompletionTokens the tokens written (outputTokens); TotalTokens their sum as the server
	// counts it (Bedrock: the cached tokens included).
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	// CacheReadTokens and CacheWriteTokens are the prompt tokens read from and written to the
	// server's prompt cache, where it reports them (chat completions:
	// prompt_tokens_details.cached_tokens, read only; Bedrock: cacheReadInputTokens and
	// cacheWriteInputTokens); zero otherwise.
	CacheReadTokens  int `json:"cache_read_tokens,omitempty"`
	CacheWriteTokens int `json:"cache_write_tokens,omitempty"`
}

// ToolUse is a tool the model asked to call in its answer (Bedrock: a toolUse content block,
// its input streamed in pieces and put together). Nothing calls tools yet; a caller that
// offers tools (Bedrock.Tools) finds the model's requests here.
type ToolUse struct {
	// ID is the model's id of this call (toolUseId), to be echoed with the result.
	ID string `json:"id"`
	// Name is the tool's name, as offered.
	Name string `json:"name"`
	// Input is the tool's input, a JSON value (an empty input is {}).
	Input json.RawMessage `json:"input"`
}

// Tool is a tool offered to the model (Bedrock: toolConfig.tools[].toolSpec).
type Tool struct {
	Name        string
	Description string
	// Schema is the JSON Schema of the tool's input (a JSON object).
	Schema json.RawMessage
}

// Result is one answer.
type Result struct {
	// Text is the whole answer, Request.Partial included (on an error, Partial and the part
	// that had arrived).
	Text string
	// FinishReason is why the answer ended, as the server said: for Chat "stop", "length"
	// (MaxTokens reached), "content_filter", …; for Bedrock its stopReason: "end_turn",
	// "max_tokens", "tool_use", "stop_sequence", "guardrail_intervened", "content_filtered", ….
	FinishReason string
	// Model is the model the server says answered.
	Model string
	// Usage is the server's token count; zero when it sent none.
	Usage Usage
	// ToolUses are the tools the model asked to call, in the order of the answer (Bedrock; a
	// FinishReason of "tool_use" says the model waits for their results).
	ToolUses []ToolUse
	// FirstToken is the time from sending the request to the first text (0 before it): the
	// first the server sent, also when it was a regenerated repeat of Request.Partial and
	// dropped.
	FirstToken time.Duration
	// Duration is the time from sending the request to the end of the answer.
	Duration time.Duration
}

// Package llm is the slow external call the shipped handlers make: an OpenAI-compatible
// chat-completions client (Chat: one answer with Respond, or the answer as it is written with
// Stream), or, when none is configured, a demo responder that waits a while and answers (or
// streams its answer in pieces), so the long-work path can be shown and tested without a
// network. History turns a thread's earlier messages into the messages of a request.
package llm

import (
	"context"
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

// Usage is the token count the server reported for one answer (zero when it sent none).
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Result is one answer.
type Result struct {
	// Text is the whole answer, Request.Partial included (on an error, Partial and the part
	// that had arrived).
	Text string
	// FinishReason is why the answer ended: "stop", "length" (MaxTokens reached),
	// "content_filter", … as the server said.
	FinishReason string
	// Model is the model the server says answered.
	Model string
	// Usage is the server's token count; zero when it sent none.
	Usage Usage
	// FirstToken is the time from sending the request to the first text (0 before it): the
	// first the server sent, also when it was a regenerated repeat of Request.Partial and
	// dropped.
	FirstToken time.Duration
	// Duration is the time from sending the request to the end of the answer.
	Duration time.Duration
}

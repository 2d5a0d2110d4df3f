package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/smithy-go"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// SlackSystemPrompt tells the model where its answers appear. The worker's Chat sends it
// when a request brings no system prompt, and the shipped bot builds its own on it, so a
// regenerated or /ask answer is asked for the same way as a streamed one.
const SlackSystemPrompt = "You are a helpful assistant answering in Slack. Be concise; use Slack-flavoured Markdown."

// Defaults for Chat's zero values.
const (
	// DefaultFirstTokenTimeout bounds the wait for the first text of a streamed answer.
	DefaultFirstTokenTimeout = 30 * time.Second
	// DefaultIdleTimeout bounds the gap between two chunks of a streamed answer.
	DefaultIdleTimeout = 20 * time.Second
	// defaultRespondTimeout bounds Respond when Chat.HTTP is nil.
	defaultRespondTimeout = 60 * time.Second
	// maxAnswerBytes bounds a non-streamed answer and an error body read.
	maxAnswerBytes = 4 << 20
)

// Chat calls POST {BaseURL}/chat/completions of an OpenAI-compatible API.
type Chat struct {
	BaseURL string
	Model   string
	// APIKey returns the key (read from SSM and cached by the caller). The key is sent
	// only in the Authorization header, never in an error or a log line.
	APIKey func(ctx context.Context) (string, error)
	// HTTP is the client to use. Nil: for Respond, one with a 60 s timeout; for Stream,
	// one without an overall timeout (the stream's own timeouts and ctx bound it). A client
	// with a Timeout cuts streams longer than it.
	HTTP *http.Client
	// System is the system prompt when a Request brings none.
	System string
	// FirstTokenTimeout bounds the time from sending a streamed request to the first text;
	// IdleTimeout the gap between two chunks after it (zero: the defaults above). The
	// invocation's deadline comes from ctx.
	FirstTokenTimeout time.Duration
	IdleTimeout       time.Duration
	// Prefill chooses how Stream continues a Request's Partial. False (regenerate, the
	// default): the conversation is asked again without Partial and the first characters of
	// the new answer, as many as Partial has, are dropped; it works with any server, is exact
	// only when the model answers the same conversation the same way twice (temperature 0, a
	// deterministic server), and costs the time and tokens of Partial again. True (prefill):
	// Partial is sent as a final assistant message for the server to continue (see
	// PrefillStyle); only the continuation is written, so it is quick and exact, but only with
	// servers that continue a final assistant message: others answer anew after it, which
	// would repeat the answer.
	Prefill bool
	// PrefillStyle is how a prefill asks the server to continue the final message
	// (PrefillContinue when empty).
	PrefillStyle PrefillStyle
	// Metrics, when set, gets LLMTokens (by Model, Kind=prompt|completion), LLMDuration,
	// LLMTimeToFirstToken (streams) and LLMErrors (by Model, Reason).
	Metrics *metrics.Emitter
}

// wireRequest is the chat-completions request body.
type wireRequest struct {
	Model         string         `json:"model"`
	Messages      []wireMessage  `json:"messages"`
	MaxTokens     int            `json:"max_tokens,omitempty"`
	Stream        bool           `json:"stream,omitempty"`
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
	// ContinueFinalMessage and AddGenerationPrompt ask vLLM (PrefillContinue) to continue
	// the final message rather than start a new one after it.
	ContinueFinalMessage bool  `json:"continue_final_message,omitempty"`
	AddGenerationPrompt  *bool `json:"add_generation_prompt,omitempty"`
	// Tools are the functions offered to the model (ChatAgent).
	Tools []wireTool `json:"tools,omitempty"`
}

// wireMessage is a Message as sent.
type wireMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Prefix marks the final assistant message as one to continue (PrefillPrefix).
	Prefix bool `json:"prefix,omitempty"`
	// ToolCalls are the calls an assistant message made; ToolCallID is the call a "tool"
	// message answers (ChatAgent).
	ToolCalls  []wireToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// apiError is the body of an error answer, or an error sent in a stream. Only Type and
// Code are ever reported: Message may quote the request, or part of the key (401s do).
type apiError struct {
	Type string          `json:"type"`
	Code json.RawMessage `json:"code"`
}

// completion is a non-streamed answer.
type completion struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Message
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *wireUsage `json:"usage"`
}

// wireUsage is the usage object of an answer: OpenAI counts the prompt tokens read from its
// prompt cache in prompt_tokens_details.cached_tokens (part of prompt_tokens).
type wireUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func (w *wireUsage) usage() Usage {
	u := Usage{PromptTokens: w.PromptTokens, CompletionTokens: w.CompletionTokens, TotalTokens: w.TotalTokens}
	if w.PromptTokensDetails != nil {
		u.CacheReadTokens = w.PromptTokensDetails.CachedTokens
	}
	return u
}

// Respond sends one chat completion for prompt (a one-message conversation) and returns the
// answer. 429 becomes failure.RateLimitError; other statuses failure.HTTPStatusError (5xx
// transient, 4xx permanent). The key never appears in errors.
func (c *Chat) Respond(ctx context.Context, prompt string) (string, error) {
	req := Request{Messages: []Message{{Role: RoleUser, Content: prompt}}}
	start := time.Now()
	resp, err := c.post(ctx, req, nil, "", false)
	if err != nil {
		c.countError(err)
		return "", err
	}
	defer resp.Body.Close()
	res, usageReported, err := readCompletion(resp, start)
	if err != nil {
		c.countError(err)
		return "", err
	}
	c.record(req, res, usageReported, nil)
	return res.Text, nil
}

// readCompletion reads a non-streamed answer.
func readCompletion(resp *http.Response, start time.Time) (Result, bool, error) {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return Result{}, false, fmt.Errorf("llm read answer: %w", err)
	}
	var out completion
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Choices) == 0 {
		return Result{}, false, fmt.Errorf("llm answer has no choices (HTTP %d, %d bytes)", resp.StatusCode, len(raw))
	}
	res := Result{Text: out.Choices[0].Message.Content, FinishReason: out.Choices[0].FinishReason, Model: out.Model, Duration: time.Since(start)}
	if out.Usage != nil {
		res.Usage = out.Usage.usage()
	}
	if calls := out.Choices[0].Message.ToolCalls; len(calls) > 0 {
		var acc chatToolCalls
		for i, tc := range calls {
			acc.add(toolCallDelta{Index: &i, ID: tc.ID, Function: tc.Function})
		}
		uses, err := acc.done()
		if err != nil {
			return res, out.Usage != nil, err
		}
		res.ToolUses = uses
	}
	return res, out.Usage != nil, nil
}

// post sends req (with extra's messages and tools instead of req.Messages when extra is not
// nil), with prefill as a final assistant message to continue when it is not empty, and
// returns the response of a 2xx answer; any other answer is read (a little), closed and
// returned as a classified error.
func (c *Chat) post(ctx context.Context, req Request, extra *wireExtra, prefill string, stream bool) (*http.Response, error) {
	body, err := c.body(req, extra, prefill, stream)
	if err != nil {
		return nil, failure.AsPermanent(err)
	}
	key, err := c.APIKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("llm api key: %w", err)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, failure.AsPermanent(fmt.Errorf("llm request: %w", err))
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/chat/completions", bytes.NewReader(raw))
	if err != nil {
		return nil, failure.AsPermanent(fmt.Errorf("llm request: %w", err))
	}
	hreq.Header.Set("Content-Type", "application/json")
	if stream {
		hreq.Header.Set("Accept", "text/event-stream")
	}
	hreq.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.client(stream).Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("llm call: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, statusError(resp)
}

// body is the request body: the system prompt, req.Messages (extra's messages when extra is
// not nil, and its tools), then prefill as a final assistant message marked as PrefillStyle
// says, when it is not empty.
func (c *Chat) body(req Request, extra *wireExtra, prefill string, stream bool) (wireRequest, error) {
	system := req.System
	if system == "" {
		system = c.System
	}
	msgs := make([]wireMessage, 0, len(req.Messages)+2)
	if system != "" {
		msgs = append(msgs, wireMessage{Role: RoleSystem, Content: system})
	}
	if extra != nil {
		msgs = append(msgs, extra.messages...)
	} else {
		for _, m := range req.Messages {
			msgs = append(msgs, wireMessage{Role: m.Role, Content: m.Content})
		}
	}
	body := wireRequest{Model: c.Model, MaxTokens: req.MaxTokens, Stream: stream}
	if extra != nil {
		body.Tools = extra.tools
	}
	if stream {
		body.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if prefill != "" {
		style, err := ParsePrefillStyle(string(c.PrefillStyle))
		if err != nil {
			return body, fmt.Errorf("llm request: %w", err)
		}
		last := wireMessage{Role: RoleAssistant, Content: prefill}
		switch style {
		case PrefillContinue:
			noGenerationPrompt := false
			body.ContinueFinalMessage, body.AddGenerationPrompt = true, &noGenerationPrompt
		case PrefillPrefix:
			last.Prefix = true
		}
		msgs = append(msgs, last)
	}
	body.Messages = msgs
	return body, nil
}

// noTimeout streams: a stream may last as long as ctx allows.
var noTimeout = &http.Client{}

func (c *Chat) client(stream bool) *http.Client {
	switch {
	case c.HTTP != nil:
		return c.HTTP
	case stream:
		return noTimeout
	}
	return &http.Client{Timeout: defaultRespondTimeout}
}

// statusError classifies a non-2xx answer: 429 waits its Retry-After (seconds or an HTTP
// date; 30 s when absent), others become failure.HTTPStatusError, with the API's error code
// when the body names one (context_length_exceeded, invalid_api_key, …).
func statusError(resp *http.Response) error {
	if resp.StatusCode == http.StatusTooManyRequests {
		return &failure.RateLimitError{Service: "llm", RetryAfter: failure.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	err := error(&failure.HTTPStatusError{Service: "llm", Status: resp.StatusCode})
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error *apiError `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != nil {
		if code := body.Error.code(); code != "" {
			err = fmt.Errorf("%w (code %s)", err, code)
		}
	}
	return err
}

// code is the error's code (or type) when it is a plain identifier, else "".
func (e *apiError) code() string {
	var code string
	if json.Unmarshal(e.Code, &code) != nil || code == "" {
		code = e.Type
	}
	if len(code) > 64 {
		return ""
	}
	for _, r := range code {
		if !(r == '_' || r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return ""
		}
	}
	return code
}

// record logs an answer's usage and timings and emits its metrics; rs is the resumer of a
// streamed answer (nil for Respond).
func (c *Chat) record(req Request, res Result, usageReported bool, rs *resumer) {
	emitAnswerMetrics(c.Metrics, c.Model, res, usageReported)
	if req.Log == nil {
		return
	}
	attrs := []any{"model", c.Model, "answered_by", res.Model, "finish_reason", res.FinishReason,
		"usage_reported", usageReported, "prompt_tokens", res.Usage.PromptTokens,
		"completion_tokens", res.Usage.CompletionTokens, "total_tokens", res.Usage.TotalTokens,
		"cache_read_tokens", res.Usage.CacheReadTokens,
		"first_token_ms", res.FirstToken.Milliseconds(), "duration_ms", res.Duration.Milliseconds(),
		"chars", utf8.RuneCountInString(res.Text), "messages", len(req.Messages)}
	if req.Partial != "" && rs != nil {
		attrs = append(attrs, "resume", c.strategy(), "partial_chars", rs.partial, "dropped_chars", rs.dropped,
			"first_delta_ms", rs.firstDelta.Milliseconds())
	}
	req.Log.Info("llm answer", attrs...)
}

// strategy names how Partial is continued, for the log.
func (c *Chat) strategy() string {
	if c.Prefill {
		return "prefill"
	}
	return "regenerate"
}

// countError emits LLMErrors by the reason err names.
func (c *Chat) countError(err error) {
	c.Metrics.Count("LLMErrors", 1, metrics.Dim{Name: "Model", Value: c.Model}, metrics.Dim{Name: "Reason", Value: errorReason(err)})
}

// errorReason is a short, bounded name for err, for the LLMErrors metric.
func errorReason(err error) string {
	var rl *failure.RateLimitError
	var hs *failure.HTTPStatusError
	var se *StreamError
	var ue *url.Error
	var apiErr smithy.APIError
	switch {
	case errors.As(err, &rl):
		return "rate_limited"
	case errors.As(err, &hs):
		return "http_" + strconv.Itoa(hs.Status)
	case errors.As(err, &se):
		return se.reason()
	case errors.As(err, &apiErr):
		return apiErr.ErrorCode() // Bedrock's exception: ThrottlingException, AccessDeniedException, …
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ue):
		return "network"
	}
	return "other"
}

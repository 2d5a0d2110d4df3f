package fakellm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// maxRequestBytes bounds a request body.
const maxRequestBytes = 8 << 20

// wireRequest is what the server reads of a chat-completions request.
type wireRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
		// Prefix marks the last message, the assistant's, as one to continue (DeepSeek,
		// Mistral).
		Prefix     bool           `json:"prefix"`
		ToolCalls  []wireToolCall `json:"tool_calls"`
		ToolCallID string         `json:"tool_call_id"`
	} `json:"messages"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           int `json:"max_tokens"`
	MaxCompletionTokens int `json:"max_completion_tokens"`
	// ContinueFinalMessage and AddGenerationPrompt are vLLM's (and transformers') chat
	// template switches; nil when not sent.
	ContinueFinalMessage *bool `json:"continue_final_message"`
	AddGenerationPrompt  *bool `json:"add_generation_prompt"`
}

// usage is the token count of an answer; prompt_tokens_details (the prompt tokens read from
// the cache, part of prompt_tokens) is sent when the server reports cached tokens.
type usage struct {
	PromptTokens        int           `json:"prompt_tokens"`
	CompletionTokens    int           `json:"completion_tokens"`
	TotalTokens         int           `json:"total_tokens"`
	PromptTokensDetails *promptDetail `json:"prompt_tokens_details,omitempty"`
}

type promptDetail struct {
	CachedTokens int `json:"cached_tokens"`
}

// streamChunk is one chunk of a streamed answer.
type streamChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage"`
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role      string         `json:"role,omitempty"`
	Content   string         `json:"content,omitempty"`
	ToolCalls []wireToolCall `json:"tool_calls,omitempty"`
}

// wireToolCall is a tool call as chat completions send it: whole in a message, in pieces in
// a stream (Index set, the first piece with the id, type and name, the next ones with more
// of the arguments).
type wireToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// argumentPiece is the most bytes of a call's arguments one chunk carries.
const argumentPiece = 6

// toolChunks are the deltas streaming calls: for each, its id and name, then its arguments
// in pieces of at most argumentPiece bytes (whole characters).
func toolChunks(calls []ToolCall) []delta {
	var out []delta
	for i, c := range calls {
		first := wireToolCall{Index: &i, ID: c.ID, Type: "function"}
		first.Function.Name = c.Name
		out = append(out, delta{ToolCalls: []wireToolCall{first}})
		for rest := c.Arguments; rest != ""; {
			n := min(argumentPiece, len(rest))
			for n < len(rest) && !utf8.RuneStart(rest[n]) {
				n++
			}
			piece := wireToolCall{Index: &i}
			piece.Function.Arguments = rest[:n]
			out = append(out, delta{ToolCalls: []wireToolCall{piece}})
			rest = rest[n:]
		}
	}
	return out
}

// answer is one planned answer.
type answer struct {
	id, model    string
	created      int64
	tokens       []string
	calls        []ToolCall
	finish       string
	usage        usage
	includeUsage bool
	pace         Pace
	fault        *fault
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeAPIError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "use POST")
		return
	}
	if !s.authorized(r) {
		s.record(Request{Status: http.StatusUnauthorized})
		writeAPIError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "missing or incorrect API key")
		return
	}
	req, msgs, err := decodeRequest(w, r)
	var via string
	if err == nil {
		via, err = continuationOf(req, msgs)
	}
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", err.Error())
		return
	}
	a := s.plan(req, msgs, via)
	switch {
	case a.fault != nil && a.fault.kind == FaultRateLimit:
		w.Header().Set("Retry-After", strconv.FormatInt(loopback.RetryAfterSeconds(a.fault.retryAfter), 10))
		writeAPIError(w, http.StatusTooManyRequests, "requests", "rate_limit_exceeded", "rate limit reached (injected)")
	case a.fault != nil && a.fault.kind == FaultHTTP:
		writeAPIError(w, a.fault.status, "server_error", "injected_failure", fmt.Sprintf("injected HTTP %d", a.fault.status))
	case req.Stream && !s.opts.NoStreaming:
		s.stream(w, r.Context(), a)
	default:
		s.complete(w, r.Context(), a)
	}
}

// decodeRequest reads and checks the body: a model, at least one message, known roles,
// content as a string or text parts.
func decodeRequest(w http.ResponseWriter, r *http.Request) (wireRequest, []Message, error) {
	var req wireRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req); err != nil {
		return req, nil, fmt.Errorf("body is not a chat-completions request: %w", err)
	}
	if req.Model == "" {
		return req, nil, errors.New("model is required")
	}
	if len(req.Messages) == 0 {
		return req, nil, errors.New("messages must not be empty")
	}
	for i, t := range req.Tools {
		if t.Type != "function" || t.Function.Name == "" {
			return req, nil, fmt.Errorf("tools[%d]: want {type: function, function: {name, ...}}", i)
		}
	}
	msgs := make([]Message, len(req.Messages))
	pending := map[string]bool{} // calls of the last assistant message not yet answered
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			return req, nil, fmt.Errorf("messages[%d].role %q is not system, developer, user, assistant or tool", i, m.Role)
		}
		text, err := content(m.Content)
		if err != nil {
			return req, nil, fmt.Errorf("messages[%d].content: %w", i, err)
		}
		msgs[i] = Message{Role: m.Role, Content: text}
		if m.Role == "tool" {
			if !pending[m.ToolCallID] {
				return req, nil, fmt.Errorf("messages[%d]: a tool message must answer a tool_call_id of the assistant message before it (got %q)", i, m.ToolCallID)
			}
			delete(pending, m.ToolCallID)
			msgs[i].ToolCallID = m.ToolCallID
			continue
		}
		if len(pending) > 0 {
			return req, nil, fmt.Errorf("messages[%d]: the tool calls before it were not all answered by tool messages", i)
		}
		if len(m.ToolCalls) > 0 && m.Role != "assistant" {
			return req, nil, fmt.Errorf("messages[%d]: only an assistant message has tool_calls", i)
		}
		for j, c := range m.ToolCalls {
			if c.ID == "" || c.Type != "function" || c.Function.Name == "" || !json.Valid([]byte(c.Function.Arguments)) {
				return req, nil, fmt.Errorf("messages[%d].tool_calls[%d]: want {id, type: function, function: {name, arguments: JSON text}}", i, j)
			}
			pending[c.ID] = true
			msgs[i].ToolCalls = append(msgs[i].ToolCalls, ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: c.Function.Arguments})
		}
	}
	if len(pending) > 0 {
		return req, nil, errors.New("the last tool calls were not all answered by tool messages")
	}
	return req, msgs, nil
}

// content reads a message's content: a string, null, or an array of {"type":"text","text"}.
func content(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("want a string or an array of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("part type %q is not supported (only text)", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// continuationOf says whether a request asks to continue its last message, the
// assistant's, and how (a Via* value; "" for a new answer). It does when the request sends
// `continue_final_message: true` (with `add_generation_prompt: false`: vLLM refuses the two
// together, and add_generation_prompt defaults to true), when the message has `"prefix":
// true`, or when the message is simply last, as llama.cpp's server takes it, unless the
// request asks for a new turn with `continue_final_message: false` or
// `add_generation_prompt: true`.
func continuationOf(req wireRequest, msgs []Message) (string, error) {
	last := len(msgs) - 1
	for i, m := range req.Messages {
		if m.Prefix && (i != last || m.Role != "assistant") {
			return "", fmt.Errorf("messages[%d].prefix: only the last message, the assistant's, can be continued", i)
		}
	}
	switch {
	case req.ContinueFinalMessage != nil && *req.ContinueFinalMessage:
		if req.AddGenerationPrompt == nil || *req.AddGenerationPrompt {
			return "", errors.New("cannot set both continue_final_message and add_generation_prompt to true (add_generation_prompt defaults to true)")
		}
		if msgs[last].Role != "assistant" {
			return "", errors.New("continue_final_message needs the last message to be the assistant's")
		}
		return ViaContinueFinalMessage, nil
	case msgs[last].Role != "assistant":
		return "", nil
	case req.Messages[last].Prefix:
		return ViaPrefix, nil
	case req.ContinueFinalMessage != nil || req.AddGenerationPrompt != nil && *req.AddGenerationPrompt:
		return "", nil // a new assistant turn after this one
	}
	return ViaTrailing, nil
}

// plan records the request, takes its fault and decides its answer.
func (s *Server) plan(req wireRequest, msgs []Message, via string) *answer {
	s.mu.Lock()
	s.seq++
	a := &answer{id: "chatcmpl-local-" + strconv.Itoa(s.seq), model: req.Model, created: s.opts.Now().Unix(),
		pace: s.pace, fault: s.faults.Next(), finish: "stop"}
	script, cached := s.script, s.cached
	s.mu.Unlock()

	var cont *Continuation
	a.tokens, a.calls, cont = s.reply(msgs, via, a.pace.AnswerTokens, script)
	limit := req.MaxTokens
	if req.MaxCompletionTokens > 0 {
		limit = req.MaxCompletionTokens
	}
	if limit > 0 && limit < len(a.tokens) {
		a.tokens, a.finish, a.calls = a.tokens[:limit], "length", nil
	}
	if len(a.calls) > 0 {
		a.finish = "tool_calls"
	}
	a.usage.PromptTokens = promptTokens(msgs)
	if cached > 0 { // a cache hit covers at most the prompt
		a.usage.PromptTokensDetails = &promptDetail{CachedTokens: min(cached, a.usage.PromptTokens)}
	}
	a.usage.CompletionTokens = len(a.tokens) + len(toolChunks(a.calls))
	a.usage.TotalTokens = a.usage.PromptTokens + a.usage.CompletionTokens
	a.includeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage

	var tools []ToolSpec
	for _, t := range req.Tools {
		tools = append(tools, ToolSpec{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	rec := Request{Model: req.Model, Messages: msgs, Tools: tools, Stream: req.Stream, IncludeUsage: a.includeUsage, MaxTokens: limit, Status: http.StatusOK, Continued: cont}
	what := fmt.Sprintf("answer of %d tokens", len(a.tokens))
	if req.Stream && !s.opts.NoStreaming {
		what = fmt.Sprintf("stream of %d tokens", len(a.tokens))
	}
	if len(a.calls) > 0 {
		what += fmt.Sprintf(" and %d tool calls", len(a.calls))
	}
	if cont != nil {
		what += fmt.Sprintf(" continuing %d characters (%s)", cont.Chars, cont.Via)
		if cont.NotAPrefix {
			what += ", which are not a beginning of the answer"
		}
	}
	if f := a.fault; f != nil {
		rec.Fault = f.kind
		switch f.kind {
		case FaultRateLimit:
			rec.Status, what = http.StatusTooManyRequests, "429 rate limited (injected)"
		case FaultHTTP:
			rec.Status, what = f.status, fmt.Sprintf("HTTP %d (injected)", f.status)
		default:
			what += fmt.Sprintf(", %s after %d tokens (injected)", f.kind, f.afterTokens)
		}
	}
	s.record(rec)
	s.printf("%s after %d messages (model %s)", what, len(msgs), req.Model)
	return a
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.At = s.opts.Now()
	s.requests = append(s.requests, r)
}

// stream writes the answer as Server-Sent Events at its pace, applying its fault.
func (s *Server) stream(w http.ResponseWriter, ctx context.Context, a *answer) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	chunk := streamChunk{ID: a.id, Object: "chat.completion.chunk", Created: a.created, Model: a.model, Choices: []chunkChoice{{}}}
	send := func() {
		b, _ := json.Marshal(chunk)
		_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
	}
	start, pace := time.Now(), fakemodel.NewPacer(ctx)
	for i := 0; i <= len(a.tokens); i++ {
		if f := a.fault; f != nil && f.afterTokens == i {
			switch f.kind {
			case FaultDisconnect:
				_ = rc.Flush()
				panic(http.ErrAbortHandler) // closes the connection without ending the response
			case FaultTruncate:
				return
			case FaultStall:
				_ = rc.Flush()
				if pace.Wait(f.pause) != nil {
					return
				}
				start = start.Add(f.pause)
			}
		}
		if i == len(a.tokens) {
			break
		}
		if pace.Wait(time.Until(start.Add(a.pace.Due(i)))) != nil {
			return
		}
		chunk.Choices[0].Delta = delta{Content: a.tokens[i]}
		if i == 0 {
			chunk.Choices[0].Delta.Role = "assistant"
		}
		send()
		if i+1 == len(a.tokens) || a.pace.Due(i+1) > time.Since(start) {
			_ = rc.Flush() // flush unless the next token is already due
		}
	}
	for _, d := range toolChunks(a.calls) {
		chunk.Choices[0].Delta = d
		send()
	}
	chunk.Choices[0] = chunkChoice{FinishReason: &a.finish}
	send()
	if a.includeUsage {
		chunk.Choices, chunk.Usage = []chunkChoice{}, &a.usage
		send()
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

// complete writes a non-streamed answer once all its tokens are due, applying its fault.
func (s *Server) complete(w http.ResponseWriter, ctx context.Context, a *answer) {
	pause := a.pace.Due(max(len(a.tokens)-1, 0))
	if f := a.fault; f != nil && f.kind == FaultStall {
		pause += f.pause
	}
	if fakemodel.NewPacer(ctx).Wait(pause) != nil {
		return
	}
	if f := a.fault; f != nil && f.kind == FaultDisconnect {
		panic(http.ErrAbortHandler)
	}
	msg := map[string]any{"role": "assistant", "content": strings.Join(a.tokens, "")}
	if len(a.calls) > 0 {
		calls := make([]wireToolCall, len(a.calls))
		for i, c := range a.calls {
			calls[i] = wireToolCall{ID: c.ID, Type: "function"}
			calls[i].Function.Name, calls[i].Function.Arguments = c.Name, c.Arguments
		}
		msg["tool_calls"] = calls
	}
	body, _ := json.Marshal(map[string]any{
		"id": a.id, "object": "chat.completion", "created": a.created, "model": a.model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": a.finish}},
		"usage":   a.usage,
	})
	w.Header().Set("Content-Type", "application/json")
	if f := a.fault; f != nil && f.kind == FaultTruncate {
		body = body[:len(body)/2]
	}
	_, _ = w.Write(body)
}

// writeAPIError writes an OpenAI-style error body.
func writeAPIError(w http.ResponseWriter, status int, typ, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": message, "type": typ, "code": code, "param": nil}})
}

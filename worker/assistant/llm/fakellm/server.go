// Package localllm is a local stand-in for an OpenAI-compatible chat-completions API, for
// tests, `make demo`, `make dev` and `make bench`.
//
// It answers POST /v1/chat/completions (and /chat/completions), streamed (`stream: true`,
// Server-Sent Events ending in `data: [DONE]`, usage in a last chunk when
// `stream_options.include_usage` is set) and not. Answers are deterministic text derived
// from the prompt, of a configurable length, sent at a configurable pace (time to first
// token, tokens per second; a token is a word): the same conversation gets the same answer
// on every request, so a client can ask again and find the text it was given before. A
// request whose last message is the assistant's continues the answer from where that
// message ends (a prefill, as vLLM's `continue_final_message`, DeepSeek's `prefix` and
// llama.cpp's server offer). Options.Reply scripts answers that call tools (`tools`
// offered as functions, `delta.tool_calls` streamed in pieces, assistant `tool_calls` and
// `tool` messages checked as OpenAI checks them). Usage can report cached prompt tokens
// (Options.CachedTokens, SetCachedTokens). It records every request (the messages it
// was sent, so tests can check a thread's history reached the prompt), checks the API key
// when one is configured, and injects faults on command for the next N requests: a
// connection cut after K tokens, a stream that ends without [DONE], a stall, HTTP 429 with
// Retry-After, any HTTP error status.
//
// Other processes drive it over HTTP through the /_control/ endpoints (control.go), see
// Client.
//
// It is written here rather than taken from a library because no maintained Go library
// serves the chat-completions API locally with pacing, recording and fault injection.
package fakellm

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// Pace is how fast the server answers (fakemodel.Pace, shared with the other model stand-in).
type Pace = fakemodel.Pace

// DefaultAnswerTokens is a generated answer's length when Pace.AnswerTokens is 0.
const DefaultAnswerTokens = fakemodel.DefaultAnswerTokens

// DefaultAnswerTokens is the length of an answer when Pace.AnswerTokens is 0.

// Options configure a Server. The zero value works: any key (or none) is accepted and
// answers come at once.
type Options struct {
	// APIKey, when set, must arrive as `Authorization: Bearer APIKey`; other requests get
	// 401 invalid_api_key.
	APIKey string
	// Pace is the initial pace (see SetPace).
	Pace Pace
	// Reply, when set, scripts answers that call tools: the reply to a conversation (the
	// messages before the one continued, for a prefill), when it gives one, is its text
	// followed by its tool calls, each call's arguments streamed in pieces of a few bytes as
	// servers stream them (finish_reason "tool_calls"); nil goes on to Answer or the
	// generated answer. It must give the same reply to the same messages. A script
	// (SetScript) takes precedence.
	Reply func(messages []Message) *Reply
	// Answer, when set, gives the text of the answer to a conversation instead of the
	// generated one; it is cut into words, and cut or filled up to Pace.AnswerTokens when
	// that is set. It must give the same text for the same messages (a resumed answer is
	// found again by asking again). A script (SetScript) takes precedence.
	Answer func(messages []Message) string
	// CachedTokens, when set, is reported in every answer's usage as the prompt tokens read
	// from the server's prompt cache (prompt_tokens_details.cached_tokens, at most the
	// prompt's tokens); see SetCachedTokens.
	CachedTokens int
	// NoStreaming answers every request with one JSON answer, even when it asks for a
	// stream, as servers without streaming do.
	NoStreaming bool
	// Out, when non-nil, gets one human-readable line per request, e.g.
	//   llm ▸ stream of 30 tokens after 3 messages (model gpt-4o-mini)
	Out io.Writer
	// Now stamps Request.At (default time.Now).
	Now func() time.Time
}

// Message is one message of a request.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ToolCalls are the calls an assistant message made (its tool_calls).
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID is the call a "tool" message answers (its tool_call_id).
	ToolCallID string `json:"tool_call_id,omitempty"`
}

// ToolCall is a function call: one a request's assistant message made, or one a Reply makes.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Reply is a scripted answer (Options.Reply): Text, then ToolCalls (none: a plain answer).
type Reply struct {
	Text      string
	ToolCalls []ToolCall
}

// ToolSpec is a function a request offered (its tools).
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// Request is one recorded request.
type Request struct {
	Model    string    `json:"model,omitempty"`
	Messages []Message `json:"messages,omitempty"`
	// Tools are the functions offered.
	Tools  []ToolSpec `json:"tools,omitempty"`
	Stream bool       `json:"stream"`
	// IncludeUsage is stream_options.include_usage.
	IncludeUsage bool `json:"include_usage,omitempty"`
	MaxTokens    int  `json:"max_tokens,omitempty"`
	// Status is the HTTP status answered (200 also for a stream later cut by a fault).
	Status int `json:"status"`
	// Fault names the fault applied: "disconnect", "truncate", "stall", "ratelimit",
	// "http", or empty.
	Fault string `json:"fault,omitempty"`
	// Continued is set when the request asked to continue its last message (a prefill).
	Continued *Continuation `json:"continued,omitempty"`
	At        time.Time     `json:"at"`
}

// Server is a local chat-completions API. It is safe for concurrent use.
type Server struct {
	opts Options
	mux  *http.ServeMux

	mu       sync.Mutex
	pace     Pace
	script   string
	cached   int
	faults   fakemodel.Faults[fault]
	requests []Request
	seq      int
	srv      *loopback.Server

	outMu sync.Mutex
}

// New returns a Server; call Start to serve it.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, pace: opts.Pace, cached: opts.CachedTokens}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", s.handleCompletions)
	mux.HandleFunc("/chat/completions", s.handleCompletions)
	s.routeControl(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "unknown URL: "+r.Method+" "+r.URL.Path)
	})
	s.mux = mux
	return s
}

// Start listens on addr ("127.0.0.1:0" when empty; a missing host means 127.0.0.1) and
// serves in the background. It returns the base URL, e.g. "http://127.0.0.1:41234/"; the
// API base for a client (LLM_BASE_URL) is APIURL.
func (s *Server) Start(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return "", errors.New("localllm: already started")
	}
	srv, err := loopback.Serve("localllm", addr, s.mux)
	if err != nil {
		return "", err
	}
	s.srv = srv
	return srv.URL(), nil
}

// URL is the base URL given by Start ("" before).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return ""
	}
	return s.srv.URL()
}

// APIURL is the OpenAI-style API base, e.g. "http://127.0.0.1:41234/v1" (LLM_BASE_URL).
func (s *Server) APIURL() string { return s.URL() + "v1" }

// Close stops a server started with Start, cutting streams still running after 2 s.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// SetPace changes the pace of the answers that start from now on.
func (s *Server) SetPace(p Pace) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pace = p
}

// Pace returns the current pace.
func (s *Server) Pace() Pace {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pace
}

// SetScript makes text the answer to every conversation from now on, instead of the
// generated one or Options.Answer's (cut into words, and cut or filled up to
// Pace.AnswerTokens when that is set); "" goes back to them. It is how another process asks
// for a text of its own (multi-byte characters, a given length): POST /_control/script.
func (s *Server) SetScript(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = text
}

// Script returns the text set by SetScript ("" when none).
func (s *Server) Script() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.script
}

// SetCachedTokens makes the answers that start from now on report n of their prompt tokens
// as read from the prompt cache (prompt_tokens_details.cached_tokens; at most the prompt's
// tokens); 0 reports none, as a server without a cache. It is POST /_control/cache.
func (s *Server) SetCachedTokens(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cached = max(n, 0)
}

// Requests returns a copy of the recorded requests, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Reset forgets recorded requests, pending faults and the script, and restores the pace and
// the cached tokens of Options.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.faults, s.pace, s.script, s.cached = nil, fakemodel.Faults[fault]{}, s.opts.Pace, "", s.opts.CachedTokens
}

// authorized reports whether r carries the configured key (any, when none is configured).
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.APIKey == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.APIKey)) == 1
}

func (s *Server) printf(format string, args ...any) {
	if s.opts.Out == nil {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.opts.Out, "llm ▸ "+format+"\n", args...)
}

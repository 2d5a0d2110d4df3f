// Package fakebedrock is a local stand-in for Amazon Bedrock's ConverseStream API, for tests
// and local runs of the assistant with LLM_PROVIDER=bedrock.
//
// It is written here because no Bedrock emulator runs on this project's machines (none is
// installable from the registries they reach, and LocalStack's Bedrock needs Docker, a
// licence and a model runtime), while the real SDK client must be tested against the real wire
// format. It speaks that format: POST /model/{modelId}/converse-stream with the JSON request
// body the SDK writes, answered with `application/vnd.amazon.eventstream` messages encoded by
// the SDK's own encoder (aws/protocol/eventstream): messageStart, contentBlockStart (tool use),
// contentBlockDelta, contentBlockStop, messageStop and metadata events, exceptions in the
// stream as exception messages with `:exception-type`, and refusals as HTTP errors with
// `X-Amzn-ErrorType` and a JSON message, as the service sends them, so the SDK decodes each into
// its typed event or exception.
//
// Answers are deterministic text derived from the conversation, paced (time to first token,
// tokens per second; a token is a word): the same conversation gets the same answer, so a
// client that asks again finds the text it was given before, and a conversation ending with
// the assistant's message (a prefill) is continued from where that message ends. It checks
// what Bedrock checks of a conversation (it starts with the user and alternates, no blank text,
// no trailing whitespace in a prefill) and answers ValidationException otherwise. It records
// every request (model, region from the signature, messages, system prompt, inference
// configuration, tools) and injects faults on command for the next N calls: throttling (HTTP
// 429 ThrottlingException), any HTTP exception, an exception in the stream after K chunks
// (modelStreamErrorException, throttlingException, …), a cut connection, a stall, and a
// tool-use answer; it checks the toolUse and toolResult blocks of a conversation as Bedrock
// does and records them, and SetTurns scripts a conversation with tools (a turn's text can
// quote the last tool result); models outside an allowed list are refused with AccessDeniedException.
// Usage metadata is sent with every answer, cache tokens included when configured
// (Options, SetCacheTokens).
//
// Other processes drive it over HTTP through the /_control/ endpoints (control.go), see Client.
package fakebedrock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// Pace is how fast the server answers (fakemodel.Pace, shared with the other model stand-in).
type Pace = fakemodel.Pace

// DefaultAnswerTokens is a generated answer's length when Pace.AnswerTokens is 0.
const DefaultAnswerTokens = fakemodel.DefaultAnswerTokens

// DefaultAnswerTokens is the length of a generated answer when Pace.AnswerTokens is 0.

// Options configure a Server. The zero value works: every model is allowed, answers come at
// once.
type Options struct {
	// Pace is the initial pace (see SetPace).
	Pace Pace
	// AllowedModels, when set, are the model ids (or ARNs) the caller may invoke; others get
	// AccessDeniedException, as a role without bedrock:InvokeModelWithResponseStream on them.
	AllowedModels []string
	// CacheReadTokens and CacheWriteTokens, when set, are reported in every answer's usage
	// (cacheReadInputTokens, cacheWriteInputTokens, beside inputTokens as Bedrock counts
	// them); see SetCacheTokens.
	CacheReadTokens, CacheWriteTokens int
	// Out, when non-nil, gets one human-readable line per request, e.g.
	//   bedrock ▸ stream of 30 tokens after 1 message (model anthropic.claude-x)
	Out io.Writer
	// Now stamps Request.At (default time.Now).
	Now func() time.Time
}

// Message is one message of a request as recorded.
type Message struct {
	Role string `json:"role"`
	// Texts are its text blocks, in order.
	Texts []string `json:"texts,omitempty"`
	// Others names its other blocks (toolUse, toolResult, image, …), in order.
	Others []string `json:"others,omitempty"`
	// ToolUses and ToolResults are its toolUse and toolResult blocks, in order.
	ToolUses    []ToolUseBlock    `json:"tool_uses,omitempty"`
	ToolResults []ToolResultBlock `json:"tool_results,omitempty"`
}

// ToolSpec is a tool a request offered (toolConfig.tools[].toolSpec).
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
}

// Request is one recorded request.
type Request struct {
	ModelID string `json:"model_id"`
	// Region is the region the request was signed for (its SigV4 credential scope).
	Region   string    `json:"region,omitempty"`
	Messages []Message `json:"messages,omitempty"`
	// System are the system prompt's text blocks.
	System []string `json:"system,omitempty"`
	// MaxTokens, Temperature, TopP and StopSequences are inferenceConfig's, nil when not sent.
	MaxTokens     *int     `json:"max_tokens,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"top_p,omitempty"`
	StopSequences []string `json:"stop_sequences,omitempty"`
	// Tools are toolConfig's tools; ToolChoice is toolConfig.toolChoice as sent.
	Tools      []ToolSpec      `json:"tools,omitempty"`
	ToolChoice json.RawMessage `json:"tool_choice,omitempty"`
	// Status is the HTTP status answered (200 also for a stream that later failed).
	Status int `json:"status"`
	// Exception is the exception answered, as an HTTP error or in the stream.
	Exception string `json:"exception,omitempty"`
	// Fault names the injected fault applied: "throttle", "http", "stream_exception", "cut",
	// "stall", "tool_use", or empty.
	Fault string `json:"fault,omitempty"`
	// Prefill is set when the conversation ended with the assistant's message, which the
	// answer continues.
	Prefill *Prefill `json:"prefill,omitempty"`
	// FirstChunkAt is when the first content delta was written (zero when none was).
	FirstChunkAt time.Time `json:"first_chunk_at,omitzero"`
	At           time.Time `json:"at"`
}

// Prefill is a request whose conversation ended with the assistant's message.
type Prefill struct {
	// Chars is that message's length in characters.
	Chars int `json:"chars"`
	// NotAPrefix is set when it is not a beginning of the answer: the answer went on from its
	// length anyway.
	NotAPrefix bool `json:"not_a_prefix,omitempty"`
}

// Server is a local ConverseStream API. It is safe for concurrent use.
type Server struct {
	opts Options
	mux  *http.ServeMux

	mu       sync.Mutex
	pace     Pace
	script   string
	cacheR   int
	cacheW   int
	turns    []Turn
	allowed  []string
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
	s := &Server{opts: opts, pace: opts.Pace, allowed: slices.Clone(opts.AllowedModels), cacheR: opts.CacheReadTokens, cacheW: opts.CacheWriteTokens}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /model/{modelId}/converse-stream", s.handleConverseStream)
	s.routeControl(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeException(w, http.StatusNotFound, "UnknownOperationException", "unknown operation: "+r.Method+" "+r.URL.Path)
	})
	s.mux = mux
	return s
}

// Start listens on addr ("127.0.0.1:0" when empty; a missing host means 127.0.0.1) and serves
// in the background. It returns the base URL, e.g. "http://127.0.0.1:41234/": the client's
// endpoint (AWS_ENDPOINT_URL_BEDROCK_RUNTIME, or bedrockruntime.Options.BaseEndpoint).
func (s *Server) Start(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return "", errors.New("fakebedrock: already started")
	}
	srv, err := loopback.Serve("fakebedrock", addr, s.mux)
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

// SetScript makes text the answer to every conversation from now on (cut into words, and cut
// or filled up to Pace.AnswerTokens when that is set); "" goes back to generated answers.
func (s *Server) SetScript(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = text
}

// SetCacheTokens makes the answers that start from now on report read and write tokens of
// the prompt cache (cacheReadInputTokens, cacheWriteInputTokens; 0 leaves each out, as
// Bedrock does for a model or request without caching). It is POST /_control/cache.
func (s *Server) SetCacheTokens(read, write int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cacheR, s.cacheW = max(read, 0), max(write, 0)
}

// SetAllowedModels replaces Options.AllowedModels: none means every model is allowed.
func (s *Server) SetAllowedModels(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed = slices.Clone(ids)
}

// Requests returns a copy of the recorded requests, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Reset forgets recorded requests, pending faults, the script and the scripted turns, and
// restores the pace, the allowed models and the cache tokens of Options.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.faults, s.pace, s.script, s.allowed = nil, fakemodel.Faults[fault]{}, s.opts.Pace, "", slices.Clone(s.opts.AllowedModels)
	s.turns, s.cacheR, s.cacheW = nil, s.opts.CacheReadTokens, s.opts.CacheWriteTokens
}

func (s *Server) record(r Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.At = s.opts.Now()
	s.requests = append(s.requests, r)
	return len(s.requests) - 1
}

// update changes the recorded request i.
func (s *Server) update(i int, f func(*Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= 0 && i < len(s.requests) {
		f(&s.requests[i])
	}
}

func (s *Server) printf(format string, args ...any) {
	if s.opts.Out == nil {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.opts.Out, "bedrock ▸ "+format+"\n", args...)
}

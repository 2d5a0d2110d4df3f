package fakebedrock

import (
	"encoding/json"
	"net/http"
	"time"
)

// Fault kinds, as recorded in Request.Fault.
const (
	FaultThrottle        = "throttle"
	FaultHTTP            = "http"
	FaultStreamException = "stream_exception"
	FaultCut             = "cut"
	FaultStall           = "stall"
	FaultToolUse         = "tool_use"
)

// Exception types of the stream (the event-stream union's member names) and of HTTP errors.
const (
	ModelStreamErrorException   = "modelStreamErrorException"
	StreamThrottlingException   = "throttlingException"
	StreamInternalServerError   = "internalServerException"
	StreamServiceUnavailable    = "serviceUnavailableException"
	StreamValidationException   = "validationException"
	ThrottlingException         = "ThrottlingException"
	AccessDeniedException       = "AccessDeniedException"
	ValidationException         = "ValidationException"
	ResourceNotFoundException   = "ResourceNotFoundException"
	ServiceUnavailableException = "ServiceUnavailableException"
	InternalServerException     = "InternalServerException"
	ModelNotReadyException      = "ModelNotReadyException"
)

// ToolCall is a tool use the answer asks for (ToolUseNext).
type ToolCall struct {
	// ID is its toolUseId (generated when empty).
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	// Input is the tool's JSON input ({} when empty); it is streamed in pieces.
	Input json.RawMessage `json:"input,omitempty"`
}

// fault is one fault of the next requests (fakemodel.Faults counts them).
type fault struct {
	kind        string
	afterChunks int
	pause       time.Duration
	retryAfter  time.Duration
	status      int
	exception   string
	tools       []ToolCall
}

// ThrottleNext makes the next n calls answer HTTP 429 ThrottlingException ("Too many
// requests, please wait before trying again."), with a Retry-After header when retryAfter is
// positive (whole seconds, rounded up; Bedrock itself sends none).
func (s *Server) ThrottleNext(n int, retryAfter time.Duration) {
	s.addFault(n, fault{kind: FaultThrottle, status: http.StatusTooManyRequests, exception: ThrottlingException, retryAfter: retryAfter})
}

// FailNext makes the next n calls answer HTTP status (400-599; others mean 500) with the
// exception type named (ServiceUnavailableException, ValidationException, …).
func (s *Server) FailNext(n, status int, exception string) {
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	if exception == "" {
		exception = InternalServerException
	}
	s.addFault(n, fault{kind: FaultHTTP, status: status, exception: exception})
}

// StreamExceptionNext makes the next n answers send an exception message of type exception
// (modelStreamErrorException when empty; throttlingException, internalServerException, …)
// after afterChunks text chunks, and end.
func (s *Server) StreamExceptionNext(n, afterChunks int, exception string) {
	if exception == "" {
		exception = ModelStreamErrorException
	}
	s.addFault(n, fault{kind: FaultStreamException, afterChunks: max(afterChunks, 0), exception: exception})
}

// CutNext makes the next n answers lose their connection after afterChunks text chunks (0:
// before the first): the server closes it without ending the stream.
func (s *Server) CutNext(n, afterChunks int) {
	s.addFault(n, fault{kind: FaultCut, afterChunks: max(afterChunks, 0)})
}

// StallNext makes the next n answers pause for pause after afterChunks text chunks (0: before
// the first, on top of the pace's FirstToken), then go on.
func (s *Server) StallNext(n, afterChunks int, pause time.Duration) {
	s.addFault(n, fault{kind: FaultStall, afterChunks: max(afterChunks, 0), pause: pause})
}

// ToolUseNext makes the next n answers end with toolUse blocks for calls, after their text,
// with stopReason tool_use.
func (s *Server) ToolUseNext(n int, calls ...ToolCall) {
	s.addFault(n, fault{kind: FaultToolUse, tools: calls})
}

func (s *Server) addFault(n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.Add(n, f)
}

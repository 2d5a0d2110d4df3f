package fakellm

import (
	"net/http"
	"time"
)

// Fault kinds, as recorded in Request.Fault.
const (
	FaultDisconnect = "disconnect"
	FaultTruncate   = "truncate"
	FaultStall      = "stall"
	FaultRateLimit  = "ratelimit"
	FaultHTTP       = "http"
)

// fault applies to the next `remaining` requests.
type fault struct {
	kind        string
	remaining   int
	afterTokens int
	pause       time.Duration
	retryAfter  time.Duration
	status      int
}

// DisconnectNext makes the next n requests lose their connection after afterTokens tokens
// of the answer (0: before the first): the server closes it without ending the response,
// as a reset or a crashed proxy would. A non-streamed request loses it before any answer.
func (s *Server) DisconnectNext(n, afterTokens int) {
	s.addFault(&fault{kind: FaultDisconnect, remaining: n, afterTokens: max(afterTokens, 0)})
}

// TruncateNext makes the next n streamed answers end cleanly after afterTokens tokens,
// without a finish reason, usage or `data: [DONE]`; a non-streamed answer ends half way
// through its JSON.
func (s *Server) TruncateNext(n, afterTokens int) {
	s.addFault(&fault{kind: FaultTruncate, remaining: n, afterTokens: max(afterTokens, 0)})
}

// StallNext makes the next n answers pause for pause after afterTokens tokens (0: before
// the first, on top of the pace's FirstToken), then go on.
func (s *Server) StallNext(n, afterTokens int, pause time.Duration) {
	s.addFault(&fault{kind: FaultStall, remaining: n, afterTokens: max(afterTokens, 0), pause: pause})
}

// RateLimitNext makes the next n requests answer HTTP 429 with Retry-After (whole seconds,
// rounded up, at least 1) and an OpenAI-style rate_limit_exceeded error.
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	s.addFault(&fault{kind: FaultRateLimit, remaining: n, retryAfter: retryAfter})
}

// FailHTTPNext makes the next n requests answer HTTP status (400-599; others mean 500)
// with an OpenAI-style error.
func (s *Server) FailHTTPNext(n, status int) {
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	s.addFault(&fault{kind: FaultHTTP, remaining: n, status: status})
}

func (s *Server) addFault(f *fault) {
	if f.remaining <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// popFault returns the fault for the request now starting, if any, oldest first.
// The caller holds s.mu.
func (s *Server) popFaultLocked() *fault {
	if len(s.faults) == 0 {
		return nil
	}
	f := *s.faults[0]
	s.faults[0].remaining--
	if s.faults[0].remaining <= 0 {
		s.faults = s.faults[1:]
	}
	return &f
}

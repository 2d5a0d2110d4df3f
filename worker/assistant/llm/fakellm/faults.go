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

// fault is one fault of the next requests (fakemodel.Faults counts them).
type fault struct {
	kind        string
	afterTokens int
	pause       time.Duration
	retryAfter  time.Duration
	status      int
}

// DisconnectNext makes the next n requests lose their connection after afterTokens tokens
// of the answer (0: before the first): the server closes it without ending the response,
// as a reset or a crashed proxy would. A non-streamed request loses it before any answer.
func (s *Server) DisconnectNext(n, afterTokens int) {
	s.addFault(n, fault{kind: FaultDisconnect, afterTokens: max(afterTokens, 0)})
}

// TruncateNext makes the next n streamed answers end cleanly after afterTokens tokens,
// without a finish reason, usage or `data: [DONE]`; a non-streamed answer ends half way
// through its JSON.
func (s *Server) TruncateNext(n, afterTokens int) {
	s.addFault(n, fault{kind: FaultTruncate, afterTokens: max(afterTokens, 0)})
}

// StallNext makes the next n answers pause for pause after afterTokens tokens (0: before
// the first, on top of the pace's FirstToken), then go on.
func (s *Server) StallNext(n, afterTokens int, pause time.Duration) {
	s.addFault(n, fault{kind: FaultStall, afterTokens: max(afterTokens, 0), pause: pause})
}

// RateLimitNext makes the next n requests answer HTTP 429 with Retry-After (whole seconds,
// rounded up, at least 1) and an OpenAI-style rate_limit_exceeded error.
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	s.addFault(n, fault{kind: FaultRateLimit, retryAfter: retryAfter})
}

// FailHTTPNext makes the next n requests answer HTTP status (400-599; others mean 500)
// with an OpenAI-style error.
func (s *Server) FailHTTPNext(n, status int) {
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	s.addFault(n, fault{kind: FaultHTTP, status: status})
}

func (s *Server) addFault(n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.Add(n, f)
}

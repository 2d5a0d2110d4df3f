package fakeslack

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

type faultKind int

const (
	faultSlack faultKind = iota
	faultRateLimit
	faultHTTP
	faultLoseResponse
)

type fault struct {
	kind       faultKind
	remaining  int
	slackError string
	retryAfter time.Duration
	status     int
}

// FailNext makes the next n calls of method answer HTTP 200 {"ok":false,"error":slackError}.
func (s *Server) FailNext(method string, n int, slackError string) {
	s.addFault(method, &fault{kind: faultSlack, remaining: n, slackError: slackError})
}

// RateLimitNext makes the next n calls of method answer HTTP 429 with Retry-After (whole
// seconds, rounded up, at least 1) and {"ok":false,"error":"ratelimited"}.
func (s *Server) RateLimitNext(method string, n int, retryAfter time.Duration) {
	s.addFault(method, &fault{kind: faultRateLimit, remaining: n, retryAfter: retryAfter})
}

// FailHTTPNext makes the next n calls of method answer HTTP status with a short text body.
// A status outside 400-599 is treated as 500.
func (s *Server) FailHTTPNext(method string, n int, status int) {
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	s.addFault(method, &fault{kind: faultHTTP, remaining: n, status: status})
}

// LoseResponseNext makes the next n calls of method take their full effect (a message is
// posted, a stream grows, a response_url post is recorded; a call that fails fails the same)
// and then close the connection without an answer, as when the network drops Slack's
// answer: the client sees a network error although Slack did the work. method may be
// ResponseURLMethod.
func (s *Server) LoseResponseNext(method string, n int) {
	s.addFault(method, &fault{kind: faultLoseResponse, remaining: n})
}

func (s *Server) addFault(method string, f *fault) {
	if f.remaining <= 0 || method == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], f)
}

// beginCall counts a call of method and pops the fault to apply, if any. Faults come before
// every other check (auth, scopes, arguments), as a failure between client and Slack would.
func (s *Server) beginCall(method string) *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
	q := s.faults[method]
	if len(q) == 0 {
		return nil
	}
	f := *q[0]
	q[0].remaining--
	if q[0].remaining <= 0 {
		q = q[1:]
	}
	if len(q) == 0 {
		delete(s.faults, method)
	} else {
		s.faults[method] = q
	}
	return &f
}

// losesResponse is whether f lets the call run and drops its answer (LoseResponseNext).
func (f *fault) losesResponse() bool { return f != nil && f.kind == faultLoseResponse }

// answerLost is where a handler whose answer is to be lost writes it: nowhere.
type answerLost struct{ h http.Header }

func (a *answerLost) Header() http.Header {
	if a.h == nil {
		a.h = http.Header{}
	}
	return a.h
}
func (a *answerLost) Write(b []byte) (int, error) { return len(b), nil }
func (a *answerLost) WriteHeader(int)             {}

// loseAnswer closes the connection of w before anything was written to it, so the client
// reads no answer at all.
func loseAnswer(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server closes the connection without an answer
	}
	_ = conn.Close()
}

func writeFault(w http.ResponseWriter, f *fault) {
	switch f.kind {
	case faultRateLimit:
		w.Header().Set("Retry-After", strconv.FormatInt(loopback.RetryAfterSeconds(f.retryAfter), 10))
		writeJSON(w, http.StatusTooManyRequests, slackErr("ratelimited"))
	case faultHTTP:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(f.status)
		fmt.Fprintf(w, "fakeslack: injected HTTP %d %s\n", f.status, http.StatusText(f.status))
	default:
		writeJSON(w, http.StatusOK, slackErr(f.slackError))
	}
}

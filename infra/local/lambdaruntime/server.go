// Package lambdaruntime stands in for AWS Lambda around a real bootstrap binary: a Runtime
// API server (the HTTP interface a custom runtime such as aws-lambda-go's lambda.norpc build
// polls for invocations and posts results to) and a Function that runs the binary as Lambda
// would: a clean environment with Lambda's own variables, the init phase measured up to the
// runtime's first request for work, invocations under the function's timeout, and the process
// killed when one times out (the next invocation then starts it again: a cold start).
//
// Written here because no Lambda runtime emulator installs on this machine; it implements the
// Runtime API's four calls (next, response, error, init/error), as documented at
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html. It binds 127.0.0.1.
package lambdaruntime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// The Runtime API's paths and headers.
const (
	prefix            = "/2018-06-01/runtime/"
	pathNext          = prefix + "invocation/next"
	pathInitError     = prefix + "init/error"
	HeaderRequestID   = "Lambda-Runtime-Aws-Request-Id"
	HeaderDeadlineMS  = "Lambda-Runtime-Deadline-Ms"
	HeaderFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	HeaderTraceID     = "Lambda-Runtime-Trace-Id"
	HeaderErrorType   = "Lambda-Runtime-Function-Error-Type"
)

// ErrorBody is the JSON a runtime posts with an invocation or init error.
type ErrorBody struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// Posted is an error the runtime reported: its header type and its body.
type Posted struct {
	HeaderType string
	Body       ErrorBody
}

// invocation is one event on its way through the Runtime API.
type invocation struct {
	id       string
	payload  []byte
	timeout  time.Duration
	taken    chan time.Time // the runtime took it (GET next answered), at that time
	finished chan outcome   // the runtime posted a response or an error
}

type outcome struct {
	at       time.Time
	response []byte
	err      *Posted
}

// Server is a Runtime API for one function instance.
type Server struct {
	srv         *loopback.Server
	closing     chan struct{}
	functionARN string

	queue chan *invocation // waiting for the runtime's next GET

	mu        sync.Mutex
	inFlight  map[string]*invocation
	polled    chan struct{} // closed at the runtime's first GET next
	firstPoll time.Time
	initErr   chan Posted // the runtime's init/error, if any
	seq       int
}

// NewServer listens on a free loopback port. functionARN is what invocations report as the
// invoked function.
func NewServer(functionARN string) (*Server, error) {
	s := &Server{
		closing: make(chan struct{}), functionARN: functionARN,
		queue: make(chan *invocation), inFlight: map[string]*invocation{},
		polled: make(chan struct{}), initErr: make(chan Posted, 1),
	}
	srv, err := loopback.Serve("lambdaruntime", "", s)
	if err != nil {
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// Addr is the value of AWS_LAMBDA_RUNTIME_API (host:port).
func (s *Server) Addr() string { return s.srv.Addr() }

// Close stops the server; a runtime waiting for work gets an error.
func (s *Server) Close() error {
	close(s.closing)
	return s.srv.Close()
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == pathNext:
		s.next(w, r)
	case r.Method == http.MethodPost && r.URL.Path == pathInitError:
		p, err := readPosted(r)
		if err != nil {
			apiError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
			return
		}
		select {
		case s.initErr <- p:
		default: // only the first is kept; Lambda expects the runtime to exit after it
		}
		accepted(w)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, prefix+"invocation/"):
		s.result(w, r)
	default:
		apiError(w, http.StatusNotFound, "NotFound", "no such Runtime API call: "+r.Method+" "+r.URL.Path)
	}
}

// next hands the runtime the next invocation, waiting for one as long as it takes.
func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	select {
	case <-s.polled:
	default:
		s.firstPoll = time.Now()
		close(s.polled)
	}
	s.mu.Unlock()
	var inv *invocation
	select {
	case inv = <-s.queue:
	case <-r.Context().Done():
		return
	case <-s.closing:
		apiError(w, http.StatusInternalServerError, "ServiceException", "runtime API closing")
		return
	}
	now := time.Now()
	s.mu.Lock()
	s.inFlight[inv.id] = inv
	s.mu.Unlock()
	h := w.Header()
	h.Set(HeaderRequestID, inv.id)
	h.Set(HeaderDeadlineMS, strconv.FormatInt(now.Add(inv.timeout).UnixMilli(), 10))
	h.Set(HeaderFunctionARN, s.functionARN)
	h.Set(HeaderTraceID, "Root=1-00000000-"+strings.Repeat("0", 16)+inv.id[len(inv.id)-8:]+";Sampled=0")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
	inv.taken <- now
}

// result takes .../invocation/{id}/response and .../invocation/{id}/error.
func (s *Server) result(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, prefix+"invocation/")
	id, kind, ok := strings.Cut(rest, "/")
	if !ok || (kind != "response" && kind != "error") {
		apiError(w, http.StatusNotFound, "NotFound", "no such Runtime API call: "+r.URL.Path)
		return
	}
	s.mu.Lock()
	inv := s.inFlight[id]
	delete(s.inFlight, id)
	s.mu.Unlock()
	if inv == nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation "+id+" in flight")
		return
	}
	out := outcome{}
	if kind == "error" {
		p, err := readPosted(r)
		if err != nil {
			apiError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
			return
		}
		out.err = &p
	} else {
		body, err := io.ReadAll(io.LimitReader(r.Body, 6<<20)) // Lambda's 6 MB response limit
		if err != nil {
			apiError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
			return
		}
		out.response = body
	}
	out.at = time.Now()
	inv.finished <- out
	accepted(w)
}

func readPosted(r *http.Request) (Posted, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return Posted{}, err
	}
	p := Posted{HeaderType: r.Header.Get(HeaderErrorType)}
	if err := json.Unmarshal(raw, &p.Body); err != nil {
		return p, errors.New("error body is not the JSON {errorMessage, errorType}")
	}
	return p, nil
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{ErrorMessage: msg, ErrorType: typ})
}

// errExited is returned when the runtime process ends with an invocation in flight.
var errExited = errors.New("the runtime process exited")

// invoke hands payload to the runtime when it next asks for work and waits for its result,
// at most timeout from that moment. exited closes when the runtime process ends.
func (s *Server) invoke(ctx context.Context, payload []byte, timeout time.Duration, exited <-chan struct{}) (Result, error) {
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("5e1f0c7a-0000-4000-8000-%012d", s.seq)
	s.mu.Unlock()
	inv := &invocation{id: id, payload: payload, timeout: timeout, taken: make(chan time.Time, 1), finished: make(chan outcome, 1)}
	select {
	case s.queue <- inv:
	case <-exited:
		return Result{}, errExited
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	var started time.Time
	select {
	case started = <-inv.taken:
	case <-exited:
		return Result{}, errExited
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	timer := time.NewTimer(time.Until(started.Add(timeout)))
	defer timer.Stop()
	select {
	case out := <-inv.finished:
		return Result{RequestID: id, Response: out.response, Error: out.err, Duration: out.at.Sub(started)}, nil
	case <-timer.C:
		s.mu.Lock()
		delete(s.inFlight, id)
		s.mu.Unlock()
		return Result{RequestID: id, TimedOut: true, Duration: time.Since(started)}, nil
	case <-exited:
		return Result{RequestID: id, Duration: time.Since(started)}, errExited
	case <-ctx.Done():
		return Result{RequestID: id, Duration: time.Since(started)}, ctx.Err()
	}
}

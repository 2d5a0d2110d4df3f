// Package fakessm is a local SSM Parameter Store server for the project's tests: it answers
// GetParameters, the one call the binaries make, in the AWS JSON 1.1 protocol the real
// aws-sdk-go-v2 SSM client speaks (docs: shared/reference/local-stack.md), and can be told to
// hang or fail, which is how tests take SSM away. It binds 127.0.0.1.
//
// Written here because no SSM emulator installs on this machine; it implements only what
// the binaries call.
package fakessm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// Mode is how the server answers GetParameters.
type Mode int

// The modes.
const (
	// Answer serves the parameters (the default).
	Answer Mode = iota
	// Hang accepts the request and never answers (until the caller gives up, the mode
	// changes or the server closes).
	Hang
	// Fail answers HTTP 500 InternalServerError, which the SDK retries.
	Fail
	// Throttle answers HTTP 400 ThrottlingException, which the SDK retries.
	Throttle
	// Deny answers HTTP 400 AccessDeniedException, which the SDK does not retry.
	Deny
)

// Target is the X-Amz-Target of the one operation served.
const Target = "AmazonSSM.GetParameters"

// Server is a running local SSM.
type Server struct {
	srv     *loopback.Server
	closing chan struct{}

	mu      sync.Mutex
	params  map[string]string
	mode    Mode
	changed chan struct{} // closed and replaced on every mode change
	calls   int
}

// Start listens on a free loopback port.
func Start() (*Server, error) {
	s := &Server{closing: make(chan struct{}), params: map[string]string{}, changed: make(chan struct{})}
	srv, err := loopback.Serve("fakessm", "", s)
	if err != nil {
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// URL is the endpoint for the client (AWS_ENDPOINT_URL_SSM).
func (s *Server) URL() string { return "http://" + s.srv.Addr() }

// Put sets a SecureString parameter.
func (s *Server) Put(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.params[name] = value
}

// SetMode changes how requests are answered; requests hanging under Hang are released
// (answered under the new mode).
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
	close(s.changed)
	s.changed = make(chan struct{})
}

// Calls is the number of GetParameters requests received (each SDK attempt is one).
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Close stops the server and releases hanging requests.
func (s *Server) Close() error {
	close(s.closing)
	return s.srv.Close()
}

type getParametersInput struct {
	Names          []string
	WithDecryption bool
}

type parameter struct {
	Name, Type, Value, ARN, DataType string
	Version                          int64
	LastModifiedDate                 float64
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != Target {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "only "+Target+" is served")
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var in getParametersInput
	if err == nil {
		err = json.Unmarshal(raw, &in)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "malformed request body")
		return
	}
	s.mu.Lock()
	s.calls++
	mode, changed := s.mode, s.changed
	s.mu.Unlock()
	for mode == Hang {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-changed:
		}
		s.mu.Lock()
		mode, changed = s.mode, s.changed
		s.mu.Unlock()
	}
	switch mode {
	case Fail:
		writeError(w, http.StatusInternalServerError, "InternalServerError", "injected failure")
		return
	case Throttle:
		writeError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	case Deny:
		writeError(w, http.StatusBadRequest, "AccessDeniedException", "not authorized to perform ssm:GetParameters")
		return
	}
	if len(in.Names) == 0 || len(in.Names) > 10 {
		writeError(w, http.StatusBadRequest, "ValidationException", fmt.Sprintf("Names must hold 1 to 10 names, not %d", len(in.Names)))
		return
	}
	out := struct {
		Parameters        []parameter
		InvalidParameters []string
	}{Parameters: []parameter{}, InvalidParameters: []string{}}
	s.mu.Lock()
	for _, name := range in.Names {
		v, ok := s.params[name]
		if !ok {
			out.InvalidParameters = append(out.InvalidParameters, name)
			continue
		}
		if !in.WithDecryption {
			v = "(ciphertext: ask WithDecryption)"
		}
		out.Parameters = append(out.Parameters, parameter{Name: name, Type: "SecureString", Value: v, DataType: "text", Version: 1,
			ARN: "arn:aws:ssm:us-east-1:000000000000:parameter" + name, LastModifiedDate: 1_700_000_000})
	}
	s.mu.Unlock()
	sort.Strings(out.InvalidParameters)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

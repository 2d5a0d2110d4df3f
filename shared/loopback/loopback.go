// Package loopback is what the local stand-in servers share: serving a handler on
// 127.0.0.1 (Serve), calling a server's JSON control endpoints from another process
// (Control) and the Retry-After of an injected rate limit (RetryAfterSeconds); and, for
// tests, endpoints that hang or refuse (SilentEndpoint, RefusedEndpoint) and a check that a
// closed server no longer answers (CheckStopped).
package loopback

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InstanceHeader is the response header in which every Server names itself (Instance), so a
// test can tell this server's answers from those of another listener that took its port.
const InstanceHeader = "X-Loopback-Instance"

// Server is a handler served on a loopback listener.
type Server struct {
	srv      *http.Server
	addr     string
	instance string
}

// Serve listens on addr ("127.0.0.1:0" when empty; a missing host means 127.0.0.1) and
// serves h in the background. name prefixes errors.
func Serve(name, addr string, h http.Handler) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s: bad address %q: %w", name, addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", name, err)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	s := &Server{addr: ln.Addr().String(), instance: name + "-" + hex.EncodeToString(id[:])}
	mark := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(InstanceHeader, s.instance)
		h.ServeHTTP(w, r)
	})
	s.srv = &http.Server{Handler: mark, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Instance is the id this server sends in InstanceHeader with every answer: its name and
// random hex, unique to this Server.
func (s *Server) Instance() string { return s.instance }

// URL is the base URL, e.g. "http://127.0.0.1:41234/".
func (s *Server) URL() string { return "http://" + s.addr + "/" }

// Addr is the address listened on, e.g. "127.0.0.1:41234".
func (s *Server) Addr() string { return s.addr }

// Close stops the server, letting requests in flight finish for up to 2 s before cutting
// them.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// CheckStopped reports an error when s, already closed, still answers at its address. The
// port is free once Close returns and another listener (a parallel test's) may already hold
// it: an answer is only s's when it carries s's Instance. It does not wait: a closed
// listener refuses at once.
func CheckStopped(s *Server) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(s.URL())
	if err != nil {
		return nil // nothing listens, or something that does not speak HTTP: not s
	}
	resp.Body.Close()
	if resp.Header.Get(InstanceHeader) == s.instance {
		return errors.New("still serving after Close")
	}
	return nil
}

// RetryAfterSeconds is d as a Retry-After value: whole seconds, rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}

// Control calls a server's JSON control endpoints.
type Control struct {
	// Name prefixes errors ("localllm control").
	Name string
	// BaseURL is the server's base URL (trailing slash optional).
	BaseURL string
	// HTTP is the client to use (http.DefaultClient when nil).
	HTTP *http.Client
}

// Call sends method path with in (when non-nil) as the JSON body and decodes a 200 answer
// into out (when non-nil); any other status is an error carrying the answer's body.
func (c Control) Call(ctx context.Context, method, path string, in, out any) error {
	fail := func(err error) error { return fmt.Errorf("%s %s: %w", c.Name, path, err) }
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fail(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return fail(err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	switch {
	case err != nil:
		return fail(err)
	case resp.StatusCode != http.StatusOK:
		return fail(fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data)))
	case out == nil:
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fail(err)
	}
	return nil
}

// SilentEndpoint is an http:// address on loopback that accepts connections and never
// answers: what a hung dependency looks like. The listener and its connections close when
// the test ends.
func SilentEndpoint(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// RefusedEndpoint is an http:// address on loopback that refuses connections for the whole
// test: its port is bound but never listened on, so connecting gets ECONNREFUSED and no other
// listener (another test's) can take the port meanwhile. The port is freed when the test ends.
func RefusedEndpoint(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// ControlBodyLimit bounds a control request's body.
const ControlBodyLimit = 1 << 20

// ReadControl decodes a control request's JSON body into v; on a bad body it answers 400
// {"ok":false,"error":"invalid_json"} itself and reports false.
func ReadControl(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, ControlBodyLimit)).Decode(v); err != nil {
		WriteJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "invalid_json"})
		return false
	}
	return true
}

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

package loopback

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServeAndControl(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_control/echo", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, `{"ok":false,"error":"invalid_json"}`, http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(in)
	})
	s, err := Serve("test", ":0", mux)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL %q, want loopback", s.URL())
	}
	if want := "http://" + s.Addr() + "/"; s.URL() != want {
		t.Errorf("URL %q, Addr %q; want the URL %q", s.URL(), s.Addr(), want)
	}
	c := Control{Name: "test control", BaseURL: s.URL()}
	var out map[string]any
	if err := c.Call(context.Background(), http.MethodPost, "/_control/echo", map[string]any{"n": 2.0}, &out); err != nil || out["n"] != 2.0 {
		t.Errorf("Call = %v, %v; want the echo of {n: 2}", out, err)
	}
	err = c.Call(context.Background(), http.MethodPost, "/_control/echo", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "test control /_control/echo: HTTP 400") || !strings.Contains(err.Error(), "invalid_json") {
		t.Errorf("a refused call gave %v, want the status and the body named", err)
	}
	if err := c.Call(context.Background(), http.MethodPost, "/_control/echo", map[string]any{}, &[]int{}); err == nil {
		t.Error("an answer of the wrong shape decoded without error")
	}
}

func TestServeErrors(t *testing.T) {
	t.Parallel()
	if _, err := Serve("test", "no-port", http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), "test: bad address") {
		t.Errorf("bad address gave %v", err)
	}
	s, err := Serve("test", "", http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(s.URL(), "http://"), "/")
	if _, err := Serve("test", addr, http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), "test: listen") {
		t.Errorf("a taken port gave %v", err)
	}
	if err := CheckStopped(s); err == nil {
		t.Error("CheckStopped before Close found nothing, want the server still serving")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := CheckStopped(s); err != nil {
		t.Error(err)
	}
}

func TestInstanceTellsServersApart(t *testing.T) {
	t.Parallel()
	a, err := Serve("test", "", http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	b, err := Serve("test", "", http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if a.Instance() == b.Instance() || !strings.HasPrefix(a.Instance(), "test-") {
		t.Fatalf("instances %q and %q, want two different ids named test-…", a.Instance(), b.Instance())
	}
	resp, err := http.Get(a.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get(InstanceHeader); got != a.Instance() {
		t.Errorf("%s = %q, want %q", InstanceHeader, got, a.Instance())
	}
	// Another server on the address (as after a port is reused) is not taken for a.
	fake := &Server{addr: b.addr, instance: a.instance}
	if err := CheckStopped(fake); err != nil {
		t.Errorf("CheckStopped with another instance listening: %v, want nil", err)
	}
}

func TestRefusedEndpointRefusesForTheWholeTest(t *testing.T) {
	t.Parallel()
	u := RefusedEndpoint(t)
	addr := strings.TrimPrefix(u, "http://")
	for range 3 {
		_, err := (&http.Client{Timeout: time.Second}).Get(u)
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("GET %s: %v, want connection refused", u, err)
		}
	}
	// Nobody else can take the port while the test holds it.
	if s, err := Serve("test", addr, http.NotFoundHandler()); err == nil {
		s.Close()
		t.Error("another server could listen on the refused endpoint's port")
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {2500 * time.Millisecond, 3}, {12 * time.Second, 12},
	} {
		t.Run(tc.d.String(), func(t *testing.T) {
			t.Parallel()
			if got := RetryAfterSeconds(tc.d); got != tc.want {
				t.Errorf("RetryAfterSeconds(%s) = %d, want %d", tc.d, got, tc.want)
			}
		})
	}
}

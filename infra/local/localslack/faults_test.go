package localslack

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		inject func(s *Server)
		check  func(t *testing.T, r apiResp)
	}{
		{"FailNext", func(s *Server) { s.FailNext("chat.postMessage", 2, "internal_error") }, func(t *testing.T, r apiResp) {
			if r.status != http.StatusOK || r.ok() || r.str("error") != "internal_error" {
				t.Fatalf("got %d %v, want 200 internal_error", r.status, r.body)
			}
		}},
		{"RateLimitNext", func(s *Server) { s.RateLimitNext("chat.postMessage", 2, 1500*time.Millisecond) }, func(t *testing.T, r apiResp) {
			if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "2" || r.str("error") != "ratelimited" {
				t.Fatalf("got %d Retry-After=%q %v, want 429 Retry-After 2 ratelimited", r.status, r.header.Get("Retry-After"), r.body)
			}
		}},
		{"FailHTTPNext", func(s *Server) { s.FailHTTPNext("chat.postMessage", 2, http.StatusServiceUnavailable) }, func(t *testing.T, r apiResp) {
			if r.status != http.StatusServiceUnavailable || r.raw == "" || r.body != nil {
				t.Fatalf("got %d %q, want 503 with a text body", r.status, r.raw)
			}
		}},
		{"FailHTTPNext bad status", func(s *Server) { s.FailHTTPNext("chat.postMessage", 2, 200) }, func(t *testing.T, r apiResp) {
			if r.status != http.StatusInternalServerError {
				t.Fatalf("got %d, want 500 for a status outside 400-599", r.status)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, base := newTest(t, Options{})
			post := func() apiResp { return form(t, base, "chat.postMessage", vals("channel", "C1", "text", "x")) }
			tc.inject(s)
			// Other methods are unaffected.
			if r := form(t, base, "auth.test", vals()); !r.ok() {
				t.Fatalf("auth.test during fault = %v, want ok", r.body)
			}
			tc.check(t, post())
			tc.check(t, post())
			if r := post(); !r.ok() {
				t.Fatalf("after the faults: got %d %v, want ok", r.status, r.body)
			}
			if got := len(s.Posts()); got != 1 {
				t.Fatalf("posts = %d, want 1 (faulted calls must not be recorded)", got)
			}
			if got := s.Calls("chat.postMessage"); got != 3 {
				t.Fatalf("Calls = %d, want 3", got)
			}
		})
	}
}

func TestFaultsQueueInOrder(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	s.RateLimitNext("reactions.add", 1, 0)
	r := form(t, base, "reactions.add", vals("channel", "C1", "timestamp", "1.000001", "name", "x"))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Fatalf("got %d Retry-After=%q, want 429 with Retry-After at least 1", r.status, r.header.Get("Retry-After"))
	}
	s.FailNext("auth.test", 1, "a")
	s.FailHTTPNext("auth.test", 1, 502)
	s.FailNext("auth.test", 0, "ignored") // n <= 0 injects nothing
	if r := form(t, base, "auth.test", vals()); r.str("error") != "a" {
		t.Fatalf("first fault = %v, want error a", r.body)
	}
	if r := form(t, base, "auth.test", vals()); r.status != 502 {
		t.Fatalf("second fault status = %d, want 502", r.status)
	}
	if r := form(t, base, "auth.test", vals()); !r.ok() {
		t.Fatalf("third call = %v, want ok", r.body)
	}
}

// A fault comes before the scope check, as a failure on the way to Slack would.
func TestFaultBeforeScopes(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{Scopes: []string{}})
	s.FailHTTPNext("chat.postMessage", 1, 503)
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "x")); r.status != 503 {
		t.Fatalf("got %d %v, want the injected 503", r.status, r.body)
	}
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "x")); r.str("error") != "missing_scope" {
		t.Fatalf("got %v, want missing_scope", r.body)
	}
}

func TestResponseURL(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	u := s.ResponseURL("cmd-42")
	if !strings.HasPrefix(u, base+"response/") {
		t.Fatalf("ResponseURL = %q, want prefix %q", u, base+"response/")
	}
	send := func(body string) *http.Response {
		resp, err := http.Post(u, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := send(`{"text":"queued ✓","response_type":"ephemeral","replace_original":true}`); resp.StatusCode != 200 {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	for _, tc := range []struct{ name, body string }{
		{"no text", `{"response_type":"in_channel"}`},
		{"not json", `{"text":`},
		{"too long", `{"text":"` + strings.Repeat("x", MaxTextLength+1) + `"}`},
	} {
		if resp := send(tc.body); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status = %d, want 400", tc.name, resp.StatusCode)
		}
	}
	s.FailHTTPNext(ResponseURLMethod, 1, 500)
	if resp := send(`{"text":"x"}`); resp.StatusCode != 500 {
		t.Fatalf("faulted status = %d, want 500", resp.StatusCode)
	}
	posts := s.Posts()
	if len(posts) != 1 {
		t.Fatalf("posts = %+v, want 1", posts)
	}
	p := posts[0]
	if p.Method != ResponseURLMethod || p.ResponseID != "cmd-42" || p.Text != "queued ✓" ||
		p.ResponseType != "ephemeral" || !p.ReplaceOriginal {
		t.Fatalf("post = %+v, want the ephemeral replace_original post to cmd-42", p)
	}
	if got := s.Calls(ResponseURLMethod); got != 5 {
		t.Fatalf("Calls(response_url) = %d, want 5", got)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET response_url = %d, want 405", resp.StatusCode)
	}
}

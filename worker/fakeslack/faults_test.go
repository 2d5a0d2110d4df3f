package fakeslack

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
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

// Faults are per method and apply to the modal, stream and assistant methods like any other:
// the faulted call changes nothing, the next one goes through.
func TestFaultsOnNewMethods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method string
		args   func(s *Server, streamTS string) []string
		after  func(t *testing.T, s *Server, streamTS string)
	}{
		{"views.open", func(s *Server, _ string) []string {
			return []string{"trigger_id", s.NewTrigger(), "view", `{"type":"modal","title":{"type":"plain_text","text":"x"},"blocks":[]}`}
		}, func(t *testing.T, s *Server, _ string) {
			if n := len(s.Views()); n != 1 {
				t.Fatalf("views = %d, want the 1 opened after the faults", n)
			}
		}},
		{"chat.appendStream", func(_ *Server, ts string) []string {
			return []string{"channel", "D1", "ts", ts, "markdown_text", "x"}
		}, func(t *testing.T, s *Server, ts string) {
			if st, _ := s.Stream("D1", ts); st.Text != "x" || len(st.Calls) != 2 {
				t.Fatalf("stream = %+v, want one append recorded", st)
			}
		}},
		{"assistant.threads.setStatus", func(_ *Server, _ string) []string {
			return []string{"channel_id", "D1", "thread_ts", "1700000000.000100", "status", "busy"}
		}, func(t *testing.T, s *Server, _ string) {
			if th, _ := s.AssistantThread("D1", "1700000000.000100"); len(th.History) != 1 || th.Status != "busy" {
				t.Fatalf("thread = %+v, want one status change", th)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			s, base := newTest(t, Options{})
			start := form(t, base, "chat.startStream", vals("channel", "D1"))
			if !start.ok() {
				t.Fatalf("chat.startStream = %v", start.body)
			}
			s.FailNext(tc.method, 1, "internal_error")
			s.RateLimitNext(tc.method, 1, time.Second)
			s.FailHTTPNext(tc.method, 1, http.StatusBadGateway)
			for _, want := range []int{200, 429, 502} {
				r := form(t, base, tc.method, vals(tc.args(s, start.str("ts"))...))
				if r.status != want || r.ok() {
					t.Fatalf("faulted %s = %d %v, want status %d and not ok", tc.method, r.status, r.body, want)
				}
			}
			if r := form(t, base, tc.method, vals(tc.args(s, start.str("ts"))...)); !r.ok() {
				t.Fatalf("%s after the faults = %v, want ok", tc.method, r.body)
			}
			tc.after(t, s, start.str("ts"))
			if got := s.Calls(tc.method); got != 4 {
				t.Fatalf("Calls(%s) = %d, want 4", tc.method, got)
			}
		})
	}
}

// Options.RateLimits counts chat.postMessage per channel and other methods per method.
func TestRateLimitKeys(t *testing.T) {
	t.Parallel()
	clock := newClock()
	_, base := newTest(t, Options{Now: clock.Now, RateLimits: map[string]int{"chat.postMessage": 1, "auth.test": 1}})
	steps := []struct {
		method, channel string
		want            int
	}{
		{"chat.postMessage", "C1", http.StatusOK},
		{"chat.postMessage", "C1", http.StatusTooManyRequests},
		{"chat.postMessage", "C2", http.StatusOK},
		{"auth.test", "", http.StatusOK},
		{"auth.test", "", http.StatusTooManyRequests},
		{"reactions.add", "C1", http.StatusOK}, // not limited
		{"reactions.remove", "C1", http.StatusOK},
	}
	for i, st := range steps {
		r := form(t, base, st.method, vals("channel", st.channel, "text", "x", "timestamp", "1700000000.000100", "name", "eyes"))
		if r.status != st.want {
			t.Fatalf("step %d: %s in %q = %d %v, want %d", i, st.method, st.channel, r.status, r.body, st.want)
		}
		if r.status == http.StatusTooManyRequests && (r.header.Get("Retry-After") != "60" || r.str("error") != "ratelimited") {
			t.Fatalf("step %d: 429 with Retry-After %q %v, want Retry-After 60 and ratelimited", i, r.header.Get("Retry-After"), r.body)
		}
	}
	clock.Advance(time.Minute)
	if r := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "x")); r.status != http.StatusOK {
		t.Fatalf("chat.postMessage a minute later = %d %v, want 200", r.status, r.body)
	}
}

// A lost answer: Slack did the work, the client saw the connection close.
func TestLoseResponseNext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		method string
		// call makes one call of method with slack-go and returns its error.
		call func(api *slack.Client, s *Server, streamTS string) error
		// effect checks what n calls did, answers lost or not.
		effect func(t *testing.T, s *Server, streamTS string, n int)
	}{
		{"chat.postMessage", func(api *slack.Client, _ *Server, _ string) error {
			_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("answer", false))
			return err
		}, func(t *testing.T, s *Server, _ string, n int) {
			if got := len(s.Messages("C1")); got != n {
				t.Fatalf("C1 holds %d messages after %d posts, want every post there", got, n)
			}
		}},
		{"chat.appendStream", func(api *slack.Client, _ *Server, ts string) error {
			_, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText("x"))
			return err
		}, func(t *testing.T, s *Server, ts string, n int) {
			if st, _ := s.Stream("D1", ts); st.Text != strings.Repeat("x", n) {
				t.Fatalf("stream text %q after %d appends, want every append in it", st.Text, n)
			}
		}},
		{ResponseURLMethod, func(_ *slack.Client, s *Server, _ string) error {
			return slack.PostWebhookContext(ctx, s.ResponseURL("cmd-1"), &slack.WebhookMessage{Text: "done"})
		}, func(t *testing.T, s *Server, _ string, n int) {
			if got := len(s.Posts()); got != n {
				t.Fatalf("%d response_url posts recorded after %d posts, want every one", got, n)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			s, base := newTest(t, Options{})
			api := newAPI(s)
			_, ts, err := api.StartStreamContext(ctx, "D1")
			if err != nil {
				t.Fatal(err)
			}
			s.LoseResponseNext(tc.method, 1)
			if err := (&Client{BaseURL: base}).LoseResponse(ctx, tc.method, 1); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				err := tc.call(api, s, ts)
				if err == nil || slackErrCode(err) != "" {
					t.Fatalf("call %d with its answer lost: got %v, want a network error", i+1, err)
				}
				tc.effect(t, s, ts, i+1)
			}
			if err := tc.call(api, s, ts); err != nil {
				t.Fatalf("call after the lost answers: got %v, want ok", err)
			}
			tc.effect(t, s, ts, 3)
			if got := s.Calls(tc.method); got != 3 {
				t.Fatalf("Calls(%s) = %d, want 3", tc.method, got)
			}
		})
	}
}

package fakellm

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"
)

// Every control call changes the server as its Go counterpart does.
func TestClientDrivesTheServer(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{APIKey: testKey})
	c := &Client{BaseURL: base}
	ctx := context.Background()

	want := Pace{FirstToken: 250 * time.Millisecond, TokensPerSecond: 12.5, AnswerTokens: 9}
	if err := c.SetPace(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Pace(ctx); err != nil || got != want || s.Pace() != want {
		t.Errorf("pace over HTTP %+v (%v), in the server %+v; want %+v", got, err, s.Pace(), want)
	}
	if err := c.SetPace(ctx, Pace{}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name  string
		call  func() error
		fault string
		want  int
	}{
		{"ratelimit", func() error { return c.RateLimitNext(ctx, 1, 3*time.Second) }, FaultRateLimit, 429},
		{"failhttp", func() error { return c.FailHTTPNext(ctx, 1, 502) }, FaultHTTP, 502},
		{"disconnect", func() error { return c.DisconnectNext(ctx, 1, 2) }, FaultDisconnect, 200},
		{"truncate", func() error { return c.TruncateNext(ctx, 1, 2) }, FaultTruncate, 200},
		{"stall", func() error { return c.StallNext(ctx, 1, 1, 10*time.Millisecond) }, FaultStall, 200},
	}
	for _, st := range steps {
		if err := st.call(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		resp := post(t, base+"v1/chat/completions", chatBody(t, true, false, 0, Message{Role: "user", Content: st.name}))
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != st.want {
			t.Errorf("%s: status %d, want %d", st.name, resp.StatusCode, st.want)
		}
		if st.name == "ratelimit" && resp.Header.Get("Retry-After") != "3" {
			t.Errorf("Retry-After %q, want 3", resp.Header.Get("Retry-After"))
		}
	}
	reqs, err := c.Requests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var faults []string
	for _, r := range reqs {
		faults = append(faults, r.Fault)
	}
	if want := []string{FaultRateLimit, FaultHTTP, FaultDisconnect, FaultTruncate, FaultStall}; !cmp.Equal(faults, want) {
		t.Errorf("recorded faults %v, want %v", faults, want)
	}
	if diff := cmp.Diff([]Message{{Role: "user", Content: "ratelimit"}}, reqs[0].Messages); diff != "" {
		t.Errorf("recorded messages over HTTP (-want +got):\n%s", diff)
	}

	if err := c.FailHTTPNext(ctx, 3, 500); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	resp := post(t, base+"v1/chat/completions", chatBody(t, false, false, 0, Message{Role: "user", Content: "after reset"}))
	if reqs, _ := c.Requests(ctx); resp.StatusCode != 200 || len(reqs) != 1 {
		t.Errorf("after Reset: status %d with %d requests recorded, want 200 (no fault left) and 1", resp.StatusCode, len(reqs))
	}
}

// The script and the expected answers, over HTTP: what a test in another process needs to
// ask for a long or multi-byte answer and to know what it, or its continuation, will be.
func TestClientScriptAndAnswer(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	c := &Client{BaseURL: base}
	ctx := context.Background()
	const script = "Ünïcödé ✓ 東京 answers"
	if err := c.SetScript(ctx, script); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPace(ctx, Pace{AnswerTokens: 5000}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Script(ctx); err != nil || got != script || s.Script() != script {
		t.Errorf("script over HTTP %q (%v), in the server %q; want %q", got, err, s.Script(), script)
	}
	conv := []Message{{Role: "user", Content: "q"}}
	whole, err := c.AnswerText(ctx, conv, 0)
	if err != nil || whole != s.AnswerText(conv, 0) || !strings.HasPrefix(whole, script+" ") || len(whole) < 20000 {
		t.Fatalf("AnswerText over HTTP = %.60q… (%d bytes, %v), want the server's: the script filled up to 5000 tokens", whole, len(whole), err)
	}
	given := whole[:len("Ünïcödé ✓ 東")]
	rest, err := c.AnswerText(ctx, append(conv, Message{Role: "assistant", Content: given}), 3)
	if want := strings.Join(fakemodel.Words(whole[len(given):])[:3], ""); err != nil || rest != want {
		t.Errorf("AnswerText of a continuation over HTTP = %q (%v), want the 3 tokens after %q: %q", rest, err, given, want)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Script(ctx); got != "" {
		t.Errorf("script after Reset %q, want none", got)
	}
}

func TestControlRejectsBadRequests(t *testing.T) {
	t.Parallel()
	_, base := newTest(t, Options{})
	tests := []struct{ path, body, want string }{
		{"/_control/disconnect", `{`, "invalid_json"},
		{"/_control/pace", `[]`, "invalid_json"},
		{"/_control/pace", `{"tokens_per_second":-1}`, "negative_value"},
		{"/_control/failhttp", `{"status":200}`, "status_must_be_4xx_or_5xx"},
		{"/_control/script", `{"text":1}`, "invalid_json"},
		{"/_control/answer", `{"messages":{}}`, "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.body, func(t *testing.T) {
			t.Parallel()
			resp, err := http.Post(base+strings.TrimPrefix(tt.path, "/"), "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 400 || !strings.Contains(string(raw), tt.want) {
				t.Errorf("got %d %s, want 400 with %q", resp.StatusCode, raw, tt.want)
			}
		})
	}
	c := &Client{BaseURL: base}
	if err := c.FailHTTPNext(context.Background(), 1, 200); err == nil || !strings.Contains(err.Error(), "status_must_be_4xx_or_5xx") {
		t.Errorf("Client.FailHTTPNext(200) error = %v, want the server's refusal", err)
	}
}

package llm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

func TestRespond(t *testing.T) {
	t.Parallel()
	srv, c, metricsOut := setup(t, fakellm.Options{})
	c.System = "be brief"
	out, err := c.Respond(context.Background(), "what is 6 x 7?")
	if err != nil {
		t.Fatalf("Respond: %v", err)
	}
	sent := []fakellm.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "what is 6 x 7?"}}
	if want := srv.AnswerText(sent, 0); out != want {
		t.Errorf("Respond = %q, want %q", out, want)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Stream || reqs[0].Model != "test-model" || !cmp.Equal(reqs[0].Messages, sent) {
		t.Errorf("server saw %+v, want one unstreamed request with %v", reqs, sent)
	}
	if v := metricValues(t, metricsOut, "LLMTokens", map[string]string{"Kind": "completion"}); !cmp.Equal(v, []float64{fakellm.DefaultAnswerTokens}) {
		t.Errorf("LLMTokens completion = %v, want [%d]", v, fakellm.DefaultAnswerTokens)
	}
}

func TestRespondFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fault  func(*fakellm.Server)
		key    string
		class  failure.Class
		after  time.Duration
		status int
	}{
		{"429", func(s *fakellm.Server) { s.RateLimitNext(1, 12*time.Second) }, testKey, failure.RateLimited, 12 * time.Second, 0},
		{"500", func(s *fakellm.Server) { s.FailHTTPNext(1, 500) }, testKey, failure.Transient, 0, 500},
		{"400", func(s *fakellm.Server) { s.FailHTTPNext(1, 400) }, testKey, failure.Permanent, 0, 400},
		{"401", func(*fakellm.Server) {}, "sk-wrong-key", failure.Permanent, 0, 401},
		{"cut", func(s *fakellm.Server) { s.DisconnectNext(1, 0) }, testKey, failure.Transient, 0, 0},
		{"half an answer", func(s *fakellm.Server) { s.TruncateNext(1, 0) }, testKey, failure.Transient, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c, _ := setup(t, fakellm.Options{})
			tt.fault(srv)
			c.APIKey = func(context.Context) (string, error) { return tt.key, nil }
			_, err := c.Respond(context.Background(), "q")
			if err == nil {
				t.Fatal("Respond succeeded, want an error")
			}
			if class, after := failure.Classify(err); class != tt.class || after != tt.after {
				t.Errorf("error %q classified %v (after %v), want %v (after %v)", err, class, after, tt.class, tt.after)
			}
			var hs *failure.HTTPStatusError
			if tt.status != 0 && (!errors.As(err, &hs) || hs.Status != tt.status) {
				t.Errorf("error %q, want HTTP %d", err, tt.status)
			}
			noKey(t, "error", err.Error())
			if strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q holds the key sent", err)
			}
		})
	}
}

func TestAPIErrorCode(t *testing.T) {
	t.Parallel()
	tests := []struct{ typ, code, want string }{
		{"invalid_request_error", `"context_length_exceeded"`, "context_length_exceeded"},
		{"server_error", `null`, "server_error"},
		{"x", `"has spaces: and sk-123"`, ""},
		{"x", `42`, "x"},
		{"", `"` + strings.Repeat("a", 65) + `"`, ""},
	}
	for _, tt := range tests {
		if got := (&apiError{Type: tt.typ, Code: []byte(tt.code)}).code(); got != tt.want {
			t.Errorf("code of {type %q, code %s} = %q, want %q", tt.typ, tt.code, got, tt.want)
		}
	}
}

package llm

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/logbuf"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// collect is an onDelta that keeps the pieces.
type collect struct{ pieces []string }

func (c *collect) add(s string) error { c.pieces = append(c.pieces, s); return nil }

func TestStreamWholeAnswer(t *testing.T) {
	t.Parallel()
	srv, c, metricsOut := setup(t, fakellm.Options{Pace: fakellm.Pace{FirstToken: 20 * time.Millisecond, TokensPerSecond: 500, AnswerTokens: 40}})
	c.System = "default system prompt"
	var logs logbuf.Buffer
	earlier := []Turn{{Text: "how do I deploy?"}, {Text: "Run make deploy.", FromBot: true}}
	msgs, _ := History(earlier, "and to roll back?", 10000)
	req := Request{System: "answer in Slack", Messages: msgs, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	var got collect
	res, err := c.Stream(context.Background(), req, got.add)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}

	sent := append([]Message{{RoleSystem, "answer in Slack"}}, msgs...)
	want := srv.AnswerText(toLocal(sent), 0)
	if res.Text != want || strings.Join(got.pieces, "") != want || len(got.pieces) != 40 {
		t.Errorf("Result.Text %q, %d pieces joining to %q; want 40 pieces of %q", res.Text, len(got.pieces), strings.Join(got.pieces, ""), want)
	}
	for i, p := range got.pieces {
		if p == "" {
			t.Errorf("piece %d is empty", i)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || !reqs[0].Stream || !reqs[0].IncludeUsage || reqs[0].Model != "test-model" {
		t.Fatalf("server saw %+v, want one streamed request for test-model with include_usage", reqs)
	}
	if diff := cmp.Diff(toLocal(sent), reqs[0].Messages); diff != "" {
		t.Errorf("messages the server received (-want +got):\n%s", diff)
	}
	wantUsage := Usage{PromptTokens: (3 + 3) + (3 + 4) + (3 + 3) + (3 + 4), CompletionTokens: 40} // 3 a message, plus its words
	wantUsage.TotalTokens = wantUsage.PromptTokens + 40
	if res.Usage != wantUsage || res.FinishReason != "stop" || res.Model != "test-model" {
		t.Errorf("usage %+v, finish %q, model %q; want %+v, stop, test-model", res.Usage, res.FinishReason, res.Model, wantUsage)
	}
	if res.FirstToken < 20*time.Millisecond || res.Duration < res.FirstToken {
		t.Errorf("first token after %v, whole answer after %v; want ≥ 20ms (the server's pace) and the first ≤ the whole", res.FirstToken, res.Duration)
	}

	model := map[string]string{"Model": "test-model"}
	if v := metricValues(t, metricsOut, "LLMTokens", map[string]string{"Model": "test-model", "Kind": "prompt"}); !cmp.Equal(v, []float64{float64(wantUsage.PromptTokens)}) {
		t.Errorf("LLMTokens prompt = %v, want [%d]", v, wantUsage.PromptTokens)
	}
	if v := metricValues(t, metricsOut, "LLMTokens", map[string]string{"Model": "test-model", "Kind": "completion"}); !cmp.Equal(v, []float64{40}) {
		t.Errorf("LLMTokens completion = %v, want [40]", v)
	}
	if v := metricValues(t, metricsOut, "LLMTimeToFirstToken", model); len(v) != 1 || v[0] < 20 {
		t.Errorf("LLMTimeToFirstToken = %v, want one value ≥ 20 ms", v)
	}
	if v := metricValues(t, metricsOut, "LLMDuration", model); len(v) != 1 {
		t.Errorf("LLMDuration = %v, want one value", v)
	}
	line := logs.String()
	for _, want := range []string{`"msg":"llm answer"`, `"prompt_tokens":26`, `"completion_tokens":40`, `"total_tokens":66`, `"usage_reported":true`, `"first_token_ms":`, `"finish_reason":"stop"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log %s lacks %s", line, want)
		}
	}
	noKey(t, "log", line)
	noKey(t, "metrics", metricsOut.String())
}

func TestStreamMaxTokens(t *testing.T) {
	t.Parallel()
	_, c, _ := setup(t, fakellm.Options{})
	res, err := c.Stream(context.Background(), Request{Messages: []Message{{RoleUser, "q"}}, MaxTokens: 4}, func(string) error { return nil })
	if err != nil || res.FinishReason != "length" || res.Usage.CompletionTokens != 4 {
		t.Errorf("got %+v, %v; want finish length after 4 tokens", res, err)
	}
}

// streamFailure runs one stream that must fail and returns the error and the Result.
func streamFailure(t *testing.T, c *Chat, ctx context.Context) (error, Result, []string) {
	t.Helper()
	var got collect
	res, err := c.Stream(ctx, Request{Messages: []Message{{RoleUser, "q"}}}, got.add)
	if err == nil {
		t.Fatalf("Stream succeeded with %q, want an error", res.Text)
	}
	noKey(t, "error", err.Error())
	return err, res, got.pieces
}

func TestStreamFailures(t *testing.T) {
	t.Parallel()
	// a token of the generated answer is a word with its space; 5 tokens are the answer's
	// first 5 words.
	firstTokens := func(srv *fakellm.Server, n int) string {
		return srv.AnswerText([]fakellm.Message{{Role: "user", Content: "q"}}, n)
	}
	tests := []struct {
		name     string
		pace     fakellm.Pace
		fault    func(*fakellm.Server)
		chat     func(*Chat)
		ctx      time.Duration
		is       []error
		class    failure.Class
		after    time.Duration
		received int // tokens that arrive before the failure
		reason   string
	}{
		{name: "first token timeout", fault: func(s *fakellm.Server) { s.StallNext(1, 0, 3*time.Second) },
			chat: func(c *Chat) { c.FirstTokenTimeout = 100 * time.Millisecond },
			is:   []error{ErrFirstTokenTimeout}, class: failure.Transient, reason: "first_token_timeout"},
		{name: "idle timeout", fault: func(s *fakellm.Server) { s.StallNext(1, 5, 3*time.Second) },
			chat: func(c *Chat) { c.IdleTimeout = 100 * time.Millisecond },
			is:   []error{ErrIdleTimeout}, class: failure.Transient, received: 5, reason: "idle_timeout"},
		{name: "deadline", pace: fakellm.Pace{TokensPerSecond: 20, AnswerTokens: 100}, ctx: 300 * time.Millisecond,
			is: []error{ErrDeadline, context.DeadlineExceeded}, class: failure.Transient, received: -1, reason: "deadline"},
		{name: "disconnect", fault: func(s *fakellm.Server) { s.DisconnectNext(1, 7) },
			is: []error{ErrStreamCut}, class: failure.Transient, received: 7, reason: "cut"},
		{name: "disconnect before the first token", fault: func(s *fakellm.Server) { s.DisconnectNext(1, 0) },
			is: []error{ErrStreamCut}, class: failure.Transient, reason: "cut"},
		{name: "end without done", fault: func(s *fakellm.Server) { s.TruncateNext(1, 3) },
			is: []error{ErrStreamCut}, class: failure.Transient, received: 3, reason: "cut"},
		{name: "429", fault: func(s *fakellm.Server) { s.RateLimitNext(1, 7*time.Second) },
			class: failure.RateLimited, after: 7 * time.Second, reason: "rate_limited"},
		{name: "500", fault: func(s *fakellm.Server) { s.FailHTTPNext(1, 500) },
			class: failure.Transient, reason: "http_500"},
		{name: "401", chat: func(c *Chat) { c.APIKey = func(context.Context) (string, error) { return "sk-wrong-key", nil } },
			class: failure.Permanent, reason: "http_401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c, metricsOut := setup(t, fakellm.Options{Pace: tt.pace})
			if tt.fault != nil {
				tt.fault(srv)
			}
			if tt.chat != nil {
				tt.chat(c)
			}
			ctx := context.Background()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			err, res, pieces := streamFailure(t, c, ctx)
			checkFailedStream(t, failedStream{model: "test-model", is: tt.is, class: tt.class, after: tt.after, received: tt.received, reason: tt.reason},
				err, res, pieces, metricsOut, func(n int) string { return firstTokens(srv, n) })
		})
	}
}

// A 401 names the API's error code, never the key or the API's message.
func TestStreamRefusalNamesTheCode(t *testing.T) {
	t.Parallel()
	_, c, _ := setup(t, fakellm.Options{})
	c.APIKey = func(context.Context) (string, error) { return "sk-wrong-key", nil }
	err, _, _ := streamFailure(t, c, context.Background())
	var hs *failure.HTTPStatusError
	if !errors.As(err, &hs) || hs.Status != 401 || !strings.Contains(err.Error(), "invalid_api_key") || strings.Contains(err.Error(), "sk-wrong-key") {
		t.Errorf("error %q, want HTTP 401 naming invalid_api_key without the key", err)
	}
}

// An error from onDelta stops the stream and keeps its own class.
func TestStreamOnDeltaError(t *testing.T) {
	t.Parallel()
	srv, c, _ := setup(t, fakellm.Options{})
	stop := failure.Permanentf("slack said no")
	calls := 0
	res, err := c.Stream(context.Background(), Request{Messages: []Message{{RoleUser, "q"}}}, func(string) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("error %v after %d calls, want the onDelta error after 3", err, calls)
	}
	if class, _ := failure.Classify(err); class != failure.Permanent {
		t.Errorf("classified %v, want permanent (onDelta's own class)", class)
	}
	if want := srv.AnswerText([]fakellm.Message{{Role: "user", Content: "q"}}, 3); res.Text != want {
		t.Errorf("Result.Text %q, want the 3 pieces given to onDelta, %q", res.Text, want)
	}
}

// The idle timeout counts only waiting for the server: a slow onDelta (a Slack call) does
// not trip it.
func TestStreamIdleExcludesOnDelta(t *testing.T) {
	t.Parallel()
	_, c, _ := setup(t, fakellm.Options{Pace: fakellm.Pace{AnswerTokens: 4}})
	c.IdleTimeout = 50 * time.Millisecond
	res, err := c.Stream(context.Background(), Request{Messages: []Message{{RoleUser, "q"}}}, func(string) error {
		time.Sleep(120 * time.Millisecond)
		return nil
	})
	if err != nil || res.Usage.CompletionTokens != 4 {
		t.Errorf("got %+v, %v; want the whole answer", res, err)
	}
}

// A server that does not stream answers JSON: the whole text reaches onDelta at once.
func TestStreamFromAServerThatDoesNotStream(t *testing.T) {
	t.Parallel()
	srv, c, metricsOut := setup(t, fakellm.Options{NoStreaming: true, Pace: fakellm.Pace{AnswerTokens: 9}})
	var got collect
	res, err := c.Stream(context.Background(), Request{Messages: []Message{{RoleUser, "q"}}}, got.add)
	want := srv.AnswerText([]fakellm.Message{{Role: "user", Content: "q"}}, 0)
	if err != nil || res.Text != want || !cmp.Equal(got.pieces, []string{want}) || res.Usage.CompletionTokens != 9 {
		t.Errorf("got %+v, pieces %q, %v; want %q in one piece with its usage", res, got.pieces, err, want)
	}
	if v := metricValues(t, metricsOut, "LLMTokens", map[string]string{"Kind": "completion"}); !cmp.Equal(v, []float64{9}) {
		t.Errorf("LLMTokens completion = %v, want [9]", v)
	}
}

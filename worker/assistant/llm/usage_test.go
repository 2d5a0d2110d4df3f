package llm

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
)

// The chat client reads the cached prompt tokens OpenAI reports
// (usage.prompt_tokens_details.cached_tokens, part of prompt_tokens), streamed or not, set on
// the stand-in through its control API; they go to the Result, the metrics and the log line.
func TestChatReadsCachedTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		noStreaming bool
		cached      int
		want        int // the cached tokens reported: at most the prompt's
	}{
		{"streamed", false, 5, 5},
		{"a JSON answer", true, 5, 5},
		{"more than the prompt", false, 1000, 7},
		{"none", false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, c, metricsOut := setup(t, fakellm.Options{NoStreaming: tc.noStreaming, Pace: fakellm.Pace{AnswerTokens: 7}})
			ctl := &fakellm.Client{BaseURL: srv.URL()}
			if err := ctl.SetCachedTokens(context.Background(), tc.cached); err != nil {
				t.Fatalf("SetCachedTokens over the control API: %v", err)
			}
			var logs logbuf.Buffer
			msgs := []Message{{Role: RoleUser, Content: "what does caching save?"}}
			res, err := c.Stream(context.Background(), Request{Messages: msgs, Log: slog.New(slog.NewJSONHandler(&logs, nil))}, func(string) error { return nil })
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			prompt := 3 + 4 // the stand-in's count: 3 a message, plus its words
			want := Usage{PromptTokens: prompt, CompletionTokens: 7, TotalTokens: prompt + 7, CacheReadTokens: tc.want}
			if res.Usage != want {
				t.Errorf("usage %+v, want %+v", res.Usage, want)
			}
			v := metricValues(t, metricsOut, "LLMTokens", map[string]string{"Model": "test-model", "Kind": "cache_read"})
			if tc.want > 0 && !cmp.Equal(v, []float64{float64(tc.want)}) || tc.want == 0 && len(v) != 0 {
				t.Errorf("LLMTokens{Kind=cache_read} = %v, want %d (none when 0)", v, tc.want)
			}
			if want := `"cache_read_tokens":` + strconv.Itoa(tc.want); !strings.Contains(logs.String(), want) {
				t.Errorf("log line lacks %s:\n%s", want, logs.String())
			}
		})
	}
}

// The agents' turns carry the cache's tokens apart and the time the model took, from both
// stand-ins: chat completions count cached tokens inside prompt_tokens; Bedrock leaves them
// out of inputTokens, so the turn's InputTokens adds them back.
func TestAgentTurnsCarryCacheTokensAndModelTime(t *testing.T) {
	t.Parallel()
	pace := fakellm.Pace{FirstToken: 30 * time.Millisecond, TokensPerSecond: 1000, AnswerTokens: 6}
	req := agent.TurnRequest{Messages: []agent.Message{{Role: "user", Text: "summarise the incident"}}}

	t.Run("chat", func(t *testing.T) {
		t.Parallel()
		srv, c, _ := setup(t, fakellm.Options{Pace: pace})
		srv.SetCachedTokens(4)
		turn, err := c.Agent().Turn(context.Background(), req, func(string) error { return nil })
		if err != nil {
			t.Fatalf("Turn: %v", err)
		}
		prompt := 3 + 3
		if turn.InputTokens != prompt || turn.CachedTokens != 4 || turn.CacheWriteTokens != 0 || turn.OutputTokens != 6 {
			t.Errorf("turn input %d (cached %d, written %d), output %d; want %d (4, 0), 6", turn.InputTokens, turn.CachedTokens, turn.CacheWriteTokens, turn.OutputTokens, prompt)
		}
		if turn.ModelMillis < 30 {
			t.Errorf("turn's model time %d ms, want at least the stand-in's 30 ms to the first token", turn.ModelMillis)
		}
	})

	t.Run("bedrock", func(t *testing.T) {
		t.Parallel()
		srv, b, _ := setupBedrock(t, fakebedrock.Options{Pace: pace})
		ctl := &fakebedrock.Client{BaseURL: srv.URL()}
		if err := ctl.SetCacheTokens(context.Background(), 200, 50); err != nil {
			t.Fatalf("SetCacheTokens over the control API: %v", err)
		}
		turn, err := b.Agent().Turn(context.Background(), req, func(string) error { return nil })
		if err != nil {
			t.Fatalf("Turn: %v", err)
		}
		reqs := srv.Requests()
		if len(reqs) != 1 {
			t.Fatalf("the stand-in saw %d requests, want 1", len(reqs))
		}
		input := 3 + 3 // inputTokens as the stand-in counts the one message
		if turn.InputTokens != input+200+50 || turn.CachedTokens != 200 || turn.CacheWriteTokens != 50 || turn.OutputTokens != 6 {
			t.Errorf("turn input %d (cached %d, written %d), output %d; want %d (200, 50), 6", turn.InputTokens, turn.CachedTokens, turn.CacheWriteTokens, turn.OutputTokens, input+250)
		}
		if turn.ModelMillis < 30 {
			t.Errorf("turn's model time %d ms, want at least the stand-in's 30 ms to the first token", turn.ModelMillis)
		}
		// Reset goes back to Options: no cache tokens.
		srv.Reset()
		turn, err = b.Agent().Turn(context.Background(), req, func(string) error { return nil })
		if err != nil || turn.CachedTokens != 0 || turn.CacheWriteTokens != 0 || turn.InputTokens != input {
			t.Errorf("after Reset: turn %+v, %v; want no cache tokens", turn, err)
		}
	})
}

// The stand-ins' control APIs refuse negative cache tokens.
func TestCacheControlRefusesNegativeTokens(t *testing.T) {
	t.Parallel()
	llmSrv, _, _ := setup(t, fakellm.Options{})
	if err := (&fakellm.Client{BaseURL: llmSrv.URL()}).SetCachedTokens(context.Background(), -1); err == nil {
		t.Error("fakellm accepted -1 cached tokens")
	}
	brSrv, _, _ := setupBedrock(t, fakebedrock.Options{})
	if err := (&fakebedrock.Client{BaseURL: brSrv.URL()}).SetCacheTokens(context.Background(), 1, -1); err == nil {
		t.Error("fakebedrock accepted -1 cache write tokens")
	}
}

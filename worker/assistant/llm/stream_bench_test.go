package llm

import (
	"context"
	"testing"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
)

// BenchmarkStreamLocal: one streamed answer of 1,000 tokens from the local server as fast
// as it writes, through the real HTTP stack (the client's cost per token, plus the server's).
func BenchmarkStreamLocal(b *testing.B) {
	_, c, _ := setup(b, fakellm.Options{Pace: fakellm.Pace{AnswerTokens: 1000}})
	c.Metrics = nil
	req := Request{Messages: []Message{{RoleUser, "benchmark"}}}
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Stream(context.Background(), req, func(string) error { return nil })
		if err != nil || res.Usage.CompletionTokens != 1000 {
			b.Fatalf("got %d tokens, %v", res.Usage.CompletionTokens, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/token")
}

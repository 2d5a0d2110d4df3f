package assistant

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// BenchmarkFirstVisibleText measures what the worker adds to the model's time to first token
// before the first text shows in Slack, for each provider on its stand-in: a DM is delivered to
// the shipped bot (the real client, the stand-in answering after a 50 ms time to first token),
// and the figures are the p50 and p99 over the iterations of
//
//   - over_ttft: chat.startStream carrying the first text, minus the delivery's start, minus
//     the 50 ms (the handler's work before the call: the status, the system prompt, the
//     request; then decoding, the relay stream writer, its journal write, the Slack call);
//   - after_first_token (Bedrock, whose stand-in stamps its first contentBlockDelta):
//     chat.startStream minus the moment the stand-in wrote its first text.
//
// Run: go test ./assistant -run '^$' -bench FirstVisibleText -benchtime 200x
func BenchmarkFirstVisibleText(b *testing.B) {
	const ttft = 50 * time.Millisecond
	raw, err := readFile("testdata/message_im.json")
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, h *relaytest.Harness, firstChunk func() time.Time) {
		var afterFirst, overTTFT []time.Duration
		i := 0
		for b.Loop() {
			i++
			ts := fmt.Sprintf("1515449600.%06d", 100+i)
			body := strings.NewReplacer("1515449600.000100", ts, "Ev0DM", fmt.Sprintf("Ev0DM%d", i)).Replace(raw)
			start := time.Now()
			got := h.DeliverBody(b, "message_im.json", body)
			if got.Err != nil || got.Runs != 1 {
				b.Fatalf("delivery %d: err=%v runs=%d", i, got.Err, got.Runs)
			}
			streams := h.Slack.Streams()
			st := streams[len(streams)-1]
			if st.ThreadTS != ts {
				b.Fatalf("delivery %d: stream in thread %s", i, st.ThreadTS)
			}
			overTTFT = append(overTTFT, st.StartedAt.Sub(start)-ttft)
			if firstChunk != nil {
				afterFirst = append(afterFirst, st.StartedAt.Sub(firstChunk()))
			}
		}
		report := func(name string, d []time.Duration) {
			if len(d) == 0 {
				return
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, name+"_p50_ms")
			b.ReportMetric(float64(d[min(len(d)-1, len(d)*99/100)].Microseconds())/1000, name+"_p99_ms")
		}
		report("after_first_token", afterFirst)
		report("over_ttft", overTTFT)
	}
	b.Run("provider=bedrock", func(b *testing.B) {
		h, srv, _ := bedrockBot(b, fakebedrock.Options{Pace: fakebedrock.Pace{FirstToken: ttft, AnswerTokens: 5}})
		run(b, h, func() time.Time {
			reqs := srv.Requests()
			return reqs[len(reqs)-1].FirstChunkAt
		})
	})
	b.Run("provider=openai", func(b *testing.B) {
		srv := fakellm.New(fakellm.Options{Pace: fakellm.Pace{FirstToken: ttft, AnswerTokens: 5}})
		if _, err := srv.Start(""); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = srv.Close() })
		vars := map[string]string{EnvLLMProvider: "openai", EnvLLMBaseURL: srv.APIURL(), EnvLLMAPIKey: "sk-local", EnvLLMModel: "local-model"}
		setup := &worker.Setup{Getenv: func(k string) string { return vars[k] }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Metrics: metrics.New(io.Discard, "slackrelay/worker")}
		h := relaytest.New(b, func(r *relay.Router) {
			if err := New(r, setup); err != nil {
				b.Fatalf("New: %v", err)
			}
		})
		run(b, h, nil)
	})
}

package assistant

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
)

// BenchmarkBedrockFirstVisibleText measures what the worker adds to the model's time to first
// token before the first text shows in Slack: a DM is delivered to the shipped bot on Bedrock
// (the real SDK client, the stand-in answering after a 50 ms time to first token), and the
// figures are the p50 and p99 over the iterations of
//
//   - after_first_token: chat.startStream carrying the first text, minus the moment the
//     stand-in wrote its first contentBlockDelta (decoding, the relay stream writer, its
//     journal write, the Slack call);
//   - over_ttft: chat.startStream minus the delivery's start, minus the 50 ms (also the
//     handler's work before the call: the status, the system prompt, the request itself).
//
// Run: go test ./assistant -run '^$' -bench BedrockFirstVisibleText -benchtime 200x
func BenchmarkBedrockFirstVisibleText(b *testing.B) {
	const ttft = 50 * time.Millisecond
	h, srv, _ := bedrockBot(b, fakebedrock.Options{Pace: fakebedrock.Pace{FirstToken: ttft, AnswerTokens: 5}})
	raw, err := readFile("testdata/message_im.json")
	if err != nil {
		b.Fatal(err)
	}
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
		streams, reqs := h.Slack.Streams(), srv.Requests()
		st, req := streams[len(streams)-1], reqs[len(reqs)-1]
		if st.ThreadTS != ts || req.FirstChunkAt.IsZero() {
			b.Fatalf("delivery %d: stream in thread %s, first chunk at %v", i, st.ThreadTS, req.FirstChunkAt)
		}
		afterFirst = append(afterFirst, st.StartedAt.Sub(req.FirstChunkAt))
		overTTFT = append(overTTFT, st.StartedAt.Sub(start)-ttft)
	}
	report := func(name string, d []time.Duration) {
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, name+"_p50_ms")
		b.ReportMetric(float64(d[min(len(d)-1, len(d)*99/100)].Microseconds())/1000, name+"_p99_ms")
	}
	report("after_first_token", afterFirst)
	report("over_ttft", overTTFT)
}

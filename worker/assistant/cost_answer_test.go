package assistant

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// testPrices prices the model behind bedrockModel (an inference profile: eu.anthropic.…).
const testPrices = `{"anthropic.claude-test-v1:0": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}}`

// inputOf is the stand-in's count of a request's input tokens (its inputTokens, without the
// cache's): 3 a system block or message, plus its words.
func inputOf(r fakebedrock.Request) int {
	n := 0
	for _, s := range r.System {
		n += 3 + len(strings.Fields(s))
	}
	for _, m := range r.Messages {
		n += 3
		for _, t := range m.Texts {
			n += len(strings.Fields(t))
		}
	}
	return n
}

// imAnswer is the DM fixture as another message (its own event id and ts, so its own answer).
func imAnswer(t *testing.T, n string) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/message_im.json")
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("Ev0DM", "Ev0DM"+n, "1515449600.000100", "1515449600.00010"+n).Replace(string(raw))
}

// A DM answered on Bedrock keeps what it cost on its record: the stand-in's tokens (the
// cache's apart), the model time, the cost from LLM_PRICES under the model behind the
// inference profile; and counts its tokens towards the workspace's day.
func TestAnswerOnBedrockKeepsItsCost(t *testing.T) {
	t.Parallel()
	h, srv, metricsOut := bedrockBot(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 30, TokensPerSecond: 2000}, CacheReadTokens: 100, CacheWriteTokens: 20},
		EnvLLMPrices, testPrices, EnvLLMTokenBudget, "1000000")
	got := h.Deliver(t, "testdata/message_im.json")
	if got.Err != nil || got.Runs != 1 || got.Usage == nil {
		t.Fatalf("err=%v runs=%d usage=%+v, want one run and the usage on the record", got.Err, got.Runs, got.Usage)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d Bedrock calls, want 1", len(reqs))
	}
	input := inputOf(reqs[0]) + 100 + 20
	u := *got.Usage
	cost := float64(input-120)*3/1e6 + 100*0.3/1e6 + 20*3.75/1e6 + 30*15/1e6
	if u.CostUSD == nil || *u.CostUSD < cost-1e-6 || *u.CostUSD > cost+1e-6 {
		t.Errorf("cost %v, want %.6f", u.CostUSD, cost)
	}
	u.CostUSD, u.ModelTime = nil, 0
	want := relay.Usage{Model: bedrockModel, Team: "T0001", InputTokens: input, CachedTokens: 100, CacheWriteTokens: 20, OutputTokens: 30, ModelCalls: 1}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("usage on the record (-want +got):\n%s", diff)
	}
	if n := h.DailyCount("T0001", tokensCounter); n != int64(input+30) {
		t.Errorf("T0001's tokens today = %d, want %d", n, input+30)
	}
	if !strings.Contains(metricsOut.String(), `"EstimatedCostUSD":`) || !strings.Contains(metricsOut.String(), `"Team":"T0001"`) {
		t.Errorf("no cost metrics per model and team:\n%s", metricsOut)
	}
	if !strings.Contains(h.Logs(), `"msg":"answer cost"`) {
		t.Errorf("no answer cost line:\n%s", h.Logs())
	}
}

// Over the daily token budget, a question gets the notice and the model is not asked; a
// stream error mid-answer before that is resumed and the answer counted once.
func TestAnswerOverTheBudgetGetsTheNoticeWithoutAModelCall(t *testing.T) {
	t.Parallel()
	h, srv, metricsOut := bedrockBot(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 40, TokensPerSecond: 2000}},
		EnvLLMPrices, testPrices, EnvLLMTokenBudget, "50")
	srv.StreamExceptionNext(1, 20, "")
	first := h.DeliverBody(t, "im.json", imAnswer(t, "1"))
	if first.Err != nil || first.Runs != 2 || first.Usage == nil || first.Usage.ModelCalls != 1 {
		t.Fatalf("first: err=%v runs=%d usage=%+v, want answered on the second run with the resumed call's usage", first.Err, first.Runs, first.Usage)
	}
	calls := len(srv.Requests())
	used := h.DailyCount("T0001", tokensCounter)
	if used < 50 || used != int64(first.Usage.InputTokens+first.Usage.OutputTokens) {
		t.Fatalf("tokens today %d, want the first answer's %d, at least the budget of 50", used, first.Usage.InputTokens+first.Usage.OutputTokens)
	}

	refused := h.DeliverBody(t, "im.json", imAnswer(t, "2"))
	if refused.Err != nil || len(refused.Posts) != 1 || refused.Posts[0].Text != budgetNotice || refused.Usage != nil {
		t.Fatalf("over the budget: err=%v posts=%+v usage=%+v; want the notice alone, no usage", refused.Err, refused.Posts, refused.Usage)
	}
	if n := len(srv.Requests()); n != calls {
		t.Errorf("the stand-in got %d more calls; want none over the budget", n-calls)
	}
	if n := h.DailyCount("T0001", tokensCounter); n != used {
		t.Errorf("tokens today after the notice = %d, want %d", n, used)
	}
	if !strings.Contains(metricsOut.String(), `"BudgetRefusals":1`) {
		t.Errorf("no BudgetRefusals metric:\n%s", metricsOut)
	}
	// A redelivery of the refused question does not post the notice again.
	if again := h.Redeliver(t, refused); !again.Duplicate || len(again.Posts) != 0 {
		t.Errorf("redelivery: %+v, want a duplicate with nothing posted", again)
	}
}

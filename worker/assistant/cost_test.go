package assistant

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/shared/config/configtest"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

func TestParsePrices(t *testing.T) {
	t.Parallel()
	got, err := ParsePrices(`{"anthropic.claude-3-5-haiku-20241022-v1:0": {"input": 0.8, "output": 4, "cache_read": 0.08, "cache_write": 1},
		"gpt-4o-mini": {"input": 0.15, "output": 0.6, "cache_read": 0.075},
		"free-local": {"input": 0, "output": 0}}`)
	if err != nil {
		t.Fatalf("ParsePrices: %v", err)
	}
	want := Prices{
		"anthropic.claude-3-5-haiku-20241022-v1:0": {Input: 0.8, Output: 4, CacheRead: 0.08, CacheWrite: 1},
		"gpt-4o-mini": {Input: 0.15, Output: 0.6, CacheRead: 0.075, CacheWrite: 0.15}, // cache writes at the input price
		"free-local":  {},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("prices (-want +got):\n%s", diff)
	}
	if p, err := ParsePrices("  "); err != nil || p != nil {
		t.Errorf("ParsePrices of nothing = %v, %v; want an empty table", p, err)
	}
	for _, tc := range []struct{ name, text string }{
		{"not JSON", `{"m": `},
		{"not an object", `[1, 2]`},
		{"output missing", `{"m": {"input": 1}}`},
		{"negative", `{"m": {"input": 1, "output": -2}}`},
		{"a misspelt field", `{"m": {"input": 1, "output": 2, "cached": 0.1}}`},
		{"a price that is not a number", `{"m": {"input": "1", "output": 2}}`},
		{"an empty model", `{"": {"input": 1, "output": 2}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if p, err := ParsePrices(tc.text); err == nil {
				t.Errorf("ParsePrices(%s) = %v, want an error", tc.text, p)
			}
		})
	}
	// Every mistake at once, each naming its model.
	_, err = ParsePrices(`{"b": {"input": -1, "output": 1}, "a": {"output": 1}, "ok": {"input": 1, "output": 1}}`)
	if err == nil || !strings.Contains(err.Error(), "a: input and output are required") || !strings.Contains(err.Error(), "b: input is negative (-1)") || strings.Contains(err.Error(), "ok") {
		t.Errorf("errors = %v, want a's and b's, each by name, and nothing of ok", err)
	}
}

// A model is found by its own name, the id inside an ARN, or the model behind a cross-Region
// inference profile.
func TestPricesFind(t *testing.T) {
	t.Parallel()
	haiku := Price{Input: 0.8, Output: 4, CacheRead: 0.08, CacheWrite: 1}
	app := Price{Input: 3, Output: 15, CacheRead: 3, CacheWrite: 3}
	us := Price{Input: 0.9, Output: 4.4, CacheRead: 0.09, CacheWrite: 1.1}
	mini := Price{Input: 0.4, Output: 1.6, CacheRead: 0.1, CacheWrite: 0.4}
	p := Prices{
		"anthropic.claude-3-5-haiku-20241022-v1:0":      haiku,
		"apac.anthropic.claude-3-5-haiku-20241022-v1:0": us, // a profile priced on its own
		"gpt-4.1-mini": mini,
		"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234ef": app,
	}
	for _, tc := range []struct {
		model string
		want  *Price
	}{
		{"anthropic.claude-3-5-haiku-20241022-v1:0", &haiku},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", &haiku},
		{"global.anthropic.claude-3-5-haiku-20241022-v1:0", &haiku},
		{"apac.anthropic.claude-3-5-haiku-20241022-v1:0", &us},
		{"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0", &haiku},
		{"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-5-haiku-20241022-v1:0", &haiku},
		{"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcd1234ef", &app},
		{"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/other", nil},
		{"gpt-4.1-mini", &mini},
		{"anthropic.claude-3-7-sonnet-20250219-v1:0", nil},
		{"us.claude", nil},
		{"", nil},
	} {
		got, ok := p.Find(tc.model)
		if tc.want == nil && ok || tc.want != nil && (!ok || got != *tc.want) {
			t.Errorf("Find(%q) = %+v, %v; want %+v", tc.model, got, ok, tc.want)
		}
	}
	if _, ok := Prices(nil).Find("gpt-4o-mini"); ok {
		t.Error("an empty table priced a model")
	}
}

func TestPriceCost(t *testing.T) {
	t.Parallel()
	haiku := Price{Input: 0.8, Output: 4, CacheRead: 0.08, CacheWrite: 1}
	for _, tc := range []struct {
		name                             string
		price                            Price
		input, output, cached, cacheWrit int
		want                             float64
	}{
		{"plain", haiku, 1000, 500, 0, 0, 0.0028},                                // 1000×0.8 + 500×4 = 2800 µ$
		{"cached tokens at their own price", haiku, 1000, 500, 900, 0, 0.002152}, // 100×0.8 + 900×0.08 + 500×4
		{"cache writes at theirs", haiku, 1000, 0, 0, 1000, 0.001},
		{"all three", haiku, 10_000, 1000, 6000, 3000, 0.00828},                           // 1000×0.8 + 6000×0.08 + 3000×1 + 1000×4 = 8280 µ$
		{"rounded to a millionth", Price{Input: 0.15, Output: 0.6}, 3, 1, 0, 0, 0.000001}, // 0.45 + 0.6 = 1.05 µ$
		{"half a millionth rounds up", Price{Input: 0.5}, 1, 0, 0, 0, 0.000001},
		{"under half rounds down", Price{Input: 0.4}, 1, 0, 0, 0, 0},
		{"a cache larger than the input is not negative", haiku, 100, 0, 300, 0, 0.000024},
		{"nothing", haiku, 0, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.price.Cost(tc.input, tc.output, tc.cached, tc.cacheWrit); got != tc.want {
				t.Errorf("Cost(%d in, %d out, %d cached, %d written) = %v, want %v", tc.input, tc.output, tc.cached, tc.cacheWrit, got, tc.want)
			}
		})
	}
}

func TestLoadSettingsReadsPricesAndBudget(t *testing.T) {
	t.Parallel()
	s, err := LoadSettings(configtest.Env(EnvLLMPrices, `{"m": {"input": 1, "output": 2}}`, EnvLLMTokenBudget, "250000"), false)
	if err != nil || s.LLMDailyTokenBudget != 250000 || !cmp.Equal(s.LLMPrices, Prices{"m": {Input: 1, Output: 2, CacheRead: 1, CacheWrite: 1}}) {
		t.Errorf("LoadSettings = %+v, %v; want the table and a budget of 250000", s, err)
	}
	_, err = LoadSettings(configtest.Env(EnvLLMPrices, `{"m": {"input": 1}}`, EnvLLMTokenBudget, "-1", config.EnvLambdaRuntimeAPI, ""), false)
	if err == nil || !strings.Contains(err.Error(), "LLM_PRICES: m: input and output are required") || !strings.Contains(err.Error(), EnvLLMTokenBudget) {
		t.Errorf("LoadSettings with a bad table and a negative budget = %v, want both reported", err)
	}
}

// costBot answers a mention with a fixed usage through the bot's cost path: the budget check,
// a reply, the accounting.
type costBot struct {
	h       *handlers
	usage   agent.Usage
	answers int
	// failOnce fails the first run after the accounting; the next runs account nothing of
	// their own (as an agent that finds the answer written: no turns).
	failOnce bool
	runs     int
}

func (b *costBot) register(r *relay.Router) {
	relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		over, err := b.h.overBudget(ctx, req.Session)
		if err != nil {
			return err
		}
		if over {
			return b.h.refuse(ctx, req.Session)
		}
		b.answers++
		if _, err := req.Reply(ctx, "an answer"); err != nil {
			return err
		}
		b.runs++
		u := b.usage
		if b.failOnce && b.runs > 1 {
			u = agent.Usage{}
		}
		if err := b.h.account(ctx, req.Session, u); err != nil {
			return err
		}
		if b.failOnce && b.runs == 1 {
			return errors.New("the reaction could not be removed: connection reset")
		}
		return nil
	})
}

// emf reads the EMF lines of out that carry metric name.
func emf(t *testing.T, out *bytes.Buffer, name string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		if _, ok := m[name]; ok {
			lines = append(lines, m)
		}
	}
	return lines
}

// An answer's cost: on the record, in the metrics per model and team, in one log line; the
// budget counts its tokens, and once the workspace is over it, the next question gets the
// notice without an answer.
func TestAccountAndBudget(t *testing.T) {
	var out bytes.Buffer
	b := &costBot{
		h: &handlers{cfg: Config{Model: "us.anthropic.claude-3-5-haiku-20241022-v1:0", Metrics: metrics.New(&out, "slackrelay/worker"),
			Prices:           Prices{"anthropic.claude-3-5-haiku-20241022-v1:0": {Input: 0.8, Output: 4, CacheRead: 0.08, CacheWrite: 1}},
			DailyTokenBudget: 2000}},
		usage: agent.Usage{InputTokens: 1000, OutputTokens: 500, CachedTokens: 900, ModelCalls: 2, ToolCalls: 1, ModelTime: 1200 * time.Millisecond},
	}
	h := relaytest.New(t, b.register)
	got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvC1", "C0COST", "1700000010.000100", "first"))
	if got.Err != nil || b.answers != 1 {
		t.Fatalf("first question: %+v, %d answers", got, b.answers)
	}
	cost := 0.002152 // 100×0.8 + 900×0.08 + 500×4 µ$
	want := &relay.Usage{Model: "us.anthropic.claude-3-5-haiku-20241022-v1:0", Team: "T0001", InputTokens: 1000, OutputTokens: 500,
		CachedTokens: 900, ModelCalls: 2, ToolCalls: 1, ModelTime: 1200 * time.Millisecond, CostUSD: &cost}
	if diff := cmp.Diff(want, got.Usage); diff != "" {
		t.Errorf("the record's usage (-want +got):\n%s", diff)
	}
	if n := h.DailyCount("T0001", tokensCounter); n != 1500 {
		t.Errorf("tokens today = %d, want 1500", n)
	}
	lines := emf(t, &out, "EstimatedCostUSD")
	if len(lines) != 1 {
		t.Fatalf("%d cost metric lines, want 1:\n%s", len(lines), out.String())
	}
	l := lines[0]
	for k, v := range map[string]any{"Model": want.Model, "Team": "T0001", "InputTokens": 1000.0, "OutputTokens": 500.0, "CachedTokens": 900.0,
		"ToolCalls": 1.0, "ModelTime": 1200.0, "EstimatedCostUSD": cost} {
		if l[k] != v {
			t.Errorf("metric line %s = %v, want %v", k, l[k], v)
		}
	}
	dims := l["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Dimensions"]
	if !cmp.Equal(dims, []any{[]any{"Model", "Team"}, []any{"Model"}}) {
		t.Errorf("dimensions %v, want [[Model Team] [Model]]", dims)
	}
	var logLine map[string]any
	for _, line := range strings.Split(h.Logs(), "\n") {
		if strings.Contains(line, `"msg":"answer cost"`) {
			if logLine != nil {
				t.Errorf("a second answer cost line: %s", line)
			}
			if err := json.Unmarshal([]byte(line), &logLine); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, v := range map[string]any{"model": want.Model, "team": "T0001", "input_tokens": 1000.0, "output_tokens": 500.0, "cached_tokens": 900.0,
		"tool_calls": 1.0, "model_calls": 2.0, "model_ms": 1200.0, "cost_usd": cost, "cost_known": true, "dedupe_key": got.Key} {
		if logLine[k] != v {
			t.Errorf("answer cost line %s = %v, want %v (line %v)", k, logLine[k], v, logLine)
		}
	}

	// 1500 of 2000: the next question is answered, and takes the workspace over.
	if got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvC2", "C0COST", "1700000011.000100", "second")); got.Err != nil || b.answers != 2 {
		t.Fatalf("second question: %+v, %d answers", got, b.answers)
	}
	refused := h.DeliverBody(t, "mention.json", fixture.AppMention("EvC3", "C0COST", "1700000012.000100", "third"))
	if refused.Err != nil || b.answers != 2 || len(refused.Posts) != 1 || refused.Posts[0].Text != budgetNotice || refused.Usage != nil {
		t.Fatalf("over the budget: %+v, %d answers; want the notice alone, no answer and no usage", refused, b.answers)
	}
	if n := h.DailyCount("T0001", tokensCounter); n != 3000 {
		t.Errorf("tokens today after the refusal = %d, want 3000 (a notice costs none)", n)
	}
	if l := emf(t, &out, "BudgetRefusals"); len(l) != 1 || l[0]["Team"] != "T0001" {
		t.Errorf("BudgetRefusals lines %v, want one for T0001", l)
	}
	// The next UTC day the budget is whole again.
	h.Advance(24 * time.Hour)
	if got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvC4", "C0COST", "1700000013.000100", "tomorrow")); got.Err != nil || b.answers != 3 {
		t.Errorf("the next day: %+v, %d answers; want an answer", got, b.answers)
	}
}

// An unpriced model's cost is unknown, not 0, and no budget means no daily count.
func TestAccountWithoutAPriceOrABudget(t *testing.T) {
	var out bytes.Buffer
	b := &costBot{h: &handlers{cfg: Config{Model: "gpt-4o-mini", Metrics: metrics.New(&out, "slackrelay/worker")}},
		usage: agent.Usage{InputTokens: 10, OutputTokens: 5, ModelCalls: 1}}
	h := relaytest.New(t, b.register)
	got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvC5", "C0COST", "1700000014.000100", "hi"))
	if got.Err != nil || got.Usage == nil || got.Usage.CostUSD != nil || got.Usage.InputTokens != 10 {
		t.Fatalf("got %+v with usage %+v; want the usage with no cost", got, got.Usage)
	}
	if n := h.DailyCount("T0001", tokensCounter); n != 0 {
		t.Errorf("tokens today without a budget = %d, want 0 (not counted)", n)
	}
	if l := emf(t, &out, "EstimatedCostUSD"); len(l) != 0 {
		t.Errorf("a cost metric for an unpriced model: %v", l)
	}
	if l := emf(t, &out, "InputTokens"); len(l) != 1 {
		t.Errorf("%d token metric lines, want 1", len(l))
	}
	if !strings.Contains(h.Logs(), `"cost_known":false`) || strings.Contains(h.Logs(), `"cost_usd"`) {
		t.Errorf("the answer cost line should say the cost is unknown and give none:\n%s", h.Logs())
	}
}

// An attempt that fails after the accounting leaves the usage in the journal: the retry,
// which measures nothing of its own, records it on completion; the metrics and the log line
// come once.
func TestAccountSurvivesARetry(t *testing.T) {
	var out bytes.Buffer
	b := &costBot{h: &handlers{cfg: Config{Model: "m", Metrics: metrics.New(&out, "slackrelay/worker"), Prices: Prices{"m": {Input: 1, Output: 2}},
		DailyTokenBudget: 100000}},
		usage: agent.Usage{InputTokens: 300, OutputTokens: 100, ModelCalls: 1}, failOnce: true}
	h := relaytest.New(t, b.register)
	got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvC6", "C0COST", "1700000015.000100", "hi"))
	if got.Err != nil || got.Runs != 2 {
		t.Fatalf("got %+v; want two runs", got)
	}
	cost := 0.0005
	if want := (&relay.Usage{Model: "m", Team: "T0001", InputTokens: 300, OutputTokens: 100, ModelCalls: 1, CostUSD: &cost}); !cmp.Equal(want, got.Usage) {
		t.Errorf("the record's usage = %+v, want %+v", got.Usage, want)
	}
	if n := h.DailyCount("T0001", tokensCounter); n != 400 {
		t.Errorf("tokens today = %d, want 400 (once)", n)
	}
	if l := emf(t, &out, "InputTokens"); len(l) != 1 {
		t.Errorf("%d cost metric lines, want 1", len(l))
	}
	if n := strings.Count(h.Logs(), `"msg":"answer cost"`); n != 1 {
		t.Errorf("%d answer cost lines, want 1", n)
	}
}

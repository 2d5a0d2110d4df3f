package assistant

import (
	"context"

	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// What an answer cost, and the workspace's daily token budget: the answer path calls
// overBudget before it asks the model and account once the answer is written.

// tokensCounter is the workspace's daily counter of the tokens its answers used
// (relay.Session.CountDaily), kept when there is a budget.
const tokensCounter = "tokens"

// budgetNotice is the answer when the workspace has used its daily token budget.
const budgetNotice = "This workspace has used today's allowance for AI answers, so I can't answer this one. " +
	"The allowance starts again at midnight UTC."

// overBudget reports whether the workspace has used its daily token budget
// (Config.DailyTokenBudget; 0 is none). It is decided once per answer, before the model is
// asked, and the decision is kept in the event's journal: a retry of an answer under way
// goes on with it even if other answers have used the budget up since. A counter that cannot
// be read does not stop the answer (logged).
func (h *handlers) overBudget(ctx context.Context, s *relay.Session) (bool, error) {
	budget := h.cfg.DailyTokenBudget
	if budget <= 0 {
		return false, nil
	}
	return relay.Once(ctx, s, "budget", func(ctx context.Context, _ string) (bool, error) {
		used, err := s.DailyCount(ctx, tokensCounter)
		if err != nil {
			s.Log.Warn("could not read the workspace's tokens today; answering without the budget check", "error", err.Error())
			return false, nil
		}
		if used < budget {
			return false, nil
		}
		s.Log.Info("over the daily token budget; answering with a notice instead of the model", "team", s.Team(),
			"tokens_today", used, "daily_token_budget", budget)
		h.cfg.Metrics.Count("BudgetRefusals", 1, metrics.Dim{Name: "Team", Value: teamOf(s)})
		return true, nil
	}, relay.Repeatable())
}

// refuse answers with the budget notice, in the thread, once.
func (h *handlers) refuse(ctx context.Context, s *relay.Session) error {
	_, err := s.Reply(ctx, budgetNotice)
	return err
}

// account keeps what the answer cost (u, asked of the bot's model): on the event's record
// (relay.Session.SetUsage, written with the completion), in the workspace's daily token count
// when there is a budget (input and output tokens, added after the completion), as metrics per
// model and team (InputTokens, OutputTokens, CachedTokens, CacheWriteTokens, ToolCalls,
// ModelTime, EstimatedCostUSD when the price is known), and in one log line "answer cost"
// with the same fields (the logger carries the event's dedupe key). The usage is kept in the
// journal too, so an attempt that finds the answer written by an earlier one (u empty) still
// records it; the metrics and the line come once, from the attempt that measured it. An
// answer that asked nothing of the model in any attempt is not accounted.
func (h *handlers) account(ctx context.Context, s *relay.Session, u agent.Usage) error {
	measured := false
	u, err := relay.Once(ctx, s, "cost", func(context.Context, string) (agent.Usage, error) {
		measured = true
		return u, nil
	}, relay.Repeatable())
	if err != nil {
		return err
	}
	if u.ModelCalls == 0 {
		return nil
	}
	model := h.cfg.Model
	ru := relay.Usage{Model: model, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedTokens: u.CachedTokens,
		CacheWriteTokens: u.CacheWriteTokens, ModelCalls: u.ModelCalls, ToolCalls: u.ToolCalls, ModelTime: u.ModelTime}
	price, priced := h.cfg.Prices.Find(model)
	if priced {
		c := price.Cost(u.InputTokens, u.OutputTokens, u.CachedTokens, u.CacheWriteTokens)
		ru.CostUSD = &c
	}
	s.SetUsage(ru)
	if h.cfg.DailyTokenBudget > 0 {
		s.CountDaily(tokensCounter, int64(u.InputTokens+u.OutputTokens))
	}
	if !measured {
		return nil
	}
	team := teamOf(s)
	ms := []metrics.Metric{
		{Name: "InputTokens", Unit: metrics.UnitCount, Value: float64(u.InputTokens)},
		{Name: "OutputTokens", Unit: metrics.UnitCount, Value: float64(u.OutputTokens)},
		{Name: "CachedTokens", Unit: metrics.UnitCount, Value: float64(u.CachedTokens)},
		{Name: "CacheWriteTokens", Unit: metrics.UnitCount, Value: float64(u.CacheWriteTokens)},
		{Name: "ToolCalls", Unit: metrics.UnitCount, Value: float64(u.ToolCalls)},
		{Name: "ModelTime", Unit: metrics.UnitMilliseconds, Value: float64(u.ModelTime.Milliseconds())},
	}
	attrs := []any{"model", model, "team", team, "input_tokens", u.InputTokens, "output_tokens", u.OutputTokens,
		"cached_tokens", u.CachedTokens, "cache_write_tokens", u.CacheWriteTokens, "model_calls", u.ModelCalls,
		"tool_calls", u.ToolCalls, "model_ms", u.ModelTime.Milliseconds(), "cost_known", priced}
	if ru.CostUSD != nil {
		ms = append(ms, metrics.Metric{Name: "EstimatedCostUSD", Unit: metrics.UnitNone, Value: *ru.CostUSD})
		attrs = append(attrs, "cost_usd", *ru.CostUSD)
	}
	h.cfg.Metrics.Emit([]metrics.Dim{{Name: "Model", Value: orUnknown(model)}, {Name: "Team", Value: team}}, [][]string{{"Model"}}, ms...)
	s.Log.Info("answer cost", attrs...)
	return nil
}

// streamUsage is the usage of one streamed answer (the model asked once): Bedrock leaves the
// cache's tokens out of its input tokens, chat completions count them in.
func (h *handlers) streamUsage(res llm.Result) agent.Usage {
	in := res.Usage.PromptTokens
	if _, ok := h.cfg.LLM.(*llm.Bedrock); ok {
		in += res.Usage.CacheReadTokens + res.Usage.CacheWriteTokens
	}
	return agent.Usage{InputTokens: in, OutputTokens: res.Usage.CompletionTokens, CachedTokens: res.Usage.CacheReadTokens,
		CacheWriteTokens: res.Usage.CacheWriteTokens, ModelCalls: 1, ModelTime: res.Duration}
}

// teamOf is the delivery's workspace, for a metric's dimension.
func teamOf(s *relay.Session) string { return orUnknown(s.Team()) }

func orUnknown(v string) string {
	if v == "" {
		return "unknown"
	}
	return v
}

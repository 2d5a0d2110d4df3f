package relay

import (
	"context"
	"time"

	"github.com/slackrelay/slackrelay/worker/internal/core"
)

// Usage is what a delivery's work cost — a model's answer: its tokens, calls and time, and
// an estimate in US dollars — as SetUsage keeps it on the event's record.
type Usage struct {
	// Model is the model that answered (a model id, an inference profile, a name).
	Model string
	// Team is the workspace the delivery came from; SetUsage sets it.
	Team string
	// InputTokens are every token the model read, CachedTokens (read from its prompt cache)
	// and CacheWriteTokens (written to it) included; OutputTokens every token it wrote.
	InputTokens, OutputTokens, CachedTokens, CacheWriteTokens int
	// ModelCalls is how many times the model was called (an agent's turns), ToolCalls how many
	// tools those calls ran.
	ModelCalls, ToolCalls int
	// ModelTime is the time spent waiting for the model.
	ModelTime time.Duration
	// CostUSD is the estimated cost; nil when it is not known (no price for the model), which
	// is not the same as free.
	CostUSD *float64
}

// SetUsage keeps u, with the delivery's workspace as its Team, on the event's record when
// the event completes: in the completion's one write, so it costs no write of its own. A
// later call in the same run replaces it; a run that does not complete the event keeps
// nothing, and the run that does must set it again (work replayed from the journal, such as
// an agent's recorded turns, counts there too). Operators list a day's records with
// `slackrelay-dlq costs`.
func (s *Session) SetUsage(u Usage) {
	u.Team = s.run.about.team
	s.run.lease.SetUsage(core.Usage{
		Model: u.Model, Team: u.Team,
		InputTokens: int64(u.InputTokens), OutputTokens: int64(u.OutputTokens),
		CachedTokens: int64(u.CachedTokens), CacheWriteTokens: int64(u.CacheWriteTokens),
		ModelCalls: int64(u.ModelCalls), ToolCalls: int64(u.ToolCalls),
		ModelMillis: u.ModelTime.Milliseconds(), CostUSD: u.CostUSD,
	})
}

// CountDaily adds n to the workspace's counter name for the current UTC day — tokens
// answered, tickets opened — once the event completes: one conditional write after the
// completion, never twice for one event (a crash between the two loses the event's count
// instead). Calls in one run add up. DailyCount reads it.
func (s *Session) CountDaily(name string, n int64) {
	s.run.lease.CountDaily(s.run.about.team+":"+name, n)
}

// DailyCount is the workspace's counter name for the current UTC day: what the events that
// completed today added with CountDaily (0 when none did).
func (s *Session) DailyCount(ctx context.Context, name string) (int64, error) {
	if s.run.rt.Counters == nil {
		return 0, nil
	}
	return s.run.rt.Counters.DailyCount(ctx, s.run.about.team+":"+name)
}

// Team is the workspace the delivery came from (its team id).
func (s *Session) Team() string { return s.run.about.team }

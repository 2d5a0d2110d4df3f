package agent

import "time"

// Usage is what a run's model turns used, added up: the tokens the model read and wrote, how
// many turns and tool calls the answer took, and the time spent waiting for the model.
type Usage struct {
	// InputTokens are every token the turns read (CachedTokens and CacheWriteTokens
	// included); OutputTokens every token they wrote.
	InputTokens, OutputTokens int
	// CachedTokens were read from the model's prompt cache, CacheWriteTokens written to it.
	CachedTokens, CacheWriteTokens int
	// ModelCalls is how many turns there were, ToolCalls how many tools they called.
	ModelCalls, ToolCalls int
	// ModelTime is the turns' time in the model.
	ModelTime time.Duration
}

// Usage adds up the usage of the run's turns, recorded and new: a turn an earlier attempt
// recorded counts with what it cost then, so the sum is the answer's over every attempt. A
// model call cut short (a crash, a stream cut mid-turn) recorded nothing and is not counted;
// a run that found the answer finished (Run returned at once) has nothing to add up.
func (r Result) Usage() Usage {
	u := Usage{ModelCalls: len(r.Turns), ToolCalls: r.ToolCalls}
	for _, t := range r.Turns {
		u.InputTokens += t.InputTokens
		u.OutputTokens += t.OutputTokens
		u.CachedTokens += t.CachedTokens
		u.CacheWriteTokens += t.CacheWriteTokens
		u.ModelTime += time.Duration(t.ModelMillis) * time.Millisecond
	}
	return u
}

// Package agent runs a model that calls tools, inside a relay handler, so that every tool
// call runs once for the event whatever is retried or redelivered: the model's turns and the
// tools' results are recorded in the event's journal (relay.Once) before the next turn, and
// the answer streams into the thread through the handler's relay.Stream. A redelivery replays
// what was recorded — no second model call for a recorded turn, no second call of a tool —
// and goes on from the first point that was not. A side-effecting tool whose outcome an
// earlier attempt could not record is not called again: the model is told the outcome is
// unknown (with the call's idempotency key), so the answer says so rather than guess.
//
// On a stream opened with relay.StreamOptions.Tasks, each tool call shows as a task card:
// pending when the model asks for it, in progress while it runs, then complete (its result,
// summarized) or error (a failure, an unknown outcome); as a plan, titled "Working on it"
// and then "Done in N steps". A replayed step shows its card in its recorded state, never in
// progress again and never as a second card.
//
// It uses only relay's public API; the model is anything with one streamed turn (Model).
package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// Model is one turn of a model that can call tools: it streams the turn's text to onText
// (continuing from req.Partial when that is set: onText gets only what follows it) and
// returns the whole turn, with the tools it asks to call.
type Model interface {
	Turn(ctx context.Context, req TurnRequest, onText func(text string) error) (Turn, error)
}

// TurnRequest is the conversation so far and the tools on offer.
type TurnRequest struct {
	Messages []Message
	Tools    []ToolSpec
	// Partial is text of this turn an earlier attempt already showed: continue after it.
	Partial string
}

// Message is one message of the conversation: a user's or the model's text, the tool calls
// of a model turn, or the results of those calls (role "tool").
type Message struct {
	Role        string       `json:"role"` // "user", "assistant" or "tool"
	Text        string       `json:"text,omitempty"`
	ToolCalls   []ToolCall   `json:"tool_calls,omitempty"`
	ToolResults []ToolResult `json:"tool_results,omitempty"`
}

// ToolCall is a call the model asked for.
type ToolCall struct {
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// ToolResult answers one ToolCall.
type ToolResult struct {
	CallID  string `json:"call_id"`
	Content string `json:"content"`
	IsError bool   `json:"is_error,omitempty"`
}

// Turn is what one model turn said and asked.
type Turn struct {
	// Text is the turn's whole text (Partial included).
	Text      string     `json:"text,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// InputTokens and OutputTokens are the turn's usage, when the model reports it:
	// InputTokens every token the turn read, those from the model's prompt cache included.
	InputTokens  int `json:"input_tokens,omitempty"`
	OutputTokens int `json:"output_tokens,omitempty"`
	// CachedTokens are the input tokens read from the prompt cache and CacheWriteTokens
	// those written to it (both part of InputTokens), when the model reports them.
	CachedTokens     int `json:"cached_tokens,omitempty"`
	CacheWriteTokens int `json:"cache_write_tokens,omitempty"`
	// ModelMillis is how long the model took over the turn, from the request to its end.
	ModelMillis int64 `json:"model_ms,omitempty"`
}

// Options bound a run.
type Options struct {
	// MaxRounds is how many turns may call tools (default 5); past it the answer ends with a
	// note.
	MaxRounds int
	// MaxTime bounds the run from its first turn on this attempt (0: none beyond the
	// handler's deadline); past it the answer ends with a note.
	MaxTime time.Duration
}

// Result is what a run did.
type Result struct {
	// Turns are the model's turns, recorded and new, in order.
	Turns []Turn
	// ToolCalls is how many tools were called over the event (recorded ones included);
	// Unknown how many side-effecting calls had an outcome no attempt recorded.
	ToolCalls, Unknown int
	// Stopped says a bound ended the answer (its note was appended), or the answer's Stop
	// button did (Finish adds its note).
	Stopped string
}

// Run answers msgs with model and tools, streaming the text into w. It does not Finish w:
// the caller adds its buttons. An error is returned as the handler should return it (a
// stream's continue error, a model's failure, a lost claim).
func Run(ctx context.Context, s *relay.Session, w *relay.Stream, model Model, msgs []Message, tools []Tool, opts Options) (Result, error) {
	var res Result
	if w.Done() || w.Complete() {
		return res, nil
	}
	if opts.MaxRounds <= 0 {
		opts.MaxRounds = 5
	}
	byName := make(map[string]*Tool, len(tools))
	specs := make([]ToolSpec, 0, len(tools))
	for i := range tools {
		if tools[i].err != nil {
			return res, relay.Permanent(tools[i].err)
		}
		if _, dup := byName[tools[i].spec.Name]; dup {
			return res, relay.Permanent(fmt.Errorf("agent: tool %q offered twice", tools[i].spec.Name))
		}
		byName[tools[i].spec.Name] = &tools[i]
		specs = append(specs, tools[i].spec)
	}
	shown := w.Text() // what earlier attempts showed, all turns together
	used := 0         // how much of shown the turns so far account for
	start := time.Now()
	conv := append([]Message(nil), msgs...)
	for round := 0; ; round++ {
		if w.Stopped() {
			return stopped(res), nil
		}
		if sep := separator(res.Turns); sep != "" {
			if err := appendShown(ctx, w, shown, &used, sep); err != nil {
				return stoppedOr(res, w, err)
			}
		}
		ran := false
		turn, err := relay.Once(ctx, s, fmt.Sprintf("agent:turn:%d", round), func(ctx context.Context, _ string) (Turn, error) {
			ran = true
			partial := ""
			if used < len(shown) {
				partial = shown[used:]
			}
			// The model's request is cancelled when the answer's Stop button is clicked; the
			// stream itself is written with the handler's context.
			mctx, done := w.Watch(ctx)
			defer done()
			t, err := model.Turn(mctx, TurnRequest{Messages: conv, Tools: specs, Partial: partial}, func(text string) error {
				return w.Append(ctx, text)
			})
			if err != nil {
				// A turn's failure is never recorded (Once records a permanent one): a dead
				// letter replayed once its cause is fixed asks the model again.
				return t, unrecorded{err}
			}
			return t, nil
		}, relay.Repeatable())
		var u unrecorded
		if errors.As(err, &u) {
			err = u.err
		}
		if err != nil {
			return stoppedOr(res, w, err)
		}
		if ran {
			used += len(turn.Text) // streamed as it came (after what was shown of it)
		} else if err := appendShown(ctx, w, shown, &used, turn.Text); err != nil {
			// A recorded turn's text is shown already, or is shown now (what a crash cut off).
			return res, err
		}
		res.Turns = append(res.Turns, turn)
		if len(turn.ToolCalls) == 0 {
			if res.ToolCalls > 0 {
				if err := w.Plan(fmt.Sprintf("Done in %d %s", res.ToolCalls, plural(res.ToolCalls, "step", "steps"))); err != nil {
					return res, err
				}
			}
			return res, nil
		}
		if round+1 >= opts.MaxRounds {
			res.Stopped = fmt.Sprintf("I stopped after %d rounds of tool calls without a final answer.", opts.MaxRounds)
			return res, w.Append(ctx, "\n\n_"+res.Stopped+"_")
		}
		if opts.MaxTime > 0 && time.Since(start) > opts.MaxTime {
			res.Stopped = "I ran out of time working on this answer."
			return res, w.Append(ctx, "\n\n_"+res.Stopped+"_")
		}
		// Each call shows as a card, pending until it runs. What the turn showed, and the
		// cards, are on record (and in Slack) before any tool runs.
		if err := w.Plan("Working on it"); err != nil {
			return res, err
		}
		if ran {
			// A turn replayed from the record showed its cards already: they are not set back
			// to pending (a call that runs now shows in progress before it runs, below).
			for i, call := range turn.ToolCalls {
				if err := w.Task(card(round, i, call, slack.TaskCardStatusPending, "")); err != nil {
					return res, err
				}
			}
			if err := w.Task(card(round, 0, turn.ToolCalls[0], slack.TaskCardStatusInProgress, "")); err != nil {
				return res, err
			}
			if err := w.Flush(ctx); err != nil {
				return stoppedOr(res, w, err)
			}
		}
		results := make([]ToolResult, 0, len(turn.ToolCalls))
		for i, call := range turn.ToolCalls {
			if w.Stopped() {
				// Stopped: no further tool runs (one running finishes: its effect may be
				// under way); the cards of those not run say so.
				for j := i; j < len(turn.ToolCalls); j++ {
					if err := w.Task(card(round, j, turn.ToolCalls[j], slack.TaskCardStatusError, "not run: the answer was stopped")); err != nil {
						return res, err
					}
				}
				return stopped(res), nil
			}
			if err := w.Task(card(round, i, call, slack.TaskCardStatusInProgress, "")); err != nil {
				return res, err
			}
			r, unknown, err := callTool(ctx, s, w, byName, round, i, call)
			if errors.Is(err, relay.ErrStopped) {
				// Noticed before the call ran (its flush): it did not run.
				for j := i; j < len(turn.ToolCalls); j++ {
					if err := w.Task(card(round, j, turn.ToolCalls[j], slack.TaskCardStatusError, "not run: the answer was stopped")); err != nil {
						return res, err
					}
				}
				return stopped(res), nil
			}
			if err != nil {
				return res, err
			}
			res.ToolCalls++
			if unknown {
				res.Unknown++
			}
			status := slack.TaskCardStatusComplete
			if r.IsError {
				status = slack.TaskCardStatusError
			}
			if err := w.Task(card(round, i, call, status, r.Content)); err != nil {
				return res, err
			}
			results = append(results, r)
		}
		// The last card's outcome shows while the model writes its next turn.
		if err := w.Flush(ctx); err != nil {
			return stoppedOr(res, w, err)
		}
		conv = append(conv, Message{Role: "assistant", Text: turn.Text, ToolCalls: turn.ToolCalls},
			Message{Role: "tool", ToolResults: results})
	}
}

// unrecorded carries a turn's failure through relay.Once without its class (it does not
// unwrap), so Once records nothing; Run returns the failure itself.
type unrecorded struct{ err error }

func (u unrecorded) Error() string { return u.err.Error() }

// stoppedNote is Result.Stopped for an answer stopped with its Stop button.
const stoppedNote = "stopped with its Stop button"

func stopped(res Result) Result {
	res.Stopped = stoppedNote
	return res
}

// stoppedOr is err, unless the answer was stopped with its Stop button (which ended the model's
// request, or the stream's flush): then the run ends without an error, and the caller's
// Finish ends the answer with what was shown and a note.
func stoppedOr(res Result, w *relay.Stream, err error) (Result, error) {
	if w.Stopped() || errors.Is(err, relay.ErrStopped) {
		return stopped(res), nil
	}
	return res, err
}

// separator goes between one turn's text and the next's, so they do not run together.
func separator(turns []Turn) string {
	if len(turns) == 0 {
		return ""
	}
	last := turns[len(turns)-1].Text
	if last == "" || strings.HasSuffix(last, "\n") {
		return ""
	}
	return "\n\n"
}

// appendShown accounts for text of the answer that earlier attempts showed (advancing used)
// and appends what they did not.
func appendShown(ctx context.Context, w *relay.Stream, shown string, used *int, text string) error {
	have := 0
	if *used < len(shown) {
		have = min(len(shown)-*used, len(text))
		if shown[*used:*used+have] != text[:have] {
			have = 0 // the record and the text disagree: show the text (it is what was decided)
		}
	}
	*used += have
	if rest := text[have:]; rest != "" {
		*used += len(rest)
		return w.Append(ctx, rest)
	}
	return nil
}

// card is the task card of call i of a round: the tool's name, its input, and once it has run
// a summary of its result.
func card(round, i int, call ToolCall, status slack.TaskCardStatus, output string) relay.Task {
	return relay.Task{ID: fmt.Sprintf("tool-%d-%d", round, i), Title: call.Name, Status: status,
		Details: compactInput(call.Input), Output: output}
}

// compactInput is a call's input on one line, for its card.
func compactInput(in json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, in) != nil || b.String() == "{}" || b.String() == "null" {
		return ""
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// callTool runs one call once for the event (relay.Once, named by round and position: the
// model's own call ids change when a turn is generated again).
func callTool(ctx context.Context, s *relay.Session, w *relay.Stream, byName map[string]*Tool, round, i int, call ToolCall) (ToolResult, bool, error) {
	t, ok := byName[call.Name]
	if !ok {
		return ToolResult{CallID: call.ID, Content: "there is no tool named " + call.Name, IsError: true}, false, nil
	}
	// A call that runs now shows its card in progress first; a recorded one is not shown again.
	opts := []relay.OnceOption{relay.BeforeRun(w.Flush)}
	if !t.sideEffects {
		opts = append(opts, relay.Repeatable())
	}
	r, err := relay.Once(ctx, s, fmt.Sprintf("agent:tool:%d:%d", round, i), func(ctx context.Context, key string) (ToolResult, error) {
		tctx := ctx
		if t.timeout > 0 {
			var cancel context.CancelFunc
			tctx, cancel = context.WithTimeout(ctx, t.timeout)
			defer cancel()
		}
		out, err := t.call(tctx, call.Input, key)
		if err != nil && ctx.Err() != nil {
			// The handler's own deadline (or a cancellation) cut the call, not the tool: the
			// next delivery calls it again, with the same key.
			return ToolResult{}, fmt.Errorf("tool %s cut short: %w", call.Name, err)
		}
		if err != nil {
			// The tool reports it failed: the model hears so and decides what to say.
			return ToolResult{CallID: call.ID, Content: "the tool failed: " + err.Error(), IsError: true}, nil
		}
		return ToolResult{CallID: call.ID, Content: out}, nil
	}, opts...)
	if errors.Is(err, relay.ErrOutcomeUnknown) {
		return ToolResult{CallID: call.ID, IsError: true, Content: fmt.Sprintf(
			"the outcome of this call is unknown: an earlier attempt made it and stopped before its result was recorded, so it may or may not have taken effect; it is not made again. Tell the user so, with the key %s", s.OnceKey(fmt.Sprintf("agent:tool:%d:%d", round, i)))}, true, nil
	}
	if err != nil {
		return ToolResult{}, false, err
	}
	r.CallID = call.ID // the current turn's id (a regenerated turn may have renamed it)
	return r, false, nil
}

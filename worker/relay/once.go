package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// ErrOutcomeUnknown is what Once returns when an earlier attempt started the effect and
// stopped (a crash, a lost claim) before recording how it ended: it may or may not have taken
// effect, and it is not run again. Say so rather than guess; the effect's key (in the error's
// text, and from OnceKey) lets a person or the target system look it up.
var ErrOutcomeUnknown = errors.New("relay: an earlier attempt started this effect and stopped before recording its outcome")

// OnceOption tunes Once.
type OnceOption func(*onceOptions)

type onceOptions struct {
	repeatable bool
	before     func(ctx context.Context) error
}

// BeforeRun gives Once something to do when, and only when, the effect is about to run:
// before its intent is written, not on an attempt that finds its result recorded (showing
// the effect's progress, say). Its error is returned as it is and the effect is not run.
func BeforeRun(f func(ctx context.Context) error) OnceOption {
	return func(o *onceOptions) { o.before = f }
}

// Repeatable marks an effect as safe to run again — a read, a search, a computation — so no
// intent is written before it: an attempt that stopped before recording its result runs it
// again, and its result goes out with the journal's next write instead of a write of its own.
func Repeatable() OnceOption { return func(o *onceOptions) { o.repeatable = true } }

// onceStep is an effect's record in the event's journal.
type onceStep struct {
	// State is "started" (the intent, before running), "done" or "failed" (permanent).
	State string          `json:"state"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value,omitempty"`
	Error string          `json:"error,omitempty"`
}

// OnceKey is the idempotency key Once gives the effect named name in this event: the same on
// every delivery of the event, different for every event and name (32 hex characters).
func (s *Session) OnceKey(name string) string {
	sum := sha256.Sum256([]byte(s.run.lease.Key() + "\x00once:" + name))
	return hex.EncodeToString(sum[:16])
}

// Once runs an effect outside Slack — a tool call, a ticket opened, a payment — at most once
// for the event, whatever is retried or redelivered, and returns its recorded result on every
// later attempt without running it again. Before running it, Once records the intent in the
// event's journal; after, its result (JSON-encoded T). run gets an idempotency key (OnceKey)
// to hand to the system it calls, so that a call whose answer was lost is not applied twice
// there either.
//
// When an earlier attempt recorded the intent but not the outcome (it died between the two),
// Once does not run the effect again: it returns an error wrapping ErrOutcomeUnknown. A
// permanent error of run (Permanent) is recorded and returned again on later attempts; any
// other error leaves the effect to be tried again, with the same key, by the next attempt.
// With Repeatable the effect is run again instead of reported unknown.
//
// name must be the same on every attempt of the event and used once per run (ErrStepTwice).
func Once[T any](ctx context.Context, s *Session, name string, run func(ctx context.Context, key string) (T, error), opts ...OnceOption) (T, error) {
	var zero T
	var o onceOptions
	for _, opt := range opts {
		opt(&o)
	}
	step, legacyID, err := s.step("once", name)
	if err != nil {
		return zero, err
	}
	key := s.OnceKey(name)
	var rec onceStep
	found, err := s.load(step, legacyID, &rec)
	if err != nil {
		return zero, failure.AsPermanent(fmt.Errorf("read the record of %s: %w", step, err))
	}
	if found {
		switch rec.State {
		case "done":
			var v T
			if err := json.Unmarshal(rec.Value, &v); err != nil {
				return zero, failure.AsPermanent(fmt.Errorf("read the result of %s: %w", step, err))
			}
			return v, nil
		case "failed":
			return zero, failure.Permanentf("%s failed in an earlier attempt: %s", name, rec.Error)
		case "started":
			if !o.repeatable {
				return zero, fmt.Errorf("%s (key %s): %w", name, key, ErrOutcomeUnknown)
			}
		}
	}
	if o.before != nil {
		if err := o.before(ctx); err != nil {
			return zero, err
		}
	}
	if !o.repeatable {
		if err := s.save(ctx, step, onceStep{State: "started", Key: key}); err != nil {
			// The intent may not be on record, and the effect was not run: the attempt's
			// release says so, or the next attempt would call its outcome unknown.
			s.settle(step, onceStep{State: "retry", Key: key})
			return zero, err
		}
	}
	v, runErr := run(ctx, key)
	if runErr != nil {
		if class, _ := failure.Classify(runErr); class == failure.Permanent {
			rec := onceStep{State: "failed", Key: key, Error: runErr.Error()}
			if err := s.save(ctx, step, rec); err != nil {
				return zero, errors.Join(runErr, err)
			}
			return zero, runErr
		}
		// Not run to an effect (so the effect says): the next attempt may try again.
		if !o.repeatable {
			s.settle(step, onceStep{State: "retry", Key: key, Error: runErr.Error()})
		}
		return zero, runErr
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return zero, failure.AsPermanent(fmt.Errorf("record the result of %s: %w", step, err))
	}
	done := onceStep{State: "done", Key: key, Value: raw}
	if o.repeatable {
		s.settle(step, done)
		return v, nil
	}
	if err := s.save(ctx, step, done); err != nil {
		// The effect happened and is not recorded: a later attempt reports it unknown, which
		// is the truth unless this one goes on and finishes.
		return v, err
	}
	return v, nil
}

// Package journaltest is an event journal in memory, for logic tests of code written against
// the handler library's Lease (package relay) and for the handler test helper. It keeps
// steps exactly as the DynamoDB store does (JSON per step, deferred steps written with the
// next write) without a table; the store itself is tested against DynamoDB in package journal.
package journaltest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/slackrelay/slackrelay/worker/internal/journal"
)

// Lease is one event's journal in memory, as one delivery holds it.
type Lease struct {
	mu       sync.Mutex
	key      string
	attempt  int
	started  time.Time
	steps    map[string]json.RawMessage
	deferred map[string]json.RawMessage
	legacy   map[string]json.RawMessage
	writes   int
	done     bool
	// FailWrite, when set, decides per write (1-based count over the lease's life) whether it
	// fails as a store outage would (nothing written).
	FailWrite func(n int) bool
}

// New returns the journal of a new event under key, at attempt 1.
func New(key string) *Lease {
	return &Lease{key: key, attempt: 1, started: time.Now(), steps: map[string]json.RawMessage{},
		deferred: map[string]json.RawMessage{}, legacy: map[string]json.RawMessage{}}
}

// Key is the event's dedupe key.
func (l *Lease) Key() string { return l.key }

// Attempt is the attempt number.
func (l *Lease) Attempt() int { l.mu.Lock(); defer l.mu.Unlock(); return l.attempt }

// Started is when the event was first claimed.
func (l *Lease) Started() time.Time { return l.started }

// Load decodes step name into v.
func (l *Lease) Load(name string, v any) (bool, error) {
	l.mu.Lock()
	raw, ok := l.deferred[name]
	if !ok {
		raw, ok = l.steps[name]
	}
	l.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

// Save writes step name and the deferred steps, or fails as FailWrite says.
func (l *Lease) Save(_ context.Context, name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return fmt.Errorf("save step %s: %w", name, journal.ErrNotOwner)
	}
	l.writes++
	if l.FailWrite != nil && l.FailWrite(l.writes) {
		return errors.New("journal store unavailable")
	}
	for k, d := range l.deferred {
		l.steps[k] = d
	}
	l.deferred = map[string]json.RawMessage{}
	l.steps[name] = raw
	return nil
}

// Defer keeps step name for the next write.
func (l *Lease) Defer(name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.deferred[name] = raw
	l.mu.Unlock()
	return nil
}

// Steps lists the step names, deferred ones included.
func (l *Lease) Steps() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]json.RawMessage{l.steps, l.deferred} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Legacy returns a step of an earlier release's record (see SetLegacy).
func (l *Lease) Legacy(id string) (json.RawMessage, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	raw, ok := l.legacy[id]
	return raw, ok
}

// HasLegacy reports whether SetLegacy put any step.
func (l *Lease) HasLegacy() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.legacy) > 0 }

// SetLegacy puts a step as an earlier release wrote it ("post#1", "stream#1/1").
func (l *Lease) SetLegacy(id, rawJSON string) {
	l.mu.Lock()
	l.legacy[id] = json.RawMessage(rawJSON)
	l.mu.Unlock()
}

// Release ends the attempt as a failed one would: the deferred steps are written.
func (l *Lease) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, d := range l.deferred {
		l.steps[k] = d
	}
	l.deferred = map[string]json.RawMessage{}
}

// Crash ends the attempt as a crash would: the deferred steps are lost.
func (l *Lease) Crash() {
	l.mu.Lock()
	l.deferred = map[string]json.RawMessage{}
	l.mu.Unlock()
}

// NextAttempt is what the next delivery sees: the same record (after Release or Crash), one
// more attempt, no write failures.
func (l *Lease) NextAttempt() {
	l.mu.Lock()
	l.attempt++
	l.FailWrite = nil
	l.mu.Unlock()
}

// Complete marks the event done: later writes fail with journal.ErrNotOwner.
func (l *Lease) Complete() { l.mu.Lock(); l.done = true; l.mu.Unlock() }

// Completed reports whether Complete was called.
func (l *Lease) Completed() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.done }

// Writes is how many writes were attempted.
func (l *Lease) Writes() int { l.mu.Lock(); defer l.mu.Unlock(); return l.writes }

// Raw returns step name's JSON as written (not deferred), for tests that inspect it.
func (l *Lease) Raw(name string) (json.RawMessage, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	raw, ok := l.steps[name]
	return raw, ok
}

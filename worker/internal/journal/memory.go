package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slackrelay/slackrelay/worker/internal/core"
	"github.com/slackrelay/slackrelay/worker/internal/textcut"
)

// Memory is the journal in memory: the same claims, leases and notes as Store, with a map in
// place of the DynamoDB table, for the handler test helper (relay/relaytest) and logic tests.
// Leases it hands out are the same Lease type as Store's; only the one conditional write
// underneath differs. The contract test (contract_test.go) runs the same cases against both.
// Its methods are safe for concurrent use.
type Memory struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Fault, when set, is asked before every write after a claim (op is "save", "release",
	// "complete" or, for a daily counter's add after a completion, "count"; steps are the
	// step names the write carries): a non-nil error fails the write, which then changes
	// nothing, as a store outage would.
	Fault func(key, op string, steps []string) error

	mu       sync.Mutex
	records  map[string]*memRecord
	notes    map[string]memNote
	counters map[string]*memCounter
}

type memCounter struct {
	n       int64
	last    string
	expires time.Time
}

type memRecord struct {
	done       bool
	owner      string // "" when released
	lastWrite  string
	leaseUntil time.Time
	attempts   int
	started    time.Time
	lastError  string
	steps      map[string]json.RawMessage
	legacy     map[string]json.RawMessage
	completed  time.Time
	usage      *core.Usage
}

type memNote struct {
	value   string
	expires time.Time
}

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Claim is Store.Claim on the map.
func (m *Memory) Claim(_ context.Context, key string, owner Owner, leaseUntil time.Time) (Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = map[string]*memRecord{}
	}
	me := owner.Token()
	r := m.records[key]
	now := m.now()
	switch {
	case r == nil:
		r = &memRecord{started: now, steps: map[string]json.RawMessage{}, legacy: map[string]json.RawMessage{}}
		m.records[key] = r
	case r.owner == me:
		return Claim{Outcome: Claimed, Lease: m.leaseLocked(key, me, r)}, nil
	case r.done:
		return Claim{Outcome: Done}, nil
	case r.owner != "" && !now.After(r.leaseUntil) && messageOf(r.owner) != owner.Message:
		return Claim{Outcome: Busy, LeaseUntil: r.leaseUntil, Holder: messageOf(r.owner)}, nil
	}
	r.owner, r.lastWrite, r.leaseUntil = me, me, leaseUntil
	r.attempts++
	return Claim{Outcome: Claimed, Lease: m.leaseLocked(key, me, r)}, nil
}

func (m *Memory) leaseLocked(key, me string, r *memRecord) *Lease {
	l := &Lease{store: memBackend{m}, key: key, owner: me, attempt: r.attempts, lastError: r.lastError, started: r.started,
		steps: map[string]json.RawMessage{}, legacy: map[string]json.RawMessage{}, deferred: map[string]json.RawMessage{}}
	for k, v := range r.steps {
		l.steps[k] = v
	}
	for k, v := range r.legacy {
		l.legacy[k] = v
	}
	return l
}

// Peek is Store.Peek on the map.
func (m *Memory) Peek(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.records[key]
	return r != nil && r.done, nil
}

// PutNote is Store.PutNote on the map.
func (m *Memory) PutNote(_ context.Context, key, value string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.notes == nil {
		m.notes = map[string]memNote{}
	}
	m.notes[key] = memNote{value: value, expires: m.now().Add(ttl)}
	return nil
}

// Note is Store.Note on the map.
func (m *Memory) Note(_ context.Context, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.notes[key]
	if !ok || m.now().After(n.expires) {
		return "", nil
	}
	return n.value, nil
}

// SetLegacy writes a step the way an earlier release recorded it ("post#1"), for tests of
// records written before steps had names.
func (m *Memory) SetLegacy(key, id, rawJSON string) error {
	if !json.Valid([]byte(rawJSON)) {
		return fmt.Errorf("legacy step %s of %s: not JSON", id, key)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = map[string]*memRecord{}
	}
	r := m.records[key]
	if r == nil {
		r = &memRecord{started: m.now(), steps: map[string]json.RawMessage{}, legacy: map[string]json.RawMessage{}}
		m.records[key] = r
	}
	r.legacy[id] = json.RawMessage(rawJSON)
	return nil
}

// memBackend applies a lease's updates to the map under the same condition as DynamoDB's.
type memBackend struct{ m *Memory }

func (b memBackend) update(_ context.Context, u update) error {
	m := b.m
	if m.Fault != nil {
		op := map[writeKind]string{writeSteps: "save", writeRelease: "release", writeComplete: "complete"}[u.kind]
		names := make([]string, 0, len(u.steps))
		for n := range u.steps {
			names = append(names, n)
		}
		if err := m.Fault(u.key, op, names); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.records[u.key]
	if r == nil || !((r.owner == u.owner && !r.done) || r.lastWrite == u.token) {
		return errConflict
	}
	r.lastWrite = u.token
	switch u.kind {
	case writeComplete:
		r.done, r.owner, r.lastError = true, "", ""
		r.steps, r.legacy = map[string]json.RawMessage{}, map[string]json.RawMessage{}
		r.completed, r.usage = m.now(), nil
		if u.usage != nil {
			usage := *u.usage
			r.usage = &usage
		}
		return nil
	case writeRelease:
		r.owner, r.leaseUntil, r.lastError = "", time.Time{}, textcut.Truncate(u.reason, maxErrorBytes)
	}
	for k, v := range u.steps {
		r.steps[k] = v
	}
	return nil
}

func (b memBackend) count(_ context.Context, key, name string, n int64) error {
	m := b.m
	if m.Fault != nil {
		if err := m.Fault(key, "count", nil); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.counters == nil {
		m.counters = map[string]*memCounter{}
	}
	ck := counterKey(name, now)
	c := m.counters[ck]
	if c == nil || now.After(c.expires) {
		c = &memCounter{}
		m.counters[ck] = c
	}
	if c.last == key {
		return nil // this event added last: its add was applied already
	}
	c.n, c.last, c.expires = c.n+n, key, now.Add(CounterTTL)
	return nil
}

// DailyCount is Store.DailyCount on the map.
func (m *Memory) DailyCount(_ context.Context, name string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	c := m.counters[counterKey(name, now)]
	if c == nil || now.After(c.expires) {
		return 0, nil
	}
	return c.n, nil
}

// Usage returns the usage the completed record of key keeps (see Lease.SetUsage) and when
// it completed; ok is false when the key is not completed or its record keeps none.
func (m *Memory) Usage(key string) (u core.Usage, completed time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.records[key]
	if r == nil || !r.done || r.usage == nil {
		return core.Usage{}, time.Time{}, false
	}
	return *r.usage, r.completed, true
}

// ErrInjected is what a Fault may return for a plain store outage.
var ErrInjected = errors.New("journal store unavailable (injected)")

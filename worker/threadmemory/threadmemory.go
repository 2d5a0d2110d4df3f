// Package threadmemory keeps the turns of the Slack threads a bot takes part in (the messages
// it was sent and its own answers), so that a follow-up is answered with its thread as context
// without reading the thread back from Slack: commercially distributed apps get about one
// conversations.replies call a minute per workspace, 15 messages each.
//
// A thread's turns are one record, keyed by workspace, conversation and thread (Key): nothing
// is ever read across threads, conversations or workspaces. A turn is named by its Slack
// message's ts, so recording a turn again (a retried delivery, Slack's retry) changes nothing.
// Every write is conditional on the version it read, so two events of one thread at once
// both land (the loser reads again and retries). Each record expires TTL after its last write
// and holds at most MaxTurns turns and MaxChars characters, the oldest turns dropped first.
//
// Store runs on DynamoDB (NewDynamo: the worker's table, key pk S, TTL attribute expires_at)
// or in memory (NewMemory, for tests); one contract test holds both to the same behaviour.
package threadmemory

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Key names one thread: the workspace (team id), the conversation and the thread's ts (the
// ts of its first message).
type Key struct {
	Team, Channel, Thread string
}

// keyPrefix keeps thread records apart from the journal's in a shared table.
const keyPrefix = "thread:"

func (k Key) id() string { return keyPrefix + k.Team + ":" + k.Channel + ":" + k.Thread }

func (k Key) check() error {
	if k.Team == "" || k.Channel == "" || k.Thread == "" {
		return fmt.Errorf("threadmemory: incomplete thread key (team %q, channel %q, thread %q)", k.Team, k.Channel, k.Thread)
	}
	for _, p := range []string{k.Team, k.Channel, k.Thread} {
		if strings.Contains(p, ":") {
			return fmt.Errorf("threadmemory: thread key part %q has a colon", p)
		}
	}
	return nil
}

// Turn is one message of a thread.
type Turn struct {
	// TS is the Slack message's ts: the turn's identity within its thread.
	TS string
	// User is the author's user id ("" for the bot's own answers).
	User string
	// Text is the message as the model should read it (for an answer: what the user saw).
	Text string
	// Bot marks the bot's own answer.
	Bot bool
}

// Thread is what the memory holds of one thread.
type Thread struct {
	// Turns are the thread's turns, oldest first.
	Turns []Turn
	// Found says the memory had a record of the thread (before the call, for Add).
	Found bool
}

// Limits bound each thread's record.
type Limits struct {
	// TTL is how long a record is kept after its last write.
	TTL time.Duration
	// MaxChars and MaxTurns cap a record: the oldest turns are dropped first, and a turn
	// longer than MaxChars by itself is cut to it.
	MaxChars, MaxTurns int
}

// Defaults of Limits' zero fields.
const (
	DefaultTTL      = 30 * 24 * time.Hour
	DefaultMaxChars = 32000
	DefaultMaxTurns = 50
	// MaxChars and MaxTurns are the largest caps: a record must fit DynamoDB's 400 KB item
	// (4 bytes a character at worst, and about 45 bytes of names, ts and user id a turn).
	MaxChars = 90000
	MaxTurns = 500
)

func (l Limits) withDefaults() Limits {
	if l.TTL <= 0 {
		l.TTL = DefaultTTL
	}
	if l.MaxChars <= 0 {
		l.MaxChars = DefaultMaxChars
	}
	l.MaxChars = min(l.MaxChars, MaxChars)
	if l.MaxTurns <= 0 {
		l.MaxTurns = DefaultMaxTurns
	}
	l.MaxTurns = min(l.MaxTurns, MaxTurns)
	return l
}

// record is a thread's stored state. version 0 is a record that does not exist.
type record struct {
	turns   []Turn
	version int64
	expires time.Time
}

// errConflict is a backend's answer to a write whose record changed since it was read.
var errConflict = errors.New("threadmemory: the record changed since it was read")

// backend is where records live: load reads one (strongly consistent; version 0 when there
// is none, and an expired record is returned as it is), save writes rec as version
// prev+1 if the stored version is still prev (0: no record), else returns errConflict.
type backend interface {
	load(ctx context.Context, id string) (record, error)
	save(ctx context.Context, id string, rec record, prev int64) error
}

// Store is the thread memory over a backend.
type Store struct {
	b      backend
	limits Limits
	now    func() time.Time
}

func newStore(b backend, limits Limits, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{b: b, limits: limits.withDefaults(), now: now}
}

// Limits are the store's limits, defaults applied.
func (s *Store) Limits() Limits { return s.limits }

// maxAttempts bounds the read-change-write rounds of one call that keeps losing races.
const maxAttempts = 25

// Read returns the thread's turns; Found is false when the memory has no record of it (never
// had one, or it expired).
func (s *Store) Read(ctx context.Context, k Key) (Thread, error) {
	if err := k.check(); err != nil {
		return Thread{}, err
	}
	rec, err := s.b.load(ctx, k.id())
	if err != nil {
		return Thread{}, err
	}
	if !s.live(rec) {
		return Thread{}, nil
	}
	return Thread{Turns: rec.turns, Found: true}, nil
}

// Add records turns in the thread, creating its record when there is none: each turn whose
// TS the record already holds is left as it is (so a retry adds nothing). It returns the
// thread after the write, Found saying whether the memory had a record of it before.
func (s *Store) Add(ctx context.Context, k Key, turns ...Turn) (Thread, error) {
	return s.change(ctx, k, true, func(cur []Turn) ([]Turn, bool) { return add(cur, turns) })
}

// AddIfKnown records turns as Add does, but only in a thread the memory has a record of
// (a message in a thread the bot takes part in); it reports whether it did.
func (s *Store) AddIfKnown(ctx context.Context, k Key, turns ...Turn) (bool, error) {
	th, err := s.change(ctx, k, false, func(cur []Turn) ([]Turn, bool) { return add(cur, turns) })
	return th.Found, err
}

// Edit replaces the text of turn ts (an edited message, a regenerated answer); it reports
// whether the thread held that turn.
func (s *Store) Edit(ctx context.Context, k Key, ts, text string) (bool, error) {
	found := false
	_, err := s.change(ctx, k, false, func(cur []Turn) ([]Turn, bool) {
		i := slices.IndexFunc(cur, func(t Turn) bool { return t.TS == ts })
		if i < 0 {
			return cur, false
		}
		found = true
		if cur[i].Text == text {
			return cur, false
		}
		out := slices.Clone(cur)
		out[i].Text = text
		return out, true
	})
	return found, err
}

// Remove drops turn ts from the thread (a deleted message); it reports whether the thread
// held it.
func (s *Store) Remove(ctx context.Context, k Key, ts string) (bool, error) {
	found := false
	_, err := s.change(ctx, k, false, func(cur []Turn) ([]Turn, bool) {
		out := slices.DeleteFunc(slices.Clone(cur), func(t Turn) bool { return t.TS == ts })
		found = len(out) < len(cur)
		return out, found
	})
	return found, err
}

// live reports whether rec exists and has not expired.
func (s *Store) live(rec record) bool {
	return rec.version > 0 && !rec.expires.Before(s.now())
}

// change reads the thread, applies fn and writes the result if fn changed it, conditional on
// the version read, again from a fresh read when another write came first. create says a
// thread without a record gets one; otherwise fn is not called for it. The returned Thread
// has the turns after the write, Found saying whether there was a record before.
func (s *Store) change(ctx context.Context, k Key, create bool, fn func([]Turn) ([]Turn, bool)) (Thread, error) {
	if err := k.check(); err != nil {
		return Thread{}, err
	}
	id := k.id()
	for attempt := 1; ; attempt++ {
		rec, err := s.b.load(ctx, id)
		if err != nil {
			return Thread{}, err
		}
		found := s.live(rec)
		cur := rec.turns
		if !found {
			if !create {
				return Thread{}, nil
			}
			cur = nil // an expired record starts over
		}
		next, changed := fn(cur)
		if changed {
			next = s.cap(next)
		}
		if !changed && found {
			return Thread{Turns: cur, Found: true}, nil
		}
		err = s.b.save(ctx, id, record{turns: next, expires: s.now().Add(s.limits.TTL)}, rec.version)
		if err == nil {
			return Thread{Turns: next, Found: found}, nil
		}
		if !errors.Is(err, errConflict) || attempt == maxAttempts {
			return Thread{}, err
		}
		// Another write of this thread came first: read it and apply fn again.
		select {
		case <-ctx.Done():
			return Thread{}, ctx.Err()
		case <-time.After(time.Duration(rand.IntN(10*attempt)+1) * time.Millisecond):
		}
	}
}

// add returns cur with the turns whose TS it lacks, in ts order.
func add(cur, turns []Turn) ([]Turn, bool) {
	out := slices.Clone(cur)
	changed := false
	for _, t := range turns {
		if t.TS == "" || slices.ContainsFunc(out, func(c Turn) bool { return c.TS == t.TS }) {
			continue
		}
		out = append(out, t)
		changed = true
	}
	slices.SortStableFunc(out, func(a, b Turn) int { return CompareTS(a.TS, b.TS) })
	return out, changed
}

// cap drops the oldest turns until the record fits the limits, and cuts a turn that alone is
// over MaxChars.
func (s *Store) cap(turns []Turn) []Turn {
	if len(turns) > s.limits.MaxTurns {
		turns = turns[len(turns)-s.limits.MaxTurns:]
	}
	total := 0
	for i := len(turns) - 1; i >= 0; i-- {
		n := utf8.RuneCountInString(turns[i].Text)
		if total+n > s.limits.MaxChars {
			if i == len(turns)-1 {
				turns[i].Text = string([]rune(turns[i].Text)[:s.limits.MaxChars])
				return turns[i:]
			}
			return turns[i+1:]
		}
		total += n
	}
	return turns
}

// CompareTS orders two Slack timestamps ("1700000000.000100"): -1, 0 or +1.
func CompareTS(a, b string) int {
	as, au, _ := strings.Cut(a, ".")
	bs, bu, _ := strings.Cut(b, ".")
	if len(as) != len(bs) {
		return cmpInt(len(as), len(bs))
	}
	if c := strings.Compare(as, bs); c != 0 {
		return c
	}
	pad := func(s string) string { return s + strings.Repeat("0", max(0, 6-len(s))) }
	return strings.Compare(pad(au), pad(bu))
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

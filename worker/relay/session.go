package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/internal/core"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// Request is what a handler gets: the payload, decoded once by the framework, and the
// Session's helpers.
type Request[T any] struct {
	Payload *T
	*Session
}

// Session holds one delivery's helpers. Every helper that makes something appear in Slack
// (Reply, Post, Respond, Ephemeral, Update, OpenView, the stream) records what it is about
// to do in the event's journal before it does it, under a step name, so a handler written in
// the obvious way — compute, then reply — never answers twice and never stops half way,
// whatever is retried. Calls made with Slack directly are not recorded.
//
// A step's name comes from what it sends ("post:C123:1700000000.000100" for a reply in that
// thread, "respond", "ephemeral:U123", "view", "update:C123:ts", "stream:C123:ts"), never
// from the order of calls, so a handler that takes another branch on a retry cannot reuse
// another step's result. Two effects of one kind to the same place in one run need their own
// names: see Named. A name used twice in one run is a permanent error, on the first run.
type Session struct {
	// Slack is a slack-go client carrying the bot token.
	Slack *slack.Client
	// Log carries the delivery's ids (request, envelope, event, team, route, dedupe key).
	Log *slog.Logger
	// Envelope is the queue message as the receiver wrote it.
	Envelope *envelope.Envelope

	run  *runState
	name string // set by Named: the next helper's step name
}

// runState is what the copies Named makes share: the delivery and the names taken.
type runState struct {
	rt    *core.Services
	lease core.Lease
	about about

	mu     sync.Mutex
	used   map[string]bool
	legacy map[string]int // call order per kind, for records of an earlier release
}

// run runs the delivery's handler under lease. The Slack client (the bot token) is resolved
// first, so a missing token fails before any slow work starts.
func (d *delivery) run(ctx context.Context, rt *core.Services, lease core.Lease, log *slog.Logger) error {
	if d.route == nil {
		return errors.New("relay: run of an unrouted delivery")
	}
	var client *slack.Client
	if !d.route.opts.noSlack {
		var err error
		if client, err = rt.Slack(ctx, d.about.tenant); err != nil {
			return err
		}
	}
	s := &Session{Slack: client, Log: log, Envelope: d.env,
		run: &runState{rt: rt, lease: lease, about: d.about, used: map[string]bool{}, legacy: map[string]int{}}}
	return d.route.run(ctx, s, d.payload)
}

// Named returns the session with name as the step name of the next helper called on it:
// for a handler that has two effects of one kind to one place in one run (two replies in
// the same thread, say), each with its own name. Names must be stable across retries (not
// from a clock or a counter of attempts).
//
//	req.Named("ack").Reply(ctx, "On it…")
//	req.Named("answer").Reply(ctx, answer)
func (s *Session) Named(name string) *Session {
	c := *s
	c.name = name
	return &c
}

// Attempt is 1 on the first delivery that ran this event, n on the n-th (a retry, Slack's
// redelivery, a continuation, a DLQ replay), whatever SQS's receive count says.
func (s *Session) Attempt() int { return s.run.lease.Attempt() }

// Key is the event's dedupe key.
func (s *Session) Key() string { return s.run.lease.Key() }

// Channel and Thread are where Reply posts: the conversation of the message the delivery is
// about, and its thread (the message's own ts when it is not in a thread yet).
func (s *Session) Channel() string { return s.run.about.channel }

// Thread is the thread Reply answers in ("" when the delivery is not about a message).
func (s *Session) Thread() string { return s.run.about.replyThread() }

// Tenant is the installation an event was delivered for: its workspace, or its org for an
// org-wide Enterprise Grid install. Session.Slack carries that installation's token.
type Tenant = core.Tenant

// Tenant is the installation the delivery was delivered for (whose token Slack carries).
func (s *Session) Tenant() Tenant { return s.run.about.tenant }

// MessageRef names a message.
type MessageRef struct{ Channel, TS string }

// Source is the message the delivery is about: the user's message for app_mention and
// message events, the clicked message for a block action (zero when there is none).
func (s *Session) Source() MessageRef {
	return MessageRef{Channel: s.run.about.channel, TS: s.run.about.ts}
}

// User is the user the delivery comes from.
func (s *Session) User() string { return s.run.about.user }

// ErrStepTwice is the error (permanent) of a helper called twice with one step name in one
// run.
var ErrStepTwice = errors.New("relay: one step name used twice in one run")

// step takes the step name of this helper call: kind, then the name given with Named or
// derived from where it goes. It also returns the id the same call had in records of an
// earlier release, which numbered steps by call order ("post#2").
func (s *Session) step(kind, derived string) (name, legacyID string, err error) {
	n := derived
	if s.name != "" {
		n = s.name
	}
	name = kind + ":" + n
	r := s.run
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used[name] {
		hint := "give each its own name with Session.Named"
		if s.name != "" {
			hint = "names given with Session.Named must differ"
		}
		return "", "", failure.AsPermanent(fmt.Errorf("%w: %q (%s)", ErrStepTwice, name, hint))
	}
	r.used[name] = true
	r.legacy[kind]++
	return name, kind + "#" + strconv.Itoa(r.legacy[kind]), nil
}

// load reads step name into v; in a record of an earlier release it reads the step the same
// call had there (legacyID) instead. It reports whether there was one.
func (s *Session) load(name, legacyID string, v any) (bool, error) {
	l := s.run.lease
	found, err := l.Load(name, v)
	if found || err != nil || !l.HasLegacy() {
		return found, err
	}
	raw, ok := l.Legacy(legacyID)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("read step %s of a record of an earlier release: %w", legacyID, err)
	}
	return true, nil
}

// save writes step name (the intent before a call to Slack); losing the claim is reported as
// journal.ErrNotOwner.
func (s *Session) save(ctx context.Context, name string, v any) error {
	if err := s.run.lease.Save(ctx, name, v); err != nil {
		return fmt.Errorf("record %s: %w", name, err)
	}
	return nil
}

// settle keeps what a call to Slack did, for the next write (the step's next intent, the
// release of a failed attempt; the event's completion drops it).
func (s *Session) settle(name string, v any) {
	if err := s.run.lease.Defer(name, v); err != nil {
		s.Log.Warn("could not keep a step's result", "step", name, "error", err.Error())
	}
}

// AddReaction adds an emoji reaction to the message the delivery is about (an "already
// reacted" answer counts as done). Reactions are idempotent, so nothing is recorded.
func (s *Session) AddReaction(ctx context.Context, name string) error {
	if s.run.about.channel == "" || s.run.about.ts == "" {
		return failure.Permanentf("add reaction %s: this delivery is not about a message", name)
	}
	err := s.Slack.AddReactionContext(ctx, name, slack.NewRefToMessage(s.run.about.channel, s.run.about.ts))
	if isSlackError(err, "already_reacted") {
		return nil
	}
	return err
}

// RemoveReaction removes an emoji reaction the bot added (a missing one counts as done).
func (s *Session) RemoveReaction(ctx context.Context, name string) error {
	if s.run.about.channel == "" || s.run.about.ts == "" {
		return nil
	}
	err := s.Slack.RemoveReactionContext(ctx, name, slack.NewRefToMessage(s.run.about.channel, s.run.about.ts))
	if isSlackError(err, "no_reaction") {
		return nil
	}
	return err
}

func isSlackError(err error, code string) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se) && se.Err == code
}

// notSent reports whether err proves Slack did not act on the call (it answered, and said
// no), as opposed to a lost answer after which the post may be visible.
func notSent(err error) bool {
	var se slack.SlackErrorResponse
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	switch {
	case errors.As(err, &se), errors.As(err, &rl):
		return true
	case errors.As(err, &sc):
		return sc.Code >= 400 && sc.Code < 500
	}
	return false
}

// Permanent marks err as one that retrying cannot fix: the message goes to the DLQ with
// err's text as the reason.
func Permanent(err error) error { return failure.AsPermanent(err) }

// RetryAfter asks for the message to come back after d (at least a second, at most what
// SQS allows), counting as one attempt.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		err = errors.New("handler asked to retry later")
	}
	return &failure.RetryAfterError{After: d, Err: err}
}

// noteTTL is how long Remember keeps a value.
const noteTTL = 24 * time.Hour

// Remember keeps value under key for a day, for this workspace (keys of different teams
// never meet). It is for small state across events, such as the channel an assistant
// thread's user is looking at.
func (s *Session) Remember(ctx context.Context, key, value string) error {
	if s.run.rt.Notes == nil {
		return nil
	}
	return s.run.rt.Notes.PutNote(ctx, s.run.about.team+":"+key, value, noteTTL)
}

// Recall returns what Remember kept under key in this workspace, or "".
func (s *Session) Recall(ctx context.Context, key string) (string, error) {
	if s.run.rt.Notes == nil {
		return "", nil
	}
	return s.run.rt.Notes.Note(ctx, s.run.about.team+":"+key)
}

package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/progress"
)

// Request is what a handler gets: the payload, decoded once by the framework, and the
// Session's helpers.
type Request[T any] struct {
	Payload *T
	*Session
}

// Lease is the part of a progress claim a Session uses; *progress.Lease satisfies it.
type Lease interface {
	Key() string
	Attempt() int
	Step(id string) (progress.Step, bool)
	Save(ctx context.Context, id string, st progress.Step) error
}

var _ Lease = (*progress.Lease)(nil)

// Session holds one delivery's helpers. Every helper that makes something appear in Slack
// (Reply, Post, Respond, Ephemeral, OpenView, the stream) records what it did in the event's
// progress record before and after it does it, so a handler written in the obvious way —
// compute, then reply — never posts twice and never stops half way, whatever is retried.
// Calls made with Slack directly are not recorded.
type Session struct {
	// Slack is a slack-go client carrying the bot token.
	Slack *slack.Client
	// Log carries the delivery's ids (request, envelope, event, team, route, dedupe key).
	Log *slog.Logger
	// Envelope is the queue message as the receiver wrote it.
	Envelope *envelope.Envelope

	rt    *Runtime
	lease Lease
	about about

	mu  sync.Mutex
	seq map[string]int
}

// Run runs the delivery's handler under lease. The Slack client (the bot token) is resolved
// first, so a missing token fails before any slow work starts.
func (d *Delivery) Run(ctx context.Context, rt *Runtime, lease Lease, log *slog.Logger) error {
	if d.route == nil {
		return errors.New("relay: run of an unrouted delivery")
	}
	client, err := rt.Slack(ctx)
	if err != nil {
		return err
	}
	s := &Session{Slack: client, Log: log, Envelope: d.env, rt: rt, lease: lease, about: d.about, seq: map[string]int{}}
	return d.route.run(ctx, s, d.payload)
}

// Attempt is 1 on the first delivery that ran this event, n on the n-th (a retry, Slack's
// redelivery, a DLQ replay), whatever SQS's receive count says.
func (s *Session) Attempt() int { return s.lease.Attempt() }

// Key is the event's dedupe key.
func (s *Session) Key() string { return s.lease.Key() }

// Channel and Thread are where Reply posts: the conversation of the message the delivery is
// about, and its thread (the message's own ts when it is not in a thread yet).
func (s *Session) Channel() string { return s.about.channel }

// Thread is the thread Reply answers in ("" when the delivery is not about a message).
func (s *Session) Thread() string { return s.about.replyThread() }

// MessageRef names a message.
type MessageRef struct{ Channel, TS string }

// Source is the message the delivery is about: the user's message for app_mention and
// message events, the clicked message for a block action (zero when there is none).
func (s *Session) Source() MessageRef { return MessageRef{Channel: s.about.channel, TS: s.about.ts} }

// User is the user the delivery comes from.
func (s *Session) User() string { return s.about.user }

// nextStep returns the id of this session's next step of kind: "post#1", "post#2", … The
// n-th call of a helper in one run maps to the n-th call in every other run of the handler.
func (s *Session) nextStep(kind string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq[kind]++
	return kind + "#" + strconv.Itoa(s.seq[kind])
}

// save records a step; losing the claim is reported as progress.ErrNotOwner.
func (s *Session) save(ctx context.Context, id string, st progress.Step) error {
	if err := s.lease.Save(ctx, id, st); err != nil {
		return fmt.Errorf("record %s: %w", id, err)
	}
	return nil
}

// AddReaction adds an emoji reaction to the message the delivery is about (an "already
// reacted" answer counts as done). Reactions are idempotent, so nothing is recorded.
func (s *Session) AddReaction(ctx context.Context, name string) error {
	if s.about.channel == "" || s.about.ts == "" {
		return failure.Permanentf("add reaction %s: this delivery is not about a message", name)
	}
	err := s.Slack.AddReactionContext(ctx, name, slack.NewRefToMessage(s.about.channel, s.about.ts))
	if isSlackError(err, "already_reacted") {
		return nil
	}
	return err
}

// RemoveReaction removes an emoji reaction the bot added (a missing one counts as done).
func (s *Session) RemoveReaction(ctx context.Context, name string) error {
	if s.about.channel == "" || s.about.ts == "" {
		return nil
	}
	err := s.Slack.RemoveReactionContext(ctx, name, slack.NewRefToMessage(s.about.channel, s.about.ts))
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
	if s.rt.Notes == nil {
		return nil
	}
	return s.rt.Notes.PutNote(ctx, s.about.team+":"+key, value, noteTTL)
}

// Recall returns what Remember kept under key in this workspace, or "".
func (s *Session) Recall(ctx context.Context, key string) (string, error) {
	if s.rt.Notes == nil {
		return "", nil
	}
	return s.rt.Notes.Note(ctx, s.about.team+":"+key)
}

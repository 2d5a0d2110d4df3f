// Package failure classifies what went wrong while handling a message, so that the worker
// retries what can succeed later, waits when rate limited, and sends to the DLQ what cannot.
// Errors are matched by type (errors.Is/As), never by their text.
package failure

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Class is how the worker treats an error.
type Class int

const (
	// Transient errors are retried with backoff until the receive count runs out.
	Transient Class = iota
	// Permanent errors cannot succeed on retry: the message goes to the DLQ at once.
	Permanent
	// RateLimited errors are retried after the Retry-After the server gave.
	RateLimited
	// Config errors are something the worker needs that is missing (a secret's parameter):
	// retried with backoff (an operator can fix it meanwhile), logged at ERROR, and
	// dead-lettered as "config" when the retries run out.
	Config
	// Continue is not a failure: the handler made progress and the invocation is ending, so
	// the work goes on in a new delivery at once (an answer longer than one invocation).
	Continue
	// NotInstalled: the event's workspace (or org) has no active installation, so there is no
	// token to answer it with; it goes to the DLQ at once, unanswered.
	NotInstalled
)

func (c Class) String() string {
	return [...]string{"transient", "permanent", "rate_limited", "config", "continue", "not_installed"}[c]
}

// NotInstalledError wraps why an event's workspace has no usable installation.
type NotInstalledError struct{ Err error }

func (e *NotInstalledError) Error() string { return e.Err.Error() }
func (e *NotInstalledError) Unwrap() error { return e.Err }

// AsNotInstalled marks err as a missing installation (class NotInstalled).
func AsNotInstalled(err error) error { return &NotInstalledError{Err: err} }

// ErrContinue ends an attempt that made progress and must go on in a new delivery: the
// invocation is about to end (see Class Continue).
var ErrContinue = errors.New("the work continues in the next invocation")

// PermanentError wraps an error that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanentf returns a PermanentError with a formatted message (%w works).
func Permanentf(format string, args ...any) error {
	return &PermanentError{Err: fmt.Errorf(format, args...)}
}

// AsPermanent marks err permanent.
func AsPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RateLimitError says the callee asked to wait RetryAfter before the next attempt.
type RateLimitError struct {
	Service    string
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%s rate limited: retry after %s", e.Service, e.RetryAfter)
}

// RetryAfterError asks for the message to come back after After (a handler's own "snooze").
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %v", e.After, e.Err)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryableError marks an error as transient whatever it wraps: a failed fallback check must
// be retried, never turn an event into a dead letter (a missing_scope inside it included).
type RetryableError struct{ Err error }

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// Retryable marks err transient.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &RetryableError{Err: err}
}

// HTTPStatusError is a non-2xx answer from an HTTP API (response_url, the LLM API).
type HTTPStatusError struct {
	Service string
	Status  int
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("%s answered HTTP %d", e.Service, e.Status)
}

// slackPermanent are Slack Web API error codes that retrying cannot fix.
var slackPermanent = map[string]bool{
	"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "no_permission": true, "missing_scope": true, "not_allowed_token_type": true,
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "msg_too_long": true,
	"no_text": true, "invalid_blocks": true, "invalid_blocks_format": true, "invalid_metadata_format": true,
	"restricted_action": true, "cannot_reply_to_message": true, "user_not_found": true,
	"invalid_arguments": true, "thread_not_found": true, "method_deprecated": true,
	// Size errors are permanent for that shape of message: the helpers split instead.
	"msg_blocks_too_long": true, "invalid_attachments": true, "too_many_attachments": true,
	"cant_update_message": true, "message_not_found": true, "edit_window_closed": true,
	"invalid_trigger_id": true, "expired_trigger_id": true, "exchanged_trigger_id": true,
}

// tokenRefused are Slack's answers that refuse the token itself (not the call): the
// installation it belongs to is unusable until it is installed again.
var tokenRefused = map[string]bool{"invalid_auth": true, "token_revoked": true, "account_inactive": true, "not_authed": true}

// TokenRefused is Slack's error code when err says Slack refused the token itself, "" else.
func TokenRefused(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && tokenRefused[se.Err] {
		return se.Err
	}
	return ""
}

// misconfigured is an error that says retrying cannot fix it until an operator changes the
// configuration (a missing SSM parameter: shared/secrets.NotFoundError).
type misconfigured interface{ Misconfigured() bool }

// Classify returns the class of err and, for RateLimited, how long to wait.
func Classify(err error) (Class, time.Duration) {
	if errors.Is(err, ErrContinue) {
		return Continue, 0
	}
	var ni *NotInstalledError
	if errors.As(err, &ni) {
		return NotInstalled, 0
	}
	var mis misconfigured
	if errors.As(err, &mis) && mis.Misconfigured() {
		return Config, 0
	}
	var retry *RetryableError
	if errors.As(err, &retry) {
		return Transient, 0
	}
	var after *RetryAfterError
	if errors.As(err, &after) {
		return RateLimited, after.After
	}
	var perm *PermanentError
	if errors.As(err, &perm) {
		return Permanent, 0
	}
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return RateLimited, rl.RetryAfter
	}
	var srl *slack.RateLimitedError
	if errors.As(err, &srl) {
		return RateLimited, srl.RetryAfter
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && slackPermanent[se.Err] {
		return Permanent, 0
	}
	var sce slack.StatusCodeError
	if errors.As(err, &sce) {
		return classifyStatus(sce.Code), 0
	}
	var hse *HTTPStatusError
	if errors.As(err, &hse) {
		return classifyStatus(hse.Status), 0
	}
	return Transient, 0
}

// classifyStatus: 5xx, 408 and 429 (without Retry-After) are worth retrying; other 4xx
// mean the request itself is wrong.
func classifyStatus(code int) Class {
	switch {
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return Transient
	case code >= 400:
		return Permanent
	}
	return Transient
}

// Backoff returns the delay before attempt receiveCount+1: base·2^(n−1), capped at max.
func Backoff(receiveCount int, base, max time.Duration) time.Duration {
	if receiveCount < 1 {
		receiveCount = 1
	}
	d := base
	for i := 1; i < receiveCount; i++ {
		d *= 2
		if d >= max || d <= 0 {
			return max
		}
	}
	if d > max {
		return max
	}
	return d
}

// DefaultRetryAfter is the wait after a 429 whose Retry-After is missing or unreadable.
const DefaultRetryAfter = 30 * time.Second

// ParseRetryAfter reads a Retry-After header as HTTP defines it, whole (or fractional)
// seconds or an HTTP date, and gives DefaultRetryAfter when it is missing, unreadable, not
// positive or a day or more. The worker clamps whatever it gets before it waits.
func ParseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if secs, err := strconv.ParseFloat(h, 64); err == nil && secs > 0 && secs < 86400 {
		return time.Duration(secs * float64(time.Second))
	}
	if at, err := http.ParseTime(h); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return DefaultRetryAfter
}

package secrets

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound means a parameter or key does not exist. The message names it, never a value.
// A *NotFoundError says which.
var ErrNotFound = errors.New("secret not found")

// ErrUnavailable means the store has no value to give: the SSM call failed, ran out of
// time, or failed recently and is not tried again before its backoff has passed. A
// *LoadError says why and when the next attempt may be made.
var ErrUnavailable = errors.New("secrets unavailable")

// NotFoundError names what is missing: SSM parameters that do not exist or cannot be read
// (GetParameters' InvalidParameters), or a key the store has no parameter or value for.
// errors.Is(err, ErrNotFound) holds. It is a configuration problem, not an outage.
type NotFoundError struct {
	// Params are the SSM parameter names SSM reported missing.
	Params []string
	// Key is the store's key ("bot_token", …) when the key itself has no parameter or value.
	Key string
}

func (e *NotFoundError) Error() string {
	if len(e.Params) > 0 {
		return fmt.Sprintf("ssm parameters %s do not exist or are not readable", strings.Join(e.Params, ", "))
	}
	return fmt.Sprintf("no secret configured for %s", e.Key)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Misconfigured marks the error as a configuration problem for classifiers that do not
// import this package (the worker's failure classes): retrying cannot fix it until an
// operator does.
func (e *NotFoundError) Misconfigured() bool { return true }

// LoadError is what Get returns while the store holds no value: the parameters it could not
// load, how many attempts in a row have failed and how long until the next one may be made.
// It matches ErrUnavailable and wraps the last failure, so errors.Is(err, ErrNotFound) tells
// a missing parameter (a configuration problem) from an outage.
type LoadError struct {
	Params   []string
	Failures int
	// RetryIn is the time left, when the error was made, before the store calls SSM again.
	RetryIn time.Duration
	Err     error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("ssm parameters %s not loaded (%d failed attempts in a row, next attempt in %s): %v",
		strings.Join(e.Params, ", "), e.Failures, e.RetryIn.Round(time.Millisecond), e.Err)
}

// Unwrap returns the last failure.
func (e *LoadError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *LoadError) Is(target error) bool { return target == ErrUnavailable }

// Package secrets reads the bot's secrets (signing secret, bot token, API keys) from SSM
// Parameter Store SecureString parameters at run time and caches them, or takes them from
// plain values in local mode. Values never appear in logs or errors.
//
// The store is built for callers with a deadline (a Lambda invocation that must answer):
//
//   - every SSM call is bounded: by Options.Timeout, and by the caller's deadline less
//     Options.Reserve, so the caller keeps time to answer after a call that ran out of time;
//   - a failed refresh keeps serving the last good values (stale-while-error), with a WARN
//     line and a SecretLoadFailures metric, never the values;
//   - a failed load is remembered: until its backoff (Options.RetryMin doubling per failure in
//     a row, capped at Options.RetryMax, jittered) has passed, Get answers from memory (the
//     last good values, or a *LoadError) and ForceRefresh does nothing, so no amount of
//     traffic turns an SSM outage into more SSM calls;
//   - concurrent callers share one call, and while a refresh is under way callers that have
//     a value to use do not wait for it.
package secrets

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/slackrelay/slackrelay/shared/metrics"
)

// ParamGetter is the one SSM call the store makes; *ssm.Client satisfies it.
type ParamGetter interface {
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
}

var _ ParamGetter = (*ssm.Client)(nil)

// The defaults of Options.
const (
	DefaultMaxAge             = 5 * time.Minute
	DefaultMinRefreshInterval = time.Minute
	DefaultTimeout            = 2 * time.Second
	DefaultReserve            = 250 * time.Millisecond
	DefaultRetryMin           = time.Second
	DefaultRetryMax           = 30 * time.Second
)

// MetricLoadFailures counts failed loads; its dimension Serving is "stale" when the last good
// values are still served, "none" when there is nothing to serve.
const MetricLoadFailures = "SecretLoadFailures"

// Options tune the cache. Zero values take the defaults.
type Options struct {
	// MaxAge is how long loaded values are used before they are read again (default 5m).
	MaxAge time.Duration
	// MinRefreshInterval limits ForceRefresh (default 1m), so a flood of bad signatures
	// cannot turn into a flood of SSM calls.
	MinRefreshInterval time.Duration
	// Timeout bounds one SSM call, retries included (default 2s); it is the whole bound when
	// the caller's context has no deadline (init, local mode).
	Timeout time.Duration
	// Reserve is the part of the caller's deadline an SSM call leaves unused (default
	// 250ms): a caller that must still do something after the secret (answer, enqueue)
	// reserves the time that takes.
	Reserve time.Duration
	// RetryMin and RetryMax bound the wait after a failed load (defaults 1s and 30s): it
	// doubles with each failure in a row up to RetryMax, and is jittered to between half
	// and all of that.
	RetryMin, RetryMax time.Duration
	// Log receives one line per failed load and one when loading works again (default:
	// nowhere). Metrics receives MetricLoadFailures (default: none).
	Log     *slog.Logger
	Metrics *metrics.Emitter
	// Now is the clock of the cache and the backoff (default time.Now). Rand returns a
	// number in [0, 1) for the jitter (default math/rand/v2).
	Now  func() time.Time
	Rand func() float64
}

func (o Options) withDefaults() Options {
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&o.MaxAge, DefaultMaxAge)
	set(&o.MinRefreshInterval, DefaultMinRefreshInterval)
	set(&o.Timeout, DefaultTimeout)
	set(&o.Reserve, DefaultReserve)
	set(&o.RetryMin, DefaultRetryMin)
	set(&o.RetryMax, DefaultRetryMax)
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	return o
}

// Store holds the secrets a binary needs, by key ("signing_secret", "bot_token", …).
type Store struct {
	client ParamGetter
	params map[string]string // key → SSM parameter name
	names  []string          // the parameter names, sorted
	opts   Options
	static map[string]string // non-nil: a store of fixed values

	mu         sync.Mutex
	values     map[string]string // the last good values; nil until a load succeeds
	loadedAt   time.Time
	failures   int       // failed loads in a row
	lastErr    error     // the last failure, while failures > 0
	retryAt    time.Time // no SSM call before this, while failures > 0
	lastForced time.Time
	flight     *flight // the SSM call under way, if any
}

// flight is one SSM call that concurrent callers share.
type flight struct {
	done chan struct{}
	err  error // what the callers get when there are no values to serve
}

// NewSSM returns a store that reads params (key → parameter name) from SSM with decryption.
func NewSSM(client ParamGetter, params map[string]string, opts Options) *Store {
	s := &Store{client: client, params: params, opts: opts.withDefaults()}
	for _, name := range params {
		s.names = append(s.names, name)
	}
	sort.Strings(s.names)
	s.names = slices.Compact(s.names)
	return s
}

// NewStatic returns a store of fixed values, for local mode and tests.
func NewStatic(values map[string]string) *Store {
	if values == nil {
		values = map[string]string{}
	}
	return &Store{static: values, opts: Options{}.withDefaults()}
}

// Get returns the value of key. Fresh values come from memory; older ones are read again,
// unless a load failed recently (then the last good value, or the failure, is returned
// without a call) or another caller's read is under way and a value is at hand.
func (s *Store) Get(ctx context.Context, key string) (string, error) {
	if s.static != nil {
		if v := s.static[key]; v != "" {
			return v, nil
		}
		return "", &NotFoundError{Key: key}
	}
	if _, ok := s.params[key]; !ok {
		return "", &NotFoundError{Key: key}
	}
	s.mu.Lock()
	now := s.opts.Now()
	if s.values != nil && (now.Sub(s.loadedAt) < s.opts.MaxAge || s.flight != nil || s.backingOffLocked(now)) {
		v := s.values[key]
		s.mu.Unlock()
		return v, nil
	}
	if s.values == nil && s.backingOffLocked(now) {
		err := s.loadErrorLocked(now)
		s.mu.Unlock()
		return "", err
	}
	s.mu.Unlock()

	err := s.load(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values != nil {
		return s.values[key], nil // fresh, or the last good value when the refresh failed
	}
	return "", err
}

// Preload reads every parameter now, for a binary's init: later calls find the values in
// memory. A failure is remembered like any other (Get answers from memory until the backoff
// has passed) and returned, for the caller to log or to fail on.
func (s *Store) Preload(ctx context.Context) error {
	if s.static != nil {
		return nil
	}
	s.mu.Lock()
	if now := s.opts.Now(); s.backingOffLocked(now) {
		err := s.loadErrorLocked(now)
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	return s.load(ctx)
}

// ForceRefresh reads the parameters again now, for example after a signature check failed
// because the secret was rotated. It does so at most once per MinRefreshInterval, and not
// while a failed load is backing off; it reports false when it was skipped.
func (s *Store) ForceRefresh(ctx context.Context) (bool, error) {
	if s.static != nil {
		return false, nil
	}
	s.mu.Lock()
	now := s.opts.Now()
	if (!s.lastForced.IsZero() && now.Sub(s.lastForced) < s.opts.MinRefreshInterval) || s.backingOffLocked(now) {
		s.mu.Unlock()
		return false, nil
	}
	s.lastForced = now
	s.mu.Unlock()
	if err := s.load(ctx); err != nil {
		return false, err
	}
	return true, nil
}

func (s *Store) backingOffLocked(now time.Time) bool {
	return s.failures > 0 && now.Before(s.retryAt)
}

func (s *Store) loadErrorLocked(now time.Time) error {
	return &LoadError{Params: s.names, Failures: s.failures, RetryIn: max(s.retryAt.Sub(now), 0), Err: s.lastErr}
}

// servingLocked is what the store serves while SSM fails: "stale" or "none".
func (s *Store) servingLocked() string {
	if s.values != nil {
		return "stale"
	}
	return "none"
}

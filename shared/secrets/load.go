package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/slackrelay/slackrelay/shared/metrics"
)

// errNoTime is returned, without a call, when the caller's deadline less the reserve has
// already passed: no SSM call could finish in time, and none is attempted.
var errNoTime = fmt.Errorf("%w: no time left for an ssm call before the caller's deadline", ErrUnavailable)

// load reads every parameter in one bounded call; callers that arrive meanwhile wait for it
// (each up to its own context). The outcome is recorded: the values, or a failure and its
// backoff. A call cut short because the caller itself gave up is not counted as a failure.
func (s *Store) load(ctx context.Context) error {
	s.mu.Lock()
	if f := s.flight; f != nil {
		s.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for the ssm call under way: %w", ErrUnavailable, ctx.Err())
		}
	}
	callCtx, cancel, ok := s.bound(ctx)
	if !ok {
		s.mu.Unlock()
		return errNoTime
	}
	f := &flight{done: make(chan struct{})}
	s.flight = f
	s.mu.Unlock()

	values, err := s.fetch(callCtx)
	callerGone := err != nil && ctx.Err() != nil
	cancel()

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	switch {
	case err == nil:
		s.succeededLocked(now, values)
	case callerGone:
		f.err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		s.failedLocked(now, err)
		f.err = s.loadErrorLocked(now)
	}
	s.flight = nil
	close(f.done)
	return f.err
}

// bound returns the context of one SSM call: at most Timeout from now, and over Reserve
// before the caller's deadline. ok is false when that leaves no time at all. Deadlines are
// wall-clock times (context deadlines are), whatever clock Options.Now gives.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc, bool) {
	deadline := time.Now().Add(s.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Add(-s.opts.Reserve).Before(deadline) {
		deadline = d.Add(-s.opts.Reserve)
	}
	if time.Until(deadline) <= 0 {
		return nil, nil, false
	}
	c, cancel := context.WithDeadline(ctx, deadline)
	return c, cancel, true
}

func (s *Store) succeededLocked(now time.Time, values map[string]string) {
	if s.failures > 0 {
		s.opts.Log.Info("ssm parameters loaded again", "params", s.names, "failed_attempts", s.failures)
	}
	s.values, s.loadedAt = values, now
	s.failures, s.lastErr, s.retryAt = 0, nil, time.Time{}
}

// failedLocked records a failure and when the next attempt may be made, and reports it
// once: a missing parameter is a configuration error (ERROR on the first failure in a row),
// anything else an outage (WARN).
func (s *Store) failedLocked(now time.Time, err error) {
	s.failures++
	wait := s.opts.RetryMin
	for i := 1; i < s.failures && wait < s.opts.RetryMax; i++ {
		wait *= 2
	}
	wait = min(wait, s.opts.RetryMax)
	wait = wait/2 + time.Duration(s.opts.Rand()*float64(wait/2))
	s.retryAt, s.lastErr = now.Add(wait), err

	level, msg := slog.LevelWarn, "ssm parameters could not be read"
	if errors.Is(err, ErrNotFound) && s.failures == 1 {
		level, msg = slog.LevelError, "configuration error: ssm parameters missing or not readable"
	}
	serving := s.servingLocked()
	s.opts.Log.Log(context.Background(), level, msg, "params", s.names, "error", err.Error(),
		"failed_attempts", s.failures, "retry_in", wait.Round(time.Millisecond).String(), "serving", serving)
	s.opts.Metrics.Count(MetricLoadFailures, 1, metrics.Dim{Name: "Serving", Value: serving})
}

func (s *Store) fetch(ctx context.Context) (map[string]string, error) {
	out, err := s.client.GetParameters(ctx, &ssm.GetParametersInput{Names: s.names, WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read secrets from ssm: %w", err)
	}
	if len(out.InvalidParameters) > 0 {
		return nil, &NotFoundError{Params: out.InvalidParameters}
	}
	got := make(map[string]string, len(out.Parameters))
	for _, p := range out.Parameters {
		got[aws.ToString(p.Name)] = aws.ToString(p.Value)
	}
	var missing []string
	for _, name := range s.names {
		if _, ok := got[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, &NotFoundError{Params: missing}
	}
	values := make(map[string]string, len(s.params))
	for key, name := range s.params {
		values[key] = got[name]
	}
	return values, nil
}

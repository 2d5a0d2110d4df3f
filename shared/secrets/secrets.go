// Package secrets reads the bot's secrets (signing secret, bot token, API keys) from SSM
// Parameter Store SecureString parameters at run time and caches them, or takes them from
// plain values in local mode. Values never appear in logs or errors.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// ParamGetter is the one SSM call the store makes; *ssm.Client satisfies it.
type ParamGetter interface {
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, optFns ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
}

var _ ParamGetter = (*ssm.Client)(nil)

// ErrNotFound means a parameter or key does not exist. The message names it, never a value.
var ErrNotFound = errors.New("secret not found")

// Options tune the cache. Zero values take the defaults.
type Options struct {
	// MaxAge is how long loaded values are used before they are read again (default 5m).
	MaxAge time.Duration
	// MinRefreshInterval limits ForceRefresh (default 1m), so a flood of bad signatures
	// cannot turn into a flood of SSM calls.
	MinRefreshInterval time.Duration
	Now                func() time.Time
}

// Store holds the secrets a binary needs, by key ("signing_secret", "bot_token", …).
type Store struct {
	client ParamGetter
	params map[string]string // key → SSM parameter name
	maxAge time.Duration
	minGap time.Duration
	now    func() time.Time

	mu         sync.Mutex
	values     map[string]string
	loadedAt   time.Time
	lastForced time.Time
	loading    chan struct{} // non-nil while one load is under way
	loadErr    error
	static     bool
}

// NewSSM returns a store that reads params (key → parameter name) from SSM with decryption.
func NewSSM(client ParamGetter, params map[string]string, opts Options) *Store {
	s := &Store{client: client, params: params, maxAge: opts.MaxAge, minGap: opts.MinRefreshInterval, now: opts.Now}
	if s.maxAge <= 0 {
		s.maxAge = 5 * time.Minute
	}
	if s.minGap <= 0 {
		s.minGap = time.Minute
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// NewStatic returns a store of fixed values, for local mode and tests.
func NewStatic(values map[string]string) *Store {
	return &Store{values: values, static: true, now: time.Now}
}

// Get returns the value of key, reading all parameters again when the cache is older than
// MaxAge. Concurrent callers share one SSM call.
func (s *Store) Get(ctx context.Context, key string) (string, error) {
	if s.static {
		v, ok := s.values[key]
		if !ok || v == "" {
			return "", fmt.Errorf("%w: %s is not set", ErrNotFound, key)
		}
		return v, nil
	}
	s.mu.Lock()
	fresh := s.values != nil && s.now().Sub(s.loadedAt) < s.maxAge
	s.mu.Unlock()
	if !fresh {
		if err := s.load(ctx); err != nil {
			return "", err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.values[key]
	if !ok {
		return "", fmt.Errorf("%w: no parameter configured for %s", ErrNotFound, key)
	}
	return v, nil
}

// ForceRefresh reads the parameters again now, for example after a signature check failed
// because the secret was rotated. It does so at most once per MinRefreshInterval and reports
// false when it was skipped for that reason.
func (s *Store) ForceRefresh(ctx context.Context) (bool, error) {
	if s.static {
		return false, nil
	}
	s.mu.Lock()
	if !s.lastForced.IsZero() && s.now().Sub(s.lastForced) < s.minGap {
		s.mu.Unlock()
		return false, nil
	}
	s.lastForced = s.now()
	s.mu.Unlock()
	if err := s.load(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// load reads every parameter in one call; callers that arrive meanwhile wait for it.
func (s *Store) load(ctx context.Context) error {
	s.mu.Lock()
	if ch := s.loading; ch != nil {
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.loadErr
	}
	ch := make(chan struct{})
	s.loading = ch
	s.mu.Unlock()

	values, err := s.fetch(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.values, s.loadedAt = values, s.now()
	}
	s.loadErr, s.loading = err, nil
	close(ch)
	return err
}

func (s *Store) fetch(ctx context.Context) (map[string]string, error) {
	byName := make(map[string]string, len(s.params))
	names := make([]string, 0, len(s.params))
	for key, name := range s.params {
		byName[name] = key
		names = append(names, name)
	}
	sort.Strings(names)
	out, err := s.client.GetParameters(ctx, &ssm.GetParametersInput{Names: names, WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read secrets from ssm: %w", err)
	}
	if len(out.InvalidParameters) > 0 {
		return nil, fmt.Errorf("%w: ssm parameters %v do not exist or are not readable", ErrNotFound, out.InvalidParameters)
	}
	values := make(map[string]string, len(names))
	for _, p := range out.Parameters {
		if key, ok := byName[aws.ToString(p.Name)]; ok {
			values[key] = aws.ToString(p.Value)
		}
	}
	for key, name := range s.params {
		if _, ok := values[key]; !ok {
			return nil, fmt.Errorf("%w: ssm parameter %s missing from the answer", ErrNotFound, name)
		}
	}
	return values, nil
}

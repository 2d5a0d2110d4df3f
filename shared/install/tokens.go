package install

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Refreshed is what a refresh of a rotating token returns.
type Refreshed struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration // 0: the new token does not expire
}

// ExpiresAt is the new token's expiry for a refresh answered at now (zero when it does not
// expire).
func (r Refreshed) ExpiresAt(now time.Time) time.Time {
	if r.ExpiresIn <= 0 {
		return time.Time{}
	}
	return now.Add(r.ExpiresIn).UTC()
}

// Refresher exchanges a refresh token for new tokens (Slack's oauth.v2.access, grant
// refresh_token: SlackRefresher). Slack revokes the refresh token it was given, so each one
// is used once; an error wrapping a *RefusedError means Slack refused the refresh token
// itself, and the installation is disabled.
type Refresher interface {
	Refresh(ctx context.Context, refreshToken string) (Refreshed, error)
}

// RefusedError is Slack refusing a refresh token (invalid_refresh_token, invalid_auth,
// token_revoked...): retrying cannot help.
type RefusedError struct {
	Code string // Slack's error code
}

func (e *RefusedError) Error() string { return "slack refused the refresh token: " + e.Code }

// TokensOptions tune Tokens; the zero value takes the defaults.
type TokensOptions struct {
	// Ahead: a token with less than this left is refreshed (default 10 minutes).
	Ahead time.Duration
	// Lease: how long a refresher holds the refresh lease; its call to Slack is cut at half of
	// it, so a lease never runs out under a live refresh (default 30 seconds).
	Lease time.Duration
	// Wait bounds how long a caller waits for another's refresh (default Lease + 10 seconds,
	// enough to outlive a dead holder's lease).
	Wait time.Duration
	// Attempts: failed refreshes (not refusals) before giving up (default 3).
	Attempts int
	// Backoff: the first pause after a failed refresh or between looks at another's refresh;
	// it doubles, with jitter, up to a second (default 50ms).
	Backoff time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives one line per refresh (ids only, never tokens); nil: slog.Default().
	Logger *slog.Logger
}

// Tokens hands out usable bot tokens, refreshing rotating ones ahead of expiry so that of many
// concurrent callers (goroutines, Lambdas) exactly one refreshes: it wins a conditional write
// that takes a refresh lease on the installation, conditioned on the version it read; the
// others wait, with backoff and a bound, for the version to move and use the new token (or
// keep using the current one while it is still good). A failed refresh releases the lease and
// is retried with backoff; a caller whose context ends while it holds the lease leaves it to
// expire, and another takes over then. A refresh token Slack refused disables the
// installation with Slack's reason.
type Tokens struct {
	store     Store
	refresher Refresher
	o         TokensOptions
}

// NewTokens returns Tokens over store and refresher.
func NewTokens(store Store, refresher Refresher, o TokensOptions) *Tokens {
	if o.Ahead <= 0 {
		o.Ahead = 10 * time.Minute
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Wait <= 0 {
		o.Wait = o.Lease + 10*time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 50 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Tokens{store: store, refresher: refresher, o: o}
}

// minValid: a token with less than this left is not handed out while another refreshes it;
// the caller waits for the new one instead.
const minValid = time.Minute

// Token returns inst, or a newer version of it, whose BotToken is usable now. inst is what
// Find returned; an installation that is not active gives ErrNotActive.
func (t *Tokens) Token(ctx context.Context, inst Installation) (Installation, error) {
	owner := newOwner()
	key := inst.Key()
	waitUntil := t.o.Now().Add(t.o.Wait)
	pause := t.o.Backoff
	failures := 0
	var lastErr error
	cur := inst
	for {
		now := t.o.Now()
		if cur.Status != StatusActive {
			return cur, fmt.Errorf("%w: %s is %s (%s)", ErrNotActive, key, cur.Status, cur.StatusReason)
		}
		left := cur.ExpiresAt.Sub(now)
		if cur.ExpiresAt.IsZero() || left >= t.o.Ahead {
			return cur, nil
		}
		if cur.RefreshToken == "" {
			if left > 0 {
				return cur, nil
			}
			return cur, fmt.Errorf("install: the bot token of %s expired at %s and there is no refresh token", key, cur.ExpiresAt.Format(time.RFC3339))
		}
		leased := cur.RefreshLeaseOwner != "" && cur.RefreshLeaseUntil.After(now)
		if leased && left >= minValid {
			return cur, nil // another is refreshing; the current token is still good
		}
		if !leased {
			err := t.store.TakeRefreshLease(ctx, key, cur.Version, owner, now, now.Add(t.o.Lease))
			switch {
			case err == nil:
				next, err := t.refresh(ctx, cur, owner)
				if err == nil {
					return next, nil
				}
				var refused *RefusedError
				if errors.As(err, &refused) || ctx.Err() != nil || errors.Is(err, ErrNotActive) {
					return cur, err
				}
				failures++
				lastErr = err
				if failures >= t.o.Attempts {
					return cur, fmt.Errorf("install: refresh of %s failed %d times: %w", key, failures, err)
				}
			case errors.Is(err, ErrConflict):
				// another took the lease or moved the version: look again
			default:
				return cur, fmt.Errorf("install: taking the refresh lease of %s: %w", key, err)
			}
		}
		if t.o.Now().After(waitUntil) {
			if lastErr != nil {
				return cur, fmt.Errorf("install: no usable token for %s after waiting %s: %w", key, t.o.Wait, lastErr)
			}
			return cur, fmt.Errorf("install: no usable token for %s after waiting %s for another's refresh", key, t.o.Wait)
		}
		if err := sleep(ctx, jitter(pause)); err != nil {
			return cur, fmt.Errorf("install: waiting for the refresh of %s: %w", key, err)
		}
		pause = min(2*pause, time.Second)
		next, err := t.store.Get(ctx, key)
		if err != nil {
			return cur, fmt.Errorf("install: reading %s again: %w", key, err)
		}
		cur = next
	}
}

// refresh runs one refresh under owner's lease on cur.
func (t *Tokens) refresh(ctx context.Context, cur Installation, owner string) (Installation, error) {
	key := cur.Key()
	log := t.o.Logger.With(slog.String("installation", key), slog.Int64("version", cur.Version))
	callCtx, cancel := context.WithTimeout(ctx, t.o.Lease/2)
	r, err := t.refresher.Refresh(callCtx, cur.RefreshToken)
	cancel()
	if err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) {
			log.Warn("slack refused the refresh token; disabling the installation", slog.String("reason", refused.Code))
			if derr := t.store.DisableIfVersion(ctx, key, cur.Version, refused.Code, t.o.Now()); derr != nil && !errors.Is(derr, ErrConflict) {
				return cur, fmt.Errorf("install: refresh of %s refused (%s), and disabling it failed: %w", key, refused.Code, derr)
			}
			return cur, fmt.Errorf("install: refresh of %s: %w", key, err)
		}
		if ctx.Err() == nil { // a caller that is gone leaves its lease to expire
			if rerr := t.store.ReleaseRefreshLease(ctx, key, owner); rerr != nil {
				log.Warn("releasing the refresh lease failed; it will expire", slog.String("error", rerr.Error()))
			}
		}
		log.Warn("token refresh failed", slog.String("error", err.Error()))
		return cur, fmt.Errorf("install: refresh of %s: %w", key, err)
	}
	if r.AccessToken == "" || r.RefreshToken == "" {
		_ = t.store.ReleaseRefreshLease(ctx, key, owner)
		return cur, fmt.Errorf("install: refresh of %s answered without an access or a refresh token", key)
	}
	next, err := t.store.CompleteRefresh(ctx, key, cur.Version, owner, r, t.o.Now())
	if err != nil {
		// The new tokens are lost and the old refresh token is spent: the next refresh will be
		// refused and disable the installation, which a re-install repairs.
		return cur, fmt.Errorf("install: storing the refreshed tokens of %s: %w", key, err)
	}
	log.Info("bot token refreshed", slog.Int64("new_version", next.Version), slog.Time("expires_at", next.ExpiresAt))
	return next, nil
}

func newOwner() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

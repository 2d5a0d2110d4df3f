package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// rotatingSlack models Slack's token rotation: each refresh token works once (a second use
// answers invalid_refresh_token), and a refresh issues an access token valid for 12 hours.
type rotatingSlack struct {
	mu        sync.Mutex
	refresh   map[string]bool      // refresh tokens not yet used
	spent     map[string]bool      // refresh tokens used once
	access    map[string]time.Time // access token → expiry
	refreshes int                  // successful refreshes
	reused    int                  // uses of a spent refresh token
	failNext  int                  // transient failures to answer before working
	n         int
}

func newRotatingSlack() *rotatingSlack {
	return &rotatingSlack{refresh: map[string]bool{}, spent: map[string]bool{}, access: map[string]time.Time{}}
}

// install registers the tokens of inst as Slack's own.
func (s *rotatingSlack) install(inst Installation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh[inst.RefreshToken] = true
	s.access[inst.BotToken] = inst.ExpiresAt
}

func (s *rotatingSlack) Refresh(ctx context.Context, rt string) (Refreshed, error) {
	time.Sleep(20 * time.Millisecond) // a round trip: the window for racing refreshers
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		return Refreshed{}, errors.New("oauth.v2.access: 503 service unavailable")
	}
	if !s.refresh[rt] {
		if s.spent[rt] {
			s.reused++
		}
		return Refreshed{}, &RefusedError{Code: "invalid_refresh_token"}
	}
	delete(s.refresh, rt)
	s.spent[rt] = true
	s.n++
	s.refreshes++
	r := Refreshed{AccessToken: fmt.Sprintf("xoxb-rotated-%d", s.n), RefreshToken: fmt.Sprintf("xoxe-1-rotated-%d", s.n), ExpiresIn: 12 * time.Hour}
	s.refresh[r.RefreshToken] = true
	s.access[r.AccessToken] = time.Now().Add(r.ExpiresIn)
	return r, nil
}

// valid is Slack's answer to a call with token now: no invalid_auth, no token_expired.
func (s *rotatingSlack) valid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.access[token]
	return ok && time.Now().Before(exp)
}

func (s *rotatingSlack) counts() (refreshes, reused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes, s.reused
}

// installed saves a workspace install whose token expires at expires, known to slack.
func installed(t *testing.T, s Store, slack *rotatingSlack, expires time.Time) Installation {
	t.Helper()
	in := workspace("T1")
	in.ExpiresAt = expires.UTC().Truncate(time.Millisecond)
	inst, err := s.Save(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	slack.install(inst)
	return inst
}

// TestTokensRotationRace: 20 workers, each with its own store client, ask for the token
// across an expiry: exactly one refresh, every one gets a token Slack accepts, no spent
// refresh token is ever used.
func TestTokensRotationRace(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		left time.Duration
	}{
		{"expired", -time.Second},
		{"expiring soon", 5 * time.Minute}, // inside the 10 minutes ahead
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			stores(t, func(t *testing.T, newStore func() Store) {
				slack := newRotatingSlack()
				installed(t, newStore(), slack, time.Now().Add(c.left))
				const workers = 20
				start := make(chan struct{})
				var wg sync.WaitGroup
				errs := make(chan error, workers)
				for w := range workers {
					wg.Add(1)
					store := newStore()
					go func() {
						defer wg.Done()
						ctx := context.Background()
						<-start
						inst, err := Find(ctx, store, "T1", "", false)
						if err != nil {
							errs <- fmt.Errorf("worker %d: %w", w, err)
							return
						}
						got, err := NewTokens(store, slack, TokensOptions{}).Token(ctx, inst)
						if err != nil {
							errs <- fmt.Errorf("worker %d: %w", w, err)
							return
						}
						if !slack.valid(got.BotToken) {
							errs <- fmt.Errorf("worker %d: slack answers invalid_auth to the token of version %d", w, got.Version)
						}
					}()
				}
				close(start)
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Error(err)
				}
				refreshes, reused := slack.counts()
				if refreshes != 1 || reused != 0 {
					t.Errorf("slack saw %d refreshes and %d uses of a spent refresh token; want 1 and 0", refreshes, reused)
				}
				final, err := newStore().Get(context.Background(), TeamKey("T1"))
				if err != nil || final.BotToken != "xoxb-rotated-1" || final.RefreshLeaseOwner != "" || final.Status != StatusActive {
					t.Errorf("stored after the race: version %d, %s, lease %q, %v; want the one refresh's token, no lease", final.Version, final.Status, final.RefreshLeaseOwner, err)
				}
			})
		})
	}
}

// blockingRefresher is a refresher whose process dies mid-refresh: it never reaches Slack.
type blockingRefresher struct{ started chan struct{} }

func (b blockingRefresher) Refresh(ctx context.Context, _ string) (Refreshed, error) {
	close(b.started)
	<-ctx.Done()
	return Refreshed{}, ctx.Err()
}

// TestTokensLeaseHolderDies: the lease holder's context ends after it took the lease; another
// takes over once the lease has expired, and refreshes once.
func TestTokensLeaseHolderDies(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, newStore func() Store) {
		slack := newRotatingSlack()
		inst := installed(t, newStore(), slack, time.Now().Add(-time.Second))
		opts := TokensOptions{Lease: time.Second}
		dead := blockingRefresher{started: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			_, err := NewTokens(newStore(), dead, opts).Token(ctx, inst)
			done <- err
		}()
		<-dead.started
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("the dying holder: %v, want context.Canceled", err)
		}
		store := newStore()
		held, err := store.Get(context.Background(), inst.Key())
		if err != nil || held.RefreshLeaseOwner == "" {
			t.Fatalf("the dead holder's lease: owner %q, %v; want still held", held.RefreshLeaseOwner, err)
		}
		got, err := NewTokens(store, slack, opts).Token(context.Background(), held)
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().Before(held.RefreshLeaseUntil) {
			t.Errorf("took over at %v, before the lease ran out at %v", time.Now(), held.RefreshLeaseUntil)
		}
		if refreshes, reused := slack.counts(); !slack.valid(got.BotToken) || refreshes != 1 || reused != 0 {
			t.Errorf("after the takeover: token valid %t, %d refreshes, %d reuses; want true, 1, 0", slack.valid(got.BotToken), refreshes, reused)
		}
	})
}

func TestTokensFailedRefreshRetried(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, newStore func() Store) {
		slack := newRotatingSlack()
		store := newStore()
		inst := installed(t, store, slack, time.Now().Add(-time.Second))
		slack.failNext = 2
		got, err := NewTokens(store, slack, TokensOptions{Attempts: 3}).Token(context.Background(), inst)
		if err != nil || !slack.valid(got.BotToken) {
			t.Fatalf("after two failures: valid %t, %v; want a token on the third attempt", slack.valid(got.BotToken), err)
		}
		// Three failures in a row: an error naming the failure, the installation active, no lease.
		expired, err := store.Save(context.Background(), Installation{TeamID: "T2", BotToken: "xoxb-T2", RefreshToken: "xoxe-T2", ExpiresAt: time.Now().Add(-time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		slack.install(expired)
		slack.failNext = 3
		_, err = NewTokens(store, slack, TokensOptions{Attempts: 3}).Token(context.Background(), expired)
		if err == nil || !strings.Contains(err.Error(), "failed 3 times") || !strings.Contains(err.Error(), "503") {
			t.Fatalf("three failures: %v, want an error saying the refresh failed 3 times with 503", err)
		}
		if after, _ := store.Get(context.Background(), expired.Key()); after.Status != StatusActive || after.RefreshLeaseOwner != "" || after.Version != expired.Version {
			t.Errorf("after failed refreshes: %s, lease %q, version %d; want active, released, %d", after.Status, after.RefreshLeaseOwner, after.Version, expired.Version)
		}
	})
}

func TestTokensRefusedRefreshDisables(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, newStore func() Store) {
		slack := newRotatingSlack()
		store := newStore()
		inst := installed(t, store, slack, time.Now().Add(-time.Second))
		slack.mu.Lock()
		delete(slack.refresh, inst.RefreshToken) // revoked behind our back
		slack.mu.Unlock()
		_, err := NewTokens(store, slack, TokensOptions{}).Token(context.Background(), inst)
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Code != "invalid_refresh_token" {
			t.Fatalf("refused refresh: %v, want a RefusedError invalid_refresh_token", err)
		}
		after, _ := store.Get(context.Background(), inst.Key())
		if after.Status != StatusDisabled || after.StatusReason != "invalid_refresh_token" {
			t.Errorf("after a refused refresh: %s (%q), want disabled (invalid_refresh_token)", after.Status, after.StatusReason)
		}
		if _, err := NewTokens(store, slack, TokensOptions{}).Token(context.Background(), after); !errors.Is(err, ErrNotActive) {
			t.Errorf("token of a disabled install: %v, want ErrNotActive", err)
		}
	})
}

func TestTokensNoRefreshNeeded(t *testing.T) {
	t.Parallel()
	slack := newRotatingSlack()
	store := NewMemoryStore(nil)
	fresh := installed(t, store, slack, time.Now().Add(time.Hour))
	if got, err := NewTokens(store, slack, TokensOptions{}).Token(context.Background(), fresh); err != nil || got.BotToken != fresh.BotToken {
		t.Fatalf("fresh token: %v; want it as it is", err)
	}
	noRotation, _ := store.Save(context.Background(), Installation{TeamID: "T2", BotToken: "xoxb-T2"})
	if got, err := NewTokens(store, slack, TokensOptions{}).Token(context.Background(), noRotation); err != nil || got.BotToken != "xoxb-T2" {
		t.Fatalf("a token without rotation: %v; want it as it is", err)
	}
	if refreshes, _ := slack.counts(); refreshes != 0 {
		t.Errorf("%d refreshes of tokens that needed none", refreshes)
	}
}

package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/shared/awstest"
)

// stores runs f against each Store: the same contract for both.
func stores(t *testing.T, f func(t *testing.T, newStore func() Store)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		m := NewMemoryStore(nil) // one store: its "clients" share it, as DynamoDB clients share a table
		f(t, func() Store { return m })
	})
	t.Run("dynamodb", func(t *testing.T) {
		t.Parallel()
		table := awstest.NewTable(t)
		endpoint := awstest.Endpoint(t, awstest.EnvDynamoDB)
		// A client per store, as separate workers (Lambdas) have.
		f(t, func() Store { return NewDynamoStore(awstest.DynamoDBAt(endpoint), table, nil) })
	})
}

func workspace(team string) Installation {
	return Installation{
		TeamID: team, BotToken: "xoxb-" + team + "-1", BotUserID: "U" + team, BotID: "B" + team, AppID: "A1",
		Scopes: []string{"chat:write", "app_mentions:read"}, RefreshToken: "xoxe-1-" + team,
		ExpiresAt: time.Now().Add(12 * time.Hour).UTC().Truncate(time.Millisecond),
	}
}

func TestStoreContract(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, newStore func() Store) {
		ctx := context.Background()
		s := newStore()

		// Save: a first install, then a re-install keeps InstalledAt and bumps the version.
		in := workspace("T1")
		got, err := s.Save(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 1 || got.Status != StatusActive || got.InstalledAt.IsZero() {
			t.Fatalf("first save: got version %d, status %s, installed %v; want 1, active, set", got.Version, got.Status, got.InstalledAt)
		}
		want := in
		want.Status, want.Version, want.InstalledAt, want.UpdatedAt = StatusActive, 1, got.InstalledAt, got.UpdatedAt
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("saved installation (-want +got):\n%s", d)
		}
		read, err := s.Get(ctx, TeamKey("T1"))
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(got, read); d != "" {
			t.Fatalf("Get after Save (-saved +read):\n%s", d)
		}
		in.BotToken = "xoxb-T1-2"
		again, err := s.Save(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if again.Version != 2 || !again.InstalledAt.Equal(got.InstalledAt) || again.BotToken != "xoxb-T1-2" {
			t.Fatalf("re-install: got version %d, installed %v, token changed %t; want 2, %v, true", again.Version, again.InstalledAt, again.BotToken == "xoxb-T1-2", got.InstalledAt)
		}
		if _, err := s.Save(ctx, Installation{TeamID: "T9"}); err == nil || !strings.Contains(err.Error(), "bot token") {
			t.Fatalf("save without a token: got %v, want an error naming the bot token", err)
		}

		// Find: the workspace install first, then the org install; nothing else.
		org := Installation{EnterpriseID: "E1", IsEnterpriseInstall: true, BotToken: "xoxb-E1", BotUserID: "UE1", AppID: "A1"}
		if _, err := s.Save(ctx, org); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			team, enterprise string
			isOrg            bool
			wantKey          string
			wantErr          error
		}{
			{"T1", "", false, "T#T1", nil},
			{"T1", "E1", false, "T#T1", nil},
			{"T2", "E1", false, "E#E1", nil}, // a workspace of the org without its own install
			{"T1", "E1", true, "E#E1", nil},  // an org-wide install's event
			{"T2", "", false, "", ErrNotFound},
			{"T2", "E2", false, "", ErrNotFound},
		} {
			inst, err := Find(ctx, s, c.team, c.enterprise, c.isOrg)
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil && inst.Key() != c.wantKey) {
				t.Errorf("Find(%q, %q, %t) = %s, %v; want %s, %v", c.team, c.enterprise, c.isOrg, inst.Key(), err, c.wantKey, c.wantErr)
			}
		}

		// Disable: kept, never active; Find falls back to the org install, else says why.
		if err := s.Disable(ctx, TeamKey("T1"), "token_revoked"); err != nil {
			t.Fatal(err)
		}
		if inst, err := Find(ctx, s, "T1", "E1", false); err != nil || inst.Key() != "E#E1" {
			t.Errorf("Find of a disabled workspace in an org: %s, %v; want E#E1", inst.Key(), err)
		}
		inst, err := Find(ctx, s, "T1", "", false)
		if !errors.Is(err, ErrNotActive) || inst.StatusReason != "token_revoked" || inst.Status != StatusDisabled || inst.Version != 3 {
			t.Errorf("Find of a disabled install: %s (%s, %q), %v; want disabled, token_revoked, version 3, ErrNotActive", inst.Key(), inst.Status, inst.StatusReason, err)
		}
		// Uninstall erases the tokens.
		if err := s.Uninstall(ctx, EnterpriseKey("E1"), "app_uninstalled"); err != nil {
			t.Fatal(err)
		}
		gone, err := s.Get(ctx, EnterpriseKey("E1"))
		if err != nil || gone.Status != StatusUninstalled || gone.BotToken != "" || gone.RefreshToken != "" || gone.StatusReason != "app_uninstalled" {
			t.Errorf("after Uninstall: %s, token kept %t, reason %q, %v; want uninstalled, no token, app_uninstalled", gone.Status, gone.BotToken != "", gone.StatusReason, err)
		}
		if err := s.Disable(ctx, TeamKey("T404"), "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Disable of a missing install: %v, want ErrNotFound", err)
		}
		// Save re-activates; Delete removes.
		if back, err := s.Save(ctx, in); err != nil || back.Status != StatusActive || back.StatusReason != "" {
			t.Errorf("re-install after disable: %s %q, %v; want active", back.Status, back.StatusReason, err)
		}
		if err := s.Delete(ctx, TeamKey("T1")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, TeamKey("T1")); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete: %v, want ErrNotFound", err)
		}
	})
}

func TestStoreContractRefreshLease(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, newStore func() Store) {
		ctx := context.Background()
		a, b := newStore(), newStore()
		inst, err := a.Save(ctx, workspace("T1"))
		if err != nil {
			t.Fatal(err)
		}
		key, v, now := inst.Key(), inst.Version, time.Now()
		if err := a.TakeRefreshLease(ctx, key, v+1, "a", now, now.Add(time.Minute)); !errors.Is(err, ErrConflict) {
			t.Fatalf("lease at a stale version: %v, want ErrConflict", err)
		}
		if err := a.TakeRefreshLease(ctx, key, v, "a", now, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := b.TakeRefreshLease(ctx, key, v, "b", now, now.Add(time.Minute)); !errors.Is(err, ErrConflict) {
			t.Fatalf("second lease while held: %v, want ErrConflict", err)
		}
		if _, err := b.CompleteRefresh(ctx, key, v, "b", Refreshed{AccessToken: "x", RefreshToken: "y"}, now); !errors.Is(err, ErrConflict) {
			t.Fatalf("complete without the lease: %v, want ErrConflict", err)
		}
		// An expired lease can be taken over.
		later := now.Add(2 * time.Minute)
		if err := b.TakeRefreshLease(ctx, key, v, "b", later, later.Add(time.Minute)); err != nil {
			t.Fatalf("taking over an expired lease: %v", err)
		}
		if err := a.ReleaseRefreshLease(ctx, key, "a"); err != nil { // not a's any more: left alone
			t.Fatal(err)
		}
		held, _ := a.Get(ctx, key)
		if held.RefreshLeaseOwner != "b" {
			t.Fatalf("a released b's lease: owner %q", held.RefreshLeaseOwner)
		}
		done, err := b.CompleteRefresh(ctx, key, v, "b", Refreshed{AccessToken: "xoxb-new", RefreshToken: "xoxe-new", ExpiresIn: 12 * time.Hour}, later)
		if err != nil {
			t.Fatal(err)
		}
		wantExp := later.Add(12 * time.Hour).UTC().Truncate(time.Millisecond)
		if done.Version != v+1 || done.BotToken != "xoxb-new" || done.RefreshToken != "xoxe-new" || !done.ExpiresAt.Equal(wantExp) || done.RefreshLeaseOwner != "" {
			t.Fatalf("after refresh: version %d, expiry %v, lease %q; want %d, %v, none", done.Version, done.ExpiresAt, done.RefreshLeaseOwner, v+1, wantExp)
		}
		if err := a.DisableIfVersion(ctx, key, v, "invalid_refresh_token", later); !errors.Is(err, ErrConflict) {
			t.Fatalf("disable at a stale version: %v, want ErrConflict", err)
		}
		if err := a.DisableIfVersion(ctx, key, v+1, "invalid_refresh_token", later); err != nil {
			t.Fatal(err)
		}
		if err := a.TakeRefreshLease(ctx, key, v+2, "a", later, later.Add(time.Minute)); !errors.Is(err, ErrConflict) {
			t.Fatalf("lease on a disabled install: %v, want ErrConflict", err)
		}
		var logged strings.Builder
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("refreshed", slog.Any("installation", done))
		if s := fmt.Sprint(done) + fmt.Sprintf("%+v %#v", done, done) + logged.String(); strings.Contains(s, "xoxb") || strings.Contains(s, "xoxe") || !strings.Contains(logged.String(), `"key":"T#T1"`) {
			t.Fatalf("an installation printed its tokens: %s", s)
		}
	})
}

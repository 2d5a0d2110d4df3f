// Package install keeps the installations of a Slack app distributed to many workspaces: one
// record per workspace install (key T#<team>) or org-wide Enterprise Grid install (key
// E#<enterprise>), with its bot token, the refresh token when token rotation is on, its expiry,
// scopes, bot ids, a status and a version. The receiver's install flow writes them (Save); the
// worker resolves the installation of each event (Find) and asks Tokens for a usable bot token,
// refreshed ahead of expiry by exactly one caller (see tokens.go).
//
// Two stores share one contract (contract_test.go): DynamoStore, the table the stack's template
// declares, and MemoryStore for tests and the local world.
package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Status is the state of an installation.
type Status string

// The statuses. Only an active installation's token is ever handed out.
const (
	StatusActive      Status = "active"
	StatusDisabled    Status = "disabled"    // Slack refused its tokens (token_revoked, invalid_auth, invalid_refresh_token)
	StatusUninstalled Status = "uninstalled" // app_uninstalled: its tokens are erased
)

// Installation is one install of the app: a workspace's, or an org's when IsEnterpriseInstall.
// Its String and LogValue never show the tokens.
type Installation struct {
	TeamID              string
	EnterpriseID        string
	IsEnterpriseInstall bool

	BotToken     string
	BotUserID    string
	BotID        string
	AppID        string
	Scopes       []string
	RefreshToken string    // empty without token rotation
	ExpiresAt    time.Time // zero: the bot token does not expire

	Status       Status
	StatusReason string // why it is disabled or uninstalled

	InstalledAt time.Time
	UpdatedAt   time.Time
	// Version grows by one with every write that changes the tokens or the status; the
	// conditional writes of the refresh are conditioned on it.
	Version int64

	// RefreshLeaseUntil and RefreshLeaseOwner are the refresh lease (tokens.go): while it is
	// held and unexpired, only its owner refreshes.
	RefreshLeaseUntil time.Time
	RefreshLeaseOwner string
}

// TeamKey is the key of a workspace install.
func TeamKey(team string) string { return "T#" + team }

// EnterpriseKey is the key of an org-wide install.
func EnterpriseKey(enterprise string) string { return "E#" + enterprise }

// Key is the installation's key in its store: E#<enterprise> for an org-wide install,
// T#<team> otherwise.
func (i Installation) Key() string {
	if i.IsEnterpriseInstall {
		return EnterpriseKey(i.EnterpriseID)
	}
	return TeamKey(i.TeamID)
}

// String names the installation without its tokens.
func (i Installation) String() string {
	return fmt.Sprintf("installation %s (team %q, enterprise %q, %s, version %d)", i.Key(), i.TeamID, i.EnterpriseID, i.Status, i.Version)
}

// GoString is String, so that %#v does not print the tokens either.
func (i Installation) GoString() string { return i.String() }

// LogValue logs the installation's ids, status and version, never its tokens.
func (i Installation) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("key", i.Key()),
		slog.String("team", i.TeamID),
		slog.String("enterprise", i.EnterpriseID),
		slog.String("status", string(i.Status)),
		slog.Int64("version", i.Version),
	)
}

// validate reports what is missing for Save.
func (i Installation) validate() error {
	var missing []string
	if i.IsEnterpriseInstall && i.EnterpriseID == "" {
		missing = append(missing, "enterprise id (an org-wide install)")
	}
	if !i.IsEnterpriseInstall && i.TeamID == "" {
		missing = append(missing, "team id")
	}
	if i.BotToken == "" {
		missing = append(missing, "bot token")
	}
	if len(missing) > 0 {
		return fmt.Errorf("install: cannot save %s: missing %v", i.Key(), missing)
	}
	return nil
}

// Errors of the stores and of Tokens, matched with errors.Is.
var (
	// ErrNotFound: no installation for the event's team or enterprise. The worker dead-letters
	// the event with this reason; it never answers with another tenant's token.
	ErrNotFound = errors.New("install: no installation")
	// ErrNotActive: the installation is disabled or uninstalled.
	ErrNotActive = errors.New("install: installation is not active")
	// ErrConflict: a conditional write lost (the version or the lease moved on).
	ErrConflict = errors.New("install: installation changed concurrently")
)

// Store keeps installations. Implementations: *DynamoStore, *MemoryStore.
type Store interface {
	// Save writes an install or a re-install: the installation becomes active with the given
	// tokens, its version grows by one, a held refresh lease is dropped; InstalledAt is kept
	// from the first install. It returns the installation as stored.
	Save(ctx context.Context, inst Installation) (Installation, error)
	// Get returns the installation under key, whatever its status, or ErrNotFound.
	Get(ctx context.Context, key string) (Installation, error)
	// Disable marks the installation disabled with reason (tokens kept for inspection, never
	// handed out).
	Disable(ctx context.Context, key, reason string) error
	// Uninstall marks the installation uninstalled with reason and erases its tokens.
	Uninstall(ctx context.Context, key, reason string) error
	// Delete removes the record altogether.
	Delete(ctx context.Context, key string) error

	// TakeRefreshLease takes the refresh lease for owner until until, if the installation is
	// active, still at version and holds no unexpired lease at now; else ErrConflict.
	TakeRefreshLease(ctx context.Context, key string, version int64, owner string, now, until time.Time) error
	// CompleteRefresh stores the refreshed tokens if owner still holds the lease at version:
	// the version grows by one and the lease is dropped; else ErrConflict.
	CompleteRefresh(ctx context.Context, key string, version int64, owner string, r Refreshed, now time.Time) (Installation, error)
	// ReleaseRefreshLease drops owner's lease (a failed refresh); a lease owner no longer
	// holds is left alone.
	ReleaseRefreshLease(ctx context.Context, key, owner string) error
	// DisableIfVersion disables the installation with reason if it is still at version (a
	// refresh token Slack refused); else ErrConflict.
	DisableIfVersion(ctx context.Context, key string, version int64, reason string, now time.Time) error
}

// Find resolves the installation for an event: for an org-wide install (isEnterpriseInstall)
// the enterprise's; otherwise the workspace install of team first, then the org install of
// enterprise. The first active candidate wins; when candidates exist but none is active, the
// first is returned with an error wrapping ErrNotActive; with none, ErrNotFound.
// team is the event's context team (authorizations[0].team_id / context_team_id, else team_id).
func Find(ctx context.Context, s Store, team, enterprise string, isEnterpriseInstall bool) (Installation, error) {
	var keys []string
	if !isEnterpriseInstall && team != "" {
		keys = append(keys, TeamKey(team))
	}
	if enterprise != "" {
		keys = append(keys, EnterpriseKey(enterprise))
	}
	var inactive *Installation
	for _, k := range keys {
		inst, err := s.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return Installation{}, err
		}
		if inst.Status == StatusActive {
			return inst, nil
		}
		if inactive == nil {
			inactive = &inst
		}
	}
	if inactive != nil {
		return *inactive, fmt.Errorf("%w: %s is %s (%s)", ErrNotActive, inactive.Key(), inactive.Status, inactive.StatusReason)
	}
	return Installation{}, fmt.Errorf("%w for team %q, enterprise %q (enterprise install: %t)", ErrNotFound, team, enterprise, isEnterpriseInstall)
}

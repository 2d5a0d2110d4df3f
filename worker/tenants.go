package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/shared/install"
	"github.com/slackrelay/slackrelay/worker/engine"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// installationCacheFor is how long a worker keeps an installation it read before reading it
// again: a disable, an uninstall or another worker's refresh is seen within this time (a
// refresh is also seen at once by Tokens, whose conditional write fails on a stale version).
const installationCacheFor = 10 * time.Second

// tenants hands out each event's Slack client in the many-workspace mode: the tenant's
// installation (install.Find: its workspace install, else its org's), a token from Tokens
// (refreshed ahead of expiry by one worker only), and a client per token. A tenant with no
// active installation gets a failure.NotInstalled error: the event is dead-lettered, never
// answered with another tenant's token.
type tenants struct {
	store   install.Store
	tokens  *install.Tokens
	clients *botClients
	log     *slog.Logger
	now     func() time.Time

	mu    sync.Mutex
	cache map[engine.Tenant]cachedInstallation
}

type cachedInstallation struct {
	inst install.Installation
	read time.Time
}

func newTenants(store install.Store, refresher install.Refresher, clients *botClients, log *slog.Logger) *tenants {
	return &tenants{
		store:   store,
		tokens:  install.NewTokens(store, refresher, install.TokensOptions{Logger: log}),
		clients: clients,
		log:     log,
		now:     time.Now,
		cache:   map[engine.Tenant]cachedInstallation{},
	}
}

// installation is t's installation with a usable token.
func (ts *tenants) installation(ctx context.Context, t engine.Tenant) (install.Installation, error) {
	ts.mu.Lock()
	c, ok := ts.cache[t]
	ts.mu.Unlock()
	inst := c.inst
	if !ok || ts.now().Sub(c.read) > installationCacheFor {
		var err error
		inst, err = install.Find(ctx, ts.store, t.Team, t.Enterprise, t.EnterpriseInstall)
		if err != nil {
			return install.Installation{}, ts.notUsable(t, err)
		}
	}
	next, err := ts.tokens.Token(ctx, inst)
	if err != nil {
		ts.forget(t)
		return install.Installation{}, ts.notUsable(t, err)
	}
	ts.mu.Lock()
	if len(ts.cache) > 10000 {
		clear(ts.cache)
	}
	ts.cache[t] = cachedInstallation{inst: next, read: ts.now()}
	ts.mu.Unlock()
	return next, nil
}

// notUsable classifies a failed resolution: no installation, or one that is not active, is
// NotInstalled (dead-lettered at once); anything else (the table unavailable, a refresh that
// failed) is retried.
func (ts *tenants) notUsable(t engine.Tenant, err error) error {
	if errors.Is(err, install.ErrNotFound) || errors.Is(err, install.ErrNotActive) {
		return failure.AsNotInstalled(fmt.Errorf("workspace %q (enterprise %q, org-wide install %t) has no usable installation: %w",
			t.Team, t.Enterprise, t.EnterpriseInstall, err))
	}
	var refused *install.RefusedError
	if errors.As(err, &refused) {
		return failure.AsNotInstalled(fmt.Errorf("workspace %q (enterprise %q): %w", t.Team, t.Enterprise, err))
	}
	return failure.Retryable(fmt.Errorf("the installation of workspace %q (enterprise %q): %w", t.Team, t.Enterprise, err))
}

func (ts *tenants) forget(t engine.Tenant) {
	ts.mu.Lock()
	delete(ts.cache, t)
	ts.mu.Unlock()
}

// client is the tenant's Slack client (engine.Config.Slack).
func (ts *tenants) client(ctx context.Context, t engine.Tenant) (*slack.Client, error) {
	inst, err := ts.installation(ctx, t)
	if err != nil {
		return nil, err
	}
	return ts.clients.client(inst.BotToken), nil
}

// identity is the bot's ids in the tenant (engine.Config.Identity): from the installation, or
// auth.test once per token when it has none.
func (ts *tenants) identity(ctx context.Context, t engine.Tenant) (engine.Identity, error) {
	inst, err := ts.installation(ctx, t)
	if err != nil {
		return engine.Identity{}, err
	}
	if inst.BotUserID != "" || inst.BotID != "" {
		return engine.Identity{UserID: inst.BotUserID, BotID: inst.BotID}, nil
	}
	return ts.clients.identity(ctx, inst.BotToken)
}

// refused disables the tenant's installation after Slack refused its token
// (engine.Config.TokenRefused), unless the installation has moved on since (a refresh or a
// re-install: the refusal was of an older token).
func (ts *tenants) refused(ctx context.Context, t engine.Tenant, code string) {
	ts.mu.Lock()
	c, ok := ts.cache[t]
	delete(ts.cache, t)
	ts.mu.Unlock()
	if !ok {
		return // not resolved by this worker: nothing says which version was refused
	}
	err := ts.store.DisableIfVersion(ctx, c.inst.Key(), c.inst.Version, "slack refused its token: "+code, ts.now())
	switch {
	case err == nil:
		ts.log.Warn("installation disabled: Slack refused its token", "installation", c.inst.Key(), "slack_error", code)
	case errors.Is(err, install.ErrConflict):
		ts.log.Info("Slack refused a token of an installation that has changed since; left as it is", "installation", c.inst.Key())
	default:
		ts.log.Error("could not disable the installation whose token Slack refused", "installation", c.inst.Key(), "error", err.Error())
	}
}

// tokensRevoked is the tokens_revoked event (slack-go's type keeps its token lists private).
type tokensRevoked struct {
	Type   string `json:"type"`
	Tokens struct {
		OAuth []string `json:"oauth"`
		Bot   []string `json:"bot"`
	} `json:"tokens"`
}

// lifecycleRoutes are the framework's routes of the many-workspace mode: app_uninstalled
// marks the installation uninstalled (its tokens erased) and tokens_revoked with bot tokens
// disables it. Both run without a Slack client: the token is gone.
func (ts *tenants) lifecycleRoutes(r *relay.Router) {
	relay.Event(r, string(slackevents.AppUninstalled), func(ctx context.Context, req *relay.Request[slackevents.AppUninstalledEvent]) error {
		return ts.mark(ctx, req.Session, "app_uninstalled", true)
	}, relay.WithoutSlack(), relay.Name("app_uninstalled"))
	relay.Event(r, string(slackevents.TokensRevoked), func(ctx context.Context, req *relay.Request[tokensRevoked]) error {
		if len(req.Payload.Tokens.Bot) == 0 {
			req.Log.Info("tokens_revoked names no bot token; the installation is kept")
			return nil
		}
		return ts.mark(ctx, req.Session, "tokens_revoked", false)
	}, relay.WithoutSlack(), relay.Name("tokens_revoked"))
}

// mark uninstalls or disables the installation the event was delivered for, unless it was
// (re)installed after the event happened.
func (ts *tenants) mark(ctx context.Context, s *relay.Session, reason string, uninstall bool) error {
	t := s.Tenant()
	ts.forget(t)
	inst, err := install.Find(ctx, ts.store, t.Team, t.Enterprise, t.EnterpriseInstall)
	switch {
	case errors.Is(err, install.ErrNotFound):
		s.Log.Info("no installation to mark", "reason", reason)
		return nil
	case err != nil && !errors.Is(err, install.ErrNotActive):
		return failure.Retryable(fmt.Errorf("read the installation: %w", err))
	}
	if at := time.Unix(s.Envelope.EventTime, 0); s.Envelope.EventTime > 0 && inst.UpdatedAt.After(at) && inst.Status == install.StatusActive {
		s.Log.Info("the installation was written after this event; left as it is (a re-install)", "reason", reason,
			"installation", inst.Key(), "updated_at", inst.UpdatedAt, "event_time", at)
		return nil
	}
	if uninstall {
		err = ts.store.Uninstall(ctx, inst.Key(), reason)
	} else {
		err = ts.store.Disable(ctx, inst.Key(), reason)
	}
	if err != nil {
		return failure.Retryable(fmt.Errorf("mark the installation %s: %w", reason, err))
	}
	s.Log.Warn("installation marked", "reason", reason, "installation", inst.Key())
	return nil
}

// secretRefresher refreshes rotating tokens with the client secret read at the time of the
// refresh (from SSM, cached; so a rotated client secret is picked up).
type secretRefresher struct {
	clientID string
	secret   func(ctx context.Context) (string, error)
	apiURL   string
	http     *http.Client
}

func (r secretRefresher) Refresh(ctx context.Context, refreshToken string) (install.Refreshed, error) {
	secret, err := r.secret(ctx)
	if err != nil {
		return install.Refreshed{}, fmt.Errorf("client secret: %w", err)
	}
	return install.SlackRefresher{HTTP: r.http, ClientID: r.clientID, ClientSecret: secret, APIURL: r.apiURL}.Refresh(ctx, refreshToken)
}

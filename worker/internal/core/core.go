// Package core is the vocabulary the engine (package engine) and the handler library
// (package relay) share without either importing the other: a routed delivery, the lease on
// its event's journal it runs under, and the services through which handlers reach Slack.
// Bot code never imports it; relay's Router satisfies the engine's Router interface.
package core

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/slack-go/slack"
)

// Identity is the bot's own ids (from auth.test), so it never answers itself.
type Identity struct {
	UserID string
	BotID  string
}

// Tenant is the installation an event was delivered for: the workspace (Team) whose bot token
// answers it, or, for an org-wide Enterprise Grid install, the org (Enterprise with
// EnterpriseInstall). In a Slack Connect channel or on Grid, Team is the event's context team
// (the install it was delivered to), not the team of the person who wrote.
type Tenant struct {
	Team              string
	Enterprise        string
	EnterpriseInstall bool
}

// Services are how handlers reach the outside world (Slack, response_url, notes); the engine's
// configuration fills them.
type Services struct {
	// Slack returns a client carrying the tenant's bot token (one workspace: read from SSM and
	// cached; many: the tenant's installation).
	Slack func(ctx context.Context, t Tenant) (*slack.Client, error)
	// Identity returns the bot's ids in the tenant (cached).
	Identity func(ctx context.Context, t Tenant) (Identity, error)
	// HTTP posts to response_url (default: a client with a 10 s timeout).
	HTTP *http.Client
	// ResponseURLPrefixes are the only places response_url posts may go (default
	// "https://hooks.slack.com/"): a forged payload cannot make the worker post elsewhere.
	ResponseURLPrefixes []string
	// Notes keeps small values across events (Session.Remember, Recall); nil: none kept.
	Notes Notes
	// Counters reads the daily counters events add to when they complete
	// (Session.DailyCount); nil: every counter reads 0.
	Counters Counters
	// StreamLifetime is how long Slack keeps a stream open (0: Slack's, about 5 minutes).
	StreamLifetime time.Duration
}

// BotIdentity is the bot's own ids, or an error when they cannot be looked up.
func (rt *Services) BotIdentity(ctx context.Context, t Tenant) (Identity, error) {
	if rt == nil || rt.Identity == nil {
		return Identity{}, errors.New("the services cannot tell the bot's own ids")
	}
	return rt.Identity(ctx, t)
}

// Notes is where handlers keep small values across events; the journal satisfies it.
type Notes interface {
	PutNote(ctx context.Context, key, value string, ttl time.Duration) error
	Note(ctx context.Context, key string) (string, error)
}

// Counters reads daily counters (a workspace's tokens today); the journal satisfies it.
type Counters interface {
	// DailyCount is counter name's value for the current UTC day (0 when there is none).
	DailyCount(ctx context.Context, name string) (int64, error)
}

// Usage is what an event's answer cost, kept on its record when the event completes.
type Usage struct {
	// Model is the model that answered; Team the workspace asked.
	Model, Team string
	// InputTokens are every token the model read (CachedTokens, read from its prompt cache,
	// and CacheWriteTokens, written to it, included); OutputTokens every token it wrote.
	InputTokens, OutputTokens, CachedTokens, CacheWriteTokens int64
	// ModelCalls and ToolCalls count the model's turns and the tools they called.
	ModelCalls, ToolCalls int64
	// ModelMillis is the time spent in the model.
	ModelMillis int64
	// CostUSD is the estimated cost in US dollars; nil when it is not known.
	CostUSD *float64
}

// Lease is a claim on one event's journal held by one delivery, with the steps earlier
// attempts and this one recorded. The DynamoDB journal and the in-memory one satisfy it.
type Lease interface {
	Key() string
	// Attempt is 1 for the first delivery that claimed the event, n for the n-th.
	Attempt() int
	// Started is when the event was first claimed.
	Started() time.Time
	// LastError is why the previous attempt ended, "" on the first.
	LastError() string
	// Progressed reports whether this attempt recorded anything.
	Progressed() bool
	// Load decodes step name into v and reports whether there is one.
	Load(name string, v any) (bool, error)
	// Save writes step name as v, with every deferred step, in one conditional write.
	Save(ctx context.Context, name string, v any) error
	// Defer keeps step name as v for the next write.
	Defer(name string, v any) error
	// Steps lists the names of the steps recorded so far.
	Steps() []string
	// Legacy returns a step of a record written by an earlier release (steps by call order).
	Legacy(id string) (json.RawMessage, bool)
	HasLegacy() bool
	// SetUsage keeps what the answer cost for the completion, written with it.
	SetUsage(u Usage)
	// CountDaily adds n to the daily counter name once the event has completed.
	CountDaily(name string, n int64)
	// Complete marks the event answered; Release gives the claim up with the reason.
	Complete(ctx context.Context) error
	Release(ctx context.Context, reason string) error
}

// Delivery is one queue message decoded once and decided before any claim: which route
// runs it, under which dedupe key, or why it is none of the bot's business.
type Delivery struct {
	// Type is what the body says it is ("app_mention", "/ask", "block_actions:approve").
	Type string
	// Route is the name of the route that takes it; "" when no route does.
	Route string
	// Key is the dedupe key: deliveries with the same key get one handler run between them.
	Key string
	// Skip, when set, is why the route declined it: acknowledge without claiming the key.
	Skip string
	// Tenant is the installation it was delivered for (whose token answers it).
	Tenant Tenant
	// Run runs the route's handler under lease (nil when Route is "").
	Run func(ctx context.Context, lease Lease, log *slog.Logger) error
}

// Package workerconfig is the worker's environment: the table of every variable it reads
// (names, kinds, defaults, meaning), the loader that reads through that table, and the
// validated Config. It imports only shared/config so that the local tools
// (infra/local/devworld) and the documentation check can use the names without the handlers.
package workerconfig

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slackrelay/slackrelay/shared/config"
)

// The names of the worker's variables.
const (
	EnvLogLevel          = "LOG_LEVEL"
	EnvEventsQueueURL    = "EVENTS_QUEUE_URL"
	EnvDLQURL            = "DLQ_URL"
	EnvIdempotencyTable  = "IDEMPOTENCY_TABLE"
	EnvIdempotencyTTL    = "IDEMPOTENCY_TTL"
	EnvDLQRetention      = "DLQ_RETENTION"
	EnvReplayWindow      = "REPLAY_WINDOW"
	EnvStreamLifetime    = "STREAM_LIFETIME"
	EnvMaxAnswerTime     = "MAX_ANSWER_DURATION"
	EnvMaxReceiveCount   = "MAX_RECEIVE_COUNT"
	EnvBotTokenParam     = "BOT_TOKEN_PARAM"
	EnvSlackAPIURL       = "SLACK_API_URL"
	EnvResponseURLs      = "RESPONSE_URL_PREFIXES"
	EnvBatchConcurrency  = "BATCH_CONCURRENCY"
	EnvTenantConcurrency = "TENANT_CONCURRENCY"
	EnvBackoffBase       = "BACKOFF_BASE"
	EnvBackoffMax        = "BACKOFF_MAX"
	EnvSecretsMaxAge     = "SECRETS_MAX_AGE"
	EnvSlackBotToken     = "SLACK_BOT_TOKEN"
	EnvHandlerTimeout    = "HANDLER_TIMEOUT"
	EnvPollBatchSize     = "POLL_BATCH_SIZE"
	EnvPollWait          = "POLL_WAIT"
	EnvPollLoops         = "POLL_LOOPS"
	// Many workspaces (the app distributed, installed through the receiver's install flow).
	EnvInstallationsTable = "INSTALLATIONS_TABLE"
	EnvSlackClientID      = "SLACK_CLIENT_ID"
	EnvClientSecretParam  = "SLACK_CLIENT_SECRET_PARAM"
	EnvSlackClientSecret  = "SLACK_CLIENT_SECRET"
)

// Vars is every environment variable the worker reads; Load reads exactly these (a test
// checks it per mode and writes the Lambda-mode names to worker/testdata/lambda-env.json).
var Vars = []config.Var{
	{Name: EnvLogLevel, Default: "info", Doc: "debug, info, warn or error"},
	{Name: EnvEventsQueueURL, Required: true, Doc: "the events queue (retry delays are set on it; the local poller reads it)"},
	{Name: EnvDLQURL, Required: true, Doc: "where permanent and exhausted failures go"},
	{Name: EnvIdempotencyTable, Required: true, Doc: "DynamoDB table, key pk (S), TTL attribute expires_at"},
	{Name: EnvIdempotencyTTL, Kind: config.KindDuration, Default: "360h",
		Doc: "how long an event's record is kept after its last write; must be at least DLQ_RETENTION + REPLAY_WINDOW (the worker refuses to start otherwise), so a replayed dead letter never repeats an answer"},
	{Name: EnvDLQRetention, Kind: config.KindDuration, Default: "336h",
		Doc: "the DLQ's message retention (the template sets it from the queue): how long a dead letter can wait for a replay or redrive"},
	{Name: EnvReplayWindow, Kind: config.KindDuration, Default: "24h",
		Doc: "how long a replayed or redriven event may still be retried after its DLQ retention; events older than DLQ_RETENTION + REPLAY_WINDOW are dead-lettered as stale instead of answered (their record may be gone)"},
	{Name: EnvStreamLifetime, Kind: config.KindDuration, Default: "5m",
		Doc: "how long Slack keeps a streamed message open; an answer streaming longer is stopped before then and continues in a new message in the thread"},
	{Name: EnvMaxAnswerTime, Kind: config.KindDuration, Default: "30m",
		Doc: "how long one event's work may continue across invocations (an answer longer than the function timeout goes on in a new delivery from what was shown); past it, a cut answer is retried as a failure"},
	{Name: EnvMaxReceiveCount, Kind: config.KindInt, Default: "5", Min: 1, Max: 1000,
		Doc: "the events queue's maxReceiveCount (must match its RedrivePolicy); the last attempt sends to the DLQ with its reason"},
	{Name: EnvBotTokenParam, Doc: "SSM SecureString parameter holding the bot token (required in Lambda; locally it replaces SLACK_BOT_TOKEN)"},
	{Name: EnvSlackAPIURL, Default: "https://slack.com/api/", Doc: "Slack Web API base URL (GovSlack, a proxy, a local server)"},
	{Name: EnvResponseURLs, Default: "https://hooks.slack.com/",
		Doc: "comma-separated URL prefixes response_url posts may go to (Slack's host; add a local server's for tests)"},
	{Name: EnvBatchConcurrency, Kind: config.KindInt, Default: "10", Min: 1, Max: 100, Doc: "messages of one batch handled at once"},
	{Name: EnvTenantConcurrency, Kind: config.KindInt, Default: "5", Min: 0, Max: 100,
		Doc: "messages of one tenant (a workspace, or the org of an org-wide install) handled at once within a batch that holds several tenants and more messages than BATCH_CONCURRENCY, so one busy tenant leaves slots to the others (a batch of one tenant, or one that fits BATCH_CONCURRENCY, runs every message at once); 0: no bound. A rate limit met by one tenant holds back only that tenant's messages"},
	{Name: EnvBackoffBase, Kind: config.KindDuration, Default: "10s", Doc: "first retry delay; doubles per receive"},
	{Name: EnvBackoffMax, Kind: config.KindDuration, Default: "15m", Doc: "longest retry delay (not below BACKOFF_BASE)"},
	{Name: EnvSecretsMaxAge, Kind: config.KindDuration, Default: "5m", Doc: "how long SSM values are cached"},
	{Name: EnvSlackBotToken, LocalOnly: true, Doc: "the bot token itself (required unless BOT_TOKEN_PARAM or INSTALLATIONS_TABLE is set)"},
	{Name: EnvInstallationsTable,
		Doc: "many workspaces: the DynamoDB table of installations (shared/install); each event is answered with its own workspace's or org's token, and an event of a workspace with no active installation is dead-lettered. Empty: one workspace, with BOT_TOKEN_PARAM (SLACK_BOT_TOKEN locally)"},
	{Name: EnvSlackClientID, Doc: "the app's client id; with INSTALLATIONS_TABLE, for refreshing rotating tokens (oauth.v2.access)"},
	{Name: EnvClientSecretParam, Doc: "SSM SecureString parameter holding the app's client secret (with INSTALLATIONS_TABLE; required in Lambda then)"},
	{Name: EnvSlackClientSecret, LocalOnly: true, Doc: "the client secret itself (locally, instead of SLACK_CLIENT_SECRET_PARAM)"},
	{Name: EnvHandlerTimeout, Kind: config.KindDuration, Default: "60s", LocalOnly: true, Doc: "the poller's invocation deadline (Lambda uses the function timeout)"},
	{Name: EnvPollBatchSize, Kind: config.KindInt, Default: "10", Min: 1, Max: 10, LocalOnly: true, Doc: "messages per ReceiveMessage"},
	{Name: EnvPollWait, Kind: config.KindDuration, Default: "20s", LocalOnly: true, Doc: "long-poll wait"},
	{Name: EnvPollLoops, Kind: config.KindInt, Default: "2", Min: 1, Max: 32, LocalOnly: true, Doc: "concurrent poll loops (Lambda's concurrent batches)"},
}

// Config is the worker's validated configuration.
type Config struct {
	LogLevel       string
	QueueURL       string
	DLQURL         string
	Table          string
	IdempotencyTTL time.Duration
	// DLQRetention and ReplayWindow bound the age of an event the worker still answers.
	DLQRetention time.Duration
	ReplayWindow time.Duration
	// StreamLifetime is how long Slack keeps a stream open.
	StreamLifetime time.Duration
	// MaxAnswerDuration bounds one event's work across invocations.
	MaxAnswerDuration time.Duration
	MaxReceiveCount   int
	BotTokenParam     string
	BotToken          string
	// InstallationsTable, when set, is the many-workspace mode: tokens come from the
	// installations, not from BotTokenParam/BotToken. ClientID and the client secret
	// (ClientSecretParam, or ClientSecret locally) refresh rotating tokens.
	InstallationsTable string
	ClientID           string
	ClientSecretParam  string
	ClientSecret       string
	SlackAPIURL        string
	// ResponseURLPrefixes are the only places response_url posts may go.
	ResponseURLPrefixes []string
	BatchConcurrency    int
	// TenantConcurrency bounds one tenant's messages within a batch (0: no bound).
	TenantConcurrency int
	BackoffBase       time.Duration
	BackoffMax        time.Duration
	SecretsMaxAge     time.Duration
	HandlerTimeout    time.Duration
	PollBatchSize     int
	PollWait          time.Duration
	PollLoops         int
	Lambda            bool
	// Deprecations are old variable names in use; the binary logs them at start-up.
	Deprecations []config.Deprecation
}

// Load reads the environment through getenv and reports every problem at once.
func Load(getenv func(string) string) (Config, error) {
	l := config.NewLoader(Vars, getenv)
	c := Config{
		LogLevel:            l.String(EnvLogLevel),
		QueueURL:            l.String(EnvEventsQueueURL),
		DLQURL:              l.String(EnvDLQURL),
		Table:               l.String(EnvIdempotencyTable),
		IdempotencyTTL:      l.Duration(EnvIdempotencyTTL),
		DLQRetention:        l.Duration(EnvDLQRetention),
		ReplayWindow:        l.Duration(EnvReplayWindow),
		StreamLifetime:      l.Duration(EnvStreamLifetime),
		MaxAnswerDuration:   l.Duration(EnvMaxAnswerTime),
		MaxReceiveCount:     l.Int(EnvMaxReceiveCount),
		BotTokenParam:       l.String(EnvBotTokenParam),
		InstallationsTable:  l.String(EnvInstallationsTable),
		ClientID:            l.String(EnvSlackClientID),
		ClientSecretParam:   l.String(EnvClientSecretParam),
		SlackAPIURL:         l.String(EnvSlackAPIURL),
		ResponseURLPrefixes: splitList(l.String(EnvResponseURLs)),
		BatchConcurrency:    l.Int(EnvBatchConcurrency),
		TenantConcurrency:   l.Int(EnvTenantConcurrency),
		BackoffBase:         l.Duration(EnvBackoffBase),
		BackoffMax:          l.Duration(EnvBackoffMax),
		SecretsMaxAge:       l.Duration(EnvSecretsMaxAge),
		Lambda:              l.Lambda(),
	}
	if floor := c.DLQRetention + c.ReplayWindow; c.IdempotencyTTL < floor {
		l.Fail(fmt.Errorf("%s=%s is shorter than %s (%s) + %s (%s) = %s: a replayed dead letter could outlive its record and be answered twice",
			EnvIdempotencyTTL, c.IdempotencyTTL, EnvDLQRetention, c.DLQRetention, EnvReplayWindow, c.ReplayWindow, floor))
	}
	if c.BackoffMax < c.BackoffBase {
		l.Fail(errors.New(EnvBackoffMax + " must not be smaller than " + EnvBackoffBase))
	}
	many := c.InstallationsTable != ""
	if c.Lambda {
		switch {
		case many && c.ClientSecretParam == "":
			l.Fail(errors.New(EnvClientSecretParam + " is required in Lambda with " + EnvInstallationsTable + " (rotating tokens are refreshed with the client secret)"))
		case !many && c.BotTokenParam == "":
			l.Fail(errors.New(EnvBotTokenParam + " is required in Lambda (the bot token is read from SSM), unless " + EnvInstallationsTable + " is set"))
		}
	} else {
		c.BotToken = l.String(EnvSlackBotToken)
		c.ClientSecret = l.String(EnvSlackClientSecret)
		c.HandlerTimeout = l.Duration(EnvHandlerTimeout)
		c.PollBatchSize = l.Int(EnvPollBatchSize)
		c.PollWait = l.Duration(EnvPollWait)
		c.PollLoops = l.Int(EnvPollLoops)
		if !many && c.BotToken == "" && c.BotTokenParam == "" {
			l.Fail(errors.New(EnvSlackBotToken + " (or " + EnvBotTokenParam + ", or " + EnvInstallationsTable + ") is required"))
		}
	}
	c.Deprecations = l.Deprecations()
	return c, l.Err()
}

// splitList reads a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

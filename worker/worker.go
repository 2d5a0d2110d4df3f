// Package worker runs a bot on slackrelay: a bot's main is
//
//	func main() { worker.Main(mybot.New) }
//
// Main reads the framework's settings (worker/workerconfig, docs/configuration.md), builds
// the AWS clients, the secret store, the bot's routes (relay.Router) and the engine, then
// serves: in AWS Lambda the SQS event source mapping's batches; elsewhere a local poller
// stands in for that mapping (worker/poller; left out of binaries built with -tags
// lambda.norpc, as Lambda's are). Tests of a bot use relay/relaytest instead.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/install"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/shared/secrets"
	"github.com/slackrelay/slackrelay/worker/engine"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// The bot token's and the client secret's keys in the secret store.
const (
	keyBotToken     = "bot_token"
	keyClientSecret = "client_secret"
)

// Bot builds a bot on the framework: it registers its routes on r and takes what else it
// needs (its own settings, secrets, metrics) from s. It runs once, at start-up; an error
// stops the worker before anything is handled.
type Bot func(r *relay.Router, s *Setup) error

// Setup is what the framework gives a Bot while it registers.
type Setup struct {
	// Getenv reads the environment (the bot's own variables; see docs/configuration.md).
	Getenv func(string) string
	// Lambda is true in AWS Lambda, false under the local poller.
	Lambda bool
	// Log carries the worker's structured logger; Metrics its EMF emitter.
	Log     *slog.Logger
	Metrics *metrics.Emitter
	// AWS is the worker's AWS configuration (region, credentials), for the bot's own clients
	// (with Endpoint for a local endpoint).
	AWS aws.Config
	// Table is the worker's DynamoDB table (IDEMPOTENCY_TABLE: key pk S, TTL attribute
	// expires_at), where a bot may keep its own items under a key prefix of its own.
	Table string
	// ManyWorkspaces is set when the worker serves many workspaces (INSTALLATIONS_TABLE):
	// the app is distributed, and Slack limits its conversations.history and
	// conversations.replies to one call a minute per workspace.
	ManyWorkspaces bool

	params map[string]string // secret key → SSM parameter
	store  *secrets.Store
}

// Endpoint is the local endpoint override of an AWS service for the bot's own clients
// (AWS_ENDPOINT_URL_<SERVICE>, service as "BEDROCK_RUNTIME"), nil when none is set.
func (s *Setup) Endpoint(service string) *string {
	if s.Getenv == nil {
		return nil
	}
	return awsclient.Endpoint(s.Getenv, service)
}

// Secret declares a secret the bot reads at run time: the SSM SecureString parameter named
// param (cached like the bot token, for SECRETS_MAX_AGE), or, when param is "", value itself
// (for local runs; Lambda should always use a parameter). The returned function reads it and
// fails with a retryable error while SSM is unavailable. Call it from a Bot's registration.
func (s *Setup) Secret(param, value string) func(ctx context.Context) (string, error) {
	if param == "" {
		return func(context.Context) (string, error) { return value, nil }
	}
	if s.params == nil {
		s.params = map[string]string{}
	}
	key := fmt.Sprintf("bot_secret_%d", len(s.params))
	s.params[key] = param
	return func(ctx context.Context) (string, error) {
		if s.store == nil {
			return "", errors.New("worker: a secret was read before the worker started")
		}
		return s.store.Get(ctx, key)
	}
}

// App is a wired worker.
type App struct {
	Engine *engine.Engine
	// Secrets holds the bot token and the bot's secrets (SSM, or fixed values locally).
	Secrets *secrets.Store
	cfg     workerconfig.Config
	sqs     *sqs.Client
}

// New builds the worker from cfg and an AWS configuration, with bot's routes; getenv supplies
// the bot's settings and the local endpoint overrides (AWS_ENDPOINT_URL_<SERVICE>). Metrics go
// to metricsOut. Registration mistakes (a route twice, an option for another payload) are
// returned here, before anything runs.
func New(cfg workerconfig.Config, awsCfg aws.Config, getenv func(string) string, log *slog.Logger, metricsOut io.Writer, bot Bot) (*App, error) {
	sqsClient := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = awsclient.Endpoint(getenv, "SQS") })
	emitter := metrics.New(metricsOut, "slackrelay/worker")
	setup := &Setup{Getenv: getenv, Lambda: cfg.Lambda, Log: log, Metrics: emitter, AWS: awsCfg,
		Table: cfg.Table, ManyWorkspaces: cfg.InstallationsTable != ""}
	r := relay.NewRouter()
	if err := bot(r, setup); err != nil {
		return nil, fmt.Errorf("bot: %w", err)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	store := newSecrets(cfg, awsCfg, getenv, log, emitter, setup)
	setup.store = store
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.BaseEndpoint = awsclient.Endpoint(getenv, "DYNAMODB") })
	slackHTTP := &http.Client{Timeout: 15 * time.Second}
	clients := newBotClients(cfg.SlackAPIURL, slackHTTP)
	var (
		slackFor     func(context.Context, engine.Tenant) (*slack.Client, error)
		identityIn   func(context.Context, engine.Tenant) (engine.Identity, error)
		tokenRefused func(context.Context, engine.Tenant, string)
	)
	if cfg.InstallationsTable != "" {
		secret := func(context.Context) (string, error) { return cfg.ClientSecret, nil }
		if cfg.ClientSecretParam != "" {
			secret = func(ctx context.Context) (string, error) { return store.Get(ctx, keyClientSecret) }
		}
		refresher := secretRefresher{clientID: cfg.ClientID, secret: secret, apiURL: cfg.SlackAPIURL, http: slackHTTP}
		ts := newTenants(install.NewDynamoStore(db, cfg.InstallationsTable, nil), refresher, clients, log)
		ts.lifecycleRoutes(r)
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("routes: %w (with %s set, the framework handles app_uninstalled and tokens_revoked itself)", err, workerconfig.EnvInstallationsTable)
		}
		slackFor, identityIn, tokenRefused = ts.client, ts.identity, ts.refused
	} else {
		token := func(ctx context.Context) (string, error) { return store.Get(ctx, keyBotToken) }
		if cfg.BotTokenParam == "" {
			token = func(context.Context) (string, error) { return cfg.BotToken, nil }
		}
		one := &oneWorkspace{readToken: token, clients: clients}
		slackFor, identityIn = one.client, one.identity
	}
	e, err := engine.New(engine.Config{
		Router:              r,
		Slack:               slackFor,
		Identity:            identityIn,
		TokenRefused:        tokenRefused,
		HTTP:                &http.Client{Timeout: 10 * time.Second},
		ResponseURLPrefixes: cfg.ResponseURLPrefixes,
		StreamLifetime:      cfg.StreamLifetime,
		DynamoDB:            db,
		Table:               cfg.Table,
		TTL:                 cfg.IdempotencyTTL,
		Queue:               sqsClient,
		QueueURL:            cfg.QueueURL,
		DLQURL:              cfg.DLQURL,
		MaxReceiveCount:     cfg.MaxReceiveCount,
		BackoffBase:         cfg.BackoffBase,
		BackoffMax:          cfg.BackoffMax,
		Concurrency:         cfg.BatchConcurrency,
		TenantConcurrency:   cfg.TenantConcurrency,
		DefaultTimeout:      cfg.HandlerTimeout,
		MaxEventAge:         cfg.DLQRetention + cfg.ReplayWindow,
		MaxAnswerDuration:   cfg.MaxAnswerDuration,
		Log:                 log,
		Metrics:             emitter,
	})
	if err != nil {
		return nil, err
	}
	return &App{Engine: e, Secrets: store, cfg: cfg, sqs: sqsClient}, nil
}

// SecretsTimeout bounds one SSM call of the worker (retries included), and with it the
// preload at init.
const SecretsTimeout = 3 * time.Second

// newSecrets returns the worker's secret store. SSM calls are bounded by SecretsTimeout and
// by the invocation's deadline less the store's default reserve; a failed load is logged
// once per attempt, and backed off (secrets.Options), so a batch of messages during an SSM
// outage costs no SSM calls beyond the first.
func newSecrets(cfg workerconfig.Config, awsCfg aws.Config, getenv func(string) string, log *slog.Logger, m *metrics.Emitter, s *Setup) *secrets.Store {
	params := map[string]string{}
	for k, p := range s.params {
		params[k] = p
	}
	if cfg.BotTokenParam != "" && cfg.InstallationsTable == "" {
		params[keyBotToken] = cfg.BotTokenParam
	}
	if cfg.ClientSecretParam != "" && cfg.InstallationsTable != "" {
		params[keyClientSecret] = cfg.ClientSecretParam
	}
	if len(params) == 0 {
		return secrets.NewStatic(map[string]string{})
	}
	return secrets.NewSSM(ssmClient(awsCfg, getenv), params, secrets.Options{MaxAge: cfg.SecretsMaxAge, Timeout: SecretsTimeout, Log: log, Metrics: m})
}

func ssmClient(awsCfg aws.Config, getenv func(string) string) *ssm.Client {
	return ssm.NewFromConfig(awsCfg, func(o *ssm.Options) { o.BaseEndpoint = awsclient.Endpoint(getenv, "SSM") })
}

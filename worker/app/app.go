// Package app wires the worker from its configuration (worker/workerconfig): AWS clients,
// secrets, the Slack client, the handlers, the processor and (locally) the poller.
// cmd/worker is a thin main around it.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/shared/secrets"
	"github.com/slackrelay/slackrelay/worker/journal"
	"github.com/slackrelay/slackrelay/worker/llm"
	"github.com/slackrelay/slackrelay/worker/poller"
	"github.com/slackrelay/slackrelay/worker/processor"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// Secret keys.
const (
	KeyBotToken  = "bot_token"
	KeyLLMAPIKey = "llm_api_key"
)

// App is a wired worker.
type App struct {
	Processor *processor.Processor
	Poller    *poller.Poller
	// Secrets holds the bot token and the LLM key (SSM, or fixed values locally).
	Secrets *secrets.Store
}

// Deps is what the worker builds from its configuration for the bot's handlers.
type Deps struct {
	// LLM answers prompts: the chat-completions client when LLM_BASE_URL is set, else the
	// demo responder. Both also stream (llm.Streamer).
	LLM llm.Responder
	// Model is LLM_MODEL ("demo" for the demo responder).
	Model string
	// HistoryChars is LLM_HISTORY_CHARS, given as -1 when it is 0 (no history: bot.Config
	// reads 0 as its default and a negative budget as none); Streaming is STREAMING.
	HistoryChars int
	Streaming    bool
	// Metrics is the worker's EMF emitter.
	Metrics *metrics.Emitter
}

// Register adds a bot's routes; worker/cmd/worker passes the shipped bot's.
type Register func(b *relay.Bot, d Deps)

// New builds the worker from cfg and an AWS configuration, with the routes register adds;
// getenv supplies the local endpoint overrides (AWS_ENDPOINT_URL_<SERVICE>). Metrics go to
// metricsOut. Registration mistakes (a route twice, an option for another payload) are
// returned here, before anything runs.
func New(cfg workerconfig.Config, awsCfg aws.Config, getenv func(string) string, log *slog.Logger, metricsOut io.Writer, register Register) (*App, error) {
	sqsClient := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = awsclient.Endpoint(getenv, "SQS") })
	emitter := metrics.New(metricsOut, "slackrelay/worker")
	store := newSecrets(cfg, awsCfg, getenv, log, emitter)
	clients := &slackClients{store: store, apiURL: cfg.SlackAPIURL, http: &http.Client{Timeout: 15 * time.Second}}

	historyChars := cfg.LLMHistoryChars
	if historyChars == 0 {
		historyChars = -1 // LLM_HISTORY_CHARS=0 sends no history; a handler's zero means its default
	}
	deps := Deps{LLM: llm.Demo{Delay: cfg.DemoDelay, TokensPerSecond: float64(cfg.DemoTokensPerSecond)}, Model: "demo",
		HistoryChars: historyChars, Streaming: cfg.Streaming, Metrics: emitter}
	if cfg.LLMBaseURL != "" {
		deps.LLM = &llm.Chat{
			BaseURL: cfg.LLMBaseURL, Model: cfg.LLMModel,
			APIKey:            func(ctx context.Context) (string, error) { return store.Get(ctx, KeyLLMAPIKey) },
			System:            llm.SlackSystemPrompt,
			FirstTokenTimeout: cfg.LLMFirstTokenTimeout, IdleTimeout: cfg.LLMIdleTimeout, Metrics: emitter,
			Prefill: cfg.LLMPrefill != "", PrefillStyle: llm.PrefillStyle(cfg.LLMPrefill),
		}
		deps.Model = cfg.LLMModel
	}
	b := relay.New()
	register(b, deps)
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	events := &journal.Store{DB: dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.BaseEndpoint = awsclient.Endpoint(getenv, "DYNAMODB") }),
		Table: cfg.Table, TTL: cfg.IdempotencyTTL}
	rt := &relay.Runtime{
		Notes:               events,
		StreamLifetime:      cfg.StreamLifetime,
		Slack:               clients.get,
		Identity:            clients.identity,
		HTTP:                &http.Client{Timeout: 10 * time.Second},
		ResponseURLPrefixes: cfg.ResponseURLPrefixes,
	}
	p := &processor.Processor{
		Bot:               b,
		Runtime:           rt,
		Store:             events,
		Queue:             sqsClient,
		QueueURL:          cfg.QueueURL,
		DLQURL:            cfg.DLQURL,
		MaxReceiveCount:   cfg.MaxReceiveCount,
		BackoffBase:       cfg.BackoffBase,
		BackoffMax:        cfg.BackoffMax,
		Concurrency:       cfg.BatchConcurrency,
		DefaultTimeout:    cfg.HandlerTimeout,
		MaxEventAge:       cfg.DLQRetention + cfg.ReplayWindow,
		MaxAnswerDuration: cfg.MaxAnswerDuration,
		Log:               log,
		Metrics:           emitter,
	}
	a := &App{Processor: p, Secrets: store}
	if !cfg.Lambda {
		a.Poller = &poller.Poller{
			SQS: sqsClient, QueueURL: cfg.QueueURL, Handler: p.HandleSQS,
			BatchSize: cfg.PollBatchSize, Wait: cfg.PollWait, Timeout: cfg.HandlerTimeout, Loops: cfg.PollLoops, Log: log,
		}
	}
	return a, nil
}

// SecretsTimeout bounds one SSM call of the worker (retries included), and with it the
// preload at init.
const SecretsTimeout = 3 * time.Second

// newSecrets returns the worker's secret store. SSM calls are bounded by SecretsTimeout and
// by the invocation's deadline less the store's default reserve; a failed load is logged
// once per attempt, and backed off (secrets.Options), so a batch of messages during an SSM
// outage costs no SSM calls beyond the first.
func newSecrets(cfg workerconfig.Config, awsCfg aws.Config, getenv func(string) string, log *slog.Logger, m *metrics.Emitter) *secrets.Store {
	if cfg.BotTokenParam != "" {
		params := map[string]string{KeyBotToken: cfg.BotTokenParam}
		if cfg.LLMAPIKeyParam != "" {
			params[KeyLLMAPIKey] = cfg.LLMAPIKeyParam
		}
		client := ssm.NewFromConfig(awsCfg, func(o *ssm.Options) { o.BaseEndpoint = awsclient.Endpoint(getenv, "SSM") })
		return secrets.NewSSM(client, params, secrets.Options{MaxAge: cfg.SecretsMaxAge, Timeout: SecretsTimeout, Log: log, Metrics: m})
	}
	return secrets.NewStatic(map[string]string{KeyBotToken: cfg.BotToken, KeyLLMAPIKey: cfg.LLMAPIKey})
}

// slackClients hands out a slack-go client for the current bot token: the token comes from
// the secret store (cached, re-read after its max age, so a rotation is picked up) and a
// client is built again only when the token changes.
type slackClients struct {
	store  *secrets.Store
	apiURL string
	http   *http.Client

	mu      sync.Mutex
	token   string
	client  *slack.Client
	id      *relay.Identity
	idToken string
}

func (s *slackClients) get(ctx context.Context) (*slack.Client, error) {
	token, err := s.store.Get(ctx, KeyBotToken)
	if err != nil {
		return nil, fmt.Errorf("bot token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil || token != s.token {
		s.token = token
		s.client = slack.New(token, slack.OptionAPIURL(s.apiURL), slack.OptionHTTPClient(s.http))
	}
	return s.client, nil
}

// identity returns the bot's own ids, asking auth.test once per token.
func (s *slackClients) identity(ctx context.Context) (relay.Identity, error) {
	c, err := s.get(ctx)
	if err != nil {
		return relay.Identity{}, err
	}
	s.mu.Lock()
	if s.id != nil && s.idToken == s.token {
		id := *s.id
		s.mu.Unlock()
		return id, nil
	}
	s.mu.Unlock()
	resp, err := c.AuthTestContext(ctx)
	if err != nil {
		return relay.Identity{}, fmt.Errorf("auth.test: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.id, s.idToken = &relay.Identity{UserID: resp.UserID, BotID: resp.BotID}, s.token
	return *s.id, nil
}

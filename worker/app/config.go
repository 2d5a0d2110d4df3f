// Package app wires the worker from its environment: configuration, AWS clients, secrets,
// the Slack client, the handlers, the processor and (locally) the poller. cmd/worker is a
// thin main around it.
package app

import (
	"errors"
	"strings"
	"time"

	"github.com/slackrelay/slackrelay/shared/config"
)

// Vars is every environment variable the worker reads.
var Vars = []config.Var{
	{Name: "LOG_LEVEL", Default: "info", Doc: "debug, info, warn or error"},
	{Name: "EVENTS_QUEUE_URL", Required: true, Doc: "the events queue (retry delays are set on it; the local poller reads it)"},
	{Name: "DLQ_URL", Required: true, Doc: "where permanent and exhausted failures go"},
	{Name: "IDEMPOTENCY_TABLE", Required: true, Doc: "DynamoDB table, key pk (S), TTL attribute expires_at"},
	{Name: "IDEMPOTENCY_TTL", Default: "360h", Doc: "how long an event's progress record is kept after its last write; keep it above the DLQ's 14-day retention so a replayed dead letter never repeats a reply"},
	{Name: "MAX_RECEIVE_COUNT", Default: "5", Doc: "the events queue's maxReceiveCount; the last attempt sends to the DLQ with its reason"},
	{Name: "BOT_TOKEN_PARAM", Doc: "SSM SecureString parameter holding the bot token (required in Lambda)"},
	{Name: "SLACK_API_URL", Default: "https://slack.com/api/", Doc: "Slack Web API base URL"},
	{Name: "RESPONSE_URL_PREFIXES", Default: "https://hooks.slack.com/", Doc: "comma-separated URL prefixes response_url posts may go to (Slack's hosts; add a local server's for tests)"},
	{Name: "LLM_BASE_URL", Doc: "OpenAI-compatible API base URL; unset = the demo responder"},
	{Name: "LLM_MODEL", Default: "gpt-4o-mini", Doc: "chat-completions model"},
	{Name: "LLM_API_KEY_PARAM", Doc: "SSM SecureString parameter holding the LLM API key"},
	{Name: "DEMO_DELAY", Default: "2s", Doc: "the demo responder's pretend work"},
	{Name: "BATCH_CONCURRENCY", Default: "10", Doc: "messages of one batch handled at once"},
	{Name: "BACKOFF_BASE", Default: "10s", Doc: "first retry delay; doubles per receive"},
	{Name: "BACKOFF_MAX", Default: "15m", Doc: "longest retry delay"},
	{Name: "SECRETS_MAX_AGE", Default: "5m", Doc: "how long SSM values are cached"},
	{Name: "SLACK_BOT_TOKEN", LocalOnly: true, Doc: "the bot token itself, local mode only"},
	{Name: "LLM_API_KEY", LocalOnly: true, Doc: "the LLM API key itself, local mode only"},
	{Name: "HANDLER_TIMEOUT", Default: "60s", LocalOnly: true, Doc: "the poller's invocation deadline (Lambda uses the function timeout)"},
	{Name: "POLL_BATCH_SIZE", Default: "10", LocalOnly: true, Doc: "messages per ReceiveMessage"},
	{Name: "POLL_WAIT", Default: "20s", LocalOnly: true, Doc: "long-poll wait"},
	{Name: "POLL_LOOPS", Default: "2", LocalOnly: true, Doc: "concurrent poll loops (Lambda's concurrent batches)"},
}

// Config is the worker's validated configuration.
type Config struct {
	LogLevel        string
	QueueURL        string
	DLQURL          string
	Table           string
	IdempotencyTTL  time.Duration
	MaxReceiveCount int
	BotTokenParam   string
	BotToken        string
	SlackAPIURL     string
	// ResponseURLPrefixes are the only places response_url posts may go.
	ResponseURLPrefixes []string
	LLMBaseURL          string
	LLMModel            string
	LLMAPIKeyParam      string
	LLMAPIKey           string
	DemoDelay           time.Duration
	BatchConcurrency    int
	BackoffBase         time.Duration
	BackoffMax          time.Duration
	SecretsMaxAge       time.Duration
	HandlerTimeout      time.Duration
	PollBatchSize       int
	PollWait            time.Duration
	PollLoops           int
	Lambda              bool
}

// LoadConfig reads the environment and reports every problem at once.
func LoadConfig(getenv func(string) string) (Config, error) {
	l := config.NewLoader(getenv)
	c := Config{
		LogLevel:            l.String("LOG_LEVEL", "info"),
		QueueURL:            l.Required("EVENTS_QUEUE_URL"),
		DLQURL:              l.Required("DLQ_URL"),
		Table:               l.Required("IDEMPOTENCY_TABLE"),
		IdempotencyTTL:      l.Duration("IDEMPOTENCY_TTL", 360*time.Hour),
		MaxReceiveCount:     l.Int("MAX_RECEIVE_COUNT", 5, 1, 1000),
		BotTokenParam:       l.String("BOT_TOKEN_PARAM", ""),
		SlackAPIURL:         l.String("SLACK_API_URL", "https://slack.com/api/"),
		ResponseURLPrefixes: splitList(l.String("RESPONSE_URL_PREFIXES", "https://hooks.slack.com/")),
		LLMBaseURL:          l.String("LLM_BASE_URL", ""),
		LLMModel:            l.String("LLM_MODEL", "gpt-4o-mini"),
		LLMAPIKeyParam:      l.String("LLM_API_KEY_PARAM", ""),
		DemoDelay:           l.Duration("DEMO_DELAY", 2*time.Second),
		BatchConcurrency:    l.Int("BATCH_CONCURRENCY", 10, 1, 100),
		BackoffBase:         l.Duration("BACKOFF_BASE", 10*time.Second),
		BackoffMax:          l.Duration("BACKOFF_MAX", 15*time.Minute),
		SecretsMaxAge:       l.Duration("SECRETS_MAX_AGE", 5*time.Minute),
		Lambda:              config.IsLambda(getenv),
	}
	if c.BackoffMax < c.BackoffBase {
		l.Fail(errors.New("BACKOFF_MAX must not be smaller than BACKOFF_BASE"))
	}
	if c.Lambda {
		if c.BotTokenParam == "" {
			l.Fail(errors.New("BOT_TOKEN_PARAM is required in Lambda (the bot token is read from SSM)"))
		}
		if c.LLMBaseURL != "" && c.LLMAPIKeyParam == "" {
			l.Fail(errors.New("LLM_API_KEY_PARAM is required when LLM_BASE_URL is set"))
		}
	} else {
		c.BotToken = l.String("SLACK_BOT_TOKEN", "")
		c.LLMAPIKey = l.String("LLM_API_KEY", "")
		c.HandlerTimeout = l.Duration("HANDLER_TIMEOUT", 60*time.Second)
		c.PollBatchSize = l.Int("POLL_BATCH_SIZE", 10, 1, 10)
		c.PollWait = l.Duration("POLL_WAIT", 20*time.Second)
		c.PollLoops = l.Int("POLL_LOOPS", 2, 1, 32)
		if c.BotToken == "" && c.BotTokenParam == "" {
			l.Fail(errors.New("SLACK_BOT_TOKEN (or BOT_TOKEN_PARAM) is required"))
		}
		if c.LLMBaseURL != "" && c.LLMAPIKey == "" && c.LLMAPIKeyParam == "" {
			l.Fail(errors.New("LLM_API_KEY (or LLM_API_KEY_PARAM) is required when LLM_BASE_URL is set"))
		}
	}
	return c, l.Err()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

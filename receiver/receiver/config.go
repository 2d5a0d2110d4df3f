package receiver

import (
	"errors"
	"time"

	"github.com/slackrelay/slackrelay/shared/config"
)

// DefaultMaxBodyBytes leaves room for the envelope around the body inside SQS's 1 MiB limit.
const DefaultMaxBodyBytes = 1<<20 - 16<<10

// MaxMessageBytes is SQS's message size limit; an envelope above it is refused with 413.
const MaxMessageBytes = 1 << 20

// Vars is every environment variable the receiver reads.
var Vars = []config.Var{
	{Name: "LOG_LEVEL", Default: "info", Doc: "debug, info, warn or error"},
	{Name: "EVENTS_QUEUE_URL", Required: true, Doc: "the SQS queue verified requests go to"},
	{Name: "SIGNING_SECRET_PARAM", Doc: "SSM SecureString parameter holding Slack's signing secret (required in Lambda)"},
	{Name: "MAX_BODY_BYTES", Default: "1032192", Doc: "larger request bodies are answered 413"},
	{Name: "SECRETS_MAX_AGE", Default: "5m", Doc: "how long SSM values are cached"},
	{Name: "SLACK_SIGNING_SECRET", LocalOnly: true, Doc: "the signing secret itself, local mode only"},
	{Name: "LISTEN_ADDR", Default: "127.0.0.1:3000", LocalOnly: true, Doc: "local HTTP server address"},
}

// Config is the receiver's validated configuration.
type Config struct {
	LogLevel           string
	QueueURL           string
	SigningSecretParam string
	SigningSecret      string // local mode only
	MaxBodyBytes       int
	SecretsMaxAge      time.Duration
	ListenAddr         string
	Lambda             bool
}

// LoadConfig reads the environment through getenv and reports every problem at once.
func LoadConfig(getenv func(string) string) (Config, error) {
	l := config.NewLoader(getenv)
	c := Config{
		LogLevel:           l.String("LOG_LEVEL", "info"),
		QueueURL:           l.Required("EVENTS_QUEUE_URL"),
		SigningSecretParam: l.String("SIGNING_SECRET_PARAM", ""),
		MaxBodyBytes:       l.Int("MAX_BODY_BYTES", DefaultMaxBodyBytes, 1024, DefaultMaxBodyBytes),
		SecretsMaxAge:      l.Duration("SECRETS_MAX_AGE", 5*time.Minute),
		Lambda:             config.IsLambda(getenv),
	}
	if c.Lambda {
		if c.SigningSecretParam == "" {
			l.Fail(errors.New("SIGNING_SECRET_PARAM is required in Lambda (the signing secret is read from SSM)"))
		}
	} else {
		c.SigningSecret = l.String("SLACK_SIGNING_SECRET", "")
		c.ListenAddr = l.String("LISTEN_ADDR", "127.0.0.1:3000")
		if c.SigningSecret == "" && c.SigningSecretParam == "" {
			l.Fail(errors.New("SLACK_SIGNING_SECRET (or SIGNING_SECRET_PARAM) is required"))
		}
	}
	return c, l.Err()
}

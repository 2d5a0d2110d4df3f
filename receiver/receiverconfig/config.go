// Package receiverconfig is the receiver's environment: the table of every variable it reads
// (names, kinds, defaults, meaning), the loader that reads through that table, and the
// validated Config. It imports only shared/config so that the local tools
// (infra/local/devstack) and the documentation check can use the names without the handler.
package receiverconfig

import (
	"errors"
	"strconv"
	"time"

	"github.com/slackrelay/slackrelay/shared/config"
)

// DefaultMaxBodyBytes leaves room for the envelope around the body inside SQS's 1 MiB limit.
const DefaultMaxBodyBytes = 1<<20 - 16<<10

// The names of the receiver's variables.
const (
	EnvLogLevel           = "LOG_LEVEL"
	EnvEventsQueueURL     = "EVENTS_QUEUE_URL"
	EnvSigningSecretParam = "SIGNING_SECRET_PARAM"
	EnvMaxBodyBytes       = "MAX_BODY_BYTES"
	EnvSecretsMaxAge      = "SECRETS_MAX_AGE"
	EnvSlackSigningSecret = "SLACK_SIGNING_SECRET"
	EnvListenAddr         = "LISTEN_ADDR"
)

// Vars is every environment variable the receiver reads; Load reads exactly these (a test
// checks it per mode and writes the Lambda-mode names to receiver/testdata/lambda-env.json).
var Vars = []config.Var{
	{Name: EnvLogLevel, Default: "info", Doc: "debug, info, warn or error"},
	{Name: EnvEventsQueueURL, Required: true, Doc: "the SQS queue verified requests go to"},
	{Name: EnvSigningSecretParam, Doc: "SSM SecureString parameter holding Slack's signing secret (required in Lambda; locally it replaces SLACK_SIGNING_SECRET)"},
	{Name: EnvMaxBodyBytes, Kind: config.KindInt, Default: strconv.Itoa(DefaultMaxBodyBytes), Min: 1024, Max: DefaultMaxBodyBytes,
		Doc: "larger request bodies are answered 413 (the default leaves room for the envelope inside SQS's 1 MiB)"},
	{Name: EnvSecretsMaxAge, Kind: config.KindDuration, Default: "5m", Doc: "how long SSM values are cached"},
	{Name: EnvSlackSigningSecret, LocalOnly: true, Doc: "the signing secret itself (required unless SIGNING_SECRET_PARAM is set)"},
	{Name: EnvListenAddr, Default: "127.0.0.1:3000", LocalOnly: true, Doc: "the local HTTP server's address"},
}

// Config is the receiver's validated configuration.
type Config struct {
	LogLevel           string
	QueueURL           string
	SigningSecretParam string
	SigningSecret      string // local mode only
	MaxBodyBytes       int
	SecretsMaxAge      time.Duration
	ListenAddr         string // local mode only
	Lambda             bool
	// Deprecations are old variable names in use; the binary logs them at start-up.
	Deprecations []config.Deprecation
}

// Load reads the environment through getenv and reports every problem at once.
func Load(getenv func(string) string) (Config, error) {
	l := config.NewLoader(Vars, getenv)
	c := Config{
		LogLevel:           l.String(EnvLogLevel),
		QueueURL:           l.String(EnvEventsQueueURL),
		SigningSecretParam: l.String(EnvSigningSecretParam),
		MaxBodyBytes:       l.Int(EnvMaxBodyBytes),
		SecretsMaxAge:      l.Duration(EnvSecretsMaxAge),
		Lambda:             l.Lambda(),
	}
	if c.Lambda {
		if c.SigningSecretParam == "" {
			l.Fail(errors.New(EnvSigningSecretParam + " is required in Lambda (the signing secret is read from SSM)"))
		}
	} else {
		c.SigningSecret = l.String(EnvSlackSigningSecret)
		c.ListenAddr = l.String(EnvListenAddr)
		if c.SigningSecret == "" && c.SigningSecretParam == "" {
			l.Fail(errors.New(EnvSlackSigningSecret + " (or " + EnvSigningSecretParam + ") is required"))
		}
	}
	c.Deprecations = l.Deprecations()
	return c, l.Err()
}

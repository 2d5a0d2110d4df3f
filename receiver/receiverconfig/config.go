// Package receiverconfig is the receiver's environment: the table of every variable it reads
// (names, kinds, defaults, meaning), the loader that reads through that table, and the
// validated Config. It imports only shared/config so that the local tools
// (infra/local/devworld) and the documentation check can use the names without the handler.
package receiverconfig

import (
	"errors"
	"strconv"
	"time"

	"github.com/slackrelay/slackrelay/shared/config"
)

// MaxBodyBytesLimit is the largest MAX_BODY_BYTES, 780,288 bytes (762 KiB): a body this long
// always fits whole in one SQS message, whatever its bytes. SQS allows 1 MiB (1,048,576
// bytes) counting the message attributes. The envelope carries the body as a JSON string
// when that fits, which can take six bytes per byte of body, and else in base64, which
// takes 4 bytes per 3 whatever they are: 1,040,384 bytes for this body. That leaves
// envelopeReserveBytes (8 KiB) for the envelope's other fields and the attributes, which
// the receiver bounds (every id at most 128 bytes): at their longest, written with the
// worst escapes and with the ReplayCount a replay adds, they take under 6 KiB
// (receiver/receiver's TestEveryBodyUpToTheLimitIsEnqueuedWhole builds that message).
const MaxBodyBytesLimit = (1<<20 - envelopeReserveBytes) / 4 * 3

// envelopeReserveBytes is what MaxBodyBytesLimit leaves in an SQS message besides the body
// in base64.
const envelopeReserveBytes = 8 << 10

// DefaultMaxBodyBytes is the default MAX_BODY_BYTES: the largest allowed.
const DefaultMaxBodyBytes = MaxBodyBytesLimit

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
	{Name: EnvMaxBodyBytes, Kind: config.KindInt, Default: strconv.Itoa(DefaultMaxBodyBytes), Min: 1024, Max: MaxBodyBytesLimit,
		Doc: "larger request bodies are answered 413 (X-Slack-No-Retry); every body up to it is enqueued whole. The maximum, 762 KiB, is the longest body that fits in SQS's 1 MiB (attributes included) even base64-encoded, as the envelope carries a body whose JSON escaping would not fit (4 bytes per 3), with 8 KiB left for the envelope's other fields and the attributes"},
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

// Package receiverconfig is the receiver's environment: the table of every variable it reads
// (names, kinds, defaults, meaning), the loader that reads through that table, and the
// validated Config. It imports only shared/config so that the local tools
// (infra/local/devworld) and the documentation check can use the names without the handler.
package receiverconfig

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
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
	// Many workspaces: the install pages (receiver/installflow). The names the worker shares
	// (INSTALLATIONS_TABLE, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET_PARAM, SLACK_CLIENT_SECRET,
	// SLACK_API_URL) mean the same thing in both.
	EnvInstallationsTable = "INSTALLATIONS_TABLE"
	EnvSlackClientID      = "SLACK_CLIENT_ID"
	EnvClientSecretParam  = "SLACK_CLIENT_SECRET_PARAM"
	EnvSlackClientSecret  = "SLACK_CLIENT_SECRET"
	EnvOAuthScopes        = "OAUTH_SCOPES"
	EnvOAuthRedirectURL   = "OAUTH_REDIRECT_URL"
	EnvAuthorizeURL       = "SLACK_OAUTH_AUTHORIZE_URL"
	EnvSlackAPIURL        = "SLACK_API_URL"
)

// DefaultOAuthScopes are the bot scopes the install page asks for: those of
// infra/slack-app-manifest.yaml (a test in infra/local/installpages keeps them equal).
const DefaultOAuthScopes = "app_mentions:read,assistant:write,channels:history,chat:write,groups:history,im:history,im:read,mpim:history,reactions:write,commands"

// Slack's endpoints, the defaults of SLACK_OAUTH_AUTHORIZE_URL and SLACK_API_URL.
const (
	DefaultAuthorizeURL = "https://slack.com/oauth/v2/authorize"
	DefaultSlackAPIURL  = "https://slack.com/api/"
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
	{Name: EnvInstallationsTable,
		Doc: "many workspaces: the DynamoDB table of installations; the receiver serves the install pages (/slack/install, /slack/oauth_redirect) and stores each workspace's or org's installation there. Empty: one workspace, and the install pages answer 404"},
	{Name: EnvSlackClientID, Doc: "the app's client id (with INSTALLATIONS_TABLE: required)"},
	{Name: EnvClientSecretParam, Doc: "SSM SecureString parameter holding the app's client secret (with INSTALLATIONS_TABLE; required in Lambda then): it exchanges the install's code and keys the install cookie's signature"},
	{Name: EnvSlackClientSecret, LocalOnly: true, Doc: "the client secret itself (locally, instead of SLACK_CLIENT_SECRET_PARAM)"},
	{Name: EnvOAuthScopes, Default: DefaultOAuthScopes, Doc: "comma-separated bot scopes the install page asks for (default: the bot scopes of infra/slack-app-manifest.yaml)"},
	{Name: EnvOAuthRedirectURL, Doc: "the redirect URL Slack sends the browser back to (one of the app's OAuth redirect URLs); empty: https://<the host the install page was requested on>/slack/oauth_redirect"},
	{Name: EnvAuthorizeURL, Default: DefaultAuthorizeURL, Doc: "Slack's OAuth consent page the Add to Slack button opens (GovSlack, a local Slack server)"},
	{Name: EnvSlackAPIURL, Default: DefaultSlackAPIURL, Doc: "Slack Web API base URL for oauth.v2.access and auth.test (GovSlack, a proxy, a local server)"},
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
	// Install is the install flow's settings; Install.Table empty is one workspace (no
	// install pages).
	Install Install
	// Deprecations are old variable names in use; the binary logs them at start-up.
	Deprecations []config.Deprecation
}

// Install is the configuration of the install pages (many workspaces).
type Install struct {
	Table             string
	ClientID          string
	ClientSecretParam string
	ClientSecret      string // local mode only
	Scopes            string
	RedirectURL       string
	AuthorizeURL      string
	SlackAPIURL       string
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
		Install: Install{
			Table:             l.String(EnvInstallationsTable),
			ClientID:          l.String(EnvSlackClientID),
			ClientSecretParam: l.String(EnvClientSecretParam),
			Scopes:            l.String(EnvOAuthScopes),
			RedirectURL:       l.String(EnvOAuthRedirectURL),
			AuthorizeURL:      l.String(EnvAuthorizeURL),
			SlackAPIURL:       l.String(EnvSlackAPIURL),
		},
	}
	if !c.Lambda {
		c.Install.ClientSecret = l.String(EnvSlackClientSecret)
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
	if c.Install.Table != "" {
		for _, err := range c.Install.check(c.Lambda) {
			l.Fail(err)
		}
	}
	c.Deprecations = l.Deprecations()
	return c, l.Err()
}

// check reports what the install pages lack.
func (i Install) check(lambda bool) []error {
	var errs []error
	if i.ClientID == "" {
		errs = append(errs, errors.New(EnvSlackClientID+" is required with "+EnvInstallationsTable+" (the install pages)"))
	}
	switch {
	case lambda && i.ClientSecretParam == "":
		errs = append(errs, errors.New(EnvClientSecretParam+" is required in Lambda with "+EnvInstallationsTable+" (the client secret is read from SSM)"))
	case !lambda && i.ClientSecret == "" && i.ClientSecretParam == "":
		errs = append(errs, errors.New(EnvSlackClientSecret+" (or "+EnvClientSecretParam+") is required with "+EnvInstallationsTable))
	}
	if strings.TrimSpace(strings.ReplaceAll(i.Scopes, ",", "")) == "" {
		errs = append(errs, errors.New(EnvOAuthScopes+" is empty: the install page must ask for the bot's scopes"))
	}
	for _, nv := range [][2]string{{EnvOAuthRedirectURL, i.RedirectURL}, {EnvAuthorizeURL, i.AuthorizeURL}, {EnvSlackAPIURL, i.SlackAPIURL}} {
		name, v := nv[0], nv[1]
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			errs = append(errs, errors.New(name+"="+strconv.Quote(v)+" is not an absolute http(s) URL"))
		}
	}
	return errs
}

package receiverconfig

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/shared/config/configtest"
)

var env = configtest.Env

// Load reads exactly Vars in each mode; the Lambda-mode names it reads are the golden file
// the template checker compares with infra/template.yaml.
func TestLoadReadsTheTable(t *testing.T) {
	t.Parallel()
	load := func(getenv func(string) string) error { _, err := Load(getenv); return err }
	if err := configtest.Check(Vars, load, "../testdata/lambda-env.json"); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDefaultsComeFromTheTable(t *testing.T) {
	t.Parallel()
	c, err := Load(env(EnvEventsQueueURL, "http://q", EnvSlackSigningSecret, "s"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{LogLevel: "info", QueueURL: "http://q", SigningSecret: "s", MaxBodyBytes: DefaultMaxBodyBytes,
		SecretsMaxAge: 5 * time.Minute, ListenAddr: "127.0.0.1:3000",
		Install: Install{Scopes: DefaultOAuthScopes, AuthorizeURL: DefaultAuthorizeURL, SlackAPIURL: DefaultSlackAPIURL}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	load := func(getenv func(string) string) error { _, err := Load(getenv); return err }
	configtest.CheckProblems(t, load, []configtest.Problem{
		{Name: "lambda", Env: env(config.EnvLambdaRuntimeAPI, "x", EnvMaxBodyBytes, "lots", EnvSecretsMaxAge, "-1s"),
			Want: []string{"EVENTS_QUEUE_URL is required", "SIGNING_SECRET_PARAM is required in Lambda", `MAX_BODY_BYTES="lots"`, `SECRETS_MAX_AGE="-1s"`}},
		{Name: "local", Env: env(EnvMaxBodyBytes, "100"),
			Want: []string{"EVENTS_QUEUE_URL is required", "SLACK_SIGNING_SECRET (or SIGNING_SECRET_PARAM) is required", "MAX_BODY_BYTES=100 is outside [1024, 780288]"}},
		{Name: "lambda, many workspaces without the client", Env: env(config.EnvLambdaRuntimeAPI, "x", EnvEventsQueueURL, "q", EnvSigningSecretParam, "/s",
			EnvInstallationsTable, "inst", EnvSlackClientSecret, "local only", EnvOAuthRedirectURL, "/slack/oauth_redirect"),
			Want: []string{"SLACK_CLIENT_ID is required with INSTALLATIONS_TABLE", "SLACK_CLIENT_SECRET_PARAM is required in Lambda with INSTALLATIONS_TABLE",
				`OAUTH_REDIRECT_URL="/slack/oauth_redirect" is not an absolute http(s) URL`}},
		{Name: "local, many workspaces without a secret or scopes", Env: env(EnvEventsQueueURL, "q", EnvSlackSigningSecret, "s",
			EnvInstallationsTable, "inst", EnvSlackClientID, "1.2", EnvOAuthScopes, " , ", EnvAuthorizeURL, "ftp://slack"),
			Want: []string{"SLACK_CLIENT_SECRET (or SLACK_CLIENT_SECRET_PARAM) is required with INSTALLATIONS_TABLE", "OAUTH_SCOPES is empty",
				`SLACK_OAUTH_AUTHORIZE_URL="ftp://slack" is not an absolute http(s) URL`}},
		// The former default: a body that long might not fit in an SQS message once wrapped.
		{Name: "over the largest body that always fits", Env: env(EnvEventsQueueURL, "q", EnvSlackSigningSecret, "s", EnvMaxBodyBytes, "1032192"),
			Want: []string{"MAX_BODY_BYTES=1032192 is outside [1024, 780288]"}},
	})
}

// The limit is what its doc comment and the variable's documentation compute.
func TestMaxBodyBytesLimit(t *testing.T) {
	t.Parallel()
	if MaxBodyBytesLimit != 780288 || (MaxBodyBytesLimit+2)/3*4+envelopeReserveBytes > 1<<20 {
		t.Errorf("MaxBodyBytesLimit = %d: its base64 form and the %d-byte reserve must fit in 1 MiB, as documented (780288)", MaxBodyBytesLimit, envelopeReserveBytes)
	}
	c, err := Load(env(EnvEventsQueueURL, "q", EnvSlackSigningSecret, "s", EnvMaxBodyBytes, "780288"))
	if err != nil || c.MaxBodyBytes != MaxBodyBytesLimit {
		t.Errorf("Load with the largest value: %+v, %v", c, err)
	}
}

func TestLambdaModeIgnoresLocalVariables(t *testing.T) {
	t.Parallel()
	c, err := Load(env(config.EnvLambdaRuntimeAPI, "x", EnvEventsQueueURL, "q", EnvSigningSecretParam, "/p", EnvSlackSigningSecret, "s", EnvListenAddr, ":1"))
	if err != nil || !c.Lambda || c.SigningSecret != "" || c.ListenAddr != "" {
		t.Errorf("Load = %+v, %v; want Lambda mode without the local-only values", c, err)
	}
}

// One workspace (no INSTALLATIONS_TABLE) asks nothing of the install settings; many
// workspaces reads them, the client secret from SSM in Lambda.
func TestInstallSettings(t *testing.T) {
	t.Parallel()
	c, err := Load(env(EnvEventsQueueURL, "q", EnvSlackSigningSecret, "s", EnvOAuthScopes, ""))
	if err != nil || c.Install.Table != "" {
		t.Fatalf("one workspace: Load = %+v, %v; want no install table and no error", c.Install, err)
	}
	c, err = Load(env(config.EnvLambdaRuntimeAPI, "x", EnvEventsQueueURL, "q", EnvSigningSecretParam, "/s", EnvInstallationsTable, "inst",
		EnvSlackClientID, "1.2", EnvClientSecretParam, "/cs", EnvSlackClientSecret, "ignored", EnvOAuthScopes, "chat:write,commands"))
	if err != nil {
		t.Fatal(err)
	}
	want := Install{Table: "inst", ClientID: "1.2", ClientSecretParam: "/cs", Scopes: "chat:write,commands", AuthorizeURL: DefaultAuthorizeURL, SlackAPIURL: DefaultSlackAPIURL}
	if d := cmp.Diff(want, c.Install); d != "" {
		t.Errorf("many workspaces in Lambda (-want +got):\n%s", d)
	}
}

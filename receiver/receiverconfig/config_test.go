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
		SecretsMaxAge: 5 * time.Minute, ListenAddr: "127.0.0.1:3000"}
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

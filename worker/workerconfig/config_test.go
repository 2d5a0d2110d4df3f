package workerconfig

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/shared/config/configtest"
)

var env = configtest.Env

// Load reads exactly Vars in each mode. The worker binary's Lambda-mode names, the golden file
// ../testdata/lambda-env.json the template checker compares with infra/template.yaml, are
// these and the shipped bot's (assistant.Vars): worker/assistant's test checks that file.
func TestLoadReadsTheTable(t *testing.T) {
	t.Parallel()
	load := func(getenv func(string) string) error { _, err := Load(getenv); return err }
	if err := configtest.Check(Vars, load, ""); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDefaultsComeFromTheTable(t *testing.T) {
	t.Parallel()
	c, err := Load(env(EnvEventsQueueURL, "q", EnvDLQURL, "d", EnvIdempotencyTable, "t", EnvSlackBotToken, "xoxb-1"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{LogLevel: "info", QueueURL: "q", DLQURL: "d", Table: "t", IdempotencyTTL: 360 * time.Hour, DLQRetention: 336 * time.Hour, ReplayWindow: 24 * time.Hour,
		StreamLifetime: 5 * time.Minute, MaxAnswerDuration: 30 * time.Minute, MaxReceiveCount: 5,
		BotToken: "xoxb-1", SlackAPIURL: "https://slack.com/api/", ResponseURLPrefixes: []string{"https://hooks.slack.com/"},
		BatchConcurrency: 10, TenantConcurrency: 5, BackoffBase: 10 * time.Second, BackoffMax: 15 * time.Minute, SecretsMaxAge: 5 * time.Minute,
		HandlerTimeout: time.Minute, PollBatchSize: 10, PollWait: 20 * time.Second, PollLoops: 2}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	load := func(getenv func(string) string) error { _, err := Load(getenv); return err }
	configtest.CheckProblems(t, load, []configtest.Problem{
		{Name: "lambda", Env: env(config.EnvLambdaRuntimeAPI, "x", EnvMaxReceiveCount, "0", EnvStreamLifetime, "soon", EnvBackoffBase, "1h"),
			Want: []string{"EVENTS_QUEUE_URL is required", "DLQ_URL is required", "IDEMPOTENCY_TABLE is required", "MAX_RECEIVE_COUNT=0 is outside [1, 1000]",
				`STREAM_LIFETIME="soon"`, "BACKOFF_MAX must not be smaller than BACKOFF_BASE", "BOT_TOKEN_PARAM is required in Lambda"}},
		{Name: "record retention", Env: env(EnvEventsQueueURL, "q", EnvDLQURL, "d", EnvIdempotencyTable, "t", EnvSlackBotToken, "x",
			EnvIdempotencyTTL, "300h", EnvDLQRetention, "336h", EnvReplayWindow, "12h"),
			Want: []string{"IDEMPOTENCY_TTL=300h0m0s is shorter than DLQ_RETENTION (336h0m0s) + REPLAY_WINDOW (12h0m0s) = 348h0m0s"}},
		{Name: "local", Env: env(EnvPollBatchSize, "11", EnvTenantConcurrency, "-1"),
			Want: []string{"SLACK_BOT_TOKEN (or BOT_TOKEN_PARAM, or INSTALLATIONS_TABLE) is required", "POLL_BATCH_SIZE=11 is outside [1, 10]", "TENANT_CONCURRENCY=-1 is outside [0, 100]"}},
	})
}

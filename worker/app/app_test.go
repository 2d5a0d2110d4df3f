package app

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/localstack/localstacktest"
	"github.com/slackrelay/slackrelay/shared/config"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func TestMain(m *testing.M) { os.Exit(localstacktest.Run(m)) }

func TestLoadConfig(t *testing.T) {
	env := map[string]string{"EVENTS_QUEUE_URL": "q", "DLQ_URL": "d", "IDEMPOTENCY_TABLE": "t", "SLACK_BOT_TOKEN": "xoxb-1"}
	c, err := LoadConfig(func(k string) string { return env[k] })
	if err != nil || c.MaxReceiveCount != 5 || c.BackoffBase != 10*time.Second || c.HandlerTimeout != time.Minute || c.PollLoops != 2 {
		t.Fatalf("%+v %v", c, err)
	}
	bad := map[string]string{"AWS_LAMBDA_RUNTIME_API": "x", "MAX_RECEIVE_COUNT": "0", "DEMO_DELAY": "soon", "BACKOFF_BASE": "1h", "LLM_BASE_URL": "http://x"}
	_, err = LoadConfig(func(k string) string { return bad[k] })
	for _, want := range []string{"EVENTS_QUEUE_URL", "DLQ_URL", "IDEMPOTENCY_TABLE", "MAX_RECEIVE_COUNT", "DEMO_DELAY", "BACKOFF_MAX", "BOT_TOKEN_PARAM", "LLM_API_KEY_PARAM"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if err := config.CheckLambdaEnvGolden("../testdata/lambda-env.json", Vars, *update); err != nil {
		t.Fatal(err)
	}
}

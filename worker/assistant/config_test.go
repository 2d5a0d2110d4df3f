package assistant

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/shared/config/configtest"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// loadSettings is LoadSettings as a configtest loader: Lambda mode when the environment
// says so, as the worker decides.
func loadSettings(getenv func(string) string) error {
	_, err := LoadSettings(getenv, config.IsLambda(getenv))
	return err
}

// LoadSettings reads exactly Vars in each mode.
func TestLoadSettingsReadsTheTable(t *testing.T) {
	t.Parallel()
	if err := configtest.Check(Vars, loadSettings, ""); err != nil {
		t.Fatal(err)
	}
}

// The worker binary (worker/cmd/worker: the framework's variables and the shipped bot's)
// reads exactly both tables; the names it reads in Lambda are the golden file the template
// checker compares with the worker function's environment in infra/template.yaml.
func TestTheWorkerBinaryReadsBothTables(t *testing.T) {
	t.Parallel()
	load := func(getenv func(string) string) error {
		c, err := workerconfig.Load(getenv)
		_, serr := LoadSettings(getenv, c.Lambda)
		return errors.Join(err, serr)
	}
	if err := configtest.Check(slices.Concat(workerconfig.Vars, Vars), load, "../testdata/lambda-env.json"); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSettingsDefaultsComeFromTheTable(t *testing.T) {
	t.Parallel()
	s, err := LoadSettings(configtest.Env(), false)
	if err != nil {
		t.Fatalf("LoadSettings: %v", err)
	}
	want := Settings{LLMModel: "gpt-4o-mini", DemoDelay: 2 * time.Second, LLMFirstTokenTimeout: 30 * time.Second, LLMIdleTimeout: 20 * time.Second,
		LLMHistoryChars: 24000, DemoTokensPerSecond: 20, Streaming: true}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("LoadSettings (-want +got):\n%s", diff)
	}
	s, err = LoadSettings(configtest.Env(EnvStreaming, "off", EnvLLMPrefill, "Continue", EnvLLMBaseURL, "http://x", EnvLLMAPIKey, "k"), false)
	if err != nil || s.Streaming || s.LLMPrefill != "continue" || s.LLMAPIKey != "k" {
		t.Errorf("LoadSettings with STREAMING=off, LLM_PREFILL=Continue and a key: %+v, %v", s, err)
	}
}

func TestLoadSettingsReportsEveryProblem(t *testing.T) {
	t.Parallel()
	env := configtest.Env
	configtest.CheckProblems(t, loadSettings, []configtest.Problem{
		{Name: "lambda", Env: env(config.EnvLambdaRuntimeAPI, "x", EnvDemoDelay, "soon", EnvLLMBaseURL, "http://x"),
			Want: []string{`DEMO_DELAY="soon"`, "LLM_API_KEY_PARAM is required when LLM_BASE_URL is set"}},
		{Name: "local", Env: env(EnvLLMBaseURL, "http://x", EnvStreaming, "maybe", EnvLLMPrefill, "sideways", EnvDemoTokenRate, "0"),
			Want: []string{"LLM_API_KEY (or LLM_API_KEY_PARAM) is required when LLM_BASE_URL is set", "STREAMING=maybe is not on or off",
				"LLM_PREFILL=sideways is not off, continue, prefix or plain", "DEMO_TOKENS_PER_SECOND=0 is outside [1, 10000]"}},
	})
}

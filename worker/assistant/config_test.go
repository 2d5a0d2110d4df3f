package assistant

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/shared/config/configtest"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/threadmemory"
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
	want := Settings{LLMProvider: ProviderDemo, LLMModel: "gpt-4o-mini", DemoDelay: 2 * time.Second, LLMFirstTokenTimeout: 30 * time.Second, LLMIdleTimeout: 20 * time.Second,
		LLMHistoryChars: 24000, LLMMaxTokens: 4096, DemoTokensPerSecond: 20, Streaming: true,
		AgentTools: true, AgentMaxRounds: 5, AgentMaxTime: 2 * time.Minute, TaskCards: relay.TasksTimeline, StopButton: true, AssistantView: true,
		ThreadMemory: true, ThreadMemoryLimits: threadmemory.Limits{TTL: 720 * time.Hour, MaxChars: 32000, MaxTurns: 50}}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("LoadSettings (-want +got):\n%s", diff)
	}
	s, err = LoadSettings(configtest.Env(EnvStreaming, "off", EnvLLMPrefill, "Continue", EnvLLMBaseURL, "http://x", EnvLLMAPIKey, "k"), false)
	if err != nil || s.Streaming || s.LLMPrefill != "continue" || s.LLMAPIKey != "k" || s.LLMProvider != ProviderOpenAI {
		t.Errorf("LoadSettings with STREAMING=off, LLM_PREFILL=Continue and a key: %+v, %v", s, err)
	}
	s, err = LoadSettings(configtest.Env(EnvAgentTools, "Off", EnvAgentMaxRounds, "2", EnvAgentMaxTime, "45s"), false)
	if err != nil || s.AgentTools || s.AgentMaxRounds != 2 || s.AgentMaxTime != 45*time.Second {
		t.Errorf("LoadSettings with AGENT_TOOLS=Off, AGENT_MAX_ROUNDS=2, AGENT_MAX_TIME=45s: tools %v, rounds %d, time %s, %v",
			s.AgentTools, s.AgentMaxRounds, s.AgentMaxTime, err)
	}
	s, err = LoadSettings(configtest.Env(EnvAgentTaskCards, "Plan", EnvStopButton, "off"), false)
	if err != nil || s.TaskCards != relay.TasksPlan || s.StopButton {
		t.Errorf("LoadSettings with AGENT_TASK_CARDS=Plan, STOP_BUTTON=off: cards %q, stop %v, %v", s.TaskCards, s.StopButton, err)
	}
	s, err = LoadSettings(configtest.Env(EnvAgentTaskCards, "grid", EnvStopButton, "maybe"), false)
	if err == nil || !strings.Contains(err.Error(), "AGENT_TASK_CARDS=grid is not timeline, plan or off") || !strings.Contains(err.Error(), "STOP_BUTTON=maybe is not on or off") {
		t.Errorf("LoadSettings with bad AGENT_TASK_CARDS and STOP_BUTTON: %v, want both named", err)
	}
	if s, err = LoadSettings(configtest.Env(EnvAgentTaskCards, "off"), false); err != nil || s.TaskCards != "" {
		t.Errorf("AGENT_TASK_CARDS=off: %q %v", s.TaskCards, err)
	}
}

// LLM_PROVIDER chooses the model client; unset, LLM_BASE_URL chooses as it always did. Bedrock
// needs no API key, in Lambda either.
func TestLoadSettingsChoosesTheProvider(t *testing.T) {
	t.Parallel()
	env := configtest.Env
	lambda := config.EnvLambdaRuntimeAPI
	half := 0.5
	tests := []struct {
		name   string
		getenv func(string) string
		lambda bool
		want   func(Settings) bool
	}{
		{"unset: demo", env(), false, func(s Settings) bool { return s.LLMProvider == ProviderDemo }},
		{"unset with a base URL: openai", env(EnvLLMBaseURL, "http://x", EnvLLMAPIKey, "k"), false,
			func(s Settings) bool { return s.LLMProvider == ProviderOpenAI }},
		{"demo despite a base URL", env(EnvLLMProvider, "demo", EnvLLMBaseURL, "http://x"), false,
			func(s Settings) bool { return s.LLMProvider == ProviderDemo }},
		{"bedrock", env(EnvLLMProvider, " Bedrock ", EnvBedrockModelID, "anthropic.claude-x", EnvBedrockRegion, "eu-west-1",
			EnvLLMMaxTokens, "1000", EnvLLMTemperature, "0.5", lambda, "x"), true,
			func(s Settings) bool {
				return s.LLMProvider == ProviderBedrock && s.BedrockModelID == "anthropic.claude-x" && s.BedrockRegion == "eu-west-1" &&
					s.LLMMaxTokens == 1000 && cmp.Equal(s.LLMTemperature, &half)
			}},
	}
	for _, tt := range tests {
		s, err := LoadSettings(tt.getenv, tt.lambda)
		if err != nil || !tt.want(s) {
			t.Errorf("%s: %+v, %v", tt.name, s, err)
		}
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
		{Name: "bedrock", Env: env(config.EnvLambdaRuntimeAPI, "x", EnvLLMProvider, "bedrock", EnvLLMTemperature, "1.5", EnvLLMMaxTokens, "0"),
			Want: []string{"BEDROCK_MODEL_ID is required when LLM_PROVIDER=bedrock", "LLM_TEMPERATURE=1.5 is not a number from 0 to 1",
				"LLM_MAX_TOKENS=0 is outside [1, 1000000]"}},
		{Name: "provider", Env: env(EnvLLMProvider, "gemini", EnvLLMTemperature, "warm"),
			Want: []string{"LLM_PROVIDER=gemini is not demo, openai or bedrock", "LLM_TEMPERATURE=warm is not a number from 0 to 1"}},
		{Name: "openai", Env: env(EnvLLMProvider, "openai"),
			Want: []string{"LLM_BASE_URL is required when LLM_PROVIDER=openai"}},
		{Name: "agent", Env: env(EnvAgentTools, "sometimes", EnvAgentMaxRounds, "0", EnvAgentMaxTime, "-1s"),
			Want: []string{"AGENT_TOOLS=sometimes is not on or off", "AGENT_MAX_ROUNDS=0 is outside [1, 20]", `AGENT_MAX_TIME="-1s" must be greater than zero`}},
		{Name: "agent time", Env: env(EnvAgentMaxRounds, "21", EnvAgentMaxTime, "1h"),
			Want: []string{"AGENT_MAX_ROUNDS=21 is outside [1, 20]", "AGENT_MAX_TIME=1h0m0s is over 15m0s, the longest a Lambda invocation runs"}},
	})
}

package devenv

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/shared/config/configtest"
)

func TestLoadReadsTheTable(t *testing.T) {
	t.Parallel()
	load := func(getenv func(string) string) error { _, err := Load(getenv); return err }
	if err := configtest.Check(Vars, load, ""); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		want     Settings
		slackErr bool
		llmErr   bool
	}{
		{"nothing set: local Slack, colours", nil, Settings{Color: true}, false, false},
		{"real app: the worker's default Web API", map[string]string{"SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": "xoxb-1"},
			Settings{SigningSecret: "s", BotToken: "xoxb-1", SlackAPIURL: "https://slack.com/api/", Color: true}, false, false},
		{"real app behind another Web API", map[string]string{"SLACK_SIGNING_SECRET": "s", "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_API_URL": "https://slack-gov.com/api/"},
			Settings{SigningSecret: "s", BotToken: "xoxb-1", SlackAPIURL: "https://slack-gov.com/api/", Color: true}, false, false},
		{"local app with a test double of the Web API", map[string]string{"SLACK_API_URL": "http://127.0.0.1:9/api/"},
			Settings{SlackAPIURL: "http://127.0.0.1:9/api/", Color: true}, false, false},
		{"LLM passed through", map[string]string{"LLM_BASE_URL": "http://127.0.0.1:8/v1", "LLM_MODEL": "m", "LLM_API_KEY": "k"},
			Settings{LLMBaseURL: "http://127.0.0.1:8/v1", LLMModel: "m", LLMAPIKey: "k", Color: true}, false, false},
		{"NO_COLOR", map[string]string{"NO_COLOR": "1"}, Settings{}, false, false},
		{"dumb terminal", map[string]string{"TERM": "dumb"}, Settings{}, false, false},
		{"only the secret", map[string]string{"SLACK_SIGNING_SECRET": "sekrit-value"}, Settings{SigningSecret: "sekrit-value", Color: true}, true, false},
		{"the local LLM", map[string]string{"LOCAL_LLM": "on"}, Settings{LocalLLM: true, Color: true}, false, false},
		{"the local Bedrock stand-in", map[string]string{"LOCAL_LLM": "bedrock"}, Settings{LocalBedrock: true, Color: true}, false, false},
		{"the local Bedrock stand-in and another", map[string]string{"LOCAL_LLM": "bedrock", "LLM_BASE_URL": "http://127.0.0.1:8/v1"},
			Settings{LocalBedrock: true, LLMBaseURL: "http://127.0.0.1:8/v1", Color: true}, false, true},
		{"the local LLM off", map[string]string{"LOCAL_LLM": "off"}, Settings{Color: true}, false, false},
		{"the local LLM and another", map[string]string{"LOCAL_LLM": "on", "LLM_BASE_URL": "http://127.0.0.1:8/v1"},
			Settings{LocalLLM: true, LLMBaseURL: "http://127.0.0.1:8/v1", Color: true}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Load(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
			err = got.CheckSlack()
			if tt.slackErr != (err != nil) {
				t.Errorf("CheckSlack = %v, want error %v", err, tt.slackErr)
			}
			if err != nil && (!strings.Contains(err.Error(), "SLACK_BOT_TOKEN") || strings.Contains(err.Error(), "sekrit-value")) {
				t.Errorf("CheckSlack = %q, want it to name SLACK_BOT_TOKEN and no value", err)
			}
			if err := got.CheckLLM(); tt.llmErr != (err != nil) || err != nil && !strings.Contains(err.Error(), "LOCAL_LLM") {
				t.Errorf("CheckLLM = %v, want an error naming LOCAL_LLM: %v", err, tt.llmErr)
			}
		})
	}
}

func TestLoadRefusesABadLocalLLM(t *testing.T) {
	t.Parallel()
	_, err := Load(func(k string) string { return map[string]string{"LOCAL_LLM": "yes"}[k] })
	if err == nil || !strings.Contains(err.Error(), "LOCAL_LLM=yes is not on, bedrock or off") {
		t.Fatalf("Load with LOCAL_LLM=yes: %v, want an error saying it is not on, bedrock or off", err)
	}
}

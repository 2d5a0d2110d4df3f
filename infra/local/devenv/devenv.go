// Package devenv is what slackrelay-local (`make demo`, `make dev`, `make bench`) reads from
// the developer's environment: its table of variables (documented in docs/configuration.md)
// and the loader that reads through it. Names it shares with the binaries come from their
// tables, so a rename there is a rename here.
package devenv

import (
	"errors"

	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// The names of the variables only slackrelay-local reads.
const (
	EnvLocalLLM = "LOCAL_LLM"
	EnvNoColor  = "NO_COLOR"
	EnvTerm     = "TERM"
)

// Vars is every variable slackrelay-local reads; Load reads exactly these.
var Vars = []config.Var{
	{Name: receiverconfig.EnvSlackSigningSecret, Doc: "`make dev`: with SLACK_BOT_TOKEN, serve a real Slack app (the receiver verifies its signatures); unset: a local secret for hand-made requests. `bench -fair-events-url`: the deployed app's secret the workload is signed with"},
	{Name: workerconfig.EnvSlackBotToken, Doc: "`make dev`: with SLACK_SIGNING_SECRET, the bot token the worker posts with; unset: the local Slack server's token"},
	{Name: workerconfig.EnvSlackAPIURL, Doc: "`make dev`: the Slack Web API the worker calls (GovSlack, a proxy, a test double); unset: the worker's default (" +
		workerDefault(workerconfig.EnvSlackAPIURL) + ") when the two above are set, else the local Slack server"},
	{Name: assistant.EnvLLMBaseURL, Doc: "`make dev`: passed to the worker: an OpenAI-compatible API instead of the demo responder"},
	{Name: assistant.EnvLLMModel, Doc: "`make dev`: passed to the worker when set"},
	{Name: assistant.EnvLLMAPIKey, Doc: "`make dev`: passed to the worker when set (needed with LLM_BASE_URL)"},
	{Name: EnvLocalLLM, Doc: "`make dev`: `on` starts the local OpenAI-compatible LLM server (worker/assistant/llm/fakellm) and runs the worker against it, `bedrock` the local Bedrock ConverseStream stand-in (worker/assistant/llm/fakebedrock) with the worker on LLM_PROVIDER=bedrock, answers streamed at the pace of `slackrelay-local dev`'s -llm-* flags; unset or `off`: the demo responder, or LLM_BASE_URL (not with `on` or `bedrock`). `make demo` always answers from a local model: the OpenAI-compatible one, or with `bedrock` the Bedrock stand-in"},
	{Name: EnvNoColor, Doc: "set and not empty: no colours in the output"},
	{Name: EnvTerm, Doc: "`dumb`: no colours in the output"},
}

// workerDefault is the default of one of the worker's variables, from its table.
func workerDefault(name string) string {
	v, _ := config.Lookup(workerconfig.Vars, name)
	return v.Default
}

// Settings are the values read.
type Settings struct {
	SigningSecret, BotToken string
	// SlackAPIURL is SLACK_API_URL, or for a real app (both Slack values set) the worker's
	// default; "" means the local Slack server.
	SlackAPIURL                     string
	LLMBaseURL, LLMModel, LLMAPIKey string
	// LocalLLM is LOCAL_LLM=on: the worker answers from the local OpenAI-compatible LLM
	// server.
	LocalLLM bool
	// LocalBedrock is LOCAL_LLM=bedrock: the worker answers through its Bedrock client from
	// the local ConverseStream stand-in.
	LocalBedrock bool
	// Color is false when NO_COLOR is set or TERM is dumb.
	Color bool
}

// RealSlack reports whether a real Slack app's secret and token are set.
func (s Settings) RealSlack() bool { return s.SigningSecret != "" && s.BotToken != "" }

// Load reads the environment through getenv. Setting only one of SLACK_SIGNING_SECRET and
// SLACK_BOT_TOKEN is an error for `make dev` only, so it is reported by CheckSlack.
func Load(getenv func(string) string) (Settings, error) {
	l := config.NewLoader(Vars, getenv)
	s := Settings{
		SigningSecret: l.String(receiverconfig.EnvSlackSigningSecret),
		BotToken:      l.String(workerconfig.EnvSlackBotToken),
		SlackAPIURL:   l.String(workerconfig.EnvSlackAPIURL),
		LLMBaseURL:    l.String(assistant.EnvLLMBaseURL),
		LLMModel:      l.String(assistant.EnvLLMModel),
		LLMAPIKey:     l.String(assistant.EnvLLMAPIKey),
	}
	switch v := l.String(EnvLocalLLM); v {
	case "on":
		s.LocalLLM = true
	case "bedrock":
		s.LocalBedrock = true
	case "off", "":
	default:
		l.Fail(errors.New(EnvLocalLLM + "=" + v + " is not on, bedrock or off"))
	}
	noColor, term := l.String(EnvNoColor), l.String(EnvTerm)
	s.Color = noColor == "" && term != "dumb"
	if s.SlackAPIURL == "" && s.RealSlack() {
		s.SlackAPIURL = workerDefault(workerconfig.EnvSlackAPIURL)
	}
	return s, l.Err()
}

// CheckLLM returns an error when both a local LLM server and another API are asked for.
func (s Settings) CheckLLM() error {
	if (s.LocalLLM || s.LocalBedrock) && s.LLMBaseURL != "" {
		v := "on"
		if s.LocalBedrock {
			v = "bedrock"
		}
		return errors.New("set " + EnvLocalLLM + "=" + v + " or " + assistant.EnvLLMBaseURL + ", not both: the worker talks to one LLM")
	}
	return nil
}

// CheckSlack returns an error when only one of the real app's two values is set: the
// receiver and the worker would then talk to different Slack apps.
func (s Settings) CheckSlack() error {
	if (s.SigningSecret == "") != (s.BotToken == "") {
		return errors.New("set both " + receiverconfig.EnvSlackSigningSecret + " and " + workerconfig.EnvSlackBotToken + " for a real Slack app, or neither for the local one")
	}
	return nil
}

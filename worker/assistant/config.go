package assistant

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/worker"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// The names of the shipped bot's own variables (the framework's are in worker/workerconfig).
const (
	EnvLLMBaseURL      = "LLM_BASE_URL"
	EnvLLMModel        = "LLM_MODEL"
	EnvLLMAPIKeyParam  = "LLM_API_KEY_PARAM"
	EnvLLMFirstToken   = "LLM_FIRST_TOKEN_TIMEOUT"
	EnvLLMIdleTimeout  = "LLM_IDLE_TIMEOUT"
	EnvLLMHistoryChars = "LLM_HISTORY_CHARS"
	EnvLLMPrefill      = "LLM_PREFILL"
	EnvStreaming       = "STREAMING"
	EnvDemoDelay       = "DEMO_DELAY"
	EnvDemoTokenRate   = "DEMO_TOKENS_PER_SECOND"
	EnvLLMAPIKey       = "LLM_API_KEY"
)

// Vars is every environment variable the shipped bot reads, beside the framework's
// (workerconfig.Vars); LoadSettings reads exactly these.
var Vars = []config.Var{
	{Name: EnvLLMBaseURL, Doc: "OpenAI-compatible API base URL; unset: the demo responder"},
	{Name: EnvLLMModel, Default: "gpt-4o-mini", Doc: "chat-completions model"},
	{Name: EnvLLMAPIKeyParam, Doc: "SSM SecureString parameter holding the LLM API key (required in Lambda when LLM_BASE_URL is set)"},
	{Name: EnvLLMFirstToken, Kind: config.KindDuration, Default: "30s",
		Doc: "longest wait from sending a streamed LLM request to the first text of the answer; then the attempt fails and is retried"},
	{Name: EnvLLMIdleTimeout, Kind: config.KindDuration, Default: "20s",
		Doc: "longest gap between two chunks of a streamed LLM answer; then the attempt fails and is retried"},
	{Name: EnvLLMHistoryChars, Kind: config.KindInt, Default: "24000", Min: 0, Max: 1000000,
		Doc: "character budget of a prompt with its thread's earlier messages (the newest kept first, older ones dropped; the prompt is always sent); 0 sends no history"},
	{Name: EnvLLMPrefill, Default: "off",
		Doc: "how an answer cut short (a crash, the end of an invocation) is continued: off asks the model again and skips what was shown (exact for deterministic models, but each continuation regenerates the shown text); continue, prefix or plain send the shown text as the start of the assistant's answer for servers that continue it (vLLM continue_final_message, DeepSeek/Mistral prefix, llama.cpp), which long answers need; never with OpenAI's own API"},
	{Name: EnvStreaming, Default: "on",
		Doc: "on: answers stream into the thread (chat.startStream/appendStream/stopStream); off: a message updated in place as the answer grows"},
	{Name: EnvDemoDelay, Kind: config.KindDuration, Default: "2s", Doc: "the demo responder's pretend work (streamed: before its first word)"},
	{Name: EnvDemoTokenRate, Kind: config.KindInt, Default: "20", Min: 1, Max: 10000, Doc: "words a second the demo responder streams"},
	{Name: EnvLLMAPIKey, LocalOnly: true, Doc: "the LLM API key itself (with LLM_BASE_URL, unless LLM_API_KEY_PARAM is set)"},
}

// Settings is the shipped bot's validated configuration.
type Settings struct {
	LLMBaseURL     string
	LLMModel       string
	LLMAPIKeyParam string
	LLMAPIKey      string
	// LLMFirstTokenTimeout and LLMIdleTimeout bound a streamed answer (llm.Chat).
	LLMFirstTokenTimeout time.Duration
	LLMIdleTimeout       time.Duration
	// LLMHistoryChars is the character budget of a thread's history (llm.History).
	LLMHistoryChars int
	// LLMPrefill is how a cut answer is continued: "" (regenerate and skip) or a prefill
	// style (llm.PrefillStyle: continue, prefix, plain).
	LLMPrefill          string
	DemoDelay           time.Duration
	DemoTokensPerSecond int
	// Streaming says whether answers stream (STREAMING=on) or grow in a posted message.
	Streaming bool
}

// LoadSettings reads the shipped bot's variables through getenv and reports every problem at
// once; lambda says whether it runs in AWS Lambda (where the LLM key must come from SSM).
func LoadSettings(getenv func(string) string, lambda bool) (Settings, error) {
	l := config.NewLoader(Vars, getenv)
	c := Settings{
		LLMBaseURL:           l.String(EnvLLMBaseURL),
		LLMModel:             l.String(EnvLLMModel),
		LLMAPIKeyParam:       l.String(EnvLLMAPIKeyParam),
		LLMFirstTokenTimeout: l.Duration(EnvLLMFirstToken),
		LLMIdleTimeout:       l.Duration(EnvLLMIdleTimeout),
		LLMHistoryChars:      l.Int(EnvLLMHistoryChars),
		LLMPrefill:           prefill(l),
		DemoDelay:            l.Duration(EnvDemoDelay),
		DemoTokensPerSecond:  l.Int(EnvDemoTokenRate),
		Streaming:            streaming(l),
	}
	if lambda {
		if c.LLMBaseURL != "" && c.LLMAPIKeyParam == "" {
			l.Fail(errors.New(EnvLLMAPIKeyParam + " is required when " + EnvLLMBaseURL + " is set"))
		}
	} else {
		c.LLMAPIKey = l.String(EnvLLMAPIKey)
		if c.LLMBaseURL != "" && c.LLMAPIKey == "" && c.LLMAPIKeyParam == "" {
			l.Fail(errors.New(EnvLLMAPIKey + " (or " + EnvLLMAPIKeyParam + ") is required when " + EnvLLMBaseURL + " is set"))
		}
	}
	return c, l.Err()
}

// New is the shipped bot as a worker.Bot: it reads its settings from the environment, builds
// its model client (an OpenAI-compatible API, or the demo responder when LLM_BASE_URL is
// unset) and registers its routes. worker/cmd/worker runs it: worker.Main(assistant.New).
func New(r *relay.Router, s *worker.Setup) error {
	st, err := LoadSettings(s.Getenv, s.Lambda)
	if err != nil {
		return err
	}
	historyChars := st.LLMHistoryChars
	if historyChars == 0 {
		historyChars = -1 // LLM_HISTORY_CHARS=0 sends no history; Config's zero means its default
	}
	cfg := Config{LLM: llm.Demo{Delay: st.DemoDelay, TokensPerSecond: float64(st.DemoTokensPerSecond)}, Model: "demo",
		HistoryChars: historyChars, NoStreaming: !st.Streaming, Metrics: s.Metrics}
	if st.LLMBaseURL != "" {
		key := s.Secret(st.LLMAPIKeyParam, st.LLMAPIKey)
		cfg.LLM = &llm.Chat{
			BaseURL: st.LLMBaseURL, Model: st.LLMModel,
			APIKey:            func(ctx context.Context) (string, error) { return key(ctx) },
			System:            llm.SlackSystemPrompt,
			FirstTokenTimeout: st.LLMFirstTokenTimeout, IdleTimeout: st.LLMIdleTimeout, Metrics: s.Metrics,
			Prefill: st.LLMPrefill != "", PrefillStyle: llm.PrefillStyle(st.LLMPrefill),
		}
		cfg.Model = st.LLMModel
	}
	Register(r, cfg)
	return nil
}

// streaming reads STREAMING: on or off.
func streaming(l *config.Loader) bool {
	switch v := strings.ToLower(strings.TrimSpace(l.String(EnvStreaming))); v {
	case "on", "true", "1", "yes":
		return true
	case "off", "false", "0", "no":
		return false
	default:
		l.Fail(errors.New(EnvStreaming + "=" + v + " is not on or off"))
		return true
	}
}

// prefill reads LLM_PREFILL: off, or a prefill style (continue, prefix, plain).
func prefill(l *config.Loader) string {
	switch v := strings.ToLower(strings.TrimSpace(l.String(EnvLLMPrefill))); v {
	case "off", "":
		return ""
	case "continue", "prefix", "plain":
		return v
	default:
		l.Fail(errors.New(EnvLLMPrefill + "=" + v + " is not off, continue, prefix or plain"))
		return ""
	}
}

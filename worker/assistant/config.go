package assistant

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/worker"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/threadmemory"
)

// The names of the shipped bot's own variables (the framework's are in worker/workerconfig).
const (
	EnvLLMProvider     = "LLM_PROVIDER"
	EnvLLMBaseURL      = "LLM_BASE_URL"
	EnvLLMModel        = "LLM_MODEL"
	EnvLLMAPIKeyParam  = "LLM_API_KEY_PARAM"
	EnvLLMFirstToken   = "LLM_FIRST_TOKEN_TIMEOUT"
	EnvLLMIdleTimeout  = "LLM_IDLE_TIMEOUT"
	EnvLLMHistoryChars = "LLM_HISTORY_CHARS"
	EnvLLMPrefill      = "LLM_PREFILL"
	EnvLLMMaxTokens    = "LLM_MAX_TOKENS"
	EnvLLMTemperature  = "LLM_TEMPERATURE"
	EnvBedrockModelID  = "BEDROCK_MODEL_ID"
	EnvBedrockRegion   = "BEDROCK_REGION"
	EnvStreaming       = "STREAMING"
	EnvDemoDelay       = "DEMO_DELAY"
	EnvDemoTokenRate   = "DEMO_TOKENS_PER_SECOND"
	EnvLLMAPIKey       = "LLM_API_KEY"
	EnvAgentTools      = "AGENT_TOOLS"
	EnvAgentMaxRounds  = "AGENT_MAX_ROUNDS"
	EnvAgentMaxTime    = "AGENT_MAX_TIME"
	EnvAgentTaskCards  = "AGENT_TASK_CARDS"
	EnvStopButton      = "STOP_BUTTON"
	EnvAssistantView   = "ASSISTANT_VIEW"
	EnvLLMPrices       = "LLM_PRICES"
	EnvLLMTokenBudget  = "LLM_DAILY_TOKEN_BUDGET"
	EnvThreadMemory    = "THREAD_MEMORY"
	EnvThreadMemoryTTL = "THREAD_MEMORY_TTL"
	EnvThreadMemChars  = "THREAD_MEMORY_CHARS"
	EnvThreadMemTurns  = "THREAD_MEMORY_TURNS"
)

// maxAgentTime bounds AGENT_MAX_TIME: it bounds the tool loop within one invocation, and no
// Lambda invocation runs longer.
const maxAgentTime = 15 * time.Minute

// Vars is every environment variable the shipped bot reads, beside the framework's
// (workerconfig.Vars); LoadSettings reads exactly these.
var Vars = []config.Var{
	{Name: EnvLLMProvider, Doc: "the model client: demo (the demo responder), openai (an OpenAI-compatible API at LLM_BASE_URL) or bedrock (Amazon Bedrock's ConverseStream, BEDROCK_MODEL_ID); unset: openai when LLM_BASE_URL is set, else demo"},
	{Name: EnvLLMBaseURL, Doc: "OpenAI-compatible API base URL (LLM_PROVIDER=openai, which it selects when LLM_PROVIDER is unset); unset: the demo responder"},
	{Name: EnvLLMModel, Default: "gpt-4o-mini", Doc: "chat-completions model (LLM_PROVIDER=openai; bedrock's is BEDROCK_MODEL_ID)"},
	{Name: EnvLLMAPIKeyParam, Doc: "SSM SecureString parameter holding the LLM API key (required in Lambda with LLM_PROVIDER=openai; bedrock signs with the worker's role instead)"},
	{Name: EnvBedrockModelID, Doc: "the Bedrock model: a model id (anthropic.claude-…), an inference profile id (us.anthropic.claude-…) or an ARN (required with LLM_PROVIDER=bedrock)"},
	{Name: EnvBedrockRegion, Doc: "the region of Bedrock calls; unset: the worker's AWS region (AWS_REGION)"},
	{Name: EnvLLMMaxTokens, Kind: config.KindInt, Default: "4096", Min: 1, Max: 1000000,
		Doc: "longest answer in tokens (bedrock: inferenceConfig.maxTokens; the openai provider sends none and the server's default applies)"},
	{Name: EnvLLMTemperature, Doc: "sampling temperature from 0 to 1 (bedrock: inferenceConfig.temperature); unset: the model's default"},
	{Name: EnvLLMFirstToken, Kind: config.KindDuration, Default: "30s",
		Doc: "longest wait from sending a streamed LLM request to the first text of the answer; then the attempt fails and is retried"},
	{Name: EnvLLMIdleTimeout, Kind: config.KindDuration, Default: "20s",
		Doc: "longest gap between two chunks of a streamed LLM answer; then the attempt fails and is retried"},
	{Name: EnvLLMHistoryChars, Kind: config.KindInt, Default: "24000", Min: 0, Max: 1000000,
		Doc: "character budget of a prompt with its thread's earlier messages (the newest kept first, older ones dropped; the prompt is always sent); 0 sends no history"},
	{Name: EnvLLMPrefill, Default: "off",
		Doc: "how an answer cut short (a crash, the end of an invocation) is continued: off asks the model again and skips what was shown (exact for deterministic models, but each continuation regenerates the shown text); continue, prefix or plain send the shown text as the start of the assistant's answer for servers that continue it (vLLM continue_final_message, DeepSeek/Mistral prefix, llama.cpp), which long answers need; never with OpenAI's own API. With bedrock any value but off sends it as a final assistant message, which Anthropic's models continue"},
	{Name: EnvLLMPrices, Doc: "the price table of each answer's estimated cost: a JSON object from model (as BEDROCK_MODEL_ID or LLM_MODEL names it; a Bedrock inference profile or ARN also finds its model's entry) to US dollars per million tokens, {\"input\": …, \"output\": …, \"cache_read\": …, \"cache_write\": …} (the cache prices default to input's); unset or a model not in it: the cost is recorded as unknown"},
	{Name: EnvLLMTokenBudget, Kind: config.KindInt, Default: "0", Min: 0, Max: 1_000_000_000_000,
		Doc: "tokens (input and output) a workspace's answers may use per UTC day; past it the bot answers a short notice instead of calling the model; 0: no budget"},
	{Name: EnvStreaming, Default: "on",
		Doc: "on: answers stream into the thread (chat.startStream/appendStream/stopStream); off: a message updated in place as the answer grows"},
	{Name: EnvDemoDelay, Kind: config.KindDuration, Default: "2s", Doc: "the demo responder's pretend work (streamed: before its first word)"},
	{Name: EnvDemoTokenRate, Kind: config.KindInt, Default: "20", Min: 1, Max: 10000, Doc: "words a second the demo responder streams"},
	{Name: EnvAgentTools, Default: "on",
		Doc: "on: with LLM_PROVIDER openai or bedrock, answers go through the tool loop (worker/agent) and the model may call the bot's tools (calculate, current_time, earlier_answers), each call recorded so a redelivery never runs it twice; off: a plain streamed answer, for servers without tool calling. The demo responder never calls tools"},
	{Name: EnvAgentMaxRounds, Kind: config.KindInt, Default: "5", Min: 1, Max: 20,
		Doc: "most model turns of one answer through the tool loop (tools run between turns, so at most one round fewer of tool calls); when the last turn still asks for tools, the answer ends with a note saying so"},
	{Name: EnvAgentMaxTime, Kind: config.KindDuration, Default: "2m",
		Doc: "longest an answer's tool loop works within one invocation (at most 15m) before it ends the answer with a note saying so; the invocation's own deadline still applies"},
	{Name: EnvAgentTaskCards, Default: "timeline",
		Doc: "how an answer through the tool loop shows its tool calls as Slack task cards (pending, in progress, complete or error, with a summary of the result): timeline (one after another), plan (grouped under a title counting the steps) or off"},
	{Name: EnvStopButton, Default: "on",
		Doc: "on: a streamed answer shows a Stop button while it is written; a click by the person it is for ends the model's request and the answer with what was shown and a note (within a second or so); off: no button"},
	{Name: EnvAssistantView, Default: "on",
		Doc: "on: besides Slack's agent view (the messages tab: app_home_opened, app_context_changed; the manifest's features.agent_view), the bot serves the older assistant view's events (assistant_thread_started, assistant_thread_context_changed) of apps installed with features.assistant_view; off: those events are acknowledged unrouted (new apps get only the agent view)"},
	{Name: EnvThreadMemory, Default: "on",
		Doc: "on: the bot keeps the turns of the threads it takes part in (questions, its answers as shown, replies in its channel threads; edits and deletions applied) in IDEMPOTENCY_TABLE, and reads a follow-up's thread from there instead of conversations.replies, which distributed apps get once a minute per workspace; with one workspace a thread the memory does not know is read from Slack once. off: threads are read from Slack (with INSTALLATIONS_TABLE set, not at all: follow-ups get no history)"},
	{Name: EnvThreadMemoryTTL, Kind: config.KindDuration, Default: "720h",
		Doc: "how long a thread's memory is kept after its last turn (DynamoDB's TTL on expires_at deletes it)"},
	{Name: EnvThreadMemChars, Kind: config.KindInt, Default: "32000", Min: 1000, Max: threadmemory.MaxChars,
		Doc: "most characters a thread's memory keeps (the oldest turns are dropped first); keep it above LLM_HISTORY_CHARS"},
	{Name: EnvThreadMemTurns, Kind: config.KindInt, Default: "50", Min: 2, Max: threadmemory.MaxTurns,
		Doc: "most turns (messages) a thread's memory keeps (the oldest are dropped first)"},
	{Name: EnvLLMAPIKey, LocalOnly: true, Doc: "the LLM API key itself (with LLM_BASE_URL, unless LLM_API_KEY_PARAM is set)"},
}

// The model clients LLM_PROVIDER chooses.
const (
	ProviderDemo    = "demo"
	ProviderOpenAI  = "openai"
	ProviderBedrock = "bedrock"
)

// Settings is the shipped bot's validated configuration.
type Settings struct {
	// LLMProvider is ProviderDemo, ProviderOpenAI or ProviderBedrock.
	LLMProvider    string
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
	LLMPrefill string
	// LLMMaxTokens caps an answer (Bedrock); LLMTemperature is nil when unset.
	LLMMaxTokens   int
	LLMTemperature *float64
	// BedrockModelID is the Bedrock model; BedrockRegion its region ("": the worker's).
	BedrockModelID      string
	BedrockRegion       string
	DemoDelay           time.Duration
	DemoTokensPerSecond int
	// Streaming says whether answers stream (STREAMING=on) or grow in a posted message.
	Streaming bool
	// AgentTools says whether a model that can call tools answers through the tool loop
	// (AGENT_TOOLS=on); AgentMaxRounds and AgentMaxTime bound the loop (agent.Options).
	AgentTools     bool
	AgentMaxRounds int
	AgentMaxTime   time.Duration
	// TaskCards is how tool calls show (AGENT_TASK_CARDS: "" for off); StopButton whether a
	// streamed answer shows a Stop button (STOP_BUTTON).
	TaskCards  relay.TaskDisplay
	StopButton bool
	// AssistantView serves the older assistant view's events (ASSISTANT_VIEW).
	AssistantView bool
	// LLMPrices is the price table (LLM_PRICES); LLMDailyTokenBudget the budget, 0 for none.
	LLMPrices           Prices
	LLMDailyTokenBudget int64
	// ThreadMemory says whether the bot keeps its own memory of threads (THREAD_MEMORY);
	// ThreadMemoryLimits are its TTL and caps.
	ThreadMemory       bool
	ThreadMemoryLimits threadmemory.Limits
}

// LoadSettings reads the shipped bot's variables through getenv and reports every problem at
// once; lambda says whether it runs in AWS Lambda (where the LLM key must come from SSM).
func LoadSettings(getenv func(string) string, lambda bool) (Settings, error) {
	l := config.NewLoader(Vars, getenv)
	c := Settings{
		LLMProvider:          strings.ToLower(strings.TrimSpace(l.String(EnvLLMProvider))),
		LLMBaseURL:           l.String(EnvLLMBaseURL),
		LLMModel:             l.String(EnvLLMModel),
		LLMAPIKeyParam:       l.String(EnvLLMAPIKeyParam),
		LLMFirstTokenTimeout: l.Duration(EnvLLMFirstToken),
		LLMIdleTimeout:       l.Duration(EnvLLMIdleTimeout),
		LLMHistoryChars:      l.Int(EnvLLMHistoryChars),
		LLMPrefill:           prefill(l),
		LLMMaxTokens:         l.Int(EnvLLMMaxTokens),
		LLMTemperature:       temperature(l),
		BedrockModelID:       strings.TrimSpace(l.String(EnvBedrockModelID)),
		BedrockRegion:        strings.TrimSpace(l.String(EnvBedrockRegion)),
		DemoDelay:            l.Duration(EnvDemoDelay),
		DemoTokensPerSecond:  l.Int(EnvDemoTokenRate),
		Streaming:            onOff(l, EnvStreaming),
		AgentTools:           onOff(l, EnvAgentTools),
		AgentMaxRounds:       l.Int(EnvAgentMaxRounds),
		AgentMaxTime:         l.Duration(EnvAgentMaxTime),
		StopButton:           onOff(l, EnvStopButton),
		AssistantView:        onOff(l, EnvAssistantView),
		LLMPrices:            prices(l),
		LLMDailyTokenBudget:  int64(l.Int(EnvLLMTokenBudget)),
		ThreadMemory:         onOff(l, EnvThreadMemory),
		ThreadMemoryLimits: threadmemory.Limits{TTL: l.Duration(EnvThreadMemoryTTL),
			MaxChars: l.Int(EnvThreadMemChars), MaxTurns: l.Int(EnvThreadMemTurns)},
	}
	if c.ThreadMemoryLimits.TTL < time.Hour {
		l.Fail(fmt.Errorf("%s=%s is under an hour", EnvThreadMemoryTTL, c.ThreadMemoryLimits.TTL))
	}
	switch v := strings.ToLower(strings.TrimSpace(l.String(EnvAgentTaskCards))); v {
	case "timeline", "plan":
		c.TaskCards = relay.TaskDisplay(v)
	case "off":
	default:
		l.Fail(errors.New(EnvAgentTaskCards + "=" + v + " is not timeline, plan or off"))
	}
	if c.AgentMaxTime > maxAgentTime {
		l.Fail(fmt.Errorf("%s=%s is over %s, the longest a Lambda invocation runs", EnvAgentMaxTime, c.AgentMaxTime, maxAgentTime))
	}
	switch c.LLMProvider {
	case "":
		c.LLMProvider = ProviderDemo
		if c.LLMBaseURL != "" {
			c.LLMProvider = ProviderOpenAI
		}
	case ProviderDemo:
	case ProviderOpenAI:
		if c.LLMBaseURL == "" {
			l.Fail(errors.New(EnvLLMBaseURL + " is required when " + EnvLLMProvider + "=openai"))
		}
	case ProviderBedrock:
		if c.BedrockModelID == "" {
			l.Fail(errors.New(EnvBedrockModelID + " is required when " + EnvLLMProvider + "=bedrock"))
		}
	default:
		l.Fail(errors.New(EnvLLMProvider + "=" + c.LLMProvider + " is not demo, openai or bedrock"))
	}
	openAI := c.LLMProvider == ProviderOpenAI && c.LLMBaseURL != ""
	if lambda {
		if openAI && c.LLMAPIKeyParam == "" {
			l.Fail(errors.New(EnvLLMAPIKeyParam + " is required when " + EnvLLMBaseURL + " is set"))
		}
	} else {
		c.LLMAPIKey = l.String(EnvLLMAPIKey)
		if openAI && c.LLMAPIKey == "" && c.LLMAPIKeyParam == "" {
			l.Fail(errors.New(EnvLLMAPIKey + " (or " + EnvLLMAPIKeyParam + ") is required when " + EnvLLMBaseURL + " is set"))
		}
	}
	return c, l.Err()
}

// New is the shipped bot as a worker.Bot: it reads its settings from the environment, builds
// its model client as LLM_PROVIDER says (an OpenAI-compatible API, Amazon Bedrock through the
// worker's AWS configuration, or the demo responder) and registers its routes. With a model
// that can call tools (openai, bedrock) and AGENT_TOOLS on, answers go through the tool loop
// with DefaultTools, bounded by AGENT_MAX_ROUNDS and AGENT_MAX_TIME.
// worker/cmd/worker runs it: worker.Main(assistant.New).
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
		HistoryChars: historyChars, NoStreaming: !st.Streaming, Metrics: s.Metrics,
		AgentOptions: agent.Options{MaxRounds: st.AgentMaxRounds, MaxTime: st.AgentMaxTime},
		TaskCards:    st.TaskCards, StopButton: st.StopButton,
		NoAssistantView: !st.AssistantView,
		Prices:          st.LLMPrices, DailyTokenBudget: st.LLMDailyTokenBudget}
	switch st.LLMProvider {
	case ProviderBedrock:
		region := st.BedrockRegion
		if region == "" {
			region = s.AWS.Region
		}
		b := &llm.Bedrock{
			Client:  llm.NewBedrockClient(s.AWS, region, s.Endpoint("BEDROCK_RUNTIME")),
			ModelID: st.BedrockModelID, MaxTokens: st.LLMMaxTokens, Temperature: st.LLMTemperature,
			System:            llm.SlackSystemPrompt,
			FirstTokenTimeout: st.LLMFirstTokenTimeout, IdleTimeout: st.LLMIdleTimeout, Metrics: s.Metrics,
			Prefill: st.LLMPrefill != "",
		}
		cfg.LLM, cfg.Model = b, st.BedrockModelID
		if st.AgentTools {
			cfg.Agent = b.Agent()
		}
	case ProviderOpenAI:
		key := s.Secret(st.LLMAPIKeyParam, st.LLMAPIKey)
		c := &llm.Chat{
			BaseURL: st.LLMBaseURL, Model: st.LLMModel,
			APIKey:            func(ctx context.Context) (string, error) { return key(ctx) },
			System:            llm.SlackSystemPrompt,
			FirstTokenTimeout: st.LLMFirstTokenTimeout, IdleTimeout: st.LLMIdleTimeout, Metrics: s.Metrics,
			Prefill: st.LLMPrefill != "", PrefillStyle: llm.PrefillStyle(st.LLMPrefill),
		}
		cfg.LLM, cfg.Model = c, st.LLMModel
		if st.AgentTools {
			cfg.Agent = c.Agent()
		}
	}
	if cfg.Agent != nil {
		cfg.Tools = DefaultTools()
	}
	// With many workspaces no thread is read from Slack (a distributed app's
	// conversations.replies is one call a minute per workspace).
	cfg.NoSlackThreadReads = s.ManyWorkspaces
	if st.ThreadMemory && s.Table != "" { // a Setup without the worker's table (a test's) keeps none
		db := dynamodb.NewFromConfig(s.AWS, func(o *dynamodb.Options) { o.BaseEndpoint = s.Endpoint("DYNAMODB") })
		cfg.Memory = threadmemory.NewDynamo(db, s.Table, st.ThreadMemoryLimits, nil)
	}
	Register(r, cfg)
	return nil
}

// temperature reads LLM_TEMPERATURE: unset, or a number from 0 to 1.
func temperature(l *config.Loader) *float64 {
	v := strings.TrimSpace(l.String(EnvLLMTemperature))
	if v == "" {
		return nil
	}
	t, err := strconv.ParseFloat(v, 64)
	if err != nil || t < 0 || t > 1 {
		l.Fail(fmt.Errorf("%s=%s is not a number from 0 to 1", EnvLLMTemperature, v))
		return nil
	}
	return &t
}

// prices reads LLM_PRICES (see ParsePrices).
func prices(l *config.Loader) Prices {
	p, err := ParsePrices(l.String(EnvLLMPrices))
	if err != nil {
		l.Fail(fmt.Errorf("%s: %w", EnvLLMPrices, err))
	}
	return p
}

// onOff reads a switch (STREAMING, AGENT_TOOLS): on or off.
func onOff(l *config.Loader, name string) bool {
	switch v := strings.ToLower(strings.TrimSpace(l.String(name))); v {
	case "on", "true", "1", "yes":
		return true
	case "off", "false", "0", "no":
		return false
	default:
		l.Fail(errors.New(name + "=" + v + " is not on or off"))
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

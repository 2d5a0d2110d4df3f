package devworld

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/loopback"

	"github.com/slackrelay/slackrelay/infra/local/ddbfault"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// getenv reads a process environment as exec.Cmd does: the last entry of a name wins.
func getenv(env []string) func(string) string {
	m := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func proxy(t *testing.T) *loopback.Proxy {
	t.Helper()
	p, err := loopback.StartProxy("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func ddbProxy(t *testing.T) *ddbfault.Proxy {
	t.Helper()
	p, err := ddbfault.Start(ddbfault.Options{Upstream: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// The environments devworld gives the binaries load through the binaries' own loaders,
// without errors or deprecated names, and say what Options asked for.
func TestBinaryEnvironmentsLoad(t *testing.T) {
	t.Parallel()
	s := &World{
		opts: Options{SlackAPIURL: "http://127.0.0.1:2/api/", LLMBaseURL: "http://127.0.0.1:3/v1", LLMModel: "m", LLMAPIKey: "k",
			HandlerTimeout: 4 * time.Second, MaxReceiveCount: 3, DemoTokensPerSecond: 500, NoStreaming: true,
			WorkerEnv: []string{workerconfig.EnvPollLoops + "=7", workerconfig.EnvBackoffBase + "=2s"}}.withDefaults(),
		Local:    &localaws.Servers{SQSEndpoint: "http://127.0.0.1:4", QueueURL: "http://127.0.0.1:4/q", DLQURL: "http://127.0.0.1:4/d", TableName: "t"},
		SQSProxy: proxy(t), DynamoDBProxy: ddbProxy(t),
	}

	renv := getenv(s.ReceiverEnv("127.0.0.1:0"))
	r, err := receiverconfig.Load(renv)
	if err != nil {
		t.Fatalf("receiver: %v", err)
	}
	if r.Lambda || r.ListenAddr != "127.0.0.1:0" || r.QueueURL != s.Local.QueueURL || r.SigningSecret != LocalSigningSecret || len(r.Deprecations) != 0 {
		t.Errorf("receiver config = %+v, want local mode on 127.0.0.1:0, queue %s, the local secret, no deprecations", r, s.Local.QueueURL)
	}
	if got := renv(awsclient.EndpointVar("SQS")); got != s.SQSProxy.URL() {
		t.Errorf("receiver SQS endpoint = %q, want the proxy %q", got, s.SQSProxy.URL())
	}

	wenv := getenv(s.WorkerEnv())
	w, err := workerconfig.Load(wenv)
	if err != nil {
		t.Fatalf("worker: %v", err)
	}
	want := workerconfig.Config{QueueURL: s.Local.QueueURL, DLQURL: s.Local.DLQURL, Table: "t", BotToken: LocalBotToken,
		SlackAPIURL: "http://127.0.0.1:2/api/", HandlerTimeout: 4 * time.Second, MaxReceiveCount: 3, BackoffBase: 2 * time.Second,
		BackoffMax: 8 * time.Second, PollWait: time.Second, PollLoops: 7}
	if w.QueueURL != want.QueueURL || w.DLQURL != want.DLQURL || w.Table != want.Table || w.BotToken != want.BotToken ||
		w.SlackAPIURL != want.SlackAPIURL || w.HandlerTimeout != want.HandlerTimeout || w.MaxReceiveCount != want.MaxReceiveCount ||
		w.BackoffBase != want.BackoffBase || w.BackoffMax != want.BackoffMax || w.PollWait != want.PollWait || len(w.Deprecations) != 0 ||
		w.PollLoops != want.PollLoops {
		t.Errorf("worker config = %+v\nwant (in these fields) %+v", w, want)
	}
	// The shipped bot's own settings, through its own loader.
	b, err := assistant.LoadSettings(wenv, false)
	if err != nil {
		t.Fatalf("the shipped bot: %v", err)
	}
	if b.LLMBaseURL != "http://127.0.0.1:3/v1" || b.LLMModel != "m" || b.LLMAPIKey != "k" || b.DemoTokensPerSecond != 500 || b.Streaming {
		t.Errorf("the shipped bot's settings = %+v, want LLM http://127.0.0.1:3/v1, m, k, DemoTokensPerSecond 500, Streaming false", b)
	}
	if got := wenv(awsclient.EndpointVar("DYNAMODB")); got != s.DynamoDBProxy.URL() {
		t.Errorf("worker DynamoDB endpoint = %q, want the proxy %q", got, s.DynamoDBProxy.URL())
	}
}

// Without LLM options the worker keeps its demo responder and its own model default.
func TestWorkerEnvLeavesUnsetLLMToTheWorker(t *testing.T) {
	t.Parallel()
	s := &World{opts: Options{SlackAPIURL: "http://127.0.0.1:2/api/"}.withDefaults(), Local: &localaws.Servers{}, DynamoDBProxy: ddbProxy(t)}
	for _, e := range s.WorkerEnv() {
		for _, name := range []string{assistant.EnvLLMBaseURL, assistant.EnvLLMModel, assistant.EnvLLMAPIKey} {
			if strings.HasPrefix(e, name+"=") {
				t.Errorf("WorkerEnv sets %s, want it unset", e)
			}
		}
	}
}

// Without the settings the worker keeps its own defaults: streaming on, its demo rate.
func TestWorkerEnvLeavesStreamingToTheWorker(t *testing.T) {
	t.Parallel()
	s := &World{opts: Options{SlackAPIURL: "http://127.0.0.1:2/api/"}.withDefaults(), Local: &localaws.Servers{}, DynamoDBProxy: ddbProxy(t)}
	for _, e := range s.WorkerEnv() {
		for _, name := range []string{assistant.EnvStreaming, assistant.EnvDemoTokenRate} {
			if strings.HasPrefix(e, name+"=") {
				t.Errorf("WorkerEnv sets %s, want it unset", e)
			}
		}
	}
}

// Options.LocalLLM starts the local LLM server and gives the worker its URL, the model and a
// key the server accepts (it checks it), whatever LLM settings Options also carry.
func TestWorkerEnvForTheLocalLLM(t *testing.T) {
	t.Parallel()
	s := &World{opts: Options{SlackAPIURL: "http://127.0.0.1:2/api/", LLMBaseURL: "http://127.0.0.1:3/v1", LLMAPIKey: "other",
		LocalLLM: &fakellm.Options{Pace: fakellm.Pace{AnswerTokens: 5}}}.withDefaults(),
		Local: &localaws.Servers{QueueURL: "http://127.0.0.1:4/q", DLQURL: "http://127.0.0.1:4/d", TableName: "t"}, DynamoDBProxy: ddbProxy(t)}
	if err := s.startLLM(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.LLM.Close() })
	w, err := assistant.LoadSettings(getenv(s.WorkerEnv()), false)
	if err != nil {
		t.Fatalf("the shipped bot: %v", err)
	}
	if w.LLMBaseURL != s.LLM.APIURL() || w.LLMModel != LocalLLMModel || w.LLMAPIKey != LocalLLMKey {
		t.Fatalf("worker LLM = %q %q %q, want %q %q %q", w.LLMBaseURL, w.LLMModel, w.LLMAPIKey, s.LLM.APIURL(), LocalLLMModel, LocalLLMKey)
	}
	for key, want := range map[string]int{w.LLMAPIKey: http.StatusOK, "other": http.StatusUnauthorized} {
		req, _ := http.NewRequest(http.MethodPost, w.LLMBaseURL+"/chat/completions",
			strings.NewReader(`{"model":"`+w.LLMModel+`","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("a request with key %q: status %d, want %d", key, resp.StatusCode, want)
		}
	}
}

// Options.LocalBedrock starts the local Bedrock stand-in and gives the worker the Bedrock
// provider, the model, the region and the stand-in's endpoint, whatever OpenAI-compatible
// settings Options also carry; the worker's own AWS configuration, built from that
// environment as the worker builds it, reaches the stand-in with a request signed for the
// region, and the stand-in refuses other models as the worker's role does.
func TestWorkerEnvForTheLocalBedrock(t *testing.T) {
	t.Parallel()
	s := &World{opts: Options{SlackAPIURL: "http://127.0.0.1:2/api/", LLMBaseURL: "http://127.0.0.1:3/v1", LLMModel: "m", LLMAPIKey: "other",
		LocalBedrock: &fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 5}}}.withDefaults(),
		Local: &localaws.Servers{QueueURL: "http://127.0.0.1:4/q", DLQURL: "http://127.0.0.1:4/d", TableName: "t"}, DynamoDBProxy: ddbProxy(t)}
	if err := s.startLLM(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Bedrock.Close() })
	if s.LLM != nil {
		t.Fatal("the local OpenAI-compatible server was started too")
	}
	wenv := getenv(s.WorkerEnv())
	w, err := assistant.LoadSettings(wenv, false)
	if err != nil {
		t.Fatalf("the shipped bot: %v", err)
	}
	if w.LLMProvider != assistant.ProviderBedrock || w.BedrockModelID != LocalBedrockModel || w.BedrockRegion != LocalBedrockRegion || w.LLMBaseURL != "" {
		t.Fatalf("worker LLM = provider %q, model %q, region %q, base URL %q; want bedrock, %q, %q, none",
			w.LLMProvider, w.BedrockModelID, w.BedrockRegion, w.LLMBaseURL, LocalBedrockModel, LocalBedrockRegion)
	}
	if _, err := workerconfig.Load(wenv); err != nil {
		t.Fatalf("worker: %v", err)
	}
	endpoint := awsclient.Endpoint(wenv, "BEDROCK_RUNTIME")
	if endpoint == nil || *endpoint != s.Bedrock.URL() {
		t.Fatalf("worker Bedrock endpoint = %v, want the stand-in %q", endpoint, s.Bedrock.URL())
	}
	cfg, err := awsclient.Load(context.Background(), wenv)
	if err != nil {
		t.Fatal(err)
	}
	for model, wantErr := range map[string]bool{w.BedrockModelID: false, "anthropic.claude-other-v1:0": true} {
		b := &llm.Bedrock{Client: llm.NewBedrockClient(cfg, w.BedrockRegion, endpoint), ModelID: model, MaxTokens: w.LLMMaxTokens}
		text, err := b.Respond(context.Background(), "hi")
		if wantErr != (err != nil) || !wantErr && text == "" {
			t.Errorf("model %s: %q, %v; want an answer: %v", model, text, err, !wantErr)
		}
		var api interface{ ErrorCode() string }
		if wantErr && (!errors.As(err, &api) || api.ErrorCode() != fakebedrock.AccessDeniedException) {
			t.Errorf("model %s: %v, want %s", model, err, fakebedrock.AccessDeniedException)
		}
	}
	reqs := s.Bedrock.Requests()
	if len(reqs) != 2 || reqs[0].Region != LocalBedrockRegion {
		t.Fatalf("the stand-in's requests: %+v; want 2, signed for %s", reqs, LocalBedrockRegion)
	}
}

// The worker talks to one model: both local ones together are refused before anything starts.
func TestStartRefusesTwoLocalModels(t *testing.T) {
	t.Parallel()
	_, err := Start(context.Background(), Options{LocalLLM: &fakellm.Options{}, LocalBedrock: &fakebedrock.Options{}})
	if err == nil {
		t.Fatal("Start with LocalLLM and LocalBedrock: no error")
	}
}

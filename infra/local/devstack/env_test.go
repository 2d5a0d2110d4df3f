package devstack

import (
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/localstack"
	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/awsclient"
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

func proxy(t *testing.T) *localstack.FaultProxy {
	t.Helper()
	p, err := localstack.NewFaultProxy("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// The environments devstack gives the binaries load through the binaries' own loaders,
// without errors or deprecated names, and say what Options asked for.
func TestBinaryEnvironmentsLoad(t *testing.T) {
	t.Parallel()
	s := &Stack{
		opts: Options{SlackAPIURL: "http://127.0.0.1:2/api/", LLMBaseURL: "http://127.0.0.1:3/v1", LLMModel: "m", LLMAPIKey: "k",
			HandlerTimeout: 4 * time.Second, MaxReceiveCount: 3}.withDefaults(),
		Local:    &localstack.Stack{SQSEndpoint: "http://127.0.0.1:4", QueueURL: "http://127.0.0.1:4/q", DLQURL: "http://127.0.0.1:4/d", TableName: "t"},
		SQSProxy: proxy(t), DynamoDBProxy: proxy(t),
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
		SlackAPIURL: "http://127.0.0.1:2/api/", LLMBaseURL: "http://127.0.0.1:3/v1", LLMModel: "m", LLMAPIKey: "k",
		HandlerTimeout: 4 * time.Second, MaxReceiveCount: 3, BackoffBase: time.Second, BackoffMax: 8 * time.Second, PollWait: time.Second}
	if w.QueueURL != want.QueueURL || w.DLQURL != want.DLQURL || w.Table != want.Table || w.BotToken != want.BotToken ||
		w.SlackAPIURL != want.SlackAPIURL || w.LLMBaseURL != want.LLMBaseURL || w.LLMModel != want.LLMModel || w.LLMAPIKey != want.LLMAPIKey ||
		w.HandlerTimeout != want.HandlerTimeout || w.MaxReceiveCount != want.MaxReceiveCount || w.BackoffBase != want.BackoffBase ||
		w.BackoffMax != want.BackoffMax || w.PollWait != want.PollWait || len(w.Deprecations) != 0 {
		t.Errorf("worker config = %+v\nwant (in these fields) %+v", w, want)
	}
	if got := wenv(awsclient.EndpointVar("DYNAMODB")); got != s.DynamoDBProxy.URL() {
		t.Errorf("worker DynamoDB endpoint = %q, want the proxy %q", got, s.DynamoDBProxy.URL())
	}
}

// Without LLM options the worker keeps its demo responder and its own model default.
func TestWorkerEnvLeavesUnsetLLMToTheWorker(t *testing.T) {
	t.Parallel()
	s := &Stack{opts: Options{SlackAPIURL: "http://127.0.0.1:2/api/"}.withDefaults(), Local: &localstack.Stack{}, DynamoDBProxy: proxy(t)}
	for _, e := range s.WorkerEnv() {
		for _, name := range []string{workerconfig.EnvLLMBaseURL, workerconfig.EnvLLMModel, workerconfig.EnvLLMAPIKey} {
			if strings.HasPrefix(e, name+"=") {
				t.Errorf("WorkerEnv sets %s, want it unset", e)
			}
		}
	}
}

package assistant

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// bedrockModel is an inference profile id, as most Bedrock set-ups name their model.
const bedrockModel = "eu.anthropic.claude-test-v1:0"

// bedrockBot is the shipped bot built by New with LLM_PROVIDER=bedrock against the Bedrock
// stand-in (through AWS_ENDPOINT_URL_BEDROCK_RUNTIME, as a local run points it), on the real
// engine. env adds or overrides variables; metrics go to the returned buffer.
func bedrockBot(t testing.TB, opts fakebedrock.Options, env ...string) (*relaytest.Harness, *fakebedrock.Server, *bytes.Buffer) {
	t.Helper()
	srv := fakebedrock.New(opts)
	url, err := srv.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	vars := map[string]string{
		EnvLLMProvider: "bedrock", EnvBedrockModelID: bedrockModel, EnvBedrockRegion: "eu-west-1",
		awsclient.EndpointVar("BEDROCK_RUNTIME"): url,
	}
	for i := 0; i+1 < len(env); i += 2 {
		vars[env[i]] = env[i+1]
	}
	var out bytes.Buffer
	setup := &worker.Setup{Getenv: func(k string) string { return vars[k] }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: metrics.New(&out, "slackrelay/worker"), AWS: awsclient.Local()}
	h := relaytest.New(t, func(r *relay.Router) {
		if err := New(r, setup); err != nil {
			t.Fatalf("New: %v", err)
		}
	})
	return h, srv, &out
}

// The one answer of a DM the stand-in answered: its stream, checked to hold the whole answer
// once, stopped, with the buttons.
func oneStreamedAnswer(t *testing.T, h *relaytest.Harness, want string) fakeslack.Stream {
	t.Helper()
	streams := h.Slack.Streams()
	var text strings.Builder
	for _, st := range streams {
		text.WriteString(st.Text)
	}
	if len(streams) == 0 || text.String() != want {
		t.Fatalf("%d streams with %q, want the answer %q once", len(streams), text.String(), want)
	}
	last := streams[len(streams)-1]
	if last.State != fakeslack.StreamStopped || !bytes.Contains(last.Blocks, []byte(ActionRegenerate)) {
		t.Errorf("last stream %s with blocks %s, want it stopped with the Regenerate button", last.State, last.Blocks)
	}
	return last
}

// A DM answered by a model on Bedrock: New builds the client from the worker's AWS
// configuration, the region and endpoint it is given, and the answer streams into the thread
// through the same stream writer as any model's, with the usage logged and in the metrics.
func TestBedrockAnswerStreamsIntoTheThread(t *testing.T) {
	t.Parallel()
	h, srv, metricsOut := bedrockBot(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 60, TokensPerSecond: 2000}, CacheReadTokens: 42},
		EnvLLMTemperature, "0.3")
	got := h.Deliver(t, "testdata/message_im.json")
	if got.Err != nil || got.Runs != 1 || len(got.DeadLetters) != 0 {
		t.Fatalf("err=%v runs=%d dead=%v", got.Err, got.Runs, got.DeadLetters)
	}
	conv := []fakebedrock.Message{{Role: "user", Texts: []string{"hello bot"}}}
	oneStreamedAnswer(t, h, srv.AnswerText(conv, 0))
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d Bedrock calls, want 1", len(reqs))
	}
	r := reqs[0]
	if r.ModelID != bedrockModel || r.Region != "eu-west-1" || len(r.System) != 1 || !strings.HasPrefix(r.System[0], llm.SlackSystemPrompt) {
		t.Errorf("call for %q in %q with system %q; want %s in eu-west-1 with the Slack system prompt", r.ModelID, r.Region, r.System, bedrockModel)
	}
	if r.MaxTokens == nil || *r.MaxTokens != 4096 || r.Temperature == nil || *r.Temperature < 0.29 || *r.Temperature > 0.31 {
		t.Errorf("maxTokens %v temperature %v, want LLM_MAX_TOKENS' default 4096 and LLM_TEMPERATURE 0.3", r.MaxTokens, r.Temperature)
	}
	logs := h.Logs()
	for _, want := range []string{`"msg":"answered"`, `"completion_tokens":60`, `"cache_read_tokens":42`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if !strings.Contains(metricsOut.String(), `"Kind":"cache_read","LLMTokens":42`) || !strings.Contains(metricsOut.String(), `"Kind":"completion","LLMTokens":60`) {
		t.Errorf("metrics lack the answer's tokens:\n%s", metricsOut)
	}
}

// Throttled twice, then answered: each throttle fails the attempt as retryable (with backoff),
// the third delivery answers, once.
func TestBedrockThrottledThenAnswered(t *testing.T) {
	t.Parallel()
	h, srv, _ := bedrockBot(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 12}})
	srv.ThrottleNext(2, 0)
	got := h.Deliver(t, "testdata/message_im.json")
	if got.Err != nil || got.Runs != 3 || len(got.DeadLetters) != 0 {
		t.Fatalf("err=%v runs=%d dead=%v, want answered on the third run", got.Err, got.Runs, got.DeadLetters)
	}
	oneStreamedAnswer(t, h, srv.AnswerText([]fakebedrock.Message{{Role: "user", Texts: []string{"hello bot"}}}, 0))
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d Bedrock calls, want 3", n)
	}
	if !strings.Contains(h.Logs(), "ThrottlingException") {
		t.Errorf("the throttles are not in the logs:\n%s", h.Logs())
	}
}

// A modelStreamErrorException part way through the answer fails the attempt; the next one
// continues from what was shown (regenerated and skipped, or prefilled), and the thread shows
// one answer, each word once.
func TestBedrockStreamErrorIsResumedIntoOneAnswer(t *testing.T) {
	t.Parallel()
	for _, prefill := range []string{"off", "plain"} {
		t.Run("LLM_PREFILL="+prefill, func(t *testing.T) {
			t.Parallel()
			// 2,000 tokens a second: the stream writer's first send goes out at once, and the
			// rest of the 40 words before the exception are buffered and flushed by the failure.
			h, srv, _ := bedrockBot(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 80, TokensPerSecond: 2000}}, EnvLLMPrefill, prefill)
			srv.StreamExceptionNext(1, 40, "")
			got := h.Deliver(t, "testdata/message_im.json")
			if got.Err != nil || got.Runs != 2 || len(got.DeadLetters) != 0 {
				t.Fatalf("err=%v runs=%d dead=%v, want answered on the second run", got.Err, got.Runs, got.DeadLetters)
			}
			conv := []fakebedrock.Message{{Role: "user", Texts: []string{"hello bot"}}}
			oneStreamedAnswer(t, h, srv.AnswerText(conv, 0))
			reqs := srv.Requests()
			if len(reqs) != 2 || reqs[0].Exception != fakebedrock.ModelStreamErrorException {
				t.Fatalf("calls %+v, want the failed one then the resumed one", reqs)
			}
			if resumed := reqs[1]; prefill == "off" && resumed.Prefill != nil || prefill != "off" && (resumed.Prefill == nil || resumed.Prefill.Chars == 0 || resumed.Prefill.NotAPrefix) {
				t.Errorf("resumed call's prefill %+v with LLM_PREFILL=%s", resumed.Prefill, prefill)
			}
			if !strings.Contains(h.Logs(), "ModelStreamErrorException") {
				t.Errorf("the stream error is not in the logs:\n%s", h.Logs())
			}
		})
	}
}

// A role without access to the model: a permanent failure, dead-lettered at once with a
// reason that names the model, and nothing left streaming.
func TestBedrockAccessDeniedIsDeadLetteredNamingTheModel(t *testing.T) {
	t.Parallel()
	h, _, _ := bedrockBot(t, fakebedrock.Options{AllowedModels: []string{"anthropic.claude-something-else"}})
	got := h.Deliver(t, "testdata/message_im.json")
	if got.Runs != 1 || len(got.DeadLetters) != 1 {
		t.Fatalf("runs=%d dead=%+v, want one run, then a dead letter", got.Runs, got.DeadLetters)
	}
	dl := got.DeadLetters[0]
	if dl.Class != "permanent" || !strings.Contains(dl.Reason, bedrockModel) || !strings.Contains(dl.Reason, "AccessDeniedException") {
		t.Errorf("dead letter %+v, want permanent naming %s and AccessDeniedException", dl, bedrockModel)
	}
	for _, st := range h.Slack.Streams() {
		if st.State == fakeslack.Streaming {
			t.Errorf("a stream was left open: %+v", st)
		}
	}
}

// The model says nothing within LLM_FIRST_TOKEN_TIMEOUT: the attempt fails and is retried,
// and the retry answers.
func TestBedrockFirstTokenTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	h, srv, metricsOut := bedrockBot(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 10}}, EnvLLMFirstToken, "150ms")
	srv.StallNext(1, 0, 5*time.Second)
	start := time.Now()
	got := h.Deliver(t, "testdata/message_im.json")
	if got.Err != nil || got.Runs != 2 || len(got.DeadLetters) != 0 {
		t.Fatalf("err=%v runs=%d dead=%v, want answered on the second run", got.Err, got.Runs, got.DeadLetters)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v: the first attempt waited past its first-token timeout", took)
	}
	oneStreamedAnswer(t, h, srv.AnswerText([]fakebedrock.Message{{Role: "user", Texts: []string{"hello bot"}}}, 0))
	if !strings.Contains(metricsOut.String(), `"Reason":"first_token_timeout"`) {
		t.Errorf("no LLMErrors first_token_timeout in the metrics:\n%s", metricsOut)
	}
}

// /ask is answered through Respond, on the same ConverseStream call.
func TestBedrockAnswersAsk(t *testing.T) {
	t.Parallel()
	h, srv, _ := bedrockBot(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 8}})
	got := h.Deliver(t, "testdata/ask.form")
	if got.Err != nil || len(got.Posts) != 1 {
		t.Fatalf("err=%v posts=%d", got.Err, len(got.Posts))
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || got.Posts[0].Text != srv.AnswerText(reqs[0].Messages, 0) {
		t.Errorf("posted %q after %d calls, want the model's answer", got.Posts[0].Text, len(reqs))
	}
}

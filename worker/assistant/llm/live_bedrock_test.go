package llm

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// The live checks call real Amazon Bedrock in the account and region of the caller's AWS
// configuration (the SDK's default chain: AWS_PROFILE, AWS_REGION, …; the endpoint
// AWS_ENDPOINT_URL_BEDROCK_RUNTIME when set, as the worker), with the model or inference
// profile named by SLACKRELAY_LIVE_BEDROCK_MODEL; without that variable, or without
// credentials and a region, they skip. See docs/deploy.md ("Check Bedrock from your machine").

// liveModelVar names the model the live checks call.
const liveModelVar = "SLACKRELAY_LIVE_BEDROCK_MODEL"

// liveBedrock is a client of real Bedrock for the live checks, or a skip saying what is
// missing.
func liveBedrock(t *testing.T) *Bedrock {
	t.Helper()
	model := os.Getenv(liveModelVar)
	if model == "" {
		t.Skipf("live Bedrock check: set %s to a model id, inference profile id or ARN (with AWS credentials and AWS_REGION) to run it", liveModelVar)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Skipf("live Bedrock check: %s is set but the AWS configuration does not load: %v", liveModelVar, err)
	}
	if cfg.Region == "" {
		t.Skipf("live Bedrock check: %s is set but no region is: set AWS_REGION (or a profile's region)", liveModelVar)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil || !creds.HasKeys() {
		t.Skipf("live Bedrock check: %s is set but no AWS credentials resolve: %v", liveModelVar, err)
	}
	endpoint := awsclient.Endpoint(os.Getenv, "BEDROCK_RUNTIME") // as the worker: a VPC endpoint, a proxy
	t.Logf("live Bedrock check: model %s in %s (endpoint %s)", model, cfg.Region, aws.ToString(endpoint))
	return &Bedrock{Client: NewBedrockClient(cfg, "", endpoint), ModelID: model, MaxTokens: 300, Temperature: aws.Float64(0)}
}

// One streamed answer: its text arrives in pieces that make the whole, the model says why it
// stopped, and the usage is reported.
func TestLiveBedrockStreamsAnAnswer(t *testing.T) {
	b := liveBedrock(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var pieces []string
	res, err := b.Stream(ctx, Request{Messages: []Message{{Role: RoleUser, Content: "In one short sentence: what is a lighthouse for?"}}},
		func(text string) error { pieces = append(pieces, text); return nil })
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if len(pieces) == 0 || strings.Join(pieces, "") != res.Text || strings.TrimSpace(res.Text) == "" {
		t.Errorf("text %q arrived in %d pieces %q; want it streamed, the pieces making it whole", res.Text, len(pieces), pieces)
	}
	if res.FinishReason == "" || res.Usage.PromptTokens == 0 || res.Usage.CompletionTokens == 0 {
		t.Errorf("finish reason %q, usage %+v; want both reported", res.FinishReason, res.Usage)
	}
	t.Logf("answer %q: %d pieces, first text after %s, %s in all, finish %s, usage %+v", res.Text, len(pieces),
		res.FirstToken.Round(time.Millisecond), res.Duration.Round(time.Millisecond), res.FinishReason, res.Usage)
}

type liveCodeWordIn struct {
	Topic string `json:"topic" jsonschema:"description=what the code word is for"`
}

// One tool round through Bedrock.Agent and agent.Run on the real engine (relaytest): the model
// calls the tool once, is given its result, and the answer in the thread quotes it; each turn
// reports its usage.
func TestLiveBedrockAgentCallsAToolOnce(t *testing.T) {
	b := liveBedrock(t)
	const word = "PELICAN-42"
	var calls atomic.Int32
	var results []agent.Result
	codeWord := agent.NewTool("code_word", "Returns today's code word for a topic. The code word cannot be known without calling this tool.",
		func(_ context.Context, in liveCodeWordIn, key string) (string, error) {
			calls.Add(1)
			return "The code word for " + in.Topic + " is " + word + ".", nil
		}, agent.SideEffects())
	h := relaytest.New(t, func(r *relay.Router) {
		relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
			w, err := req.Stream(ctx, relay.StreamOptions{})
			if err != nil || w.Done() {
				return err
			}
			msgs := []agent.Message{{Role: RoleUser, Text: "Call the code_word tool once for the topic \"lunch\", then tell me the code word it gives, exactly as written."}}
			res, err := agent.Run(ctx, req.Session, w, b.Agent(), msgs, []agent.Tool{codeWord}, agent.Options{MaxRounds: 3})
			if err != nil {
				return err
			}
			results = append(results, res)
			_, err = w.Finish(ctx)
			return err
		})
	})
	const channel, ts = "C0LIVE", "1700000009.000100"
	got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvLIVE1", channel, ts, "code word?"))
	if got.Err != nil || len(got.DeadLetters) != 0 {
		t.Fatalf("the event ended with %v, dead letters %+v\n%s", got.Err, got.DeadLetters, h.Logs())
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the tool was called %d times, want once", n)
	}
	var answer strings.Builder
	for _, m := range h.Slack.RenderedThread(channel, ts) {
		if m.Bot {
			answer.WriteString(m.Text)
		}
	}
	if !strings.Contains(answer.String(), word) {
		t.Errorf("the thread shows %q; want the answer to quote the tool's code word %s", answer.String(), word)
	}
	if len(results) != 1 || len(results[0].Turns) < 2 || results[0].ToolCalls != 1 {
		t.Fatalf("results %+v; want one run of at least two turns and one tool call", results)
	}
	for i, turn := range results[0].Turns {
		if turn.InputTokens == 0 || turn.OutputTokens == 0 {
			t.Errorf("turn %d reported usage in %d, out %d; want both", i, turn.InputTokens, turn.OutputTokens)
		}
	}
	t.Logf("answer %q in %d turns, %d deliveries", answer.String(), len(results[0].Turns), got.Deliveries)
}

// The live checks themselves, run against the Bedrock stand-in (through the endpoint variable,
// with placeholder credentials), so that they keep working while nobody runs them live.
func TestLiveChecksRunAgainstTheStandIn(t *testing.T) {
	srv := fakebedrock.New(fakebedrock.Options{AllowedModels: []string{"anthropic.claude-standin"}})
	if _, err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for k, v := range map[string]string{liveModelVar: "anthropic.claude-standin", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": srv.URL(),
		"AWS_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull} {
		t.Setenv(k, v)
	}
	t.Run("stream", TestLiveBedrockStreamsAnAnswer)
	srv.SetTurns(
		fakebedrock.Turn{Text: "Let me look.", Tools: []fakebedrock.ToolCall{{ID: "tooluse_1", Name: "code_word", Input: json.RawMessage(`{"topic":"lunch"}`)}}},
		fakebedrock.Turn{Text: "It says: " + fakebedrock.ToolResultPlaceholder},
	)
	t.Run("agent", TestLiveBedrockAgentCallsAToolOnce)
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("the stand-in was asked %d times, want 3 (an answer, then two turns)", n)
	}
}

package lambdamode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/lambdaworld"
	"github.com/slackrelay/slackrelay/receiver/intake"
	"github.com/slackrelay/slackrelay/shared/fakessm"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/poller"
)

const botToken = "xoxb-lambda-test-token"

// pipeline is the receiver and the worker of the template against one world and a local
// Slack server.
type pipeline struct {
	*world
	slack      *fakeslack.Server
	receiver   *lambdaworld.Function
	worker     *lambdaworld.Function
	workerOpts lambdaworld.FunctionOptions
}

// startPipeline starts both functions; prepare runs before the worker starts.
func startPipeline(t *testing.T, prepare func(*world)) *pipeline {
	t.Helper()
	w := newWorld(t)
	ls := fakeslack.New(fakeslack.Options{Token: botToken})
	if _, err := ls.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	p := &pipeline{world: w, slack: ls}
	p.receiver, _ = w.startReceiver(lambdaworld.Spec{}, nil)
	// The receiver has been up a while: an unsigned request (401, nothing enqueued) starts it
	// while SSM answers, before prepare.
	if resp, _ := call(t, p.receiver, lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", "{}", "", false)); resp.StatusCode != 401 {
		t.Fatalf("the receiver's first request: %d, want 401", resp.StatusCode)
	}
	// The template's worker talks to Slack's public hosts; here the local Slack server.
	spec := lambdaworld.Spec{LogicalID: lambdaworld.WorkerFunction, Set: map[string]string{
		"SLACK_API_URL":         ls.APIURL(),
		"RESPONSE_URL_PREFIXES": strings.TrimSuffix(ls.ResponseURL("x"), "x"),
	}}
	opts, err := lambdaworld.Options(tmpl, lambdaworld.Spec{LogicalID: lambdaworld.WorkerFunction, Local: w.local})
	if err != nil {
		t.Fatal(err)
	}
	w.ssm.Put(lambdaworld.EnvValue(opts.Env, "BOT_TOKEN_PARAM"), botToken)
	if prepare != nil {
		prepare(w)
	}
	p.worker, p.workerOpts = w.start(spec)
	return p
}

// enqueueMentions sends signed app_mentions through the receiver and returns their ts, and
// what each thread should show: the demo responder's answer (the template's DEMO_DELAY) to
// its question, Regenerate and feedback under it.
func (p *pipeline) enqueueMentions(t *testing.T, n int, prefix string) ([]string, map[string]answercheck.Expect) {
	t.Helper()
	var tss, questions []string
	for i := 0; i < n; i++ {
		ts, question := fmt.Sprintf("%d.%06d", time.Now().Unix(), 100+i), fmt.Sprintf("question %d", i)
		body := fixture.AppMention(fmt.Sprintf("Ev%s%d", prefix, i), "C"+prefix, ts, question)
		if resp, _ := call(t, p.receiver, lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", body, signingSecret, false)); resp.StatusCode != 202 {
			t.Fatalf("receiver answered %d, want 202", resp.StatusCode)
		}
		tss, questions = append(tss, ts), append(questions, question)
	}
	delay, err := time.ParseDuration(lambdaworld.EnvValue(p.workerOpts.Env, "DEMO_DELAY"))
	if err != nil {
		t.Fatalf("the worker's DEMO_DELAY: %v", err)
	}
	answers, err := answercheck.DemoStreamedAll(context.Background(), delay, questions...)
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]answercheck.Expect, n)
	for i, ts := range tss {
		want[ts] = answercheck.Answer(answers[questions[i]])
	}
	return tss, want
}

// batch takes the queued messages as Lambda's SQS trigger would deliver them.
func (p *pipeline) batch(t *testing.T) []byte {
	t.Helper()
	msgs := receive(t, p.stack.SQS(), p.local.QueueURL)
	raw, err := json.Marshal(poller.ToEvent(msgs, p.local.QueueURL))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (p *pipeline) runBatch(t *testing.T, event []byte) (events.SQSEventResponse, lambdaworld.Result) {
	t.Helper()
	r, err := p.worker.Invoke(context.Background(), event)
	if err != nil || r.TimedOut || r.Error != nil {
		t.Fatalf("worker invocation: %v, timed out %v, error %+v", err, r.TimedOut, r.Error)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(r.Response, &resp); err != nil {
		t.Fatalf("worker response %s: %v", r.Response, err)
	}
	return resp, r
}

// replied judges the thread of the message ts in channel as a Slack client renders it: nil
// when it shows want exactly once, finished, its buttons under it.
func (p *pipeline) replied(channel, ts string, want answercheck.Expect) error {
	return answercheck.Judge(channel, ts, p.slack.RenderedThread(channel, ts), want).Err()
}

func recordIDs(t *testing.T, event []byte) []string {
	t.Helper()
	var ev events.SQSEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range ev.Records {
		ids = append(ids, r.MessageId)
	}
	return ids
}

// A batch through the worker as deployed: answers streamed in Slack for the messages that
// worked, a batch item failure for the one whose stream Slack rate-limited as it was being
// stopped (for longer than the invocation can wait), and that one finished (the same message)
// when it comes back.
func TestWorkerBatch(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, nil)
	tss, want := p.enqueueMentions(t, 3, "BATCH")
	event := p.batch(t)
	ids := recordIDs(t, event)
	if len(ids) != 3 {
		t.Fatalf("%d messages queued, want 3", len(ids))
	}
	p.slack.RateLimitNext("chat.stopStream", 1, 10*time.Minute)
	resp, r := p.runBatch(t, event)
	if init := p.worker.Init(); !r.Cold || init.Failed() || init.Duration <= 0 {
		t.Fatalf("the batch started the worker: cold %v, init %+v; want a measured start", r.Cold, init)
	}
	if len(resp.BatchItemFailures) != 1 || !slices.Contains(ids, resp.BatchItemFailures[0].ItemIdentifier) {
		t.Fatalf("batch item failures %+v; want the one rate-limited message of %v", resp.BatchItemFailures, ids)
	}
	answered := 0
	for _, ts := range tss {
		if p.replied("CBATCH", ts, want[ts]) == nil {
			answered++
		}
	}
	if answered != 2 {
		t.Fatalf("%d of 3 messages answered in Slack, want 2", answered)
	}
	streams := len(p.slack.Streams())
	// Lambda's trigger delivers the failed message again.
	var ev events.SQSEvent
	_ = json.Unmarshal(event, &ev)
	ev.Records = slices.DeleteFunc(ev.Records, func(m events.SQSMessage) bool { return m.MessageId != resp.BatchItemFailures[0].ItemIdentifier })
	again, _ := json.Marshal(ev)
	resp2, r2 := p.runBatch(t, again)
	if len(resp2.BatchItemFailures) != 0 {
		t.Fatalf("the retried message failed again: %+v", resp2.BatchItemFailures)
	}
	for _, ts := range tss {
		if err := p.replied("CBATCH", ts, want[ts]); err != nil {
			t.Fatalf("after the retry: %v", err)
		}
	}
	if n := len(p.slack.Streams()); n != streams {
		t.Fatalf("%d streams after the retry, want still %d: the retry finishes the rate-limited one", n, streams)
	}
	t.Logf("worker: init %s; batch of 3 (demo responder %s) %s; retried message %s",
		p.worker.Init().Duration.Round(time.Millisecond), lambdaworld.EnvValue(p.workerOpts.Env, "DEMO_DELAY"), r.Duration.Round(time.Millisecond), r2.Duration.Round(time.Millisecond))
}

// SSM down while the worker starts: the start does not fail (no init/error); the batch that
// comes meanwhile fails as retryable, item by item; once SSM answers, it is handled.
func TestWorkerStartsWhileSSMIsDown(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, func(w *world) { w.ssm.SetMode(fakessm.Fail) })
	tss, want := p.enqueueMentions(t, 2, "NOSSM")
	event := p.batch(t)
	resp, r := p.runBatch(t, event) // the worker starts with this batch
	if init := r.Init; !r.Cold || init.Failed() {
		t.Fatalf("worker init %+v (cold %v); want a start despite SSM", init, r.Cold)
	}
	if !logged(p.worker, map[string]string{"level": "WARN", "msg": "starting without the secrets; messages fail as retryable until they load"}) {
		t.Fatal("no WARN line about starting without the secrets")
	}
	if len(resp.BatchItemFailures) != 2 {
		t.Fatalf("batch item failures %+v; want both messages back for a retry", resp.BatchItemFailures)
	}
	p.ssm.SetMode(fakessm.Answer)
	time.Sleep(secretsRetryMax(2))
	resp, _ = p.runBatch(t, event)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batch item failures %+v once SSM answers; want none", resp.BatchItemFailures)
	}
	for _, ts := range tss {
		if err := p.replied("CNOSSM", ts, want[ts]); err != nil {
			t.Fatalf("once SSM was back: %v", err)
		}
	}
}

// A configuration error at init: init/error, one JSON line, and the batch that started the
// worker fails as a whole (Lambda's trigger delivers it again).
func TestWorkerInitFailure(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f, _ := w.start(lambdaworld.Spec{LogicalID: lambdaworld.WorkerFunction, Unset: []string{"IDEMPOTENCY_TABLE"}})
	r, err := f.Invoke(context.Background(), []byte(`{"Records":[]}`))
	init := r.Init
	if !errors.Is(err, lambdaworld.ErrInitFailed) || init.Error == nil || init.Error.ErrorType != "Runtime.ConfigError" || !strings.Contains(init.Error.ErrorMessage, "IDEMPOTENCY_TABLE is required") {
		t.Fatalf("init %+v, %v; want init/error Runtime.ConfigError naming IDEMPOTENCY_TABLE", init, err)
	}
	if !logged(f, map[string]string{"level": "ERROR", "msg": "init failed", "binary": "worker"}) {
		t.Fatalf("no JSON init failure line in:\n%s", f.Logs())
	}
}

package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/infra/local/localslack"
	"github.com/slackrelay/slackrelay/infra/local/localstack"
	"github.com/slackrelay/slackrelay/infra/local/localstack/localstacktest"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/handler"
	"github.com/slackrelay/slackrelay/worker/idempotency"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

func TestMain(m *testing.M) { os.Exit(localstacktest.Run(m)) }

const botToken = "xoxb-test-token"

type harness struct {
	t        testing.TB
	stack    *localstack.Stack
	sqs      *sqs.Client
	queueURL string
	dlqURL   string
	slack    *localslack.Server
	app      *App
	cfg      workerconfig.Config
	logs     *syncBuffer
	ddbProxy *localstack.FaultProxy
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var seq atomic.Int64

func newHarness(t testing.TB, tweak func(*workerconfig.Config)) *harness {
	t.Helper()
	stack := localstacktest.Stack(t)
	n := seq.Add(1)
	name := fmt.Sprintf("worker-%d", n)
	q, dlq := localstacktest.QueueURLs(t, stack, name, 3)
	table := "idem-" + name
	if err := localstack.CreateTable(context.Background(), stack.DynamoDB(), table); err != nil {
		t.Fatal(err)
	}
	ls := localslack.New(localslack.Options{Token: botToken})
	if _, err := ls.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	proxy, err := localstack.NewFaultProxy(strings.TrimPrefix(stack.DynamoDBEndpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	cfg := workerconfig.Config{
		LogLevel: "debug", QueueURL: q, DLQURL: dlq, Table: table, IdempotencyTTL: time.Hour,
		MaxReceiveCount: 3, BotToken: botToken, SlackAPIURL: ls.APIURL(), DemoDelay: 20 * time.Millisecond,
		BatchConcurrency: 10, BackoffBase: time.Second, BackoffMax: 2 * time.Second, SecretsMaxAge: time.Minute,
		HandlerTimeout: 5 * time.Second, PollBatchSize: 10, PollWait: time.Second, PollLoops: 1,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	t.Setenv("AWS_ENDPOINT_URL_SQS", stack.SQSEndpoint)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.URL())
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	awsCfg, err := awsclient.Load(context.Background(), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(cfg, awsCfg, os.Getenv, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker logs:\n%s", logs.String())
		}
	})
	return &harness{t: t, stack: stack, sqs: stack.SQS(), queueURL: q, dlqURL: dlq, slack: ls, app: a, cfg: cfg, logs: logs, ddbProxy: proxy}
}

func mentionEnvelope(eventID, channel, ts, text string) []byte {
	body := fmt.Sprintf(`{"type":"event_callback","team_id":"T1","api_app_id":"A1","event_id":%q,"event_time":1700000000,"event":{"type":"app_mention","user":"U1","text":"<@UBOT> %s","ts":%q,"channel":%q,"event_ts":%q}}`,
		eventID, text, ts, channel, ts)
	e := envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindEvent, TeamID: "T1", EventType: "app_mention",
		EventID: eventID, EventTime: 1700000000, DedupeKey: envelope.MessageDedupeKey("T1", channel, ts),
		ReceivedAt: time.Now().UTC(), ContentType: envelope.ContentTypeJSON, Body: body}
	return e.AppendJSON(nil)
}

func (h *harness) send(body []byte) {
	h.t.Helper()
	_, err := h.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(h.queueURL), MessageBody: aws.String(string(body)),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			envelope.AttrKind:   {DataType: aws.String("String"), StringValue: aws.String("event")},
			envelope.AttrTeamID: {DataType: aws.String("String"), StringValue: aws.String("T1")},
		},
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// drain runs the poller until the queue has been empty (nothing visible, nothing in flight)
// or the timeout passes.
func (h *harness) drain(timeout time.Duration) {
	h.t.Helper()
	for start := time.Now(); time.Since(start) < timeout; {
		if _, err := h.app.Poller.PollOnce(context.Background()); err != nil {
			h.t.Fatal(err)
		}
		if h.depth(h.queueURL) == 0 {
			return
		}
	}
	h.t.Fatalf("queue not drained after %v (depth %d)", timeout, h.depth(h.queueURL))
}

func (h *harness) depth(queueURL string) int {
	n, err := h.stack.Depth(context.Background(), queueURL)
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func (h *harness) dlqMessages() []sqstypes.Message {
	out, err := h.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(h.dlqURL),
		MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
	if err != nil {
		h.t.Fatal(err)
	}
	return out.Messages
}

func TestReplyInThreadWithWorkingReaction(t *testing.T) {
	h := newHarness(t, nil)
	h.send(mentionEnvelope("Ev1", "C1", "1700000000.000100", "what is up?"))
	h.drain(10 * time.Second)
	posts := h.slack.Posts()
	if len(posts) != 1 {
		t.Fatalf("posts = %+v", posts)
	}
	p := posts[0]
	if p.Channel != "C1" || p.ThreadTS != "1700000000.000100" || !strings.Contains(p.Text, "what is up?") || strings.Contains(p.Text, "<@UBOT>") {
		t.Fatalf("post = %+v", p)
	}
	if p.Metadata == nil || p.Metadata.EventType != handler.ReplyMetadataType || p.Metadata.Payload["dedupe_key"] != "msg:T1:C1:1700000000.000100" {
		t.Fatalf("metadata = %+v", p.Metadata)
	}
	if h.slack.Calls("reactions.add") != 1 || h.slack.Calls("reactions.remove") != 1 || len(h.slack.Reactions()) != 0 {
		t.Fatalf("reaction not added and removed: add=%d remove=%d left=%v", h.slack.Calls("reactions.add"), h.slack.Calls("reactions.remove"), h.slack.Reactions())
	}
}

// The same Slack event four times (Slack's retries, SQS duplicates), two of them handled
// concurrently by separate invocations, plus the message event of the same mention.
func TestDuplicatesGiveOneReply(t *testing.T) {
	h := newHarness(t, func(c *workerconfig.Config) { c.DemoDelay = 300 * time.Millisecond })
	ts := "1700000001.000200"
	for i := 0; i < 4; i++ {
		h.send(mentionEnvelope("EvDup", "C1", ts, "once please"))
	}
	// The message.channels twin of the mention: other event id, same (channel, ts).
	h.send(mentionEnvelope("EvTwin", "C1", ts, "once please"))
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); h.app.Poller.PollOnce(context.Background()) }()
	}
	wg.Wait()
	h.drain(15 * time.Second)
	if n := len(h.slack.Posts()); n != 1 {
		t.Fatalf("%d replies for one event, want 1", n)
	}
	if len(h.dlqMessages()) != 0 {
		t.Fatal("duplicates ended in the DLQ")
	}
}

func TestPermanentFailureGoesToDLQWithReason(t *testing.T) {
	h := newHarness(t, nil)
	h.slack.FailNext("chat.postMessage", 1, "channel_not_found")
	h.send(mentionEnvelope("EvPerm", "C404", "1700000002.000100", "hi"))
	h.drain(10 * time.Second)
	if n := len(h.slack.Posts()); n != 0 {
		t.Fatalf("posts = %d", n)
	}
	msgs := h.dlqMessages()
	if len(msgs) != 1 {
		t.Fatalf("DLQ holds %d messages, want 1", len(msgs))
	}
	attr := func(n string) string { return aws.ToString(msgs[0].MessageAttributes[n].StringValue) }
	if !strings.Contains(attr(envelope.AttrFailureReason), "channel_not_found") || attr(envelope.AttrFailureClass) != envelope.FailureClassPermanent ||
		attr(envelope.AttrFailedHandler) != "reply" || attr(envelope.AttrFailedAt) == "" || attr(envelope.AttrKind) != "event" {
		t.Fatalf("DLQ attributes = %v", msgs[0].MessageAttributes)
	}
	if h.slack.Calls("chat.postMessage") != 1 {
		t.Fatal("a permanent failure was retried")
	}
	// The claim was released: a replay after the fix answers.
	if _, err := h.app.Processor.Claims.Claim(context.Background(), "msg:T1:C404:1700000002.000100", "probe", time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestUndecodableMessageGoesToDLQ(t *testing.T) {
	h := newHarness(t, nil)
	h.send([]byte(`{"v":99,"id":"x"}`))
	h.drain(10 * time.Second)
	msgs := h.dlqMessages()
	if len(msgs) != 1 || !strings.Contains(aws.ToString(msgs[0].MessageAttributes[envelope.AttrFailureReason].StringValue), "unsupported envelope version") {
		t.Fatalf("DLQ = %+v", msgs)
	}
}

func TestTransientFailuresAreRetriedThenReplyOnce(t *testing.T) {
	h := newHarness(t, nil)
	h.slack.FailHTTPNext("chat.postMessage", 2, 503)
	h.send(mentionEnvelope("EvFlaky", "C1", "1700000003.000100", "again"))
	start := time.Now()
	h.drain(20 * time.Second)
	if n := len(h.slack.Posts()); n != 1 {
		t.Fatalf("posts = %d, want 1", n)
	}
	if calls := h.slack.Calls("chat.postMessage"); calls != 3 {
		t.Fatalf("postMessage calls = %d, want 3 (two failures, one success)", calls)
	}
	// Backoff 1s then 1s (base for receive counts 1 and 2) at least.
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("retries came after %v: no backoff", took)
	}
}

func TestOutOfRetriesGoesToDLQAsExhausted(t *testing.T) {
	h := newHarness(t, nil)
	h.slack.FailHTTPNext("chat.postMessage", 10, 500)
	h.send(mentionEnvelope("EvDoomed", "C1", "1700000004.000100", "x"))
	h.drain(20 * time.Second)
	msgs := h.dlqMessages()
	if len(msgs) != 1 || aws.ToString(msgs[0].MessageAttributes[envelope.AttrFailureClass].StringValue) != envelope.FailureClassExhausted {
		t.Fatalf("DLQ = %+v", msgs)
	}
	if calls := h.slack.Calls("chat.postMessage"); calls != 3 {
		t.Fatalf("calls = %d, want MAX_RECEIVE_COUNT=3", calls)
	}
}

func TestRateLimitWaitsForRetryAfter(t *testing.T) {
	h := newHarness(t, nil)
	h.slack.RateLimitNext("chat.postMessage", 1, 3*time.Second)
	h.send(mentionEnvelope("EvRL", "C1", "1700000005.000100", "slow down"))
	start := time.Now()
	h.drain(20 * time.Second)
	posts := h.slack.Posts()
	if len(posts) != 1 {
		t.Fatalf("posts = %d", len(posts))
	}
	if waited := posts[0].At.Sub(start); waited < 3*time.Second {
		t.Fatalf("reply after %v, before Retry-After 3s", waited)
	}
}

// A worker that replied and died before marking the event answered leaves a claim whose
// lease runs out; the redelivery takes it over, finds the reply in the thread and stays quiet.
func TestCrashAfterReplyIsNotRepeated(t *testing.T) {
	h := newHarness(t, nil)
	ts := "1700000006.000100"
	key := envelope.MessageDedupeKey("T1", "C1", ts)
	store := h.app.Processor.Claims.(*idempotency.Store)
	if _, err := store.Claim(context.Background(), key, "dead-worker", time.Now().Add(1500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	api := slack.New(botToken, slack.OptionAPIURL(h.slack.APIURL()))
	_, _, err := api.PostMessage("C1", slack.MsgOptionText("the reply from before the crash", false), slack.MsgOptionTS(ts),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: handler.ReplyMetadataType, EventPayload: map[string]any{"dedupe_key": key}}))
	if err != nil {
		t.Fatal(err)
	}
	h.send(mentionEnvelope("EvCrash", "C1", ts, "hello"))
	h.drain(15 * time.Second)
	if n := len(h.slack.Posts()); n != 1 {
		t.Fatalf("posts = %d, want only the one from before the crash", n)
	}
	if !strings.Contains(h.logs.String(), "already replied") {
		t.Fatal("the takeover did not look for the earlier reply")
	}
}

// A worker that died before replying: the redelivery after the lease replies once.
func TestCrashBeforeReplyIsRecovered(t *testing.T) {
	h := newHarness(t, nil)
	ts := "1700000007.000100"
	store := h.app.Processor.Claims.(*idempotency.Store)
	store.Claim(context.Background(), envelope.MessageDedupeKey("T1", "C1", ts), "dead-worker", time.Now().Add(time.Second))
	h.send(mentionEnvelope("EvCrash2", "C1", ts, "hello"))
	h.drain(15 * time.Second)
	if n := len(h.slack.Posts()); n != 1 {
		t.Fatalf("posts = %d, want 1", n)
	}
}

func TestStoreDownPostsNothingThenRecovers(t *testing.T) {
	h := newHarness(t, nil)
	h.ddbProxy.SetDown(true)
	h.send(mentionEnvelope("EvStore", "C1", "1700000008.000100", "hi"))
	// Poll for a while with a context that is never cancelled mid-receive (a cancelled
	// receive would hide the message for the queue's visibility timeout).
	for start := time.Now(); time.Since(start) < 3*time.Second; {
		h.app.Poller.PollOnce(context.Background())
	}
	if h.slack.Calls("chat.postMessage") != 0 || h.slack.Calls("reactions.add") != 0 {
		t.Fatal("posted to Slack while the idempotency store was down")
	}
	h.ddbProxy.SetDown(false)
	h.drain(15 * time.Second)
	if n := len(h.slack.Posts()); n != 1 {
		t.Fatalf("posts = %d after recovery, want 1", n)
	}
}

func TestSkipsBotAndEdits(t *testing.T) {
	h := newHarness(t, nil)
	for i, ev := range []string{
		`{"type":"message","channel_type":"im","user":"UBOT","text":"mine","ts":"1.1","channel":"D1"}`,
		`{"type":"message","channel_type":"im","bot_id":"B9","text":"other bot","ts":"1.2","channel":"D1"}`,
		`{"type":"message","channel_type":"im","subtype":"message_changed","ts":"1.3","channel":"D1"}`,
		`{"type":"message","channel_type":"channel","user":"U1","text":"plain channel message","ts":"1.4","channel":"C1"}`,
	} {
		body := fmt.Sprintf(`{"type":"event_callback","team_id":"T1","event_id":"EvS%d","event":%s}`, i, ev)
		e := envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindEvent, EventType: "message", TeamID: "T1",
			EventID: fmt.Sprint("EvS", i), DedupeKey: envelope.EventDedupeKey(fmt.Sprint("EvS", i)), ContentType: envelope.ContentTypeJSON, Body: body}
		h.send(e.AppendJSON(nil))
	}
	// A direct message from a person is answered.
	dm := `{"type":"event_callback","team_id":"T1","event_id":"EvDM","event":{"type":"message","channel_type":"im","user":"U1","text":"hello bot","ts":"1.5","channel":"D1"}}`
	e := envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindEvent, EventType: "message", TeamID: "T1", EventID: "EvDM",
		DedupeKey: envelope.MessageDedupeKey("T1", "D1", "1.5"), ContentType: envelope.ContentTypeJSON, Body: dm}
	h.send(e.AppendJSON(nil))
	h.drain(10 * time.Second)
	posts := h.slack.Posts()
	if len(posts) != 1 || posts[0].Channel != "D1" || posts[0].ThreadTS != "1.5" {
		t.Fatalf("posts = %+v", posts)
	}
}

func TestSlashCommandAnsweredViaResponseURL(t *testing.T) {
	h := newHarness(t, nil)
	form := url.Values{"command": {"/ask"}, "text": {"what time is it"}, "team_id": {"T1"}, "trigger_id": {"tr1"},
		"response_url": {h.slack.ResponseURL("r1")}, "channel_id": {"C1"}, "user_id": {"U1"}}.Encode()
	e := envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindSlashCommand, EventType: "/ask", TeamID: "T1",
		DedupeKey: envelope.TriggerDedupeKey(envelope.KindSlashCommand, "T1", "tr1", nil), ContentType: envelope.ContentTypeForm, Body: form}
	h.send(e.AppendJSON(nil))
	h.send(e.AppendJSON(nil))
	h.drain(10 * time.Second)
	posts := h.slack.Posts()
	if len(posts) != 1 || posts[0].ResponseID != "r1" || !strings.Contains(posts[0].Text, "what time is it") {
		t.Fatalf("posts = %+v", posts)
	}
}

func TestUnknownEventTypesAreAcknowledged(t *testing.T) {
	h := newHarness(t, nil)
	e := envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindEvent, EventType: "team_join", TeamID: "T1", EventID: "EvU",
		DedupeKey: "evt:EvU", ContentType: envelope.ContentTypeJSON, Body: `{"type":"event_callback","event":{"type":"team_join"}}`}
	h.send(e.AppendJSON(nil))
	h.drain(10 * time.Second)
	if len(h.dlqMessages()) != 0 || len(h.slack.Posts()) != 0 {
		t.Fatal("an unknown event type was failed or answered")
	}
}

// countingResponder records how many calls run at once.
type countingResponder struct {
	delay       time.Duration
	now, maxNow atomic.Int32
}

func (c *countingResponder) Respond(ctx context.Context, prompt string) (string, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for {
		m := c.maxNow.Load()
		if n <= m || c.maxNow.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-time.After(c.delay):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return "ok " + prompt, nil
}

func batchOf(n int, prefix string) events.SQSEvent {
	var ev events.SQSEvent
	for i := 0; i < n; i++ {
		ts := fmt.Sprintf("17%08d.000100", seq.Add(1))
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: fmt.Sprintf("%s-%d", prefix, i), ReceiptHandle: "rh", Body: string(mentionEnvelope(fmt.Sprintf("%s%d", prefix, i), "C1", ts, "q")),
			Attributes: map[string]string{"ApproximateReceiveCount": "1"},
		})
	}
	return ev
}

func TestBatchRunsConcurrently(t *testing.T) {
	h := newHarness(t, nil)
	resp := &countingResponder{delay: 200 * time.Millisecond}
	h.app.Processor.Router = routerWith(resp, h)
	out, err := h.app.Processor.HandleSQS(context.Background(), batchOf(10, "EvC"))
	if err != nil || len(out.BatchItemFailures) != 0 {
		t.Fatalf("%+v %v", out, err)
	}
	if got := resp.maxNow.Load(); got != 10 {
		t.Fatalf("at most %d handlers ran at once, want 10", got)
	}
	if n := len(h.slack.Posts()); n != 10 {
		t.Fatalf("posts = %d", n)
	}
}

func routerWith(r *countingResponder, h *harness) *handler.Router {
	api := slack.New(botToken, slack.OptionAPIURL(h.slack.APIURL()))
	router := &handler.Router{}
	router.Register(envelope.KindEvent, "app_mention", "reply", &handler.Reply{Slack: api, Responder: r})
	return router
}

// BenchmarkBatchOfTenTwoSecondCalls: one SQS batch of 10 messages whose external call takes
// 2 s each, through the real processor, DynamoDB (dynalite) and Slack (local server). The
// batch should take about as long as one call, not ten.
func BenchmarkBatchOfTenTwoSecondCalls(b *testing.B) {
	h := newHarness(b, nil)
	h.app.Processor.Router = routerWith(&countingResponder{delay: 2 * time.Second}, h)
	b.ReportAllocs()
	i := 0
	var worst time.Duration
	for b.Loop() {
		i++
		start := time.Now()
		out, _ := h.app.Processor.HandleSQS(context.Background(), batchOf(10, fmt.Sprintf("EvB%d-", i)))
		if len(out.BatchItemFailures) != 0 {
			b.Fatalf("failures: %+v", out.BatchItemFailures)
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(worst.Seconds(), "worst-s/batch")
}

func TestPollerStopsGracefully(t *testing.T) {
	h := newHarness(t, func(c *workerconfig.Config) { c.DemoDelay = time.Second })
	h.send(mentionEnvelope("EvStop", "C1", "1700000009.000100", "finish me"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.app.Poller.Run(ctx) }()
	// Cancel while the handler is working.
	deadline := time.Now().Add(5 * time.Second)
	for h.slack.Calls("reactions.add") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("poller did not stop")
	}
	if n := len(h.slack.Posts()); n != 1 {
		t.Fatalf("the batch in flight did not finish: posts = %d", n)
	}
	if d := h.depth(h.queueURL); d != 0 {
		t.Fatalf("the finished message was not deleted: depth %d", d)
	}
}

package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/awstest"

	"github.com/slackrelay/slackrelay/shared/loopback"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/worker"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/poller"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

const botToken = "xoxb-test-token"

// harness is the real worker (worker.New: the engine, its journal, the shipped bot) fed by
// the real poller, against the local SQS and DynamoDB servers and the local Slack server,
// each test on its own queues and table.
type harness struct {
	t     testing.TB
	stack *localaws.Servers
	sqs   *sqs.Client
	// ddb reaches the local DynamoDB server directly (not through ddbProxy): the tests set
	// records up and read them back with it.
	ddb      *dynamodb.Client
	queueURL string
	dlqURL   string
	slack    *fakeslack.Server
	app      *worker.App
	poller   *poller.Poller
	cfg      workerconfig.Config
	logs     *logbuf.Buffer
	ddbProxy *loopback.Proxy
}

// options are what a test changes of the harness's worker.
type options struct {
	config func(*workerconfig.Config)
	env    map[string]string
	bot    worker.Bot
	slack  fakeslack.Options
}

type option func(*options)

// withConfig changes the framework's settings.
func withConfig(f func(*workerconfig.Config)) option { return func(o *options) { o.config = f } }

// withEnv sets the shipped bot's variables (assistant.Vars), as NAME, value pairs.
func withEnv(pairs ...string) option {
	return func(o *options) {
		for i := 0; i+1 < len(pairs); i += 2 {
			o.env[pairs[i]] = pairs[i+1]
		}
	}
}

// withSlack sets the local Slack server's options (workspaces, token rotation); its Token is
// the harness's botToken whatever o says.
func withSlack(o fakeslack.Options) option { return func(os *options) { os.slack = o } }

// withBot runs bot instead of the shipped one as worker/cmd/worker registers it.
func withBot(bot worker.Bot) option { return func(o *options) { o.bot = bot } }

var seq atomic.Int64

func newHarness(t testing.TB, opts ...option) *harness {
	t.Helper()
	o := options{bot: assistant.New, env: map[string]string{
		// The demo responder, quick.
		assistant.EnvDemoDelay: "20ms", assistant.EnvDemoTokenRate: "200", assistant.EnvStreaming: "on",
	}}
	for _, opt := range opts {
		opt(&o)
	}
	stack := localawstest.Stack(t)
	n := seq.Add(1)
	name := fmt.Sprintf("worker-%d", n)
	q, dlq := localawstest.QueueURLs(t, stack, name, 3)
	table := "progress-" + name
	if err := awstest.CreateTable(context.Background(), stack.DynamoDB(), table); err != nil {
		t.Fatal(err)
	}
	o.slack.Token = botToken
	ls := fakeslack.New(o.slack)
	if _, err := ls.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	proxy, err := loopback.StartProxy(strings.TrimPrefix(stack.DynamoDBEndpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	cfg := workerconfig.Config{
		LogLevel: "debug", QueueURL: q, DLQURL: dlq, Table: table, IdempotencyTTL: time.Hour,
		MaxReceiveCount: 3, BotToken: botToken, SlackAPIURL: ls.APIURL(), ResponseURLPrefixes: []string{strings.TrimSuffix(ls.ResponseURL("x"), "x")},
		BatchConcurrency: 10, BackoffBase: time.Second, BackoffMax: 2 * time.Second,
		SecretsMaxAge: time.Minute, HandlerTimeout: 5 * time.Second, PollBatchSize: 10, PollWait: time.Second, PollLoops: 1,
	}
	if o.config != nil {
		o.config(&cfg)
	}
	env := map[string]string{
		"AWS_ENDPOINT_URL_SQS": stack.SQSEndpoint, "AWS_ENDPOINT_URL_DYNAMODB": proxy.URL(), "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
	}
	for k, v := range o.env {
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	awsCfg, err := awsclient.Load(context.Background(), getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := worker.New(cfg, awsCfg, getenv, log, io.Discard, o.bot)
	if err != nil {
		t.Fatal(err)
	}
	// The poller as the worker runs it outside Lambda (worker.Main), on the same engine.
	sqsClient := sqs.NewFromConfig(awsCfg, func(so *sqs.Options) { so.BaseEndpoint = awsclient.Endpoint(getenv, "SQS") })
	p := &poller.Poller{
		SQS: sqsClient, QueueURL: cfg.QueueURL, Handler: a.Engine.HandleSQS,
		BatchSize: cfg.PollBatchSize, Wait: cfg.PollWait, Timeout: cfg.HandlerTimeout, Loops: cfg.PollLoops, Log: log,
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker logs:\n%s", logs.String())
		}
	})
	return &harness{t: t, stack: stack, sqs: stack.SQS(), ddb: stack.DynamoDB(), queueURL: q, dlqURL: dlq, slack: ls, app: a, poller: p,
		cfg: cfg, logs: logs, ddbProxy: proxy}
}

// botWith is the shipped bot's routes answering with r (a responder that does not stream
// makes the bot reply with Reply, and /ask with Respond).
func botWith(r llm.Responder) worker.Bot {
	return func(b *relay.Router, _ *worker.Setup) error {
		assistant.Register(b, assistant.Config{LLM: r, Model: "test"})
		return nil
	}
}

// eventEnvelope wraps an Events API body as the receiver does.
func eventEnvelope(t testing.TB, body string) []byte {
	t.Helper()
	var outer struct {
		TeamID    string `json:"team_id"`
		EventID   string `json:"event_id"`
		EventTime int64  `json:"event_time"`
		Event     struct {
			Type string `json:"type"`
		} `json:"event"`
	}
	if err := json.Unmarshal([]byte(body), &outer); err != nil {
		t.Fatalf("test body is not JSON: %v", err)
	}
	if outer.EventTime == 0 {
		outer.EventTime = 1700000000
	}
	return marshal(t, envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindEvent, TeamID: outer.TeamID,
		EventType: outer.Event.Type, EventID: outer.EventID, EventTime: outer.EventTime, DedupeKey: "evt:" + outer.EventID,
		ReceivedAt: time.Now().UTC(), ContentType: envelope.ContentTypeJSON, Body: body})
}

func marshal(t testing.TB, e envelope.Envelope) []byte {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *harness) mention(eventID, channel, ts, text string) []byte {
	return eventEnvelope(h.t, fixture.AppMention(eventID, channel, ts, text))
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
		if _, err := h.poller.PollOnce(context.Background()); err != nil {
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

// deadClaim writes the record a worker that died while answering key leaves in the journal's
// table: the event in progress, claimed by that worker (another SQS message's receive) until
// its lease ends in leaseFor, with the steps it had recorded (name → the step's JSON value).
// It is the journal's item as the journal writes it (worker/internal/journal: the claim's
// attributes, a step as attribute "s:<name>"); the worker is given nothing else about it.
func (h *harness) deadClaim(key string, leaseFor time.Duration, steps map[string]any) {
	h.t.Helper()
	now := time.Now()
	owner := "dead-worker/0123456789ab"
	num := func(n int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
	}
	str := func(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
	item := map[string]types.AttributeValue{
		"pk": str(key), "status": str("in_progress"), "owner": str(owner), "write_token": str(owner),
		"lease_until_ms": num(now.Add(leaseFor).UnixMilli()), "attempts": num(1), "started_ms": num(now.UnixMilli()),
		"expires_at": num(now.Add(h.cfg.IdempotencyTTL).Unix()),
	}
	for name, v := range steps {
		raw, err := json.Marshal(v)
		if err != nil {
			h.t.Fatal(err)
		}
		item["s:"+name] = str(string(raw))
	}
	if _, err := h.ddb.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(h.cfg.Table), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(pk)")}); err != nil {
		h.t.Fatal(err)
	}
}

// answers are the bot's messages (posted or streamed), as a client reading Slack sees them.
func (h *harness) answers() []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range h.slack.Messages("") {
		if m.Bot {
			out = append(out, m)
		}
	}
	return out
}

// answersIn are the bot's messages in the thread threadTS.
func (h *harness) answersIn(threadTS string) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range h.answers() {
		if m.ThreadTS == threadTS {
			out = append(out, m)
		}
	}
	return out
}

// answerMethod is the first Slack call of the shipped bot's answer: it streams.
const answerMethod = "chat.startStream"

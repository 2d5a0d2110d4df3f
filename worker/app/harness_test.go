package app

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/internal/journal"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

const botToken = "xoxb-test-token"

// harness is the real worker (processor, journal, poller) against the local SQS and
// DynamoDB servers and the local Slack server, each test on its own queues and table.
type harness struct {
	t        testing.TB
	stack    *localaws.Stack
	sqs      *sqs.Client
	queueURL string
	dlqURL   string
	slack    *fakeslack.Server
	app      *App
	cfg      workerconfig.Config
	logs     *logbuf.Buffer
	ddbProxy *localaws.FaultProxy
}

var seq atomic.Int64

func newHarness(t testing.TB, tweak func(*workerconfig.Config)) *harness {
	t.Helper()
	stack := localawstest.Stack(t)
	n := seq.Add(1)
	name := fmt.Sprintf("worker-%d", n)
	q, dlq := localawstest.QueueURLs(t, stack, name, 3)
	table := "progress-" + name
	if err := localaws.CreateTable(context.Background(), stack.DynamoDB(), table); err != nil {
		t.Fatal(err)
	}
	ls := fakeslack.New(fakeslack.Options{Token: botToken})
	if _, err := ls.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	proxy, err := localaws.NewFaultProxy(strings.TrimPrefix(stack.DynamoDBEndpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	cfg := workerconfig.Config{
		LogLevel: "debug", QueueURL: q, DLQURL: dlq, Table: table, IdempotencyTTL: time.Hour,
		MaxReceiveCount: 3, BotToken: botToken, SlackAPIURL: ls.APIURL(), ResponseURLPrefixes: []string{strings.TrimSuffix(ls.ResponseURL("x"), "x")},
		DemoDelay: 20 * time.Millisecond, DemoTokensPerSecond: 200, Streaming: true, BatchConcurrency: 10, BackoffBase: time.Second, BackoffMax: 2 * time.Second,
		SecretsMaxAge: time.Minute, HandlerTimeout: 5 * time.Second, PollBatchSize: 10, PollWait: time.Second, PollLoops: 1,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	env := map[string]string{
		"AWS_ENDPOINT_URL_SQS": stack.SQSEndpoint, "AWS_ENDPOINT_URL_DYNAMODB": proxy.URL(), "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
	}
	getenv := func(k string) string { return env[k] }
	awsCfg, err := awsclient.Load(context.Background(), getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(cfg, awsCfg, getenv, log, io.Discard, shippedBot)
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

// shippedBot registers the bot worker/cmd/worker runs.
func shippedBot(b *relay.Router, d Deps) {
	assistant.Register(b, assistant.Config{LLM: d.LLM, Model: d.Model, HistoryChars: d.HistoryChars, NoStreaming: !d.Streaming, Metrics: d.Metrics})
}

// eventEnvelope wraps an Events API body as the receiver does.
func eventEnvelope(t testing.TB, body string) []byte {
	t.Helper()
	var outer struct {
		TeamID  string `json:"team_id"`
		EventID string `json:"event_id"`
		Event   struct {
			Type string `json:"type"`
		} `json:"event"`
	}
	if err := json.Unmarshal([]byte(body), &outer); err != nil {
		t.Fatalf("test body is not JSON: %v", err)
	}
	return marshal(t, envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindEvent, TeamID: outer.TeamID,
		EventType: outer.Event.Type, EventID: outer.EventID, EventTime: 1700000000, DedupeKey: "evt:" + outer.EventID,
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

func (h *harness) store() *journal.Store { return h.app.Processor.Store.(*journal.Store) }

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

package crashsweep

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/awstest"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/engine"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
)

const (
	botToken = "xoxb-crashsweep"
	// maxReceives is the events queue's maxReceiveCount in the sweep.
	maxReceives = 5
	// maxInvocations bounds one run: more is a livelock, not a slow answer.
	maxInvocations = 30
	// redelivery is how long SQS takes to deliver a message again after a crash (its
	// visibility timeout: 6 x a 60 s function); backoff is the engine's first retry delay.
	redelivery = 6 * time.Minute
	backoff    = 10 * time.Second
)

// clock is the local Slack server's time, moved forward as SQS's delays would pass.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is what a path's runs share: the DynamoDB server and a table.
type world struct {
	stack *localaws.Servers
	table string
}

var tables atomic.Int64

func newWorld(t *testing.T, stack *localaws.Servers) *world {
	t.Helper()
	table := fmt.Sprintf("crashsweep-%d", tables.Add(1))
	if err := awstest.CreateTable(context.Background(), stack.DynamoDB(), table); err != nil {
		t.Fatal(err)
	}
	return &world{stack: stack, table: table}
}

// run is one event taken through the engine until it settles, with at most one fault.
type run struct {
	t     *testing.T
	w     *world
	p     *path
	n     int // the run's number, which makes its ids unique
	slack *fakeslack.Server
	clock *clock
	bot   *relay.Router
	logs  bytes.Buffer

	invocations   int
	crashes       int
	continuations int
	points        []string // of the first invocation
	deadLetters   []string // classes
	fired         *injection
	vars          map[string]string // what the path's setup left for its judge
	state         any               // what the path's register left for its setup and judge

	mu      sync.Mutex
	current *invocation // the invocation running now
}

var runs atomic.Int64

func (w *world) newRun(t *testing.T, p *path) *run {
	t.Helper()
	clk := &clock{t: time.Now()}
	srv := fakeslack.New(fakeslack.Options{Token: botToken, Now: clk.Now})
	if _, err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r := &run{t: t, w: w, p: p, n: int(runs.Add(1)), slack: srv, clock: clk, vars: map[string]string{}}
	r.bot = relay.NewRouter()
	p.register(r, r.bot)
	if err := r.bot.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// via is the way of a bot's own client to svc: through the transport of the invocation
// running at the time of each request, so its requests are points and die with it.
func (r *run) via(svc service) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		r.mu.Lock()
		inv := r.current
		r.mu.Unlock()
		if inv == nil {
			return nil, fmt.Errorf("crashsweep: a request to %s outside any invocation", svc)
		}
		return inv.transport(svc).RoundTrip(req)
	})
}

// api is a Slack client for the test itself (setting the scene, reading it back).
func (r *run) api() *slack.Client {
	return slack.New(botToken, slack.OptionAPIURL(r.slack.APIURL()))
}

// engine is the worker as one invocation runs it: the real engine (engine.New, with its
// DynamoDB journal and the handler library), every client going through inv.
func (r *run) engine(inv *invocation) (*engine.Engine, *queue) {
	slackHTTP := &http.Client{Transport: inv.transport(slackService), Timeout: 10 * time.Second}
	client := slack.New(botToken, slack.OptionAPIURL(r.slack.APIURL()), slack.OptionHTTPClient(slackHTTP))
	db := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(r.w.stack.DynamoDBEndpoint),
		HTTPClient:   &http.Client{Transport: inv.transport(ddbService), Timeout: 10 * time.Second},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		}),
	})
	q := &queue{inv: inv}
	e, err := engine.New(engine.Config{
		Router: r.bot,
		Slack:  func(context.Context, engine.Tenant) (*slack.Client, error) { return client, nil },
		Identity: func(context.Context, engine.Tenant) (engine.Identity, error) {
			return engine.Identity{UserID: "UBOT", BotID: "BBOT"}, nil
		},
		HTTP:                slackHTTP,
		ResponseURLPrefixes: []string{strings.TrimSuffix(r.slack.ResponseURL("x"), "x")},
		StreamLifetime:      5 * time.Minute,
		DynamoDB:            db,
		Table:               r.w.table,
		TTL:                 time.Hour,
		Queue:               q,
		QueueURL:            eventsQueueURL,
		DLQURL:              dlqURL,
		MaxReceiveCount:     maxReceives,
		BackoffBase:         backoff,
		BackoffMax:          time.Minute,
		Log:                 slog.New(slog.NewJSONHandler(&r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:             metrics.New(io.Discard, "crashsweep"),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return e, q
}

// envelopeOf wraps a Slack request body as the receiver does.
func envelopeOf(kind envelope.Kind, eventType, body string) string {
	ct := envelope.ContentTypeJSON
	if kind != envelope.KindEvent {
		ct = envelope.ContentTypeForm
	}
	raw, err := json.Marshal(envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: kind, TeamID: "T0001", EventType: eventType,
		EventTime: time.Now().Unix(), ReceivedAt: time.Now().UTC(), ContentType: ct, Body: body})
	if err != nil {
		panic(err)
	}
	return string(raw)
}

// deliver takes the envelope through the engine until it settles: the SQS message is
// delivered, and delivered again after a crash (the same message id, one more receive) or a
// failure, as SQS would; continuations come as new messages; a message out of receives is a
// dead letter. inj hits the first invocation.
func (r *run) deliver(body string, inj *injection) {
	r.t.Helper()
	type delivery struct {
		id      string
		receive int
	}
	pending := []delivery{{id: fmt.Sprintf("msg-%d", r.n), receive: 1}}
	for len(pending) > 0 {
		if r.invocations == maxInvocations {
			r.t.Fatalf("%s: still not settled after %d invocations\n%s", r.p.name, maxInvocations, r.logs.String())
		}
		d := pending[0]
		pending = pending[1:]
		ctx, cancel := context.WithTimeout(context.Background(), r.p.deadline())
		var this *injection
		if r.invocations == 0 {
			this = inj
		}
		inv := newInvocation(this, cancel)
		r.mu.Lock()
		r.current = inv
		r.mu.Unlock()
		p, q := r.engine(inv)
		ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: d.id, ReceiptHandle: "rh", Body: body,
			Attributes: map[string]string{"ApproximateReceiveCount": fmt.Sprint(d.receive)}}}}
		out, _ := p.HandleSQS(ctx, ev)
		cancel()
		r.invocations++
		if r.invocations == 1 {
			r.points = inv.points
		}
		for _, dl := range q.deadLetters {
			r.deadLetters = append(r.deadLetters, aws.ToString(dl.MessageAttributes[envelope.AttrFailureClass].StringValue))
		}
		r.continuations += len(q.continuations)
		for i := range q.continuations {
			pending = append(pending, delivery{id: fmt.Sprintf("msg-%d-cont-%d-%d", r.n, r.invocations, i), receive: 1})
		}
		switch {
		case inv.crashed():
			r.crashes++
			r.clock.Add(redelivery)
			pending = append(pending, delivery{d.id, d.receive + 1})
		case len(out.BatchItemFailures) > 0 && d.receive >= maxReceives:
			r.deadLetters = append(r.deadLetters, "exhausted (by SQS)")
		case len(out.BatchItemFailures) > 0:
			// A short delay (a retry after a lease, a release that failed) is waited for
			// real, since leases are in real time; a backoff only moves Slack's clock.
			if q.visibility > 0 && q.visibility <= 5*time.Second {
				time.Sleep(q.visibility)
			}
			r.clock.Add(max(q.visibility, backoff))
			pending = append(pending, delivery{d.id, d.receive + 1})
		}
	}
	if inj != nil {
		r.fired = inj
	}
}

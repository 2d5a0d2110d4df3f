package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/secrets"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
	"github.com/slackrelay/slackrelay/worker/internal/journal"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// fakeQueue records what the engine asks of SQS (logic tests; the real queue is used by
// the worker's integration tests).
type fakeQueue struct {
	mu         sync.Mutex
	sendErr    error
	sent       []*sqs.SendMessageInput
	visibility []int32
}

func (q *fakeQueue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sendErr != nil {
		return nil, q.sendErr
	}
	q.sent = append(q.sent, in)
	return &sqs.SendMessageOutput{}, nil
}

func (q *fakeQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.visibility = append(q.visibility, in.VisibilityTimeout)
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// faultyDB is the journal's table: a fresh one on the local DynamoDB server, whose
// UpdateItem calls fail when failUpdate picks them (an outage for those writes). The engine
// builds its journal on it (Config.DynamoDB and Table), as the worker does.
type faultyDB struct {
	DynamoDB
	table      string
	mu         sync.Mutex
	updates    int
	failUpdate func(n int) bool
}

func store(t *testing.T) *faultyDB {
	t.Helper()
	return &faultyDB{DynamoDB: awstest.DynamoDB(t), table: awstest.NewTable(t)}
}

func (f *faultyDB) configure(c *Config) { c.DynamoDB, c.Table = f, f.table }

func (f *faultyDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.mu.Lock()
	f.updates++
	fail := f.failUpdate != nil && f.failUpdate(f.updates)
	f.mu.Unlock()
	if fail {
		return nil, errors.New("dial tcp: connection refused")
	}
	return f.DynamoDB.UpdateItem(ctx, in, o...)
}

func failUpdates(db *faultyDB, fail func(n int) bool) {
	db.mu.Lock()
	db.updates, db.failUpdate = 0, fail
	db.mu.Unlock()
}

// copyOf is ev as another SQS message (Slack's retry, a continuation): same body, new id.
func copyOf(ev events.SQSEvent, id, receiveCount string) events.SQSEvent {
	rec := ev.Records[0]
	rec.MessageId, rec.Attributes = id, map[string]string{"ApproximateReceiveCount": receiveCount}
	return events.SQSEvent{Records: []events.SQSMessage{rec}}
}

// again is ev received once more (the same SQS message).
func again(ev events.SQSEvent, receiveCount string) events.SQSEvent {
	rec := ev.Records[0]
	rec.Attributes = map[string]string{"ApproximateReceiveCount": receiveCount}
	return events.SQSEvent{Records: []events.SQSMessage{rec}}
}

// handlerFunc is the test's handler for app_mention; calls counts its runs.
type handlerFunc struct {
	calls atomic.Int32
	fn    func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error
}

// journalOf puts a journal in the engine's configuration: a table (*faultyDB) or a Store.
type journalOf interface{ configure(c *Config) }

// storeFunc's configure makes it the engine's Store.
func (f storeFunc) configure(c *Config) { c.Store = f }

// newEngine builds the engine as the worker does (engine.New) around one app_mention route
// named "reply" that runs h; more adjusts the configuration first.
func newEngine(t *testing.T, h *handlerFunc, q *fakeQueue, j journalOf, more ...func(c *Config)) *Engine {
	t.Helper()
	b := relay.NewRouter()
	relay.Event(b, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		h.calls.Add(1)
		if h.fn == nil {
			return nil
		}
		return h.fn(ctx, req)
	}, relay.Name("reply"))
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	client := slack.New("xoxb-unused", slack.OptionAPIURL("http://127.0.0.1:1/api/"))
	cfg := Config{Router: b, Slack: func(context.Context, Tenant) (*slack.Client, error) { return client, nil },
		Queue: q, QueueURL: "q", DLQURL: "dlq", MaxReceiveCount: 5,
		BackoffBase: 10 * time.Second, BackoffMax: time.Minute, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	j.configure(&cfg)
	for _, f := range more {
		f(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var ts atomic.Int64

// mention is an SQS record carrying a fresh app_mention (its own channel ts, so its own key).
func mention(t *testing.T, receiveCount string) events.SQSEvent {
	t.Helper()
	n := ts.Add(1)
	body := fixture.AppMention(fmt.Sprint("Ev", n), "C1", fmt.Sprintf("1700000000.%06d", n), "hi")
	e := envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindEvent, EventType: "app_mention", DedupeKey: "unused",
		ReceivedAt: time.Now().UTC(), ContentType: envelope.ContentTypeJSON, Body: body}
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return events.SQSEvent{Records: []events.SQSMessage{{MessageId: fmt.Sprint("m", n), ReceiptHandle: "rh", Body: string(raw),
		Attributes:        map[string]string{"ApproximateReceiveCount": receiveCount},
		MessageAttributes: map[string]events.SQSMessageAttribute{envelope.AttrKind: {DataType: "String", StringValue: aws.String("event")}}}}}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		herr       error
		receive    string
		failed     bool
		dlqClass   string
		visibility int32
	}{
		{name: "success", receive: "1"},
		{name: "transient backs off", herr: errors.New("reset"), receive: "3", failed: true, visibility: 40},
		{name: "rate limited waits Retry-After", herr: &failure.RateLimitError{Service: "slack", RetryAfter: 7 * time.Second}, receive: "1", failed: true, visibility: 7},
		{name: "Retry-After 0 waits a second", herr: &slack.RateLimitedError{RetryAfter: 0}, receive: "1", failed: true, visibility: 1},
		{name: "Retry-After beyond SQS's limit is clamped", herr: relay.RetryAfter(100*time.Hour, nil), receive: "1", failed: true, visibility: int32((12*time.Hour - visibilityMargin) / time.Second)},
		{name: "permanent", herr: relay.Permanent(errors.New("nope")), receive: "1", dlqClass: envelope.FailureClassPermanent},
		{name: "exhausted", herr: errors.New("reset"), receive: "5", dlqClass: envelope.FailureClassExhausted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := &fakeQueue{}
			h := &handlerFunc{fn: func(context.Context, *relay.Request[slackevents.AppMentionEvent]) error { return tc.herr }}
			p := newEngine(t, h, q, store(t))
			out, _ := p.HandleSQS(context.Background(), mention(t, tc.receive))
			if failed := len(out.BatchItemFailures) == 1; failed != tc.failed {
				t.Fatalf("failed = %v, want %v", failed, tc.failed)
			}
			if tc.visibility != 0 && (len(q.visibility) != 1 || q.visibility[0] != tc.visibility) {
				t.Fatalf("visibility = %v, want [%d]", q.visibility, tc.visibility)
			}
			if tc.dlqClass != "" {
				if len(q.sent) != 1 {
					t.Fatalf("%d DLQ sends, want 1", len(q.sent))
				}
				attrs := q.sent[0].MessageAttributes
				if got := aws.ToString(attrs[envelope.AttrFailureClass].StringValue); got != tc.dlqClass {
					t.Errorf("FailureClass = %q, want %q", got, tc.dlqClass)
				}
				if got := aws.ToString(attrs[envelope.AttrFailedHandler].StringValue); got != "reply" {
					t.Errorf("FailedHandler = %q, want the route name %q", got, "reply")
				}
				if got := aws.ToString(attrs[envelope.AttrKind].StringValue); got != "event" {
					t.Errorf("the receiver's Kind attribute was not kept: %q", got)
				}
			} else if len(q.sent) != 0 {
				t.Fatal("sent to the DLQ")
			}
		})
	}
}

func TestDuplicatesAndBusy(t *testing.T) {
	t.Parallel()
	s := store(t)
	q := &fakeQueue{}
	release := make(chan struct{})
	h := &handlerFunc{fn: func(context.Context, *relay.Request[slackevents.AppMentionEvent]) error { <-release; return nil }}
	p := newEngine(t, h, q, s)
	ev := mention(t, "1")
	done := make(chan events.SQSEventResponse)
	go func() { out, _ := p.HandleSQS(context.Background(), ev); done <- out }()
	for h.calls.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// A concurrent copy (Slack's retry after 3 s, another SQS message) finds the claim held:
	// back after the lease.
	out, _ := p.HandleSQS(context.Background(), copyOf(ev, "retry-1", "1"))
	if len(out.BatchItemFailures) != 1 || len(q.visibility) != 1 || q.visibility[0] < 1 {
		t.Fatalf("busy copy: failures=%v visibility=%v, want one retry after the lease", out.BatchItemFailures, q.visibility)
	}
	// The same on its last receive is never dropped: it goes to the DLQ with its reason.
	if out, _ := p.HandleSQS(context.Background(), copyOf(ev, "retry-1", "5")); len(out.BatchItemFailures) != 0 || len(q.sent) != 1 {
		t.Fatalf("busy copy on its last receive: failures=%v DLQ sends=%d, want it dead-lettered", out.BatchItemFailures, len(q.sent))
	}
	attrs := q.sent[0].MessageAttributes
	if c, r := aws.ToString(attrs[envelope.AttrFailureClass].StringValue), aws.ToString(attrs[envelope.AttrFailureReason].StringValue); c != envelope.FailureClassBusy || !strings.Contains(r, ev.Records[0].MessageId) {
		t.Errorf("busy dead letter: class %q reason %q, want busy naming the holder", c, r)
	}
	close(release)
	if out := <-done; len(out.BatchItemFailures) != 0 {
		t.Fatalf("first delivery failed: %v", out.BatchItemFailures)
	}
	// Later copies (a replay of the dead letter among them) are duplicates: acknowledged,
	// the handler does not run again.
	if out, _ := p.HandleSQS(context.Background(), copyOf(ev, "replay-1", "1")); len(out.BatchItemFailures) != 0 {
		t.Fatalf("duplicate: %v", out.BatchItemFailures)
	}
	if got := h.calls.Load(); got != 1 {
		t.Errorf("handler ran %d times, want 1", got)
	}
}

// A failed attempt does not forget the event: the next delivery — even a new SQS message with
// receive count 1, as Slack's retry or a DLQ replay is — knows it is not the first.
func TestAFailedAttemptIsRemembered(t *testing.T) {
	t.Parallel()
	s := store(t)
	var attempts []int
	h := &handlerFunc{fn: func(_ context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		attempts = append(attempts, req.Attempt())
		if len(attempts) == 1 {
			return errors.New("llm: timeout")
		}
		return nil
	}}
	p := newEngine(t, h, &fakeQueue{}, s)
	ev := mention(t, "1")
	p.HandleSQS(context.Background(), ev)
	p.HandleSQS(context.Background(), copyOf(ev, "fresh", "1")) // a fresh copy: receive count 1 again
	if fmt.Sprint(attempts) != "[1 2]" {
		t.Errorf("attempts seen by the handler = %v, want [1 2]", attempts)
	}
}

func TestStoreDown(t *testing.T) {
	t.Parallel()
	broken := storeFunc(func(context.Context, string, journal.Owner, time.Time) (journal.Claim, error) {
		return journal.Claim{}, errors.New("dial tcp: connection refused")
	})
	for _, tc := range []struct {
		receive  string
		failed   bool
		dlqClass string
	}{{"2", true, ""}, {"5", false, envelope.FailureClassExhausted}} {
		q := &fakeQueue{}
		h := &handlerFunc{}
		p := newEngine(t, h, q, broken)
		out, _ := p.HandleSQS(context.Background(), mention(t, tc.receive))
		if failed := len(out.BatchItemFailures) == 1; failed != tc.failed {
			t.Errorf("receive %s: failed = %v, want %v", tc.receive, failed, tc.failed)
		}
		if h.calls.Load() != 0 {
			t.Errorf("receive %s: the handler ran without the store", tc.receive)
		}
		if tc.dlqClass != "" && (len(q.sent) != 1 || !strings.Contains(aws.ToString(q.sent[0].MessageAttributes[envelope.AttrFailureReason].StringValue), "journal unavailable")) {
			t.Errorf("receive %s: DLQ sends %v, want one saying the store was unavailable", tc.receive, q.sent)
		}
	}
}

type storeFunc func(ctx context.Context, key string, owner journal.Owner, leaseUntil time.Time) (journal.Claim, error)

func (f storeFunc) Claim(ctx context.Context, key string, owner journal.Owner, leaseUntil time.Time) (journal.Claim, error) {
	return f(ctx, key, owner, leaseUntil)
}

func (f storeFunc) Peek(context.Context, string) (bool, error) {
	return false, errors.New("unavailable")
}

func (f storeFunc) PutNote(context.Context, string, string, time.Duration) error {
	return errors.New("unavailable")
}

func (f storeFunc) Note(context.Context, string) (string, error) {
	return "", errors.New("unavailable")
}

func (f storeFunc) DailyCount(context.Context, string) (int64, error) {
	return 0, errors.New("unavailable")
}

func TestDLQSendFailureKeepsTheMessage(t *testing.T) {
	t.Parallel()
	q := &fakeQueue{sendErr: errors.New("throttled")}
	h := &handlerFunc{fn: func(context.Context, *relay.Request[slackevents.AppMentionEvent]) error {
		return relay.Permanent(errors.New("bad"))
	}}
	out, _ := newEngine(t, h, q, store(t)).HandleSQS(context.Background(), mention(t, "1"))
	if len(out.BatchItemFailures) != 1 {
		t.Fatal("a message whose DLQ send failed was reported done (it would be lost)")
	}
}

// A message at SQS's size limit still reaches the DLQ: the reason is cut to fit.
func TestDLQMessageNearTheSizeLimit(t *testing.T) {
	t.Parallel()
	q := &fakeQueue{}
	h := &handlerFunc{fn: func(context.Context, *relay.Request[slackevents.AppMentionEvent]) error {
		return relay.Permanent(errors.New(strings.Repeat("a long reason ", 100)))
	}}
	ev := mention(t, "1")
	rec := &ev.Records[0]
	// Pad the envelope (inside the JSON body, after the event) to just under the limit.
	pad := envelope.MaxSQSMessageBytes - len(rec.Body) - 60
	rec.Body = strings.Replace(rec.Body, `"content_type"`, `"pad":"`+strings.Repeat("x", pad)+`","content_type"`, 1)
	newEngine(t, h, q, store(t)).HandleSQS(context.Background(), ev)
	if len(q.sent) != 1 {
		t.Fatalf("%d DLQ sends, want 1", len(q.sent))
	}
	attrs := map[string]sqstypes.MessageAttributeValue(q.sent[0].MessageAttributes)
	if size := envelope.SQSMessageSize(aws.ToString(q.sent[0].MessageBody), attrs); size > envelope.MaxSQSMessageBytes {
		t.Errorf("DLQ message of %d bytes, over SQS's %d", size, envelope.MaxSQSMessageBytes)
	}
	if aws.ToString(attrs[envelope.AttrFailureClass].StringValue) != envelope.FailureClassPermanent {
		t.Errorf("the failure class was dropped: %v", attrs)
	}
}

func TestPanicIsATransientFailure(t *testing.T) {
	t.Parallel()
	q := &fakeQueue{}
	h := &handlerFunc{fn: func(context.Context, *relay.Request[slackevents.AppMentionEvent]) error { panic("boom") }}
	out, _ := newEngine(t, h, q, store(t)).HandleSQS(context.Background(), mention(t, "1"))
	if len(out.BatchItemFailures) != 1 || len(q.sent) != 0 {
		t.Fatalf("failures=%v DLQ sends=%d, want a retry", out.BatchItemFailures, len(q.sent))
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		wait, since, want time.Duration
	}{
		{0, 0, time.Second},
		{-time.Minute, 0, time.Second},
		{7 * time.Second, time.Minute, 7 * time.Second},
		{13 * time.Hour, 0, 12*time.Hour - visibilityMargin},
		{13 * time.Hour, 2 * time.Hour, 10*time.Hour - visibilityMargin},
		{time.Hour, 12 * time.Hour, time.Second},
	}
	for _, c := range cases {
		if got := retryDelay(c.wait, c.since); got != c.want {
			t.Errorf("retryDelay(%v, %v) = %v, want %v", c.wait, c.since, got, c.want)
		}
	}
}

func TestHandlerDeadlineLeavesMargin(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	if got := now.Add(60 * time.Second).Sub(handlerDeadline(now.Add(60*time.Second), now)); got != 2*time.Second {
		t.Errorf("margin of a 60 s deadline = %v, want 2s", got)
	}
	if got := now.Add(5 * time.Second).Sub(handlerDeadline(now.Add(5*time.Second), now)); got != 500*time.Millisecond {
		t.Errorf("margin of a 5 s deadline = %v, want 500ms", got)
	}
}

// A missing secret (the bot token's parameter) fails before the handler runs — no model
// call is spent — as its own class: retried with backoff, then dead-lettered as "config"
// with a reason that says so.
func TestMissingSecretIsAConfigurationFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		receive  string
		dlqClass string
	}{{"2", ""}, {"5", envelope.FailureClassConfig}} {
		q := &fakeQueue{}
		h := &handlerFunc{}
		p := newEngine(t, h, q, store(t), func(c *Config) {
			c.Slack = func(context.Context, Tenant) (*slack.Client, error) {
				return nil, fmt.Errorf("bot token: %w", &secrets.NotFoundError{Params: []string{"/slackrelay/prod/bot-token"}})
			}
		})
		out, _ := p.HandleSQS(context.Background(), mention(t, tc.receive))
		if h.calls.Load() != 0 {
			t.Errorf("receive %s: the handler ran without the bot token", tc.receive)
		}
		if tc.dlqClass == "" {
			if len(out.BatchItemFailures) != 1 || len(q.sent) != 0 || len(q.visibility) != 1 {
				t.Errorf("receive %s: failures=%d DLQ=%d visibility=%v, want a retry with backoff", tc.receive, len(out.BatchItemFailures), len(q.sent), q.visibility)
			}
			continue
		}
		if len(q.sent) != 1 {
			t.Fatalf("receive %s: %d DLQ sends, want 1", tc.receive, len(q.sent))
		}
		attrs := q.sent[0].MessageAttributes
		if got := aws.ToString(attrs[envelope.AttrFailureClass].StringValue); got != tc.dlqClass {
			t.Errorf("FailureClass = %q, want %q", got, tc.dlqClass)
		}
		if reason := aws.ToString(attrs[envelope.AttrFailureReason].StringValue); !strings.HasPrefix(reason, "configuration: ") || !strings.Contains(reason, "/slackrelay/prod/bot-token") {
			t.Errorf("FailureReason = %q, want it to say configuration and name the parameter", reason)
		}
	}
}

// The failure of issue 2: an attempt fails and its Release cannot be written (the store is
// down), and the message comes back on its last receive, long before its lease ends. It takes
// its own claim over at once and answers; nothing is lost.
func TestFailedReleaseIsTakenOverByTheSameMessage(t *testing.T) {
	t.Parallel()
	s := store(t)
	q := &fakeQueue{}
	h := &handlerFunc{}
	h.fn = func(context.Context, *relay.Request[slackevents.AppMentionEvent]) error {
		if h.calls.Load() == 1 {
			failUpdates(s, func(n int) bool { return true }) // the store goes down: the release fails
			return &slack.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}
		}
		return nil
	}
	p := newEngine(t, h, q, s, func(c *Config) { c.MaxReceiveCount = 2 })
	ev := mention(t, "1")
	if out, _ := p.HandleSQS(context.Background(), ev); len(out.BatchItemFailures) != 1 {
		t.Fatalf("first receive: %v, want a retry", out.BatchItemFailures)
	}
	failUpdates(s, nil)
	if out, _ := p.HandleSQS(context.Background(), again(ev, "2")); len(out.BatchItemFailures) != 0 || len(q.sent) != 0 {
		t.Fatalf("last receive: failures=%v DLQ sends=%d, want it answered", out.BatchItemFailures, len(q.sent))
	}
	if h.calls.Load() != 2 {
		t.Errorf("handler ran %d times, want 2", h.calls.Load())
	}
}

// An attempt that made progress and must stop for its invocation's end hands the event to a
// copy of its message, sent at once, and is acknowledged; the copy resumes.
func TestContinuationQueuesACopyThatResumes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		yield func(ctx context.Context) error
	}{
		{"the handler yields", func(context.Context) error { return fmt.Errorf("answer so far: %w", failure.ErrContinue) }},
		{"the deadline cuts the handler", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := &fakeQueue{}
			var seen []int
			h := &handlerFunc{fn: func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
				seen = append(seen, req.Attempt())
				if req.Attempt() == 1 {
					if _, err := req.Reply(ctx, "part one"); err == nil {
						t.Error("the reply reached an unreachable Slack")
					}
					return tc.yield(ctx)
				}
				return nil
			}}
			p := newEngine(t, h, q, store(t))
			ev := mention(t, "1")
			ev.Records[0].Attributes["MessageGroupId"] = "T1"
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			if out, _ := p.HandleSQS(ctx, ev); len(out.BatchItemFailures) != 0 {
				t.Fatalf("continued attempt: %v, want it acknowledged", out.BatchItemFailures)
			}
			if len(q.sent) != 1 || aws.ToString(q.sent[0].QueueUrl) != "q" || aws.ToString(q.sent[0].MessageBody) != ev.Records[0].Body {
				t.Fatalf("sends %v, want one copy of the message to the events queue", q.sent)
			}
			if got := aws.ToString(q.sent[0].MessageGroupId); got != "T1" {
				t.Fatalf("the copy's MessageGroupId = %q, want the tenant's T1", got)
			}
			if out, _ := p.HandleSQS(context.Background(), copyOf(ev, "cont-1", "1")); len(out.BatchItemFailures) != 0 {
				t.Fatalf("continuation: %v", out.BatchItemFailures)
			}
			if fmt.Sprint(seen) != "[1 2]" {
				t.Errorf("attempts %v, want [1 2]", seen)
			}
		})
	}
}

// An event whose work has gone on longer than MaxAnswerDuration is not continued forever.
func TestContinuationStopsAfterMaxAnswerDuration(t *testing.T) {
	t.Parallel()
	q := &fakeQueue{}
	h := &handlerFunc{fn: func(context.Context, *relay.Request[slackevents.AppMentionEvent]) error {
		return fmt.Errorf("still going: %w", failure.ErrContinue)
	}}
	p := newEngine(t, h, q, store(t), func(c *Config) { c.MaxAnswerDuration = time.Nanosecond })
	out, _ := p.HandleSQS(context.Background(), mention(t, "1"))
	if len(out.BatchItemFailures) != 1 || len(q.sent) != 0 || len(q.visibility) != 1 {
		t.Fatalf("failures=%v sends=%d visibility=%v, want an ordinary retry", out.BatchItemFailures, len(q.sent), q.visibility)
	}
}

// An event older than the journal's retention is not answered (its record may be gone): it
// is dead-lettered as stale, unless its record says it was answered.
func TestStaleEventsAreNotAnswered(t *testing.T) {
	t.Parallel()
	s := store(t)
	q := &fakeQueue{}
	h := &handlerFunc{}
	p := newEngine(t, h, q, s, func(c *Config) { c.MaxEventAge = time.Hour })
	ev := mention(t, "1")
	// Answered while fresh, replayed late: a duplicate.
	if out, _ := p.HandleSQS(context.Background(), ev); len(out.BatchItemFailures) != 0 {
		t.Fatal(out.BatchItemFailures)
	}
	old := func(ev events.SQSEvent) events.SQSEvent {
		var e envelope.Envelope
		if err := json.Unmarshal([]byte(ev.Records[0].Body), &e); err != nil {
			t.Fatal(err)
		}
		e.ReceivedAt = time.Now().Add(-2 * time.Hour)
		raw, _ := json.Marshal(e)
		ev.Records[0].Body = string(raw)
		return ev
	}
	if out, _ := p.HandleSQS(context.Background(), old(copyOf(ev, "late", "1"))); len(out.BatchItemFailures) != 0 || len(q.sent) != 0 {
		t.Fatalf("late copy of an answered event: failures=%v DLQ=%d, want a duplicate", out.BatchItemFailures, len(q.sent))
	}
	// Never answered: to the DLQ, the handler not run.
	if out, _ := p.HandleSQS(context.Background(), old(mention(t, "1"))); len(out.BatchItemFailures) != 0 || len(q.sent) != 1 {
		t.Fatalf("stale event: failures=%v DLQ=%d", out.BatchItemFailures, len(q.sent))
	}
	if c := aws.ToString(q.sent[0].MessageAttributes[envelope.AttrFailureClass].StringValue); c != envelope.FailureClassStale {
		t.Errorf("class %q, want stale", c)
	}
	if h.calls.Load() != 1 {
		t.Errorf("handler ran %d times, want 1 (the fresh event only)", h.calls.Load())
	}
}

// Completion that cannot be written leaves the message to come back: an event is finished
// when its record says so.
func TestCompletionFailureIsRetried(t *testing.T) {
	t.Parallel()
	s := store(t)
	q := &fakeQueue{}
	h := &handlerFunc{}
	p := newEngine(t, h, q, s)
	h.fn = func(context.Context, *relay.Request[slackevents.AppMentionEvent]) error {
		failUpdates(s, func(int) bool { return true })
		return nil
	}
	ev := mention(t, "1")
	if out, _ := p.HandleSQS(context.Background(), ev); len(out.BatchItemFailures) != 1 {
		t.Fatalf("failed completion: %v, want a retry", out.BatchItemFailures)
	}
	failUpdates(s, nil)
	h.fn = nil
	if out, _ := p.HandleSQS(context.Background(), again(ev, "2")); len(out.BatchItemFailures) != 0 {
		t.Fatalf("retry: %v", out.BatchItemFailures)
	}
	if out, _ := p.HandleSQS(context.Background(), copyOf(ev, "dup", "1")); len(out.BatchItemFailures) != 0 || h.calls.Load() != 2 {
		t.Fatalf("duplicate after completion: failures=%v handler runs=%d, want 2", out.BatchItemFailures, h.calls.Load())
	}
}

// New refuses a configuration the engine cannot run with, naming what is missing.
func TestNewChecksTheConfig(t *testing.T) {
	t.Parallel()
	slackFn := func(context.Context, Tenant) (*slack.Client, error) { return nil, nil }
	full := func() Config {
		return Config{Router: relay.NewRouter(), Slack: slackFn, Queue: &fakeQueue{}, QueueURL: "q", DLQURL: "d", Store: &journal.Memory{}}
	}
	for _, tc := range []struct {
		want string
		edit func(c *Config)
	}{
		{"Router", func(c *Config) { c.Router = nil }},
		{"Slack", func(c *Config) { c.Slack = nil }},
		{"DLQURL", func(c *Config) { c.DLQURL = "" }},
		{"Table", func(c *Config) { c.Store = nil }},
	} {
		c := full()
		tc.edit(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New without %s: %v, want an error naming it", tc.want, err)
		}
	}
	if _, err := New(full()); err != nil {
		t.Errorf("New with a full configuration: %v", err)
	}
}

package processor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/handler"
	"github.com/slackrelay/slackrelay/worker/idempotency"
)

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

type fakeClaims struct {
	outcome  idempotency.Outcome
	lease    time.Time
	err      error
	released int
	done     int
}

func (c *fakeClaims) Claim(context.Context, string, string, time.Time) (idempotency.Claim, error) {
	return idempotency.Claim{Outcome: c.outcome, LeaseUntil: c.lease}, c.err
}
func (c *fakeClaims) Complete(context.Context, string, string) error { c.done++; return nil }
func (c *fakeClaims) Release(context.Context, string, string) error  { c.released++; return nil }

var now = time.Unix(1_700_000_000, 0)

func newProc(h handler.Handler, q *fakeQueue, c *fakeClaims) *Processor {
	r := &handler.Router{}
	r.Register(envelope.KindEvent, "app_mention", "reply", h)
	return &Processor{Router: r, Claims: c, Queue: q, QueueURL: "q", DLQURL: "dlq", MaxReceiveCount: 5,
		BackoffBase: 10 * time.Second, BackoffMax: time.Minute, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return now }}
}

func record(receiveCount string) events.SQSEvent {
	e := envelope.Envelope{Version: 1, ID: "id1", Kind: envelope.KindEvent, EventType: "app_mention", DedupeKey: "k", Body: "{}", ContentType: envelope.ContentTypeJSON}
	return events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", ReceiptHandle: "rh", Body: string(e.AppendJSON(nil)),
		Attributes:        map[string]string{"ApproximateReceiveCount": receiveCount},
		MessageAttributes: map[string]events.SQSMessageAttribute{envelope.AttrKind: {DataType: "String", StringValue: aws.String("event")}}}}}
}

func TestOutcomes(t *testing.T) {
	cases := []struct {
		name       string
		herr       error
		receive    string
		claims     fakeClaims
		failed     bool
		dlqClass   string
		visibility int32
	}{
		{name: "success", claims: fakeClaims{outcome: idempotency.Claimed}, receive: "1"},
		{name: "duplicate", claims: fakeClaims{outcome: idempotency.Done}, receive: "1"},
		{name: "busy waits for the lease", claims: fakeClaims{outcome: idempotency.Busy, lease: now.Add(20 * time.Second)}, receive: "1", failed: true, visibility: 21},
		{name: "store down", claims: fakeClaims{err: errors.New("dial")}, receive: "2", failed: true, visibility: 20},
		{name: "store down on the last attempt", claims: fakeClaims{err: errors.New("dial")}, receive: "5", dlqClass: envelope.FailureClassExhausted},
		{name: "busy on the last attempt drops the copy", claims: fakeClaims{outcome: idempotency.Busy, lease: now.Add(20 * time.Second)}, receive: "5"},
		{name: "transient backs off", herr: errors.New("reset"), claims: fakeClaims{outcome: idempotency.Claimed}, receive: "3", failed: true, visibility: 40},
		{name: "rate limited", herr: &failure.RateLimitError{Service: "slack", RetryAfter: 7 * time.Second}, claims: fakeClaims{outcome: idempotency.Claimed}, receive: "1", failed: true, visibility: 7},
		{name: "permanent", herr: failure.Permanentf("nope"), claims: fakeClaims{outcome: idempotency.Claimed}, receive: "1", dlqClass: envelope.FailureClassPermanent},
		{name: "exhausted", herr: errors.New("reset"), claims: fakeClaims{outcome: idempotency.Claimed}, receive: "5", dlqClass: envelope.FailureClassExhausted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := &fakeQueue{}
			c := tc.claims
			p := newProc(handler.Func(func(context.Context, *handler.Message) error { return tc.herr }), q, &c)
			out, _ := p.HandleSQS(context.Background(), record(tc.receive))
			if failed := len(out.BatchItemFailures) == 1; failed != tc.failed {
				t.Fatalf("failed = %v, want %v", failed, tc.failed)
			}
			if tc.visibility != 0 && (len(q.visibility) != 1 || q.visibility[0] != tc.visibility) {
				t.Fatalf("visibility = %v, want %d", q.visibility, tc.visibility)
			}
			if tc.dlqClass != "" {
				if len(q.sent) != 1 || aws.ToString(q.sent[0].MessageAttributes[envelope.AttrFailureClass].StringValue) != tc.dlqClass ||
					aws.ToString(q.sent[0].MessageAttributes[envelope.AttrKind].StringValue) != "event" {
					t.Fatalf("DLQ sends = %+v", q.sent)
				}
			} else if len(q.sent) != 0 {
				t.Fatal("sent to the DLQ")
			}
			if tc.herr != nil && c.released != 1 {
				t.Fatal("claim not released after a failure")
			}
			if tc.herr == nil && c.outcome == idempotency.Claimed && c.done != 1 {
				t.Fatal("claim not completed after success")
			}
		})
	}
}

func TestDLQSendFailureKeepsTheMessage(t *testing.T) {
	q := &fakeQueue{sendErr: errors.New("throttled")}
	p := newProc(handler.Func(func(context.Context, *handler.Message) error { return failure.Permanentf("bad") }), q, &fakeClaims{outcome: idempotency.Claimed})
	out, _ := p.HandleSQS(context.Background(), record("1"))
	if len(out.BatchItemFailures) != 1 {
		t.Fatal("a message whose DLQ send failed was reported done (it would be lost)")
	}
}

func TestPanicIsATransientFailure(t *testing.T) {
	q := &fakeQueue{}
	p := newProc(handler.Func(func(context.Context, *handler.Message) error { panic("boom") }), q, &fakeClaims{outcome: idempotency.Claimed})
	out, _ := p.HandleSQS(context.Background(), record("1"))
	if len(out.BatchItemFailures) != 1 || len(q.sent) != 0 {
		t.Fatalf("%+v", out)
	}
}

func TestHandlerDeadlineLeavesMargin(t *testing.T) {
	d := handlerDeadline(now.Add(60*time.Second), now)
	if got := now.Add(60 * time.Second).Sub(d); got != 2*time.Second {
		t.Fatalf("margin %v", got)
	}
	d = handlerDeadline(now.Add(5*time.Second), now)
	if got := now.Add(5 * time.Second).Sub(d); got != 500*time.Millisecond {
		t.Fatalf("margin %v", got)
	}
}

// Package processor is the worker's batch handler: it takes an SQS batch (from Lambda's event
// source mapping or the local poller), runs each message's handler once per dedupe key,
// and decides per message: done, retry later (backoff or Retry-After), or DLQ with a reason.
package processor

import (
	"context"

	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/logging"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/handler"
	"github.com/slackrelay/slackrelay/worker/idempotency"
)

// Queue is the SQS calls the processor makes; *sqs.Client satisfies it.
type Queue interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Claims is the idempotency store; *idempotency.Store satisfies it.
type Claims interface {
	Claim(ctx context.Context, key, owner string, leaseUntil time.Time) (idempotency.Claim, error)
	Complete(ctx context.Context, key, owner string) error
	Release(ctx context.Context, key, owner string) error
}

var (
	_ Queue  = (*sqs.Client)(nil)
	_ Claims = (*idempotency.Store)(nil)
)

// Processor handles SQS batches.
type Processor struct {
	Router          *handler.Router
	Claims          Claims
	Queue           Queue
	QueueURL        string
	DLQURL          string
	MaxReceiveCount int
	BackoffBase     time.Duration
	BackoffMax      time.Duration
	// Concurrency bounds the messages of one batch that run at once (default 10).
	Concurrency int
	// DefaultTimeout is the deadline when the context has none (default 60s).
	DefaultTimeout time.Duration
	Log            *slog.Logger
	Metrics        *metrics.Emitter
	Now            func() time.Time
}

// maxVisibility is SQS's limit for ChangeMessageVisibility (12 hours).
const maxVisibility = 12 * time.Hour

// maxReasonBytes bounds the FailureReason attribute.
const maxReasonBytes = 1024

func (p *Processor) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// HandleSQS processes a batch and reports the messages that must come back
// (ReportBatchItemFailures). Messages run concurrently, each under the invocation deadline.
func (p *Processor) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	n := p.Concurrency
	if n <= 0 {
		n = 10
	}
	if _, ok := ctx.Deadline(); !ok {
		timeout := p.DefaultTimeout
		if timeout <= 0 {
			timeout = 60 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	sem := make(chan struct{}, n)
	var mu sync.Mutex
	var resp events.SQSEventResponse
	var wg sync.WaitGroup
	for i := range ev.Records {
		rec := &ev.Records[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if !p.process(ctx, rec) {
				mu.Lock()
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return resp, nil
}

// process handles one record and reports whether it is finished (true) or must come back.
func (p *Processor) process(ctx context.Context, rec *events.SQSMessage) bool {
	start := p.now()
	receiveCount, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	env, err := envelope.Decode([]byte(rec.Body))
	if err != nil {
		log := p.Log.With(logging.KeyRequestID, rec.MessageId)
		log.Error("undecodable message", "error", err.Error())
		return p.toDLQ(ctx, log, rec, envelope.FailureClassPermanent, "decode", err)
	}
	log := logging.WithEnvelope(p.Log, rec.MessageId, env).With("receive_count", receiveCount, "dedupe_key", env.DedupeKey)
	route, ok := p.Router.Lookup(env)
	if !ok {
		log.Info("no handler for this event type; acknowledged", "event_type", env.EventType)
		p.Metrics.Count("Unrouted", 1)
		return true
	}
	log = log.With("handler", route.Name)

	deadline, _ := ctx.Deadline()
	owner := envelope.NewID()
	claim, err := p.Claims.Claim(ctx, env.DedupeKey, owner, deadline)
	if err != nil {
		// Without the store nothing may be posted: try again later.
		p.Metrics.Count("StoreErrors", 1)
		if p.lastAttempt(receiveCount) {
			log.Error("idempotency store unavailable on the last attempt; moving to the DLQ", "error", err.Error())
			return p.toDLQ(ctx, log, rec, envelope.FailureClassExhausted, "idempotency", err)
		}
		log.Error("idempotency store unavailable; will retry", "error", err.Error())
		return p.retryLater(ctx, log, rec, failure.Backoff(receiveCount, p.BackoffBase, p.BackoffMax))
	}
	switch claim.Outcome {
	case idempotency.Done:
		log.Info("duplicate delivery: already answered")
		p.Metrics.Count("Duplicates", 1)
		return true
	case idempotency.Busy:
		if p.lastAttempt(receiveCount) {
			// The delivery holding the claim is a message of its own that SQS returns if that
			// attempt fails; this copy adds nothing, and letting SQS dead-letter it would
			// leave an operator a message without a reason.
			log.Warn("another delivery still holds this event on this copy's last attempt; dropping the copy")
			p.Metrics.Count("Busy", 1)
			return true
		}
		wait := claim.LeaseUntil.Sub(p.now()) + time.Second
		log.Info("another worker is handling this event; will look again after its lease", "lease_until", claim.LeaseUntil)
		p.Metrics.Count("Busy", 1)
		return p.retryLater(ctx, log, rec, wait)
	}

	m := &handler.Message{
		Envelope:      env,
		ReceiveCount:  receiveCount,
		MaybeAnswered: claim.Outcome == idempotency.TakenOver || receiveCount > 1,
		Log:           log,
	}
	hctx, cancel := context.WithDeadline(ctx, handlerDeadline(deadline, p.now()))
	err = runHandler(hctx, route.Handler, m)
	cancel()
	took := p.now().Sub(start)
	p.Metrics.Milliseconds("HandlerDuration", took, metrics.Dim{Name: "Handler", Value: route.Name})
	if err == nil {
		if cerr := p.Claims.Complete(context.WithoutCancel(ctx), env.DedupeKey, owner); cerr != nil {
			// The reply is out; the claim expires with its lease and a later duplicate
			// finds the reply in the thread (MaybeAnswered). Do not run the handler again.
			log.Warn("replied, but could not mark the event answered", "error", cerr.Error())
		}
		log.Info("processed", "took_ms", took.Milliseconds())
		p.Metrics.Count("Processed", 1, metrics.Dim{Name: "Handler", Value: route.Name})
		return true
	}
	if rerr := p.Claims.Release(context.WithoutCancel(ctx), env.DedupeKey, owner); rerr != nil {
		log.Warn("could not release the claim; the retry waits for its lease", "error", rerr.Error())
	}
	class, after := failure.Classify(err)
	log = log.With("error", err.Error(), "class", class.String(), "took_ms", took.Milliseconds())
	p.Metrics.Count("HandlerErrors", 1, metrics.Dim{Name: "Class", Value: class.String()})
	switch {
	case class == failure.Permanent:
		log.Error("permanent failure; moving to the DLQ")
		return p.toDLQ(ctx, log, rec, envelope.FailureClassPermanent, route.Name, err)
	case p.lastAttempt(receiveCount):
		log.Error("out of retries; moving to the DLQ")
		return p.toDLQ(ctx, log, rec, envelope.FailureClassExhausted, route.Name, err)
	case class == failure.RateLimited:
		log.Warn("rate limited; retrying after Retry-After", "retry_after", after.String())
		return p.retryLater(ctx, log, rec, after)
	default:
		wait := failure.Backoff(receiveCount, p.BackoffBase, p.BackoffMax)
		log.Warn("transient failure; retrying with backoff", "backoff", wait.String())
		return p.retryLater(ctx, log, rec, wait)
	}
}

// lastAttempt reports whether SQS would dead-letter this message on its next receive.
func (p *Processor) lastAttempt(receiveCount int) bool {
	return p.MaxReceiveCount > 0 && receiveCount >= p.MaxReceiveCount
}

// handlerDeadline leaves the processor a little time after the handler to report.
func handlerDeadline(deadline, now time.Time) time.Time {
	margin := deadline.Sub(now) / 10
	if margin > 2*time.Second {
		margin = 2 * time.Second
	}
	return deadline.Add(-margin)
}

func runHandler(ctx context.Context, h handler.Handler, m *handler.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			m.Log.Error("handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h.Handle(ctx, m)
}

// retryLater makes the message visible again after wait and reports it as failed.
func (p *Processor) retryLater(ctx context.Context, log *slog.Logger, rec *events.SQSMessage, wait time.Duration) bool {
	if wait < 0 {
		wait = 0
	}
	if wait > maxVisibility {
		wait = maxVisibility
	}
	secs := int32((wait + time.Second - 1) / time.Second)
	_, err := p.Queue.ChangeMessageVisibility(context.WithoutCancel(ctx), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(p.QueueURL), ReceiptHandle: aws.String(rec.ReceiptHandle), VisibilityTimeout: secs,
	})
	if err != nil {
		// The message still comes back after the queue's visibility timeout.
		log.Warn("could not set the retry delay; the queue's visibility timeout applies", "error", err.Error())
	}
	return false
}

// toDLQ sends the message to the DLQ with the failure attributes. It reports true (finished)
// only when the send succeeded, so a failed send leaves the message on the events queue.
func (p *Processor) toDLQ(ctx context.Context, log *slog.Logger, rec *events.SQSMessage, class, handlerName string, cause error) bool {
	attrs := make(map[string]sqstypes.MessageAttributeValue, len(rec.MessageAttributes)+4)
	for name, a := range rec.MessageAttributes {
		v := sqstypes.MessageAttributeValue{DataType: aws.String(a.DataType)}
		if a.StringValue != nil {
			v.StringValue = aws.String(*a.StringValue)
		} else if a.BinaryValue != nil {
			v.BinaryValue = a.BinaryValue
		} else {
			continue
		}
		attrs[name] = v
	}
	str := func(s string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
	}
	attrs[envelope.AttrFailureReason] = str(truncate(cause.Error(), maxReasonBytes))
	attrs[envelope.AttrFailureClass] = str(class)
	attrs[envelope.AttrFailedHandler] = str(handlerName)
	attrs[envelope.AttrFailedAt] = str(p.now().UTC().Format(time.RFC3339))
	_, err := p.Queue.SendMessage(context.WithoutCancel(ctx), &sqs.SendMessageInput{
		QueueUrl: aws.String(p.DLQURL), MessageBody: aws.String(rec.Body), MessageAttributes: attrs,
	})
	if err != nil {
		log.Error("could not send to the DLQ; the message stays on the events queue", "dlq_error", err.Error())
		p.Metrics.Count("DLQSendErrors", 1)
		return false
	}
	p.Metrics.Count("DeadLettered", 1, metrics.Dim{Name: "Class", Value: class})
	return true
}

func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

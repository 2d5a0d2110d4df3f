// Package processor is the worker's batch handler: it takes an SQS batch (from Lambda's event
// source mapping or the local poller) and, for each message, decides before anything is
// claimed whether a route wants it (relay.Bot.Dispatch), claims its dedupe key in the progress
// record, runs the handler, and then settles the message: done, retry later (backoff or
// Retry-After), or DLQ with a reason.
package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/logging"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/progress"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// Queue is the SQS calls the processor makes; *sqs.Client satisfies it.
type Queue interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Store is the progress record; *progress.Store satisfies it.
type Store interface {
	Claim(ctx context.Context, key, owner string, leaseUntil time.Time) (progress.Claim, error)
}

var (
	_ Queue = (*sqs.Client)(nil)
	_ Store = (*progress.Store)(nil)
)

// Processor handles SQS batches.
type Processor struct {
	Bot             *relay.Bot
	Runtime         *relay.Runtime
	Store           Store
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

// SQS limits on visibility: a message may stay invisible at most 12 hours from its receive.
const (
	maxVisibility = 12 * time.Hour
	minRetryDelay = time.Second
	// visibilityMargin keeps a requested visibility clear of the 12-hour limit, for the time
	// between SQS's receive and the start of this invocation.
	visibilityMargin = 30 * time.Second
)

func (p *Processor) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// HandleSQS processes a batch and reports the messages that must come back
// (ReportBatchItemFailures). Messages run concurrently, each under the invocation deadline.
func (p *Processor) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	received := p.now()
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
			m := &message{p: p, rec: rec, received: received}
			if !m.process(ctx) {
				mu.Lock()
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return resp, nil
}

// message is one record on its way through the processor.
type message struct {
	p            *Processor
	rec          *events.SQSMessage
	received     time.Time
	receiveCount int
	log          *slog.Logger
}

// process handles one record and reports whether it is finished (true) or must come back.
func (m *message) process(ctx context.Context) bool {
	p := m.p
	start := p.now()
	m.receiveCount, _ = strconv.Atoi(m.rec.Attributes["ApproximateReceiveCount"])
	env, err := envelope.Decode([]byte(m.rec.Body))
	if err != nil {
		m.log = p.Log.With(logging.KeyRequestID, m.rec.MessageId)
		m.log.Error("undecodable message", "error", err.Error())
		return m.toDLQ(ctx, envelope.FailureClassPermanent, "decode", err)
	}
	m.log = logging.WithEnvelope(p.Log, m.rec.MessageId, env).With("receive_count", m.receiveCount)

	// Decide before claiming: a delivery no route wants, or one its route declines, never
	// touches the dedupe key (its twin may need it).
	d, err := p.Bot.Dispatch(ctx, p.Runtime, env)
	if err != nil {
		return m.failed(ctx, "dispatch", err, 0)
	}
	if d.Route == "" {
		m.log.Info("no route for this delivery; acknowledged", "type", d.Type)
		p.Metrics.Count("Unrouted", 1)
		return true
	}
	m.log = m.log.With("route", d.Route, "dedupe_key", d.Key)
	if d.Skip != "" {
		m.log.Info("route declined the delivery; acknowledged without claiming", "why", d.Skip)
		p.Metrics.Count("Skipped", 1, metrics.Dim{Name: "Route", Value: d.Route})
		return true
	}

	deadline, _ := ctx.Deadline()
	claim, err := p.Store.Claim(ctx, d.Key, envelope.NewID(), deadline)
	if err != nil {
		// Without the record nothing may be posted: try again later.
		p.Metrics.Count("StoreErrors", 1)
		return m.failed(ctx, "progress-store", fmt.Errorf("progress store unavailable: %w", failure.Retryable(err)), 0)
	}
	switch claim.Outcome {
	case progress.Done:
		m.log.Info("duplicate delivery: already answered")
		p.Metrics.Count("Duplicates", 1)
		return true
	case progress.Busy:
		p.Metrics.Count("Busy", 1)
		if m.lastAttempt() {
			// The delivery holding the claim is a message of its own that comes back if that
			// attempt fails; this copy adds nothing, and letting SQS dead-letter it would leave
			// an operator a message without a reason.
			m.log.Warn("another delivery holds this event on this copy's last attempt; dropping the copy")
			return true
		}
		m.log.Info("another delivery is handling this event; looking again after its lease", "lease_until", claim.LeaseUntil)
		return m.retryLater(ctx, claim.LeaseUntil.Sub(p.now())+time.Second)
	}

	lease := claim.Lease
	m.log = m.log.With("attempt", lease.Attempt())
	if lease.Attempt() > 1 {
		m.log.Info("resuming an event an earlier attempt did not finish", "last_error", lease.LastError())
	}
	hctx, cancel := context.WithDeadline(ctx, handlerDeadline(deadline, p.now()))
	err = run(hctx, d, p.Runtime, lease, m.log)
	cancel()
	took := p.now().Sub(start)
	p.Metrics.Milliseconds("HandlerDuration", took, metrics.Dim{Name: "Route", Value: d.Route})
	if err == nil {
		if cerr := lease.Complete(context.WithoutCancel(ctx)); cerr != nil {
			// Everything was delivered and recorded step by step; a later copy finds every
			// step done and posts nothing.
			m.log.Warn("handled, but could not mark the event completed", "error", cerr.Error())
		}
		m.log.Info("processed", "took_ms", took.Milliseconds())
		p.Metrics.Count("Processed", 1, metrics.Dim{Name: "Route", Value: d.Route})
		return true
	}
	if errors.Is(err, progress.ErrNotOwner) {
		m.log.Warn("another delivery took this event over (this one ran past its lease); leaving it to that one", "error", err.Error())
		p.Metrics.Count("LeaseLost", 1)
		return true
	}
	if rerr := lease.Release(context.WithoutCancel(ctx), err.Error()); rerr != nil {
		m.log.Warn("could not release the claim; the next attempt waits for its lease", "error", rerr.Error())
	}
	return m.failed(ctx, d.Route, err, took)
}

// failed settles a message whose handling failed with err: DLQ, or back to the queue.
func (m *message) failed(ctx context.Context, stage string, err error, took time.Duration) bool {
	p := m.p
	class, after := failure.Classify(err)
	m.log = m.log.With("error", err.Error(), "class", class.String(), "took_ms", took.Milliseconds())
	p.Metrics.Count("HandlerErrors", 1, metrics.Dim{Name: "Class", Value: class.String()})
	switch {
	case class == failure.Permanent:
		m.log.Error("permanent failure; moving to the DLQ")
		return m.toDLQ(ctx, envelope.FailureClassPermanent, stage, err)
	case class == failure.Config && m.lastAttempt():
		m.log.Error("configuration error on the last attempt; moving to the DLQ (fix it, then replay)")
		return m.toDLQ(ctx, envelope.FailureClassConfig, stage, fmt.Errorf("configuration: %w", err))
	case m.lastAttempt():
		m.log.Error("out of retries; moving to the DLQ")
		return m.toDLQ(ctx, envelope.FailureClassExhausted, stage, err)
	case class == failure.Config:
		wait := failure.Backoff(m.receiveCount, p.BackoffBase, p.BackoffMax)
		m.log.Error("configuration error: something the worker needs is missing; retrying with backoff", "backoff", wait.String())
		return m.retryLater(ctx, wait)
	case class == failure.RateLimited:
		m.log.Warn("rate limited; retrying after Retry-After", "retry_after", after.String())
		return m.retryLater(ctx, after)
	default:
		wait := failure.Backoff(m.receiveCount, p.BackoffBase, p.BackoffMax)
		m.log.Warn("transient failure; retrying with backoff", "backoff", wait.String())
		return m.retryLater(ctx, wait)
	}
}

// lastAttempt reports whether SQS would dead-letter this message on its next receive.
func (m *message) lastAttempt() bool {
	return m.p.MaxReceiveCount > 0 && m.receiveCount >= m.p.MaxReceiveCount
}

// handlerDeadline leaves the processor a little time after the handler to report.
func handlerDeadline(deadline, now time.Time) time.Time {
	margin := deadline.Sub(now) / 10
	if margin > 2*time.Second {
		margin = 2 * time.Second
	}
	return deadline.Add(-margin)
}

func run(ctx context.Context, d *relay.Delivery, rt *relay.Runtime, lease *progress.Lease, log *slog.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return d.Run(ctx, rt, lease, log)
}

// retryDelay clamps a wanted delay to what SQS accepts for this receive: at least a second
// (a zero Retry-After must not burn the retries in a burst), at most 12 hours since the
// message was received, less a margin.
func retryDelay(wait, sinceReceive time.Duration) time.Duration {
	ceiling := maxVisibility - sinceReceive - visibilityMargin
	if wait > ceiling {
		wait = ceiling
	}
	if wait < minRetryDelay {
		wait = minRetryDelay
	}
	return wait
}

// retryLater makes the message visible again after wait and reports it as failed.
func (m *message) retryLater(ctx context.Context, wait time.Duration) bool {
	wait = retryDelay(wait, m.p.now().Sub(m.received))
	secs := int32((wait + time.Second - 1) / time.Second)
	_, err := m.p.Queue.ChangeMessageVisibility(context.WithoutCancel(ctx), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(m.p.QueueURL), ReceiptHandle: aws.String(m.rec.ReceiptHandle), VisibilityTimeout: secs,
	})
	if err != nil {
		// The message still comes back after the queue's visibility timeout.
		m.log.Warn("could not set the retry delay; the queue's visibility timeout applies", "error", err.Error())
	}
	return false
}

// Package engine is the one pipeline every queue message goes through, the same in the
// worker Lambda, the local poller and the handler test helper (relay/relaytest): decode the
// envelope, route it (the bot's relay.Router decides before anything is claimed), claim its
// dedupe key in the journal, run the handler, classify a failure, then settle the message:
// completed, released to retry later (backoff or Retry-After), continued in a new delivery,
// or dead-lettered with a reason. Bot code does not use it: package worker builds it.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"io"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/logging"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/internal/core"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
	"github.com/slackrelay/slackrelay/worker/internal/journal"
)

// Queue is the SQS calls the engine makes; *sqs.Client satisfies it.
type Queue interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// DynamoDB is the part of the DynamoDB API the journal uses; *dynamodb.Client satisfies it.
type DynamoDB interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Router is what the engine needs of the routes: *relay.Router satisfies it.
type Router interface {
	Dispatch(ctx context.Context, rt *core.Services, env *envelope.Envelope) (*core.Delivery, error)
}

// Identity is the bot's own user and bot ids (auth.test), so it never answers itself.
type Identity = core.Identity

// Tenant is the installation an event was delivered for (its workspace, or its org for an
// org-wide install): whose token answers it.
type Tenant = core.Tenant

// Store is the events' journal. The DynamoDB journal (Config.DynamoDB, Config.Table) and the
// in-memory one the handler test helper uses satisfy it; it is not for other implementations.
type Store interface {
	Claim(ctx context.Context, key string, owner journal.Owner, leaseUntil time.Time) (journal.Claim, error)
	Peek(ctx context.Context, key string) (done bool, err error)
	core.Notes
	core.Counters
}

var (
	_ Queue    = (*sqs.Client)(nil)
	_ DynamoDB = (*dynamodb.Client)(nil)
	_ Store    = (*journal.Store)(nil)
	_ Store    = (*journal.Memory)(nil)
)

// Config is everything the engine needs. The worker (package worker) fills it from the
// environment; tests of the whole pipeline fill it with local servers.
type Config struct {
	// Router holds the bot's routes.
	Router Router
	// Slack returns a client carrying the tenant's bot token; Identity the bot's own ids in
	// the tenant. An error that says the tenant has no usable installation (failure.NotInstalled
	// via IsNotInstalled) dead-letters the event with class not_installed, unanswered.
	Slack    func(ctx context.Context, t Tenant) (*slack.Client, error)
	Identity func(ctx context.Context, t Tenant) (Identity, error)
	// TokenRefused, when set, is told when a handler failed because Slack refused the tenant's
	// token (invalid_auth, token_revoked, account_inactive), so that the installation is
	// marked and the next event of the tenant is not answered with it.
	TokenRefused func(ctx context.Context, t Tenant, code string)
	// HTTP posts to response_url (default: a client with a 10 s timeout).
	HTTP *http.Client
	// ResponseURLPrefixes are the only places response_url posts may go (default
	// "https://hooks.slack.com/").
	ResponseURLPrefixes []string
	// StreamLifetime is how long Slack keeps a stream open (0: about 5 minutes, as Slack).
	StreamLifetime time.Duration

	// DynamoDB and Table hold the journal (IDEMPOTENCY_TABLE); TTL is how long a record is
	// kept after its last write (default 15 days).
	DynamoDB DynamoDB
	Table    string
	TTL      time.Duration
	// Store replaces the DynamoDB journal (the handler test helper's in-memory one).
	Store Store

	// Queue sends dead letters to DLQURL and continuations to QueueURL, and sets a message's
	// retry delay.
	Queue           Queue
	QueueURL        string
	DLQURL          string
	MaxReceiveCount int
	BackoffBase     time.Duration
	BackoffMax      time.Duration
	// Concurrency bounds the messages of one batch that run at once (default 10).
	Concurrency int
	// TenantConcurrency bounds the messages of one tenant (workspace, or org of an org-wide
	// install) that run at once within a batch of two or more tenants larger than
	// Concurrency, so one busy tenant leaves slots to the others (0: no bound; the worker sets
	// TENANT_CONCURRENCY). A rate limit met by one tenant holds back only that tenant's
	// messages not yet started, whatever this is.
	TenantConcurrency int
	// DefaultTimeout is the deadline when the context has none (default 60s).
	DefaultTimeout time.Duration
	// MaxEventAge is the age (since the receiver took the request) past which an event is
	// not answered but dead-lettered as stale, unless its record says it was answered: its
	// record may have expired (0: no limit). The worker sets it to DLQ_RETENTION +
	// REPLAY_WINDOW, which IDEMPOTENCY_TTL must cover.
	MaxEventAge time.Duration
	// MaxAnswerDuration bounds how long one event's work may go on across invocations (from
	// its first claim); past it a continuation is an ordinary failure (0: DefaultMaxAnswerDuration).
	MaxAnswerDuration time.Duration
	Log               *slog.Logger
	Metrics           *metrics.Emitter
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Engine runs queue messages through the bot's routes: decode, route, claim, run, classify,
// then complete, release, retry later, continue or dead-letter. Build it with New.
type Engine struct {
	c     Config
	rt    *core.Services
	store Store
}

// New checks cfg and returns its engine.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.Router == nil:
		return nil, errors.New("engine: no Router")
	case cfg.Slack == nil:
		return nil, errors.New("engine: no Slack client")
	case cfg.Queue == nil || cfg.QueueURL == "" || cfg.DLQURL == "":
		return nil, errors.New("engine: a Queue, QueueURL and DLQURL are needed")
	case cfg.Store == nil && (cfg.DynamoDB == nil || cfg.Table == ""):
		return nil, errors.New("engine: the journal needs DynamoDB and Table (or a Store)")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(io.Discard, "slackrelay/worker")
	}
	e := &Engine{c: cfg, store: cfg.Store}
	if e.store == nil {
		e.store = &journal.Store{DB: cfg.DynamoDB, Table: cfg.Table, TTL: cfg.TTL, Now: cfg.Now}
	}
	e.rt = &core.Services{Slack: cfg.Slack, Identity: cfg.Identity, HTTP: cfg.HTTP, ResponseURLPrefixes: cfg.ResponseURLPrefixes,
		Notes: e.store, Counters: e.store, StreamLifetime: cfg.StreamLifetime}
	return e, nil
}

// SQS limits on visibility: a message may stay invisible at most 12 hours from its receive.
const (
	maxVisibility = 12 * time.Hour
	minRetryDelay = time.Second
	// visibilityMargin keeps a requested visibility clear of the 12-hour limit, for the time
	// between SQS's receive and the start of this invocation.
	visibilityMargin = 30 * time.Second
	// LeaseGrace keeps other copies of an event off it for a while after the invocation's
	// deadline: a call to Slack sent just before the deadline may still take effect.
	LeaseGrace = 5 * time.Second
	// DefaultMaxAnswerDuration is MaxAnswerDuration's default.
	DefaultMaxAnswerDuration = 30 * time.Minute
)

func (p *Engine) now() time.Time {
	if p.c.Now != nil {
		return p.c.Now()
	}
	return time.Now()
}

// HandleSQS processes a batch and reports the messages that must come back
// (ReportBatchItemFailures). Messages run concurrently, each under the invocation deadline.
func (p *Engine) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	received := p.now()
	n := p.c.Concurrency
	if n <= 0 {
		n = 10
	}
	if _, ok := ctx.Deadline(); !ok {
		timeout := p.c.DefaultTimeout
		if timeout <= 0 {
			timeout = 60 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	sem := make(chan struct{}, n)
	tenants := newTenants(p.c.TenantConcurrency)
	pending := make([]*message, len(ev.Records))
	for i := range ev.Records {
		pending[i] = &message{p: p, rec: &ev.Records[i], received: received, tenantKey: tenantOf(&ev.Records[i]), tenants: tenants}
	}
	tenants.fitTo(pending, n)
	var mu sync.Mutex
	var resp events.SQSEventResponse
	var wg sync.WaitGroup
	for len(pending) > 0 {
		// A slot of the batch first, then the first record whose tenant is under its bound:
		// a tenant at its bound holds no slot and stands in front of no other tenant.
		sem <- struct{}{}
		m := tenants.next(&pending)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer tenants.done(m.tenantKey)
			var finished bool
			if wait := tenants.waitFor(m.tenantKey, p.now()); wait > 0 {
				finished = m.heldBack(ctx, wait)
			} else {
				finished = m.process(ctx)
			}
			if !finished {
				mu.Lock()
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.rec.MessageId})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return resp, nil
}

// message is one record on its way through the processor.
type message struct {
	p            *Engine
	rec          *events.SQSMessage
	received     time.Time
	receiveCount int
	log          *slog.Logger
	// tenantKey is the record's tenant; tenants the batch's tenants.
	tenantKey string
	tenants   *tenants
}

// process handles one record and reports whether it is finished (true) or must come back.
func (m *message) process(ctx context.Context) bool {
	p := m.p
	start := p.now()
	m.receiveCount, _ = strconv.Atoi(m.rec.Attributes["ApproximateReceiveCount"])
	env, err := envelope.Decode([]byte(m.rec.Body))
	if err != nil {
		m.log = p.c.Log.With(logging.KeyRequestID, m.rec.MessageId)
		m.log.Error("undecodable message", "error", err.Error())
		return m.toDLQ(ctx, envelope.FailureClassPermanent, "decode", err)
	}
	m.log = logging.WithEnvelope(p.c.Log, m.rec.MessageId, env).With("receive_count", m.receiveCount)

	// Decide before claiming: a delivery no route wants, or one its route declines, never
	// touches the dedupe key (its twin may need it).
	d, err := p.c.Router.Dispatch(ctx, p.rt, env)
	if err != nil {
		return m.failed(ctx, "dispatch", err, 0)
	}
	if d.Route == "" {
		m.log.Info("no route for this delivery; acknowledged", "type", d.Type)
		p.c.Metrics.Count("Unrouted", 1)
		return true
	}
	m.log = m.log.With("route", d.Route, "dedupe_key", d.Key)
	if d.Skip != "" {
		m.log.Info("route declined the delivery; acknowledged without claiming", "why", d.Skip)
		p.c.Metrics.Count("Skipped", 1, metrics.Dim{Name: "Route", Value: d.Route})
		return true
	}

	if age := p.now().Sub(env.ReceivedAt); p.c.MaxEventAge > 0 && !env.ReceivedAt.IsZero() && age > p.c.MaxEventAge {
		return m.stale(ctx, d, age)
	}
	deadline, _ := ctx.Deadline()
	claim, err := p.store.Claim(ctx, d.Key, journal.NewOwner(m.rec.MessageId), leaseEnd(deadline, p.now()))
	if err != nil {
		// Without the record nothing may be posted: try again later.
		p.c.Metrics.Count("StoreErrors", 1)
		return m.failed(ctx, "journal", fmt.Errorf("journal unavailable: %w", failure.Retryable(err)), 0)
	}
	switch claim.Outcome {
	case journal.Done:
		m.log.Info("duplicate delivery: already answered")
		p.c.Metrics.Count("Duplicates", 1)
		return true
	case journal.Busy:
		p.c.Metrics.Count("Busy", 1)
		if m.lastAttempt() {
			// Never drop a copy while its event is unfinished: the delivery holding the claim
			// may fail for good. In the DLQ with its reason, a replay of it is a no-op once
			// the event is answered.
			m.log.Warn("another delivery holds this event on this copy's last receive; moving the copy to the DLQ",
				"holder", claim.Holder, "lease_until", claim.LeaseUntil)
			return m.toDLQ(ctx, envelope.FailureClassBusy, d.Route, fmt.Errorf(
				"another delivery (SQS message %s) held this event until %s when this copy was last received; "+
					"replaying it is safe: it does nothing if the event was answered", claim.Holder, claim.LeaseUntil.UTC().Format(time.RFC3339)))
		}
		m.log.Info("another delivery is handling this event; looking again after its lease", "holder", claim.Holder, "lease_until", claim.LeaseUntil)
		return m.retryLater(ctx, claim.LeaseUntil.Sub(p.now())+time.Second)
	}

	lease := claim.Lease
	m.log = m.log.With("attempt", lease.Attempt())
	if lease.Attempt() > 1 {
		m.log.Info("resuming an event an earlier attempt did not finish", "last_error", lease.LastError())
	}
	hctx, cancel := context.WithDeadline(ctx, handlerDeadline(deadline, p.now()))
	err = run(hctx, d, lease, m.log)
	cancel()
	took := p.now().Sub(start)
	p.c.Metrics.Milliseconds("HandlerDuration", took, metrics.Dim{Name: "Route", Value: d.Route})
	if err == nil {
		cerr := lease.Complete(context.WithoutCancel(ctx))
		if cerr != nil && !errors.Is(cerr, journal.ErrNotCounted) {
			if errors.Is(cerr, journal.ErrNotOwner) {
				m.log.Warn("handled, but another delivery took this event over meanwhile; leaving it to that one", "error", cerr.Error())
				p.c.Metrics.Count("LeaseLost", 1)
				return true
			}
			// The event is finished in Slack but not in its record: the message comes back,
			// takes its own claim over at once and finds every effect settled (or sets the
			// last one again, which changes nothing a person sees).
			p.c.Metrics.Count("StoreErrors", 1)
			return m.failed(ctx, "journal", fmt.Errorf("mark the event completed: %w", failure.Retryable(cerr)), took)
		}
		if cerr != nil {
			// Answered and recorded; only a daily counter (a token budget's) missed this event.
			p.c.Metrics.Count("StoreErrors", 1)
			m.log.Warn("completed, but a daily counter could not be added to; it misses this event", "error", cerr.Error())
		}
		m.log.Info("processed", "took_ms", took.Milliseconds())
		p.c.Metrics.Count("Processed", 1, metrics.Dim{Name: "Route", Value: d.Route})
		return true
	}
	if errors.Is(err, journal.ErrNotOwner) {
		m.log.Warn("another delivery took this event over (this one ran past its lease); leaving it to that one", "error", err.Error())
		p.c.Metrics.Count("LeaseLost", 1)
		return true
	}
	if m.continues(err, lease) {
		return m.continueLater(ctx, lease, err, took)
	}
	if code := failure.TokenRefused(err); code != "" && p.c.TokenRefused != nil {
		m.log.Warn("Slack refused the workspace's token; marking its installation", "slack_error", code)
		p.c.Metrics.Count("TokenRefused", 1)
		p.c.TokenRefused(context.WithoutCancel(ctx), d.Tenant, code)
		err = failure.AsNotInstalled(fmt.Errorf("Slack refused the installation's token: %w", err))
	}
	if rerr := lease.Release(context.WithoutCancel(ctx), err.Error()); rerr != nil {
		// Not a loss: this message's next receive takes its own claim over at once, and
		// another copy takes it when the lease ends.
		p.c.Metrics.Count("StoreErrors", 1)
		m.log.Warn("could not release the claim; this message's next receive takes it over", "error", rerr.Error())
	}
	return m.failed(ctx, d.Route, err, took)
}

// continues reports whether the handler's error asks for its work to go on in a new
// delivery: it wrote progress, the invocation ran out (or the handler said so), and the
// event's time is not up.
func (m *message) continues(err error, lease *journal.Lease) bool {
	class, _ := failure.Classify(err)
	if class != failure.Continue && !(errors.Is(err, context.DeadlineExceeded) && lease.Progressed()) {
		return false
	}
	limit := m.p.c.MaxAnswerDuration
	if limit <= 0 {
		limit = DefaultMaxAnswerDuration
	}
	if since := m.p.now().Sub(lease.Started()); since > limit {
		m.log.Warn("the event's work has gone on too long to continue; treating it as a failure", "since_first_claim", since.String(), "limit", limit.String())
		return false
	}
	return true
}

// continueLater ends an attempt that made progress as its invocation runs out: the claim is
// released with the progress (one write) and a copy of the message goes back on the events
// queue at once, as a new message, so the work goes on without using up this message's
// receives; this one is then acknowledged. A failed release or send leaves this message to
// come back instead (it takes its own claim over at once).
func (m *message) continueLater(ctx context.Context, lease *journal.Lease, cause error, took time.Duration) bool {
	p := m.p
	ctx = context.WithoutCancel(ctx)
	if err := lease.Release(ctx, "continues in the next invocation: "+cause.Error()); err != nil {
		// A copy could not claim the event before the lease ends; this message can, at once.
		p.c.Metrics.Count("StoreErrors", 1)
		m.log.Warn("could not release the claim to continue; this message comes back and takes it over", "error", err.Error())
		return m.retryLater(ctx, time.Second)
	}
	in := &sqs.SendMessageInput{
		QueueUrl: aws.String(p.c.QueueURL), MessageBody: aws.String(m.rec.Body), MessageAttributes: copyAttributes(m.rec.MessageAttributes),
	}
	if m.tenantKey != "" {
		// The copy stays in its tenant's message group (fair queues).
		in.MessageGroupId = aws.String(m.tenantKey)
	}
	_, err := p.c.Queue.SendMessage(ctx, in)
	if err != nil {
		m.log.Warn("could not queue the continuation; this message comes back instead", "error", err.Error())
		return m.retryLater(ctx, time.Second)
	}
	m.log.Info("continues in a new delivery", "why", cause.Error(), "took_ms", took.Milliseconds())
	p.c.Metrics.Count("Continued", 1)
	return true
}

// stale settles an event older than MaxEventAge: a duplicate when its record says it was
// answered, else a dead letter. Its record may have expired, so answering could answer twice.
func (m *message) stale(ctx context.Context, d *core.Delivery, age time.Duration) bool {
	p := m.p
	done, err := p.store.Peek(ctx, d.Key)
	if err != nil {
		p.c.Metrics.Count("StoreErrors", 1)
		return m.failed(ctx, "journal", fmt.Errorf("journal unavailable: %w", failure.Retryable(err)), 0)
	}
	if done {
		m.log.Info("duplicate delivery of an old event: already answered", "age", age.String())
		p.c.Metrics.Count("Duplicates", 1)
		return true
	}
	m.log.Warn("event too old to answer safely; moving it to the DLQ", "age", age.String(), "max_age", p.c.MaxEventAge.String())
	p.c.Metrics.Count("Stale", 1)
	return m.toDLQ(ctx, envelope.FailureClassStale, d.Route, fmt.Errorf(
		"event received %s ago, more than DLQ_RETENTION + REPLAY_WINDOW (%s): its record may have expired, so it is not answered (an answer could be a second one)",
		age.Round(time.Second), p.c.MaxEventAge))
}

// failed settles a message whose handling failed with err: DLQ, or back to the queue.
func (m *message) failed(ctx context.Context, stage string, err error, took time.Duration) bool {
	p := m.p
	class, after := failure.Classify(err)
	m.log = m.log.With("error", err.Error(), "class", class.String(), "took_ms", took.Milliseconds())
	p.c.Metrics.Count("HandlerErrors", 1, metrics.Dim{Name: "Class", Value: class.String()})
	switch {
	case class == failure.NotInstalled:
		m.log.Warn("no usable installation for the event's workspace; moving it to the DLQ unanswered (install the app there, then replay)")
		p.c.Metrics.Count("NotInstalled", 1)
		return m.toDLQ(ctx, envelope.FailureClassNotInstalled, stage, err)
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
		wait := failure.Backoff(m.receiveCount, p.c.BackoffBase, p.c.BackoffMax)
		m.log.Error("configuration error: something the worker needs is missing; retrying with backoff", "backoff", wait.String())
		return m.retryLater(ctx, wait)
	case class == failure.RateLimited:
		m.log.Warn("rate limited; retrying after Retry-After, with this tenant's records not yet started", "retry_after", after.String())
		if m.tenants != nil {
			m.tenants.rateLimited(m.tenantKey, p.now().Add(after))
		}
		return m.retryLater(ctx, after)
	default:
		wait := failure.Backoff(m.receiveCount, p.c.BackoffBase, p.c.BackoffMax)
		m.log.Warn("transient failure; retrying with backoff", "backoff", wait.String())
		return m.retryLater(ctx, wait)
	}
}

// lastAttempt reports whether SQS would dead-letter this message on its next receive.
func (m *message) lastAttempt() bool {
	return m.p.c.MaxReceiveCount > 0 && m.receiveCount >= m.p.c.MaxReceiveCount
}

// leaseEnd is when other copies of an event may take it over: the invocation's deadline plus
// a grace (a tenth of the invocation, at most LeaseGrace) for a call to Slack sent just before
// the deadline that may still take effect.
func leaseEnd(deadline, now time.Time) time.Time {
	return deadline.Add(min(LeaseGrace, deadline.Sub(now)/10))
}

// handlerDeadline leaves the processor a little time after the handler to report.
func handlerDeadline(deadline, now time.Time) time.Time {
	margin := deadline.Sub(now) / 10
	if margin > 2*time.Second {
		margin = 2 * time.Second
	}
	return deadline.Add(-margin)
}

func run(ctx context.Context, d *core.Delivery, lease *journal.Lease, log *slog.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return d.Run(ctx, lease, log)
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
	_, err := m.p.c.Queue.ChangeMessageVisibility(context.WithoutCancel(ctx), &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(m.p.c.QueueURL), ReceiptHandle: aws.String(m.rec.ReceiptHandle), VisibilityTimeout: secs,
	})
	if err != nil {
		// The message still comes back after the queue's visibility timeout.
		m.log.Warn("could not set the retry delay; the queue's visibility timeout applies", "error", err.Error())
	}
	return false
}

package interleave

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/engine"
)

// The deployment's figures (infra/template.yaml) the schedules live by, in virtual time.
const (
	// functionTimeout is the worker's Lambda timeout: each invocation's deadline.
	functionTimeout = 120 * time.Second
	// visibilityTimeout is the events queue's: a crashed invocation's message comes back then.
	visibilityTimeout = 720 * time.Second
	// maxReceiveCount is the queue's redrive policy: a message received that often and
	// failed once more goes to the DLQ.
	maxReceiveCount = 5
	// replayAfter is how long after the copies settled an operator replays the dead letters.
	replayAfter = time.Hour
)

// Bounds of one schedule: past them it is a livelock, reported as a failure.
const (
	maxInvocations = 40 // per phase (the copies, then the replay of their dead letters)
	maxSteps       = 4000
	// stuckAfter is how long (real time) the scheduler waits for the invocation it let go to
	// reach its next call or end: longer means it blocked outside the scheduler's calls.
	stuckAfter = 30 * time.Second
)

// decision is what the scheduler does with one call an invocation is about to make.
type decision int

const (
	pass decision = iota
	// lose: the call is applied and its answer lost; the client sees a network error (the
	// AWS SDK then sends the same request again).
	lose
	// fail: the call is refused without being applied; the client sees an error answer.
	fail
	// crashBefore: the invocation dies; the call never leaves.
	crashBefore
	// crashAfter: the call is applied; the invocation dies before its answer arrives.
	crashAfter
	// kill: time passed the invocation's deadline (Lambda ended it) before this call.
	kill
	// dead: the invocation died earlier; the call fails at once without being scheduled.
	dead
)

// String is the decision as the trace shows it.
func (d decision) String() string {
	return [...]string{"pass", "LOSE the answer", "FAIL", "CRASH before", "CRASH after", "KILLED (deadline)", "dead"}[d]
}

// call is one request an invocation is about to make.
type call struct {
	service string // "ddb", "slack", "sqs"
	op      string // "claim", "save", "release", "complete", "GetItem", "chat.appendStream", …
	detail  string // the steps a save writes, the SDK's attempt, the queue a message goes to
	owner   string // a claim's owner token (for the takeover count)
	key     string // the journal key of a DynamoDB call
	// steps are the journal steps a write sets, by name, as JSON.
	steps map[string]string
}

// String is the call as the trace shows it: "ddb save [stream]".
func (c call) String() string {
	s := c.service + " " + c.op
	if c.detail != "" {
		s += " " + c.detail
	}
	return s
}

// profile is how hostile one schedule is: probabilities per call (crash, lose, fail) and per
// Append of the handler (yield: the invocation's time runs out and the answer continues in
// a new message).
type profile struct {
	name              string
	crash, lose, fail float64
	yield             float64
}

// Probabilities every schedule shares.
const (
	// timePasses is, per scheduling step while a message waits out a delay, the chance that
	// time passes to its visibility before anything else happens (invocations still running
	// past their deadline are ended).
	timePasses = 0.03
	// ignoreDelay is the chance that a message comes back at once instead of after the delay
	// it asked for (or the visibility timeout): the quick retries that use up receives.
	ignoreDelay = 0.25
)

// profiles are drawn with equal chances.
var profiles = []profile{
	// No injected faults: the copies interleave, and time may pass an invocation's deadline.
	{name: "calm"},
	{name: "crashes", crash: 0.05},
	{name: "lossy", lose: 0.08, fail: 0.04},
	{name: "continuing", crash: 0.02, lose: 0.02, yield: 0.2},
	{name: "mixed", crash: 0.03, lose: 0.05, fail: 0.02, yield: 0.08},
	{name: "stormy", crash: 0.07, lose: 0.1, fail: 0.04, yield: 0.1},
}

// message is one SQS message carrying the event: one of the two copies, a continuation the
// engine queued, or a replayed dead letter.
type message struct {
	id       string
	receives int
	state    msgState
	due      time.Time     // visible from (state visible)
	delay    time.Duration // the visibility its last invocation asked for (0: none)
}

// msgState is where a message is.
type msgState int

const (
	visible msgState = iota
	inflight
	acked
	redriven // moved to the DLQ by SQS's redrive policy
)

// deadLetter is one message in the DLQ.
type deadLetter struct {
	msg, class string
}

// invocation is one receive of one message: a HandleSQS call with a batch of one record.
type invocation struct {
	s        *schedule
	id       int
	msg      *message
	receive  int
	deadline time.Time
	cancel   context.CancelFunc
	grant    chan decision
	// dead is set on the invocation's own goroutine when it crashed or was killed: every
	// later call fails at once.
	dead   bool
	parked *call // the call it waits to make (set by the scheduler)

	// What the invocation's journal writes applied, for the journal's invariants: each
	// step's last value, and how many answers from Slack the invocation had then.
	answers   int
	written   map[string]string
	writtenAt map[string]int
	completed bool
}

// name is "<message id>#<receive count>", as the trace shows it.
func (inv *invocation) name() string { return fmt.Sprintf("%s#%d", inv.msg.id, inv.receive) }

// invKey is the context key of the invocation a request belongs to.
type invKey struct{}

// invocationOf is the invocation a request's context belongs to (nil: none).
func invocationOf(ctx context.Context) *invocation {
	inv, _ := ctx.Value(invKey{}).(*invocation)
	return inv
}

// gate is called on the invocation's goroutine before each of its calls: it waits until the
// scheduler lets the call go and returns what to do with it.
func (inv *invocation) gate(c call) decision {
	if inv.dead {
		inv.s.n.deadCalls++
		return dead
	}
	inv.s.events <- event{inv: inv, call: &c}
	d := <-inv.grant
	if d == crashBefore || d == kill {
		inv.die()
	}
	return d
}

// die ends the invocation: nothing after this reaches a server, and its context is done.
func (inv *invocation) die() {
	inv.dead = true
	inv.cancel()
}

// yieldNow decides, on the invocation's goroutine, whether the handler's next Append finds
// the invocation's time running out.
func (inv *invocation) yieldNow() bool {
	s := inv.s
	if inv.dead || s.replaying || s.prof.yield == 0 || s.rng.Float64() >= s.prof.yield {
		return false
	}
	s.n.yields++
	s.tracef("%-6s handler: the invocation's time runs out at this Append", inv.name())
	return true
}

// event is what an invocation tells the scheduler: it waits at a call, or it returned.
type event struct {
	inv  *invocation
	call *call
	resp *events.SQSEventResponse
}

// schedule is one run of the property: one event, its copies, one seed.
type schedule struct {
	seed    uint64
	rng     *rand.Rand
	prof    profile
	variant variant
	w       *worker

	// The virtual clock: anchor (real time at the start, so contexts' real deadlines are in
	// the future) plus offset, which only the scheduler moves. The journal, the engine and
	// the local Slack read it.
	anchor time.Time
	offset time.Duration

	proc       *engine.Engine
	queue      *queue
	channel    string
	thread     string
	key        string
	body       string
	msgs       []*message
	live       []*invocation // in delivery order
	invs       int           // invocations of the current phase
	nextInv    int
	events     chan event
	steps      int
	replaying  bool
	dlq        []deadLetter
	holder     string // the journal's owner token of the event's claim as DynamoDB holds it
	trace      []string
	violations []string
	log        bytes.Buffer
	metrics    metricCounter
	n          counts
}

// errHarness is a failure of the scheduler itself (not of the property).
var errHarness = errors.New("harness")

// newSchedule draws schedule seed: its profile, its handler variant, its channel.
func newSchedule(w *worker, seed uint64) *schedule {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	s := &schedule{
		seed: seed, rng: rng, w: w,
		prof:    profiles[rng.IntN(len(profiles))],
		variant: pickVariant(rng),
		anchor:  time.Now().Truncate(time.Millisecond),
		channel: "CIL" + strconv.FormatUint(seed, 10),
		thread:  "1700000000.000100",
		events:  make(chan event),
		n:       counts{lost: map[string]int{}, failed: map[string]int{}, dlqClasses: map[string]int{}, ops: map[string]int{}},
	}
	s.queue = &queue{s: s}
	log := slog.New(slog.NewTextHandler(&s.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	proc, err := engine.New(engine.Config{
		Router: w.h.bot,
		Slack:  func(context.Context, engine.Tenant) (*slack.Client, error) { return w.client, nil },
		// The worker asks auth.test once per token and keeps the answer.
		Identity: func(context.Context, engine.Tenant) (engine.Identity, error) {
			return engine.Identity{UserID: "UBOT", BotID: "BBOT"}, nil
		},
		DynamoDB: w.h.ddb, Table: w.h.table, Now: s.now,
		Queue: s.queue, QueueURL: eventsQueueURL, DLQURL: dlqURL, MaxReceiveCount: maxReceiveCount,
		BackoffBase: 10 * time.Second, BackoffMax: 5 * time.Minute, Concurrency: 1,
		Log: log, Metrics: metrics.New(&s.metrics, "interleave"),
	})
	if err != nil {
		panic(fmt.Sprintf("interleave: the engine's configuration: %v", err)) // a harness bug
	}
	s.proc = proc
	return s
}

// now is the schedule's virtual time.
func (s *schedule) now() time.Time { return s.anchor.Add(s.offset) }

// tracef adds a line to the trace, after the step number and the virtual time.
func (s *schedule) tracef(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%5d %+8s  ", s.steps, "+"+s.offset.String())+fmt.Sprintf(format, args...))
}

// violatef records a violation of the property.
func (s *schedule) violatef(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// run plays the schedule: the two copies until they settle, the property, then the replay of
// whatever was dead-lettered and the property again. An error is a failure of the harness or
// a livelock; violations of the property are in s.violations.
func (s *schedule) run(ctx context.Context) error {
	s.tracef("seed %d: profile %s, handler %s, channel %s", s.seed, s.prof.name, s.variant.name, s.channel)
	if _, err := s.w.slack.AddUserMessage(userMessage(s.channel, s.thread)); err != nil {
		return fmt.Errorf("%w: seed the thread: %v", errHarness, err)
	}
	body, key, err := s.w.h.envelope(ctx, s.channel, s.thread, s.seed)
	if err != nil {
		return err
	}
	s.body, s.key = body, key
	s.msgs = []*message{{id: "m1", due: s.now()}, {id: "m2", due: s.now()}}
	if err := s.loop(); err != nil {
		return err
	}
	done, err := s.settled(ctx, "after the copies settled")
	if err != nil {
		return err
	}
	if done {
		s.n.answered++
	}
	if len(s.dlq) > 0 {
		s.n.deadLettered++
	}
	if len(s.dlq) == 0 || len(s.violations) > 0 {
		return nil
	}
	// An operator replays the dead letters later: each goes back to the events queue as a
	// new message. A replay of an answered event does nothing; of an unanswered one, it
	// finishes the answer, exactly once.
	s.replaying = true
	s.n.replayed++
	s.offset += replayAfter
	s.invs = 0
	s.tracef("an hour later, the %d dead letters are replayed (no more faults)", len(s.dlq))
	for i, d := range s.dlq {
		s.msgs = append(s.msgs, &message{id: fmt.Sprintf("r%d(%s)", i+1, d.msg), due: s.now()})
	}
	if err := s.loop(); err != nil {
		return err
	}
	return s.answered(ctx, "after the dead letters were replayed")
}

// loop runs the scheduler until every message settled (acknowledged or dead-lettered):
// while something can go, it picks an invocation waiting at a call, or a visible message to
// deliver, or lets time pass to the next message's visibility.
func (s *schedule) loop() error {
	for {
		s.steps++
		if s.steps > maxSteps {
			return fmt.Errorf("livelock: %d scheduling steps and the messages have not settled", maxSteps)
		}
		var parked []*invocation
		for _, inv := range s.live {
			if inv.parked != nil {
				parked = append(parked, inv)
			}
		}
		var ready, waiting []*message
		for _, m := range s.msgs {
			switch {
			case m.state != visible:
			case m.due.After(s.now()):
				waiting = append(waiting, m)
			default:
				ready = append(ready, m)
			}
		}
		n := len(parked) + len(ready)
		if len(waiting) > 0 && (n == 0 || !s.replaying && s.rng.Float64() < timePasses) {
			if err := s.advance(waiting); err != nil {
				return err
			}
			continue
		}
		if n == 0 {
			return nil
		}
		i := s.rng.IntN(n)
		var err error
		if i < len(parked) {
			err = s.step(parked[i])
		} else {
			err = s.deliver(ready[i-len(parked)])
		}
		if err != nil {
			return err
		}
	}
}

// advance lets time pass until the earliest waiting message is visible. An invocation still
// running past its deadline is ended by Lambda: it makes no further call.
func (s *schedule) advance(waiting []*message) error {
	due := waiting[0].due
	for _, m := range waiting[1:] {
		if m.due.Before(due) {
			due = m.due
		}
	}
	s.offset = due.Sub(s.anchor)
	s.n.timePasses++
	s.tracef("time passes")
	for _, inv := range append([]*invocation(nil), s.live...) {
		if inv.parked != nil && inv.deadline.Before(due) {
			s.n.killed++
			s.tracef("%-6s %-40s %s", inv.name(), inv.parked.String(), kill)
			inv.parked = nil
			inv.grant <- kill
			if err := s.await(inv); err != nil {
				return err
			}
		}
	}
	return nil
}

// decide draws the fate of a call from the schedule's profile.
func (s *schedule) decide(c *call) decision {
	if s.replaying {
		return pass
	}
	p := s.prof
	r := s.rng.Float64()
	switch {
	case r < p.crash/2:
		return crashBefore
	case r < p.crash:
		return crashAfter
	case r < p.crash+p.lose:
		return lose
	case r < p.crash+p.lose+p.fail:
		return fail
	}
	return pass
}

// step lets inv make the call it waits at, with the fate decide draws, and waits until it
// reaches its next call or returns.
func (s *schedule) step(inv *invocation) error {
	c := inv.parked
	d := s.decide(c)
	s.n.calls++
	if d != fail && d != crashBefore {
		s.n.ops[c.service+" "+strings.Fields(c.op)[0]]++
	}
	switch d {
	case lose:
		s.n.lost[c.service]++
	case fail:
		s.n.failed[c.service]++
	case crashBefore:
		s.n.crashBefore++
	case crashAfter:
		s.n.crashAfter++
	}
	s.tracef("%-6s %-40s %s", inv.name(), c.String(), d)
	inv.parked = nil
	inv.grant <- d
	return s.await(inv)
}

// await waits for inv, the only invocation running, to reach its next call or return.
func (s *schedule) await(inv *invocation) error {
	timer := time.NewTimer(stuckAfter)
	defer timer.Stop()
	select {
	case ev := <-s.events:
		if ev.inv != inv {
			return fmt.Errorf("%w: %s moved while %s was the one running", errHarness, ev.inv.name(), inv.name())
		}
		if ev.call != nil {
			inv.parked = ev.call
			return nil
		}
		s.finished(inv, ev.resp)
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: %s neither reached its next call nor returned within %s", errHarness, inv.name(), stuckAfter)
	}
}

// deliver hands m to a new invocation, as SQS and Lambda's event source do: a batch of one
// record, its receive count one more. A message received maxReceiveCount times already goes
// to the DLQ instead (the redrive policy).
func (s *schedule) deliver(m *message) error {
	if m.receives >= maxReceiveCount {
		m.state = redriven
		s.dlq = append(s.dlq, deadLetter{msg: m.id, class: "redrive"})
		s.n.dlqClasses["redrive"]++
		s.tracef("%-6s received %d times: SQS moves it to the DLQ", m.id, m.receives)
		return nil
	}
	if s.invs >= maxInvocations {
		return fmt.Errorf("livelock: %d invocations and the messages have not settled", maxInvocations)
	}
	s.invs++
	s.n.invocations++
	s.nextInv++
	m.receives++
	m.state, m.delay = inflight, 0
	inv := &invocation{s: s, id: s.nextInv, msg: m, receive: m.receives, deadline: s.now().Add(functionTimeout), grant: make(chan decision)}
	ctx, cancel := context.WithDeadline(context.WithValue(context.Background(), invKey{}, inv), inv.deadline)
	inv.cancel = cancel
	s.live = append(s.live, inv)
	s.tracef("%-6s delivered", inv.name())
	rec := events.SQSMessage{
		MessageId: m.id, ReceiptHandle: inv.name(), Body: s.body,
		Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives)},
		MessageAttributes: map[string]events.SQSMessageAttribute{
			envelope.AttrKind: {DataType: "String", StringValue: aws.String(string(envelope.KindEvent))},
		},
	}
	go func() {
		resp, _ := s.proc.HandleSQS(ctx, events.SQSEvent{Records: []events.SQSMessage{rec}})
		s.events <- event{inv: inv, resp: &resp}
	}()
	return s.await(inv)
}

// finished settles the message of an invocation that returned: a crashed one's message comes
// back after the visibility timeout, a failed one's after the delay it asked for; a finished
// one is deleted, unless SQS delivers it again anyway (at least once: the ack is lost). The
// scheduler may also deliver a message before its delay is over (ignoreDelay).
func (s *schedule) finished(inv *invocation, resp *events.SQSEventResponse) {
	for i, l := range s.live {
		if l == inv {
			s.live = append(s.live[:i], s.live[i+1:]...)
			break
		}
	}
	inv.cancel()
	inv.ended()
	m := inv.msg
	switch {
	case inv.dead:
		s.redeliver(m, visibilityTimeout, "died")
	case len(resp.BatchItemFailures) > 0:
		delay := m.delay
		if delay == 0 {
			delay = visibilityTimeout
		}
		s.redeliver(m, delay, "returned a batch item failure")
	case !s.replaying && s.rng.Float64() < s.prof.crash:
		s.n.ackLost++
		s.redeliver(m, visibilityTimeout, "finished, but SQS delivers it again (its delete was lost)")
	default:
		m.state = acked
		s.tracef("%-6s finished: deleted", inv.name())
	}
}

// redeliver makes m visible again after delay, or at once (ignoreDelay).
func (s *schedule) redeliver(m *message, delay time.Duration, why string) {
	s.n.redeliveries++
	m.state, m.due = visible, s.now().Add(delay)
	when := "visible again in " + delay.String()
	if !s.replaying && s.rng.Float64() < ignoreDelay {
		m.due = s.now()
		when = "visible again at once (its delay ignored)"
	}
	s.tracef("%-6s %s: %s", m.id+"#"+strconv.Itoa(m.receives), why, when)
}

// Package relaytest tests a bot's handlers through the real engine, the one the worker runs
// in Lambda: the payload is wrapped as the receiver wraps it, decoded and routed once,
// claimed in an event journal (kept in memory here), run, classified and settled; a failed
// delivery comes back as SQS would bring it back (the same message, one more receive, after
// its delay), a continuation as a new message, an exhausted or permanent failure goes to a
// dead-letter list. The Slack side is a recording Slack (package fakeslack, the same server
// the local world runs) that grants only the scopes of the bot's app manifest, applies
// Slack's limits and expiries, and renders messages as a client does.
//
//	func TestThanks(t *testing.T) {
//		h := relaytest.New(t, mybot.Register)
//		got := h.Deliver(t, "testdata/reaction_added.json")
//		// got.Posts holds what the handler posted; delivering it again posts nothing more.
//	}
//
// Faults come on demand: h.Slack.FailNext (a Slack error), h.Slack.LoseResponseNext (a call
// that takes effect and loses its answer), h.CrashAfter (the worker dies right after a step's
// effect, before recording it). Nothing here needs AWS, Docker or this repository.
package relaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slack-go/slack"

	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/engine"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/internal/core"
	"github.com/slackrelay/slackrelay/worker/internal/journal"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// Token is the bot token the recording Slack expects; BotUserID and BotID are the bot's ids.
const (
	Token     = "xoxb-relaytest"
	BotUserID = "UBOT"
	BotID     = "BBOT"
)

const (
	eventsQueue = "relaytest://events"
	deadLetters = "relaytest://dlq"
	// invocation is each delivery's deadline, as a worker function timeout.
	invocation = time.Minute
	// maxDeliveries bounds one Deliver: a handler that never settles fails the test.
	maxDeliveries = 50
)

// Harness is a bot's routes on the real engine, an in-memory journal and a recording Slack.
type Harness struct {
	// Slack is the recording Slack: seed messages, inject faults, read what was posted.
	Slack *fakeslack.Server

	eng     *engine.Engine
	journal *journal.Memory
	log     *slog.Logger
	logs    *syncBuffer

	mu      sync.Mutex
	skew    time.Duration  // how far the clock has been moved on
	delay   time.Duration  // QueueDelay
	calls   map[*call]bool // the Delivers under way
	dead    []DeadLetter
	crash   *crashPlan
	cancel  context.CancelFunc // the running invocation's
	crashed bool               // the running invocation died
	seq     int
	writes  int // journal writes after claims (steps, releases, completions)

	maxReceive int
}

// Option tunes a Harness.
type Option func(*settings)

type settings struct {
	slack      fakeslack.Options
	maxReceive int
	delay      time.Duration
	logTo      io.Writer
}

// QueueDelay models the time between Slack sending a request and the worker running it: the
// clock moves on by d before each delivery, so a trigger_id issued with the request is d old
// when the handler uses it (Slack accepts it for 3 s).
func QueueDelay(d time.Duration) Option {
	return func(s *settings) { s.delay = d }
}

// Scopes grants these bot scopes instead of the app manifest's.
func Scopes(scopes ...string) Option {
	return func(s *settings) { s.slack.Scopes = scopes }
}

// Manifest names the Slack app manifest whose bot scopes are granted (default: the nearest
// of infra/slack-app-manifest.yaml, slack-app-manifest.yaml or manifest.yaml at or above the
// test's folder).
func Manifest(path string) Option {
	return func(s *settings) { s.slack.Manifest = path }
}

// MaxReceiveCount is the queue's redrive setting: a message that failed this many times goes
// to the dead letters (default 5, as the template's).
func MaxReceiveCount(n int) Option {
	return func(s *settings) { s.maxReceive = n }
}

// Logs sends the engine's and the handlers' JSON log lines to w as well (they are always
// kept for Harness.Logs).
func Logs(w io.Writer) Option {
	return func(s *settings) { s.logTo = w }
}

// New starts a recording Slack (stopped when the test ends), registers the bot's routes with
// register and builds the engine. A registration mistake fails the test.
func New(t testing.TB, register func(r *relay.Router), opts ...Option) *Harness {
	t.Helper()
	s := settings{maxReceive: 5}
	for _, o := range opts {
		o(&s)
	}
	h := &Harness{logs: &syncBuffer{}, delay: s.delay, maxReceive: s.maxReceive, calls: map[*call]bool{}}
	var out io.Writer = h.logs
	if s.logTo != nil {
		out = io.MultiWriter(h.logs, s.logTo)
	}
	h.log = slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.slack.Token = Token
	s.slack.Now = h.now
	h.Slack = fakeslack.New(s.slack)
	if _, err := h.Slack.Start(""); err != nil {
		t.Fatalf("relaytest: start the recording Slack: %v", err)
	}
	t.Cleanup(func() { h.Slack.Close() })

	r := relay.NewRouter()
	register(r)
	if err := r.Err(); err != nil {
		t.Fatalf("relaytest: %v", err)
	}
	client := slack.New(Token, slack.OptionAPIURL(h.Slack.APIURL()))
	h.journal = &journal.Memory{Now: h.now, Fault: h.fault}
	eng, err := engine.New(engine.Config{
		Router: observer{r: r, h: h},
		Slack:  func(context.Context, engine.Tenant) (*slack.Client, error) { return client, nil },
		Identity: func(context.Context, engine.Tenant) (engine.Identity, error) {
			return engine.Identity{UserID: BotUserID, BotID: BotID}, nil
		},
		ResponseURLPrefixes: []string{strings.TrimSuffix(h.Slack.ResponseURL("x"), "x")},
		Store:               h.journal,
		Queue:               queue{h},
		QueueURL:            eventsQueue,
		DLQURL:              deadLetters,
		MaxReceiveCount:     s.maxReceive,
		BackoffBase:         time.Second,
		BackoffMax:          time.Minute,
		Concurrency:         1,
		Log:                 h.log,
		Metrics:             metrics.New(io.Discard, "relaytest"),
		Now:                 h.now,
	})
	if err != nil {
		t.Fatalf("relaytest: %v", err)
	}
	h.eng = eng
	return h
}

func (h *Harness) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Now().Add(h.skew)
}

// Advance moves the harness's clock (the engine's, the journal's and Slack's) on by d.
func (h *Harness) Advance(d time.Duration) {
	h.mu.Lock()
	h.skew += d
	h.mu.Unlock()
}

// Logs returns the JSON log lines the engine and the handlers wrote so far.
func (h *Harness) Logs() string { return h.logs.String() }

// CrashAfter makes the worker die once, right after the effect of the next step whose name
// starts with step ("post", "respond", "stream", "view", "update", or a name given with
// Session.Named): the step's intent is recorded and its Slack call made, then the journal's
// next write never happens and the invocation ends without releasing its claim or telling the
// queue anything, as a killed process would. The message comes back when its lease ends.
func (h *Harness) CrashAfter(step string) {
	h.mu.Lock()
	h.crash = &crashPlan{step: step}
	h.mu.Unlock()
}

type crashPlan struct {
	step  string
	armed bool // the step's write went through: crash at the next write
}

// errCrashed is what the journal answers a dead invocation.
var errCrashed = errors.New("relaytest: the worker crashed here")

// fault is the journal's hook before every write.
func (h *Harness) fault(_ string, _ string, steps []string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.crashed {
		return errCrashed
	}
	h.writes++
	c := h.crash
	if c == nil {
		return nil
	}
	if c.armed {
		h.crash, h.crashed = nil, true
		if h.cancel != nil {
			h.cancel()
		}
		return errCrashed
	}
	for _, s := range steps {
		if strings.HasPrefix(s, c.step) {
			c.armed = true
		}
	}
	return nil
}

// DeadLetter is a message the engine sent to the dead-letter queue.
type DeadLetter struct {
	// Class is why (permanent, exhausted, config, busy, stale); Reason the error text; Stage
	// the route or stage that failed.
	Class, Reason, Stage string
}

// Result is what one Deliver did, over every delivery of its message until it settled.
type Result struct {
	// Type is what the payload is ("app_mention", "/ask", "block_actions:refresh"); Route the
	// route that took it ("" when none did); Skip why that route declined it; Key its dedupe
	// key.
	Type, Route, Skip, Key string
	// Runs is how many times a handler ran; Attempt the journal's attempt number of the last
	// run (0 when none ran); Err what the last run returned.
	Runs    int
	Attempt int
	Err     error
	// Deliveries is how many times the engine was handed the message (retries, crashes and
	// continuations included).
	Deliveries int
	// JournalWrites is how many writes the event's journal took after its claims (steps,
	// releases, the completion; a write a crash cut off included): what the handler's
	// exactly-once bookkeeping costs in DynamoDB writes, beside one claim per delivery.
	JournalWrites int
	// Duplicate is set when the event had been answered before this Deliver.
	Duplicate bool
	// Usage is what the event's record keeps of its answer's cost once it completed
	// (Session.SetUsage); nil when the record keeps none.
	Usage *relay.Usage
	// DeadLetters are the messages this Deliver dead-lettered.
	DeadLetters []DeadLetter
	// Posts are the messages and response_url posts made during this Deliver.
	Posts []fakeslack.Post
	// Message is the queue message's body (the envelope as the receiver wrote it): hand it to
	// Redeliver to deliver the same message again, as SQS may or a DLQ replay does.
	Message string
}

// Redeliver delivers the message of an earlier Deliver again, unchanged (the same envelope,
// response_url and trigger_id): what reaches the worker when SQS delivers a message twice or
// an operator replays a dead letter. Slack's own retries of an event are the same payload
// delivered again with Deliver.
func (h *Harness) Redeliver(t testing.TB, earlier Result) Result {
	t.Helper()
	if earlier.Message == "" {
		t.Fatalf("relaytest: Redeliver needs a Result of Deliver")
	}
	return h.DeliverEnvelope(t, earlier.Message)
}

// Deliver sends the payload in file as the receiver would wrap it — an Events API body (JSON
// with "type":"event_callback"), a slash command (a .form file of form fields), or an
// interaction payload (any other JSON) — and runs it through the engine until it settles.
// Slash commands and interactions get the recording Slack's response_url and a fresh
// trigger_id. The response_url knows where the payload comes from (its channel, its user and,
// for a click on a message, container.message_ts or message.ts), so what the handler answers
// through it shows as in Slack (fakeslack.Server.ResponseURLFrom): in the channel or to the
// user alone, and replace_original replaces the clicked message, which the recording Slack
// must then have (give the click the ts of the message it is on). It fails the test only when
// the payload cannot be read or never settles.
func (h *Harness) Deliver(t testing.TB, file string) Result {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("relaytest: %v", err)
	}
	return h.DeliverBody(t, file, string(raw))
}

// DeliverBody is Deliver with the payload given as text; name decides its kind as a file name
// would (".form" for a slash command).
func (h *Harness) DeliverBody(t testing.TB, name, body string) Result {
	t.Helper()
	env, err := h.wrap(name, strings.TrimSpace(body))
	if err != nil {
		t.Fatalf("relaytest: %s: %v", name, err)
	}
	raw, _, err := envelope.Encode(env, envelope.MaxSQSMessageBytes)
	if err != nil {
		t.Fatalf("relaytest: %s: %v", name, err)
	}
	return h.DeliverEnvelope(t, raw)
}

// call is one Deliver under way: its message and the continuations it sent, and what the
// engine did with them.
type call struct {
	pending []*message // its messages on the events queue
	running *message   // the one being delivered
	seen    []observed // its dispatches
}

type callKey struct{}

// DeliverEnvelope runs a queue message body as the receiver wrote it (an encoded envelope):
// for replaying what a test captured, or a dead letter.
//
// Deliveries may run at once from several goroutines, as a worker runs several invocations:
// a click on an answer that is still being written, say. Each Deliver settles its own
// message; JournalWrites, DeadLetters and Posts then count what the others did meanwhile too,
// and CrashAfter is for one Deliver at a time.
func (h *Harness) DeliverEnvelope(t testing.TB, body string) Result {
	t.Helper()
	c := &call{}
	h.mu.Lock()
	c.pending = append(c.pending, h.newMessageLocked(body))
	h.calls[c] = true
	deadBefore, writesBefore := len(h.dead), h.writes
	h.mu.Unlock()
	postsBefore := len(h.Slack.Posts())
	defer func() {
		h.mu.Lock()
		delete(h.calls, c)
		h.mu.Unlock()
	}()

	r := Result{Message: body}
	for {
		h.mu.Lock()
		if len(c.pending) == 0 {
			h.mu.Unlock()
			break
		}
		m := c.pending[0]
		c.pending = c.pending[1:]
		h.skew += h.delay
		if wait := m.visibleAt.Sub(time.Now().Add(h.skew)); wait > 0 {
			h.skew += wait // SQS brings it back after its delay: the clock moves on to it
		}
		h.mu.Unlock()
		if r.Deliveries++; r.Deliveries > maxDeliveries {
			t.Fatalf("relaytest: the message did not settle in %d deliveries; logs:\n%s", maxDeliveries, h.Logs())
		}
		h.deliverOnce(c, m)
	}

	h.mu.Lock()
	r.DeadLetters = append([]DeadLetter(nil), h.dead[deadBefore:]...)
	r.JournalWrites = h.writes - writesBefore
	for i, o := range c.seen {
		if i == 0 {
			r.Type, r.Route, r.Skip, r.Key = o.typ, o.route, o.skip, o.key
			r.Duplicate = o.doneBefore
		}
		if o.ran {
			r.Runs++
			r.Attempt, r.Err = o.attempt, o.err
		}
	}
	h.mu.Unlock()
	r.Posts = h.Slack.Posts()[postsBefore:]
	if u, _, ok := h.journal.Usage(r.Key); ok && r.Key != "" {
		r.Usage = &relay.Usage{Model: u.Model, Team: u.Team,
			InputTokens: int(u.InputTokens), OutputTokens: int(u.OutputTokens), CachedTokens: int(u.CachedTokens),
			CacheWriteTokens: int(u.CacheWriteTokens), ModelCalls: int(u.ModelCalls), ToolCalls: int(u.ToolCalls),
			ModelTime: time.Duration(u.ModelMillis) * time.Millisecond, CostUSD: u.CostUSD}
	}
	return r
}

// DailyCount is the workspace team's counter name for the harness's current UTC day, as
// Session.DailyCount reads it: what completed events added with Session.CountDaily.
func (h *Harness) DailyCount(team, name string) int64 {
	n, _ := h.journal.DailyCount(context.Background(), team+":"+name)
	return n
}

// message is one SQS message as the harness's queue holds it.
type message struct {
	id        string
	body      string
	receives  int
	visibleAt time.Time
}

func (h *Harness) newMessageLocked(body string) *message {
	h.seq++
	return &message{id: "relaytest-" + strconv.Itoa(h.seq), body: body}
}

// deliverOnce hands m to the engine as one invocation of a one-message batch.
func (h *Harness) deliverOnce(c *call, m *message) {
	m.receives++
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), callKey{}, c), invocation)
	defer cancel()
	h.mu.Lock()
	h.cancel, h.crashed, c.running = cancel, false, m
	h.mu.Unlock()
	ev := events.SQSEvent{Records: []events.SQSMessage{{
		MessageId: m.id, ReceiptHandle: m.id + "#" + strconv.Itoa(m.receives), Body: m.body,
		Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives)},
	}}}
	resp, _ := h.eng.HandleSQS(ctx, ev)
	h.mu.Lock()
	defer h.mu.Unlock()
	c.running = nil
	if h.crashed {
		// The process died: nothing was settled; the message comes back after its lease.
		m.visibleAt = time.Now().Add(h.skew + invocation + 10*time.Second)
		c.pending = append(c.pending, m)
		return
	}
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == m.id {
			if m.visibleAt.Before(time.Now().Add(h.skew)) {
				m.visibleAt = time.Now().Add(h.skew + time.Second)
			}
			if m.receives >= h.maxReceive {
				// SQS's redrive policy moves it to the DLQ on its next receive.
				h.dead = append(h.dead, DeadLetter{Class: "redrive", Reason: "received MaxReceiveCount times without settling"})
				return
			}
			c.pending = append(c.pending, m)
		}
	}
}

// observed is one dispatch of the current Deliver and what its handler did.
type observed struct {
	typ, route, skip, key string
	doneBefore            bool
	ran                   bool
	attempt               int
	err                   error
}

// observer is the bot's Router as the engine sees it, noting each dispatch and run for the
// Result; the routing and the running are the Router's own.
type observer struct {
	r *relay.Router
	h *Harness
}

func (o observer) Dispatch(ctx context.Context, rt *core.Services, env *envelope.Envelope) (*core.Delivery, error) {
	d, err := o.r.Dispatch(ctx, rt, env)
	if err != nil || d == nil {
		return d, err
	}
	done, _ := o.h.journal.Peek(ctx, d.Key)
	dc, _ := ctx.Value(callKey{}).(*call)
	if dc == nil {
		return nil, errors.New("relaytest: a dispatch outside a Deliver")
	}
	o.h.mu.Lock()
	dc.seen = append(dc.seen, observed{typ: d.Type, route: d.Route, skip: d.Skip, key: d.Key, doneBefore: done})
	i := len(dc.seen) - 1
	o.h.mu.Unlock()
	if d.Run == nil {
		return d, nil
	}
	run := d.Run
	c := *d
	c.Run = func(ctx context.Context, lease core.Lease, log *slog.Logger) (err error) {
		defer func() {
			p := recover()
			if p != nil {
				err = fmt.Errorf("handler panicked: %v", p)
			}
			o.h.mu.Lock()
			dc.seen[i].ran, dc.seen[i].attempt, dc.seen[i].err = true, lease.Attempt(), err
			o.h.mu.Unlock()
			if p != nil {
				panic(p) // the engine's own recovery classifies it
			}
		}()
		return run(ctx, lease, log)
	}
	return &c, nil
}

// queue is the events queue and the DLQ as the engine sees them.
type queue struct{ h *Harness }

func (q queue) SendMessage(ctx context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	h := q.h
	c, _ := ctx.Value(callKey{}).(*call)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.crashed {
		return nil, errCrashed
	}
	switch url := deref(in.QueueUrl); url {
	case eventsQueue:
		if c == nil {
			return nil, errors.New("relaytest: a message sent outside a Deliver")
		}
		m := h.newMessageLocked(deref(in.MessageBody))
		c.pending = append(c.pending, m) // a continuation: settled by the same Deliver
		return &sqs.SendMessageOutput{MessageId: &m.id}, nil
	case deadLetters:
		attr := func(name string) string {
			if v, ok := in.MessageAttributes[name]; ok {
				return deref(v.StringValue)
			}
			return ""
		}
		h.dead = append(h.dead, DeadLetter{Class: attr(envelope.AttrFailureClass), Reason: attr(envelope.AttrFailureReason), Stage: attr(envelope.AttrFailedHandler)})
		id := "dlq-" + strconv.Itoa(len(h.dead))
		return &sqs.SendMessageOutput{MessageId: &id}, nil
	default:
		return nil, fmt.Errorf("relaytest: no queue %q", url)
	}
}

func (q queue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	h := q.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.crashed {
		return nil, errCrashed
	}
	handle := deref(in.ReceiptHandle)
	for c := range h.calls {
		for _, m := range append(c.pending, c.running) {
			if m != nil && strings.HasPrefix(handle, m.id+"#") {
				m.visibleAt = time.Now().Add(h.skew + time.Duration(in.VisibilityTimeout)*time.Second)
			}
		}
	}
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (h *Harness) wrap(file, body string) (*envelope.Envelope, error) {
	now := h.now()
	env := &envelope.Envelope{Version: envelope.Version, ID: envelope.NewID(), ReceivedAt: now.UTC(), EventTime: now.Unix()}
	switch {
	case strings.HasSuffix(file, ".form"):
		form, err := url.ParseQuery(body)
		if err != nil {
			return nil, err
		}
		form.Set("response_url", h.Slack.ResponseURLFrom(env.ID, fakeslack.Origin{Channel: form.Get("channel_id"), User: form.Get("user_id")}))
		if form.Get("trigger_id") != "" {
			form.Set("trigger_id", h.Slack.NewTrigger()) // valid for 3 s from now, as Slack's
		}
		env.Kind, env.ContentType, env.Body = envelope.KindSlashCommand, envelope.ContentTypeForm, form.Encode()
		env.EventType = form.Get("command")
	default:
		var probe map[string]any
		if err := json.Unmarshal([]byte(body), &probe); err != nil {
			return nil, fmt.Errorf("not JSON and not a .form file: %w", err)
		}
		if probe["type"] == "event_callback" {
			env.Kind, env.ContentType, env.Body = envelope.KindEvent, envelope.ContentTypeJSON, body
			if ev, ok := probe["event"].(map[string]any); ok {
				env.EventType, _ = ev["type"].(string)
			}
			env.TeamID, _ = probe["team_id"].(string)
			break
		}
		if _, ok := probe["response_url"]; ok {
			probe["response_url"] = h.Slack.ResponseURLFrom(env.ID, interactionOrigin(probe))
		}
		if _, ok := probe["trigger_id"]; ok {
			probe["trigger_id"] = h.Slack.NewTrigger()
		}
		payload, err := json.Marshal(probe)
		if err != nil {
			return nil, err
		}
		env.Kind, env.ContentType, env.Body = envelope.KindInteraction, envelope.ContentTypeForm, url.Values{"payload": {string(payload)}}.Encode()
		env.EventType, _ = probe["type"].(string)
	}
	return env, nil
}

// interactionOrigin is where an interaction payload comes from, for its response_url: its
// channel, the user who acted and, for a click on a message, that message (the one
// replace_original replaces).
func interactionOrigin(p map[string]any) fakeslack.Origin {
	str := func(v any, key string) string {
		m, _ := v.(map[string]any)
		s, _ := m[key].(string)
		return s
	}
	c, _ := p["container"].(map[string]any)
	o := fakeslack.Origin{Channel: str(p["channel"], "id"), User: str(p["user"], "id")}
	if o.Channel == "" {
		o.Channel = str(c, "channel_id")
	}
	switch str(p, "type") {
	case "block_actions", "interactive_message":
		if kind := str(c, "type"); kind != "" && kind != "message" && kind != "message_attachment" {
			break // a click in a view or elsewhere: no message to replace
		}
		for _, ts := range []string{str(c, "message_ts"), str(p["message"], "ts"), str(p, "message_ts"), str(p["original_message"], "ts")} {
			if ts != "" {
				o.MessageTS = ts
				break
			}
		}
		o.Ephemeral, _ = c["is_ephemeral"].(bool)
	}
	return o
}

// syncBuffer is a bytes.Buffer safe for the engine's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

package dlqtool

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

// message is one DLQ message as peeked.
type message struct {
	ID           string
	Receipt      string // the newest receipt handle
	Body         string
	Attrs        map[string]types.MessageAttributeValue
	SysAttrs     map[string]string
	ReceiveCount int
	SentAt       time.Time
	Env          *envelope.Envelope // nil when the body is not a valid envelope
	EnvErr       error
}

func newMessage(m types.Message) *message {
	msg := &message{
		ID:       aws.ToString(m.MessageId),
		Receipt:  aws.ToString(m.ReceiptHandle),
		Body:     aws.ToString(m.Body),
		Attrs:    m.MessageAttributes,
		SysAttrs: m.Attributes,
	}
	if msg.Attrs == nil {
		msg.Attrs = map[string]types.MessageAttributeValue{}
	}
	msg.ReceiveCount, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		msg.SentAt = time.UnixMilli(ms).UTC()
	}
	msg.Env, msg.EnvErr = envelope.Decode([]byte(msg.Body))
	return msg
}

func (m *message) attr(name string) string {
	if v, ok := m.Attrs[name]; ok {
		return aws.ToString(v.StringValue)
	}
	return ""
}

func (m *message) kind() string {
	if m.Env != nil {
		return string(m.Env.Kind)
	}
	return m.attr(envelope.AttrKind)
}

func (m *message) eventType() string {
	if m.Env != nil && m.Env.EventType != "" {
		return m.Env.EventType
	}
	return m.attr(envelope.AttrEventType)
}

func (m *message) team() string {
	if m.Env != nil && m.Env.TeamID != "" {
		return m.Env.TeamID
	}
	return m.attr(envelope.AttrTeamID)
}

// eventTime is the envelope's event_time, else its received_at, else when the message was
// sent to the DLQ; zero when none is known.
func (m *message) eventTime() time.Time {
	if m.Env != nil {
		if m.Env.EventTime > 0 {
			return time.Unix(m.Env.EventTime, 0).UTC()
		}
		if !m.Env.ReceivedAt.IsZero() {
			return m.Env.ReceivedAt
		}
	}
	return m.SentAt
}

func (m *message) replayCount() int {
	n, _ := strconv.Atoi(m.attr(envelope.AttrReplayCount))
	return n
}

// ---- peeking ----

// peekVisibility hides peeked messages for the duration of one scan, so that a scan does not
// read the same message twice; they are made visible again as soon as the scan is over.
const peekVisibility = 30 * time.Second

// peeker receives DLQ messages and remembers them until they are released.
type peeker struct {
	c          SQSAPI
	url        string
	wait       int32
	visibility time.Duration
	held       map[string]*message // by message id, not yet released or deleted
	order      []*message
}

func newPeeker(c SQSAPI, url string, wait int32) *peeker {
	return &peeker{c: c, url: url, wait: wait, visibility: peekVisibility, held: map[string]*message{}}
}

// scan receives until no new message ids arrive, until max messages were seen (0 = no
// limit), or until done reports true. A long-polled receive asks every SQS server, so one
// empty answer ends the scan; short polls sample, so those need two in a row.
func (p *peeker) scan(ctx context.Context, max int, done func() bool) error {
	empty, enough := 0, 2
	if p.wait > 0 {
		enough = 1
	}
	for empty < enough {
		if max > 0 && len(p.order) >= max {
			return nil
		}
		if done != nil && done() {
			return nil
		}
		out, err := p.c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(p.url),
			MaxNumberOfMessages:         10,
			VisibilityTimeout:           int32(p.visibility / time.Second),
			WaitTimeSeconds:             p.wait,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			return fmt.Errorf("receive from %s: %w", queueName(p.url), err)
		}
		fresh := 0
		for _, m := range out.Messages {
			msg := newMessage(m)
			if old, ok := p.held[msg.ID]; ok {
				// Seen before (its visibility ran out): only the newest receipt handle works.
				old.Receipt = msg.Receipt
				old.ReceiveCount = msg.ReceiveCount
				continue
			}
			p.held[msg.ID] = msg
			p.order = append(p.order, msg)
			fresh++
		}
		if fresh == 0 {
			empty++
		} else {
			empty = 0
		}
	}
	return nil
}

// messages returns what the scan saw, in receive order, at most max (0 = all).
func (p *peeker) messages(max int) []*message {
	if max > 0 && len(p.order) > max {
		return p.order[:max]
	}
	return p.order
}

// forget marks a message as deleted, so release leaves it alone.
func (p *peeker) forget(id string) { delete(p.held, id) }

// setVisibility changes the visibility timeout of held messages (all when ids is nil).
func (p *peeker) setVisibility(ctx context.Context, msgs []*message, timeout time.Duration) error {
	var errs []error
	for i := 0; i < len(msgs); i += 10 {
		chunk := msgs[i:min(i+10, len(msgs))]
		in := &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(p.url)}
		for j, m := range chunk {
			in.Entries = append(in.Entries, types.ChangeMessageVisibilityBatchRequestEntry{
				Id:                aws.String("m" + strconv.Itoa(j)),
				ReceiptHandle:     aws.String(m.Receipt),
				VisibilityTimeout: int32(timeout / time.Second),
			})
		}
		out, err := p.c.ChangeMessageVisibilityBatch(ctx, in)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range out.Failed {
			j, _ := strconv.Atoi(strings.TrimPrefix(aws.ToString(f.Id), "m"))
			id := ""
			if j < len(chunk) {
				id = chunk[j].ID
			}
			errs = append(errs, fmt.Errorf("message %s: %s %s", id, aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}

// release makes every held message visible again. It runs even when ctx is cancelled.
func (p *peeker) release(ctx context.Context) error {
	var msgs []*message
	for _, m := range p.order {
		if _, ok := p.held[m.ID]; ok {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := p.setVisibility(ctx, msgs, 0)
	for _, m := range msgs {
		delete(p.held, m.ID)
	}
	if err != nil {
		return fmt.Errorf("make peeked messages visible again (they reappear by themselves within %s): %w", p.visibility, err)
	}
	return nil
}

// peekAll scans the DLQ and releases it again; for the read-only commands.
func (t *tool) peekAll(ctx context.Context, url string, max int) (msgs []*message, err error) {
	p := newPeeker(t.sqs, url, t.deps.PeekWaitSeconds)
	defer func() {
		if rerr := p.release(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if err := p.scan(ctx, max, nil); err != nil {
		return nil, err
	}
	return p.messages(max), nil
}

// ---- filters ----

type filters struct {
	eventType, team, reason, kind, class string
	olderThan, newerThan                 durationFlag
}

func (f *filters) register(fs *flag.FlagSet) {
	fs.StringVar(&f.eventType, "event-type", "", "only this event type (app_mention, /ask, block_actions, ...)")
	fs.StringVar(&f.team, "team", "", "only this team id")
	fs.StringVar(&f.reason, "reason", "", "only messages whose failure reason contains this text (case-insensitive)")
	fs.StringVar(&f.kind, "kind", "", "only this kind: event, slash_command, interaction")
	fs.StringVar(&f.class, "class", "", "only this failure class: permanent, exhausted")
	fs.Var(&f.olderThan, "older-than", "only events older than this `duration` (e.g. 30m, 2h, 3d)")
	fs.Var(&f.newerThan, "newer-than", "only events newer than this `duration`")
}

func (f *filters) any() bool {
	return f.eventType != "" || f.team != "" || f.reason != "" || f.kind != "" || f.class != "" ||
		f.olderThan.set || f.newerThan.set
}

func (f *filters) match(m *message, now time.Time) bool {
	if f.eventType != "" && m.eventType() != f.eventType {
		return false
	}
	if f.team != "" && m.team() != f.team {
		return false
	}
	if f.kind != "" && m.kind() != f.kind {
		return false
	}
	if f.class != "" && m.attr(envelope.AttrFailureClass) != f.class {
		return false
	}
	if f.reason != "" && !strings.Contains(strings.ToLower(m.attr(envelope.AttrFailureReason)), strings.ToLower(f.reason)) {
		return false
	}
	if f.olderThan.set || f.newerThan.set {
		at := m.eventTime()
		if at.IsZero() {
			return false
		}
		age := now.Sub(at)
		if f.olderThan.set && age <= f.olderThan.d {
			return false
		}
		if f.newerThan.set && age >= f.newerThan.d {
			return false
		}
	}
	return true
}

// durationFlag is a time.Duration flag that also accepts days ("3d").
type durationFlag struct {
	d   time.Duration
	set bool
}

func (d *durationFlag) String() string {
	if !d.set {
		return ""
	}
	return d.d.String()
}

func (d *durationFlag) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	d.d, d.set = v, true
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("invalid duration %q (use 90s, 30m, 2h or 3d)", s)
		}
		return time.Duration(days * float64(24*time.Hour)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid duration %q (use 90s, 30m, 2h or 3d)", s)
	}
	return v, nil
}

// idList is a repeatable flag that also splits on commas.
type idList []string

func (l *idList) String() string { return strings.Join(*l, ",") }

func (l *idList) Set(s string) error {
	for _, id := range strings.Split(s, ",") {
		if id = strings.TrimSpace(id); id != "" {
			*l = append(*l, id)
		}
	}
	return nil
}

// ---- formatting ----

// fmtAge prints a duration the way an operator reads it: 45s, 12m, 3h05m, 2d4h.
func fmtAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// messageJSON is list --json's line: everything but the body.
type messageJSON struct {
	MessageID       string            `json:"message_id"`
	ReceiveCount    int               `json:"receive_count"`
	SentTimestamp   int64             `json:"sent_timestamp,omitempty"`
	EnvelopeID      string            `json:"envelope_id,omitempty"`
	EnvelopeError   string            `json:"envelope_error,omitempty"`
	Kind            string            `json:"kind,omitempty"`
	EventType       string            `json:"event_type,omitempty"`
	EventID         string            `json:"event_id,omitempty"`
	TeamID          string            `json:"team_id,omitempty"`
	DedupeKey       string            `json:"dedupe_key,omitempty"`
	EventTime       *time.Time        `json:"event_time,omitempty"`
	EventAgeSeconds *int64            `json:"event_age_seconds,omitempty"`
	FailureClass    string            `json:"failure_class,omitempty"`
	FailureReason   string            `json:"failure_reason,omitempty"`
	FailedHandler   string            `json:"failed_handler,omitempty"`
	FailedAt        string            `json:"failed_at,omitempty"`
	ReplayCount     int               `json:"replay_count"`
	Attributes      map[string]string `json:"attributes"`
}

func (m *message) toJSON(now time.Time) messageJSON {
	j := messageJSON{
		MessageID:     m.ID,
		ReceiveCount:  m.ReceiveCount,
		Kind:          m.kind(),
		EventType:     m.eventType(),
		TeamID:        m.team(),
		FailureClass:  m.attr(envelope.AttrFailureClass),
		FailureReason: redactText(m.attr(envelope.AttrFailureReason)),
		FailedHandler: m.attr(envelope.AttrFailedHandler),
		FailedAt:      m.attr(envelope.AttrFailedAt),
		ReplayCount:   m.replayCount(),
		Attributes:    map[string]string{},
	}
	if !m.SentAt.IsZero() {
		j.SentTimestamp = m.SentAt.UnixMilli()
	}
	if m.Env != nil {
		j.EnvelopeID, j.EventID, j.DedupeKey = m.Env.ID, m.Env.EventID, m.Env.DedupeKey
	} else if m.EnvErr != nil {
		j.EnvelopeError = m.EnvErr.Error()
	}
	if at := m.eventTime(); !at.IsZero() {
		age := int64(now.Sub(at) / time.Second)
		j.EventTime, j.EventAgeSeconds = &at, &age
	}
	for k, v := range m.Attrs {
		j.Attributes[k] = redactText(aws.ToString(v.StringValue))
	}
	return j
}

func writeJSONLine(w interface{ Write([]byte) (int, error) }, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

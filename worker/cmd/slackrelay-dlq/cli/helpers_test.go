package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

// env is one test's queue pair on the local SQS server (fauxqs), and its own directory for
// export records.
type env struct {
	*awstest.Queues
	c          *sqs.Client
	queue, dlq string
	stateDir   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return envOf(t, awstest.NewQueues(t))
}

func envOf(t *testing.T, q *awstest.Queues) *env {
	return &env{Queues: q, c: q.SQS, queue: q.Queue, dlq: q.DLQ, stateDir: t.TempDir()}
}

// seedMany sends n small app_mention messages with bodies "<prefix> <i>" to the DLQ and
// returns the bodies.
func (e *env) seedMany(t *testing.T, prefix string, n int) map[string]bool {
	t.Helper()
	bodies := map[string]bool{}
	for i := range n {
		bodies[fmt.Sprintf("%s %d", prefix, i)] = true
	}
	awstest.SendMany(t, e.c, e.dlq, n, func(i int) (string, map[string]types.MessageAttributeValue) {
		return fmt.Sprintf("%s %d", prefix, i), dlqMsg{eventType: "app_mention", team: "T1"}.attrs()
	})
	return bodies
}

var drain = awstest.Drain

func (e *env) deps() Deps {
	return Deps{SQS: e.c, Getenv: func(string) string { return "" }, StateDir: e.stateDir}
}

// run runs the tool with the queue flags appended.
func (e *env) run(t *testing.T, deps Deps, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	args = append(args, "--queue-url", e.queue, "--dlq-url", e.dlq)
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = RunWith(ctx, deps, args, &out, &errb)
	return out.String(), errb.String(), err
}

// dlqMsg describes a seeded DLQ message.
type dlqMsg struct {
	kind      envelope.Kind
	eventType string
	team      string
	age       time.Duration // of the event
	class     string
	reason    string
	handler   string
	body      string // Slack body; default a small event callback
	ctype     string
}

func (d dlqMsg) envelope() *envelope.Envelope {
	if d.kind == "" {
		d.kind = envelope.KindEvent
	}
	if d.body == "" {
		d.body = fmt.Sprintf(`{"type":"event_callback","team_id":%q,"event":{"type":%q,"text":"<@U1> hello"}}`, d.team, d.eventType)
	}
	if d.ctype == "" {
		d.ctype = envelope.ContentTypeJSON
	}
	at := time.Now().Add(-d.age)
	id := envelope.NewID()
	return &envelope.Envelope{
		Version: envelope.Version, ID: id, Kind: d.kind, TeamID: d.team, EventType: d.eventType,
		EventID: "Ev" + id[:8], EventTime: at.Unix(), DedupeKey: "evt:Ev" + id[:8], ReceivedAt: at.UTC(),
		ContentType: d.ctype, Body: d.body,
	}
}

func strAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

func (d dlqMsg) attrs() map[string]types.MessageAttributeValue {
	kind := string(d.kind)
	if kind == "" {
		kind = string(envelope.KindEvent)
	}
	return map[string]types.MessageAttributeValue{
		envelope.AttrKind:          strAttr(kind),
		envelope.AttrEventType:     strAttr(d.eventType),
		envelope.AttrTeamID:        strAttr(d.team),
		envelope.AttrRetryNum:      {DataType: aws.String("Number"), StringValue: aws.String("0")},
		envelope.AttrFailureReason: strAttr(d.reason),
		envelope.AttrFailureClass:  strAttr(d.class),
		envelope.AttrFailedHandler: strAttr(d.handler),
		envelope.AttrFailedAt:      strAttr(time.Now().UTC().Format(time.RFC3339)),
	}
}

// seed puts d on the DLQ and returns the SQS message id and the body.
func (e *env) seed(t *testing.T, d dlqMsg) (id, body string) {
	t.Helper()
	b, err := json.Marshal(d.envelope())
	if err != nil {
		t.Fatal(err)
	}
	body = string(b)
	out, err := e.c.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(e.dlq), MessageBody: aws.String(body), MessageAttributes: d.attrs(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.MessageId), body
}

// counts returns the visible and in-flight counts of url.
func counts(t *testing.T, c *sqs.Client, url string) (visible, inFlight int) {
	t.Helper()
	cs, err := deadletter.ReadCounts(context.Background(), c, url)
	if err != nil {
		t.Fatal(err)
	}
	return cs.Visible, cs.InFlight
}

func attrString(m types.Message, name string) (string, bool) {
	v, ok := m.MessageAttributes[name]
	return aws.ToString(v.StringValue), ok
}

func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("output lacks %q:\n%s", sub, s)
		}
	}
}

func mustNotContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			t.Errorf("output contains %q:\n%s", sub, s)
		}
	}
}

func changeVis(url string, receipt *string) *sqs.ChangeMessageVisibilityInput {
	return &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: receipt, VisibilityTimeout: 0}
}

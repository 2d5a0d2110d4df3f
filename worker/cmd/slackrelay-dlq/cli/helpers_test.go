package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/infra/local/localstack"
	"github.com/slackrelay/slackrelay/infra/local/localstack/localstacktest"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

func TestMain(m *testing.M) { os.Exit(localstacktest.Run(m)) }

// env is one test's queue pair on the shared local SQS server (fauxqs), and its own
// directory for export records.
type env struct {
	stack      *localstack.Stack
	c          *sqs.Client
	queue, dlq string
	stateDir   string
}

var queueSeq atomic.Int64

func newEnv(t *testing.T) *env {
	t.Helper()
	s := localstacktest.Stack(t)
	name := regexp.MustCompile(`[^A-Za-z0-9_-]`).ReplaceAllString(t.Name(), "-")
	name = fmt.Sprintf("%.50s-%d-%d", name, time.Now().UnixNano()%1e6, queueSeq.Add(1))
	q, dlq := localstacktest.QueueURLs(t, s, name, 5)
	return &env{stack: s, c: client(s, nil), queue: q, dlq: dlq, stateDir: t.TempDir()}
}

// client returns an SQS client of the stack's server with the tool's HTTP client around
// next (nil: the SDK's default), as newAWSClients builds it.
func client(s *localstack.Stack, next aws.HTTPClient) *sqs.Client {
	return sqs.NewFromConfig(awsclient.Local(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(s.SQSEndpoint)
		o.HTTPClient = awsclient.NewHTTPClient(next)
	})
}

// slowReceives returns a client of the same server whose ReceiveMessage calls take d
// longer, as they do over a real network (the other calls are not slowed).
func (e *env) slowReceives(d time.Duration) *sqs.Client {
	return client(e.stack, &http.Client{Transport: latency{d: d, target: "AmazonSQS.ReceiveMessage"}})
}

// latency delays the requests whose X-Amz-Target is target.
type latency struct {
	d      time.Duration
	target string
}

func (l latency) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") == l.target {
		time.Sleep(l.d)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// seedMany sends n small messages with bodies "<prefix> <i>", 10 per batch, 8 batches at
// a time, and returns the bodies.
func (e *env) seedMany(t *testing.T, prefix string, n int) map[string]bool {
	t.Helper()
	bodies := map[string]bool{}
	for i := range n {
		bodies[fmt.Sprintf("%s %d", prefix, i)] = true
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i += 10 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(e.dlq)}
			for j := i; j < min(i+10, n); j++ {
				in.Entries = append(in.Entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)),
					MessageBody: aws.String(fmt.Sprintf("%s %d", prefix, j)), MessageAttributes: dlqMsg{eventType: "app_mention", team: "T1"}.attrs()})
			}
			out, err := e.c.SendMessageBatch(context.Background(), in)
			if err != nil || len(out.Failed) > 0 {
				t.Errorf("seed: %v %v", err, out)
			}
		}()
	}
	wg.Wait()
	return bodies
}

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
	body = string(d.envelope().AppendJSON(nil))
	out, err := e.c.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(e.dlq), MessageBody: aws.String(body), MessageAttributes: d.attrs(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.MessageId), body
}

// counts returns ApproximateNumberOfMessages and ...NotVisible of url.
func counts(t *testing.T, c *sqs.Client, url string) (visible, notVisible int) {
	t.Helper()
	out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		t.Fatal(err)
	}
	visible, _ = strconv.Atoi(out.Attributes["ApproximateNumberOfMessages"])
	notVisible, _ = strconv.Atoi(out.Attributes["ApproximateNumberOfMessagesNotVisible"])
	return visible, notVisible
}

// drain receives every message of url (hiding them for 60 s) and returns them by id.
// fauxqs answers a short poll from every visible message, so an empty receive means that
// none is left visible.
func drain(t *testing.T, c *sqs.Client, url string) map[string]types.Message {
	t.Helper()
	got := map[string]types.Message{}
	for empty := 0; empty < 2; {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 60,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			empty++
		}
		for _, m := range out.Messages {
			got[aws.ToString(m.MessageId)] = m
		}
	}
	return got
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

package intake

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

// TestEnqueueToLocalSQS sends through the real SQS client to the local SQS server, and
// through a proxy that can take SQS away, as an outage would.
func TestEnqueueToLocalSQS(t *testing.T) {
	t.Parallel()
	q := awstest.NewQueues(t)
	queueURL := q.Queue
	proxy := awstest.NewProxy(t, q.Endpoint)
	client := sqs.NewFromConfig(awsclient.Local(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(proxy.URL())
		o.RetryMaxAttempts = 1
	})
	h := newHandler(client, staticSecrets(), nil)
	h.QueueURL = queueURL
	ctx := context.Background()

	proxy.SetDown(true)
	if resp := h.Handle(ctx, signed(PathEvents, mentionBody)); resp.Status != 503 {
		t.Fatalf("with SQS down: status %d, want 503", resp.Status)
	}
	proxy.SetDown(false)
	if resp := h.Handle(ctx, signed(PathEvents, mentionBody, HeaderRetryNum, "1", HeaderRetryReason, "http_error")); resp.Status != 202 {
		t.Fatalf("after recovery: status %d", resp.Status)
	}
	out, err := q.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("queue holds %d messages, want exactly 1 (nothing from the failed attempt)", len(out.Messages))
	}
	m := out.Messages[0]
	e, err := envelope.Decode([]byte(aws.ToString(m.Body)))
	if err != nil {
		t.Fatal(err)
	}
	if e.Body != mentionBody || e.RetryNum != 1 {
		t.Fatalf("envelope = %+v", e)
	}
	for name, want := range map[string]string{envelope.AttrKind: "event", envelope.AttrEventType: "app_mention", envelope.AttrTeamID: "T1", envelope.AttrRetryNum: "1"} {
		if got := aws.ToString(m.MessageAttributes[name].StringValue); got != want {
			t.Fatalf("attribute %s = %q, want %q", name, got, want)
		}
	}
}

// TestSizeLimitAgainstLocalSQS checks envelope.SQSMessageSize against the local SQS server's
// own count at the boundary, then the receiver on both sides of it and with the worst
// requests at the largest MAX_BODY_BYTES, through the real client: every body is enqueued
// whole, and stays under the limit when a DLQ replay adds its attribute.
func TestSizeLimitAgainstLocalSQS(t *testing.T) {
	t.Parallel()
	q := awstest.NewQueues(t)
	queueURL := q.Queue
	ctx := context.Background()
	client := q.SQS

	// The attributes the receiver sets on an app_mention with a retry: every one counts.
	attrs := messageAttributes(&envelope.Envelope{Kind: envelope.KindEvent, EventType: "app_mention", TeamID: "T1", RetryNum: 1})
	attrBytes := envelope.SQSMessageSize("", attrs)
	for _, size := range []int{envelope.MaxSQSMessageBytes, envelope.MaxSQSMessageBytes + 1} {
		body := strings.Repeat("x", size-attrBytes)
		if got := envelope.SQSMessageSize(body, attrs); got != size {
			t.Fatalf("SQSMessageSize = %d, want %d", got, size)
		}
		_, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body), MessageAttributes: attrs})
		if fits := size <= envelope.MaxSQSMessageBytes; fits != (err == nil) {
			t.Fatalf("message of %d bytes by SQSMessageSize: server error %v, want accepted=%v", size, err, fits)
		}
	}
	if got := drain(t, client, queueURL); !slices.Equal(got, []int{envelope.MaxSQSMessageBytes}) {
		t.Fatalf("queue held messages of %v bytes, want the one at the limit", got)
	}

	// The receiver on both sides of the limit: the body as a JSON string up to it, in base64
	// past it, every message whole and accepted by the server.
	h := newHandler(client, staticSecrets(), nil)
	h.QueueURL = queueURL
	letters := lettersForSize(t, envelope.MaxSQSMessageBytes)
	sent := map[string]bool{}
	for _, over := range []int{-1, 0, 1} {
		body := paddedMention(boundaryAngles, letters+over)
		if resp := h.Handle(ctx, signed(PathEvents, body)); resp.Status != 202 {
			t.Fatalf("message %+d bytes from the limit: status %d (%s), want 202", over, resp.Status, resp.Body)
		}
		sent[body] = true
	}
	// The worst requests at the largest MAX_BODY_BYTES, and each again as a DLQ replay
	// sends it (the same body, ReplayCount added): the server takes them all.
	h.MaxBodyBytes = receiverconfig.MaxBodyBytesLimit
	for name, req := range worstCase(t, receiverconfig.MaxBodyBytesLimit) {
		if resp := h.Handle(ctx, req); resp.Status/100 != 2 {
			t.Fatalf("worst case %s: status %d (%s), want 2xx", name, resp.Status, resp.Body)
		}
		sent[string(req.Body)] = true
	}
	got := map[string]bool{}
	for _, m := range drainMessages(t, client, queueURL) {
		e, err := envelope.Decode([]byte(aws.ToString(m.Body)))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Body] = true
		if e.EventID != "EvBig" {
			attrs := map[string]sqstypes.MessageAttributeValue{envelope.AttrReplayCount: replayCount}
			maps.Copy(attrs, m.MessageAttributes)
			if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: m.Body, MessageAttributes: attrs}); err != nil {
				t.Errorf("the worst case %s, replayed: %v", e.Kind, err)
			}
		}
	}
	if len(got) != len(sent) {
		t.Fatalf("queue held %d of the %d bodies sent", len(got), len(sent))
	}
	for body := range sent {
		if !got[body] {
			t.Fatalf("a body of %d bytes was not enqueued whole", len(body))
		}
	}
	if n := len(drain(t, client, queueURL)); n != 3 {
		t.Fatalf("queue held %d replayed worst cases, want 3", n)
	}
}

// drain receives and deletes everything on the queue and returns each message's SQS size.
func drain(t *testing.T, client *sqs.Client, queueURL string) []int {
	t.Helper()
	var sizes []int
	for _, m := range drainMessages(t, client, queueURL) {
		sizes = append(sizes, envelope.SQSMessageSize(aws.ToString(m.Body), m.MessageAttributes))
	}
	return sizes
}

// drainMessages receives and deletes everything on the queue and returns it.
func drainMessages(t *testing.T, client *sqs.Client, queueURL string) []sqstypes.Message {
	t.Helper()
	var msgs []sqstypes.Message
	for {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return msgs
		}
		for _, m := range out.Messages {
			msgs = append(msgs, m)
			if _, err := client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

package receiver

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/infra/local/localstack"
	"github.com/slackrelay/slackrelay/infra/local/localstack/localstacktest"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

func TestMain(m *testing.M) { os.Exit(localstacktest.Run(m)) }

// TestEnqueueToLocalSQS sends through the real SQS client to the local SQS server, and
// through a proxy that can take SQS away, as an outage would.
func TestEnqueueToLocalSQS(t *testing.T) {
	t.Parallel()
	stack := localstacktest.Stack(t)
	queueURL, _ := localstacktest.QueueURLs(t, stack, "receiver-it", 5)
	proxy, err := localstack.NewFaultProxy(strings.TrimPrefix(stack.SQSEndpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
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
	out, err := stack.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
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
// own count at the boundary, then the receiver on both sides of it through the real client.
func TestSizeLimitAgainstLocalSQS(t *testing.T) {
	t.Parallel()
	stack := localstacktest.Stack(t)
	queueURL, _ := localstacktest.QueueURLs(t, stack, "receiver-size", 5)
	ctx := context.Background()
	client := stack.SQS()

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

	h := newHandler(client, staticSecrets(), nil)
	h.QueueURL = queueURL
	letters := lettersForSize(t, envelope.MaxSQSMessageBytes)
	for _, tc := range []struct {
		over   int
		status int
	}{{-1, 202}, {0, 202}, {1, 413}} {
		if resp := h.Handle(ctx, signed(PathEvents, paddedMention(boundaryQuotes, letters+tc.over))); resp.Status != tc.status {
			t.Fatalf("message %+d bytes from the limit: status %d (%s), want %d", tc.over, resp.Status, resp.Body, tc.status)
		}
	}
	got := drain(t, client, queueURL)
	slices.Sort(got)
	if want := []int{envelope.MaxSQSMessageBytes - 1, envelope.MaxSQSMessageBytes}; !slices.Equal(got, want) {
		t.Fatalf("queue held messages of %v bytes, want %v", got, want)
	}
}

// drain receives and deletes everything on the queue and returns each message's SQS size.
func drain(t *testing.T, client *sqs.Client, queueURL string) []int {
	t.Helper()
	var sizes []int
	for {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return sizes
		}
		for _, m := range out.Messages {
			sizes = append(sizes, envelope.SQSMessageSize(aws.ToString(m.Body), m.MessageAttributes))
			if _, err := client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

package receiver

import (
	"context"
	"os"
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
	if e.Body != mentionBody || e.RetryNum != 1 || e.DedupeKey != "msg:T1:C1:1700000000.000100" {
		t.Fatalf("envelope = %+v", e)
	}
	for name, want := range map[string]string{envelope.AttrKind: "event", envelope.AttrEventType: "app_mention", envelope.AttrTeamID: "T1", envelope.AttrRetryNum: "1"} {
		if got := aws.ToString(m.MessageAttributes[name].StringValue); got != want {
			t.Fatalf("attribute %s = %q, want %q", name, got, want)
		}
	}
}

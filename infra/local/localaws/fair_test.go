package localaws_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
)

// TestFairQueueDelivery: on a standard queue whose messages carry groups, a tenant holding
// 40 of 40 messages in flight (over 10% and at least 30) is noisy, so a receive returns a
// quiet tenant's messages before the noisy tenant's older ones, with the group as an
// attribute, as SQS fair queues do. With PlainQueues the same receive returns the oldest
// messages first.
func TestFairQueueDelivery(t *testing.T) {
	t.Parallel()
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			t.Parallel()
			s := localawstest.Start(t, localaws.Options{NoDynamoDB: true, PlainQueues: plain})
			c, q, ctx := s.SQS(), aws.String(s.QueueURL), context.Background()
			send := func(group, body string) {
				t.Helper()
				if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q, MessageBody: aws.String(body), MessageGroupId: aws.String(group)}); err != nil {
					t.Fatal(err)
				}
			}
			receive := func() []sqstypes.Message {
				t.Helper()
				out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q, MaxNumberOfMessages: 10,
					MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameMessageGroupId}})
				if err != nil {
					t.Fatal(err)
				}
				return out.Messages
			}
			for i := range 60 {
				send("TNOISY", fmt.Sprint("noisy ", i))
			}
			for range 4 { // 40 of the noisy tenant's messages in flight, none deleted
				if n := len(receive()); n != 10 {
					t.Fatalf("received %d, want 10", n)
				}
			}
			send("TQUIET", "quiet 0")
			send("TQUIET", "quiet 1")
			got := receive()
			if len(got) != 10 {
				t.Fatalf("received %d, want 10", len(got))
			}
			var bodies []string
			for _, m := range got {
				bodies = append(bodies, aws.ToString(m.Body))
			}
			quietFirst := bodies[0] == "quiet 0" && bodies[1] == "quiet 1" && bodies[2] == "noisy 40"
			if quietFirst == plain {
				t.Fatalf("plain=%v: received %q", plain, bodies)
			}
			if !plain {
				if g := got[0].Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]; g != "TQUIET" {
					t.Fatalf("MessageGroupId attribute = %q, want TQUIET", g)
				}
			}
		})
	}
}

// TestFairQueueDeliveryByProcessingTime: a tenant with few messages in flight but most of
// the consumers' recent processing time is noisy too: after its messages took 200 ms each, a
// quiet tenant's message sent after its backlog is received first.
func TestFairQueueDeliveryByProcessingTime(t *testing.T) {
	t.Parallel()
	s := localawstest.Start(t, localaws.Options{NoDynamoDB: true})
	c, q, ctx := s.SQS(), aws.String(s.QueueURL), context.Background()
	for i := range 10 {
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q, MessageBody: aws.String(fmt.Sprint("noisy ", i)), MessageGroupId: aws.String("TNOISY")}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q, MaxNumberOfMessages: 3})
	if err != nil || len(out.Messages) != 3 {
		t.Fatalf("receive: %d messages, %v", len(out.Messages), err)
	}
	time.Sleep(200 * time.Millisecond)
	for _, m := range out.Messages {
		if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q, ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q, MessageBody: aws.String("quiet"), MessageGroupId: aws.String("TQUIET")}); err != nil {
		t.Fatal(err)
	}
	out, err = c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q, MaxNumberOfMessages: 2})
	if err != nil || len(out.Messages) != 2 {
		t.Fatalf("receive: %d messages, %v", len(out.Messages), err)
	}
	if a, b := aws.ToString(out.Messages[0].Body), aws.ToString(out.Messages[1].Body); a != "quiet" || b != "noisy 3" {
		t.Fatalf("received %q, %q; want the quiet tenant's message, then the noisy tenant's oldest", a, b)
	}
}

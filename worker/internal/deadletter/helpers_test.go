package deadletter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/slackrelay/slackrelay/shared/awstest"
)

// queue is one test's DLQ (and events queue) on the local SQS server (fauxqs).
type queue struct {
	*awstest.Queues
	c           *sqs.Client
	events, url string
}

func newQueue(t testing.TB) *queue {
	t.Helper()
	q := awstest.NewQueues(t)
	return &queue{Queues: q, c: q.SQS, events: q.Queue, url: q.DLQ}
}

// seed sends n messages with bodies "<prefix> <i>" to the DLQ.
func (q *queue) seed(t testing.TB, prefix string, n int) {
	t.Helper()
	awstest.SendMany(t, q.c, q.url, n, func(i int) (string, map[string]types.MessageAttributeValue) {
		return fmt.Sprintf("%s %d", prefix, i), nil
	})
}

var drain = awstest.Drain

// counts reads the queue's counts.
func (q *queue) counts(t *testing.T) Counts {
	t.Helper()
	c, err := ReadCounts(context.Background(), q.c, q.url)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// grab receives up to n messages as another reader would, hiding them for vis.
func (q *queue) grab(t *testing.T, n int, vis time.Duration) []types.Message {
	t.Helper()
	out, err := q.c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(q.url), MaxNumberOfMessages: int32(n), VisibilityTimeout: int32(vis / time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != n {
		t.Fatalf("other reader received %d message(s), want %d", len(out.Messages), n)
	}
	return out.Messages
}

// receiveAsAnother receives up to 10 messages as another reader would, leaving them
// visible (visibility timeout 0), and returns them.
func (q *queue) receiveAsAnother(t *testing.T) []types.Message {
	t.Helper()
	out, err := q.c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(q.url), MaxNumberOfMessages: 10, VisibilityTimeout: 0})
	if err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

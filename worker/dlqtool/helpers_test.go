package dlqtool

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
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
)

func TestMain(m *testing.M) { os.Exit(localstacktest.Run(m)) }

var queueSeq atomic.Int64

// queue is one test's DLQ (and events queue) on the shared local SQS server (fauxqs).
type queue struct {
	stack       *localstack.Stack
	c           *sqs.Client
	events, url string
}

func newQueue(t testing.TB) *queue {
	t.Helper()
	s := localstacktest.Stack(t)
	name := regexp.MustCompile(`[^A-Za-z0-9_-]`).ReplaceAllString(t.Name(), "-")
	name = fmt.Sprintf("%.50s-%d-%d", name, time.Now().UnixNano()%1e6, queueSeq.Add(1))
	events, dlq := localstacktest.QueueURLs(t, s, name, 5)
	return &queue{stack: s, c: client(s, nil), events: events, url: dlq}
}

// client returns an SQS client of the stack's server with the tool's HTTP client around
// next (nil: the SDK's default).
func client(s *localstack.Stack, next aws.HTTPClient) *sqs.Client {
	return sqs.NewFromConfig(awsclient.Local(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(s.SQSEndpoint)
		o.HTTPClient = awsclient.NewHTTPClient(next)
	})
}

// slowReceives returns a client of the same server whose ReceiveMessage calls take d
// longer, as they do over a real network (the other calls are not slowed).
func (q *queue) slowReceives(d time.Duration) *sqs.Client {
	return client(q.stack, &http.Client{Transport: latency{d: d, target: "AmazonSQS.ReceiveMessage"}})
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

// seed sends n messages with bodies "<prefix> <i>", 10 per batch, 8 batches at a time.
func (q *queue) seed(t testing.TB, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i += 10 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url)}
			for j := i; j < min(i+10, n); j++ {
				in.Entries = append(in.Entries, types.SendMessageBatchRequestEntry{
					Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(fmt.Sprintf("%s %d", prefix, j))})
			}
			out, err := q.c.SendMessageBatch(context.Background(), in)
			if err != nil || len(out.Failed) > 0 {
				t.Errorf("seed: %v %v", err, out)
			}
		}()
	}
	wg.Wait()
}

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

// drain receives every message of url (hiding them for 60 s) and returns them by id.
func drain(t *testing.T, c *sqs.Client, url string) map[string]types.Message {
	t.Helper()
	got := map[string]types.Message{}
	for empty := 0; empty < 2; {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 60,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
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

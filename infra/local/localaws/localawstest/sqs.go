package localawstest

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/shared/awsclient"
)

// Queues is one test's events queue and DLQ on the shared local SQS server, with a client
// that sends through the project's HTTP client as the binaries do.
type Queues struct {
	Stack      *localaws.Servers
	SQS        *sqs.Client
	Queue, DLQ string
}

var queueSeq atomic.Int64

var unsafeQueueChars = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// NewQueues creates a fresh queue pair (maxReceiveCount 5) named after the test, so tests
// running side by side never see each other's messages.
func NewQueues(t testing.TB) *Queues {
	t.Helper()
	s := Stack(t)
	name := unsafeQueueChars.ReplaceAllString(t.Name(), "-")
	name = fmt.Sprintf("%.50s-%d-%d", name, time.Now().UnixNano()%1e6, queueSeq.Add(1))
	q, dlq := QueueURLs(t, s, name, 5)
	return &Queues{Stack: s, SQS: SQSClient(s, nil), Queue: q, DLQ: dlq}
}

// SQSClient returns an SQS client of s's server that sends through awsclient's HTTP client
// around next (nil: the SDK's default), as the binaries build theirs.
func SQSClient(s *localaws.Servers, next aws.HTTPClient) *sqs.Client {
	return sqs.NewFromConfig(awsclient.Local(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(s.SQSEndpoint)
		o.HTTPClient = awsclient.NewHTTPClient(next)
	})
}

// SlowReceives returns a client of the same server whose ReceiveMessage calls take d
// longer, as they do over a real network; the other calls are not slowed.
func (q *Queues) SlowReceives(d time.Duration) *sqs.Client {
	return SQSClient(q.Stack, &http.Client{Transport: delayTarget{d: d, target: "AmazonSQS.ReceiveMessage"}})
}

// delayTarget delays the requests whose X-Amz-Target is target.
type delayTarget struct {
	d      time.Duration
	target string
}

func (l delayTarget) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") == l.target {
		time.Sleep(l.d)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// SendMany sends n messages to url, 10 per batch and 8 batches at a time; entry(i) gives
// the i-th message's body and attributes (nil attributes: none); it is called from
// several goroutines at once.
func SendMany(t testing.TB, c *sqs.Client, url string, n int, entry func(i int) (string, map[string]types.MessageAttributeValue)) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i += 10 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(url)}
			for j := i; j < min(i+10, n); j++ {
				body, attrs := entry(j)
				in.Entries = append(in.Entries, types.SendMessageBatchRequestEntry{
					Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(body), MessageAttributes: attrs})
			}
			out, err := c.SendMessageBatch(context.Background(), in)
			if err != nil || len(out.Failed) > 0 {
				t.Errorf("send batch from %d: %v %v", i, err, out)
			}
		}()
	}
	wg.Wait()
}

// Drain receives every message of url (hiding each for 60 s, with all system and message
// attributes) and returns them by message id. The local server answers a short poll from
// every visible message, so two empty receives in a row mean that none is left visible.
func Drain(t testing.TB, c *sqs.Client, url string) map[string]types.Message {
	t.Helper()
	got := map[string]types.Message{}
	for empty := 0; empty < 2; {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 60,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			t.Fatalf("drain %s: %v", url, err)
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

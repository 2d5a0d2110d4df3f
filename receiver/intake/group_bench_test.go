package intake

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/awstest"
)

// noGroup is the receiver's SQS client with the MessageGroupId taken off every SendMessage:
// the receiver as it was before fair queues, on the same code path otherwise.
type noGroup struct{ Sender }

func (s noGroup) SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	c := *in
	c.MessageGroupId = nil
	return s.Sender.SendMessage(ctx, &c, optFns...)
}

// BenchmarkEnqueueGroupLocalSQS is the receiver's whole enqueue of a signed app_mention
// against the local SQS server (fauxqs under with-aws), through an SQS client built as the
// binary builds it (SendPolicy), with and without the MessageGroupId fair queues add. The
// two kinds alternate request by request on 8 clients, so a CPU shared with other work
// slows both alike; the figures are each kind's p50 and p99 in microseconds, and p99 with
// over p99 without.
func BenchmarkEnqueueGroupLocalSQS(b *testing.B) {
	q := awstest.NewQueues(b)
	client := sqs.NewFromConfig(awsclient.Local(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(q.Endpoint)
		SQSOptions(o)
	})
	with := newHandler(client, staticSecrets(), nil)
	with.QueueURL = q.Queue
	without := newHandler(noGroup{client}, staticSecrets(), nil)
	without.QueueURL = q.Queue
	ctx := context.Background()
	req := signed(PathEvents, mentionBody)
	const clients = 8
	var mu sync.Mutex
	lat := [2][]time.Duration{}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range jobs {
				h := with
				if i%2 == 1 {
					h = without
				}
				start := time.Now()
				r := h.Handle(ctx, req)
				took := time.Since(start)
				if r.Status != 202 {
					b.Errorf("status %d: %s", r.Status, r.Body)
					continue
				}
				mu.Lock()
				lat[i%2] = append(lat[i%2], took)
				mu.Unlock()
			}
		})
	}
	for i := 0; b.Loop(); i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	b.StopTimer()
	p := func(d []time.Duration, pc int) float64 {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return float64(d[(len(d)-1)*pc/100].Microseconds())
	}
	b.ReportMetric(p(lat[0], 50), "p50-group-µs")
	b.ReportMetric(p(lat[1], 50), "p50-nogroup-µs")
	b.ReportMetric(p(lat[0], 99), "p99-group-µs")
	b.ReportMetric(p(lat[1], 99), "p99-nogroup-µs")
	if w := p(lat[1], 99); w > 0 {
		b.ReportMetric(p(lat[0], 99)/w, "p99-ratio")
	}
}

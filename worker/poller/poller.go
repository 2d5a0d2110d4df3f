// Package poller stands in for Lambda's SQS event source mapping on one machine: it
// long-polls the queue, hands batches to the same handler Lambda would call (as
// events.SQSEvent, with the attributes Lambda fills in), deletes what succeeded and leaves
// the reported failures to come back.
package poller

import (
	"context"

	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQS is the calls the poller makes; *sqs.Client satisfies it.
type SQS interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

var _ SQS = (*sqs.Client)(nil)

// BatchHandler is what Lambda would invoke.
type BatchHandler func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)

// Poller runs receive → invoke → delete loops.
type Poller struct {
	SQS      SQS
	QueueURL string
	Handler  BatchHandler
	// BatchSize (1..10, default 10), Wait (long poll, default 20s), Timeout (the
	// invocation deadline, default 60s), Loops (concurrent pollers, default 2).
	BatchSize int
	Wait      time.Duration
	Timeout   time.Duration
	Loops     int
	Log       *slog.Logger
}

// Run polls until ctx is cancelled, then lets the batches in flight finish (they keep their
// own deadline) and returns. Messages not finished stay on the queue and come back.
func (p *Poller) Run(ctx context.Context) error {
	loops := p.Loops
	if loops <= 0 {
		loops = 2
	}
	var wg sync.WaitGroup
	for i := 0; i < loops; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func (p *Poller) loop(ctx context.Context) {
	errDelay := 500 * time.Millisecond
	for ctx.Err() == nil {
		n, err := p.PollOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.Log.Warn("poll failed; retrying", "error", err.Error(), "in", errDelay.String())
			select {
			case <-time.After(errDelay):
			case <-ctx.Done():
				return
			}
			errDelay = min(errDelay*2, 10*time.Second)
			continue
		}
		errDelay = 500 * time.Millisecond
		_ = n
	}
}

// PollOnce receives one batch, invokes the handler and deletes the successes. It returns the
// number of messages received.
func (p *Poller) PollOnce(ctx context.Context) (int, error) {
	size := p.BatchSize
	if size <= 0 || size > 10 {
		size = 10
	}
	wait := p.Wait
	if wait <= 0 {
		wait = 20 * time.Second
	}
	out, err := p.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(p.QueueURL),
		MaxNumberOfMessages:         int32(size),
		WaitTimeSeconds:             int32(wait / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return 0, fmt.Errorf("receive from %s: %w", p.QueueURL, err)
	}
	if len(out.Messages) == 0 {
		return 0, nil
	}
	ev := ToEvent(out.Messages, p.QueueURL)
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	// A stop request does not cut the invocation short, as Lambda would not.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	resp, herr := p.Handler(ictx, ev)
	cancel()
	if herr != nil {
		// Lambda treats an invocation error as the whole batch failing.
		p.Log.Error("batch handler failed; every message will come back", "error", herr.Error())
		return len(out.Messages), nil
	}
	failed := make(map[string]bool, len(resp.BatchItemFailures))
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var entries []sqstypes.DeleteMessageBatchRequestEntry
	for i, m := range out.Messages {
		if !failed[aws.ToString(m.MessageId)] {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(entries) > 0 {
		dout, err := p.SQS.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: entries})
		if err != nil {
			return len(out.Messages), fmt.Errorf("delete processed messages: %w", err)
		}
		if len(dout.Failed) > 0 {
			p.Log.Warn("some processed messages could not be deleted and will be delivered again", "count", len(dout.Failed))
		}
	}
	return len(out.Messages), nil
}

// ToEvent builds the event Lambda's SQS trigger would deliver for these messages.
func ToEvent(msgs []sqstypes.Message, queueURL string) events.SQSEvent {
	region, arn := queueARN(queueURL)
	ev := events.SQSEvent{Records: make([]events.SQSMessage, 0, len(msgs))}
	for _, m := range msgs {
		rec := events.SQSMessage{
			MessageId:         aws.ToString(m.MessageId),
			ReceiptHandle:     aws.ToString(m.ReceiptHandle),
			Body:              aws.ToString(m.Body),
			Md5OfBody:         aws.ToString(m.MD5OfBody),
			Attributes:        make(map[string]string, len(m.Attributes)),
			MessageAttributes: make(map[string]events.SQSMessageAttribute, len(m.MessageAttributes)),
			EventSource:       "aws:sqs",
			EventSourceARN:    arn,
			AWSRegion:         region,
		}
		for k, v := range m.Attributes {
			rec.Attributes[k] = v
		}
		for k, v := range m.MessageAttributes {
			rec.MessageAttributes[k] = events.SQSMessageAttribute{
				DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue,
			}
		}
		ev.Records = append(ev.Records, rec)
	}
	return ev
}

// queueARN derives a plausible ARN from a queue URL (…/{account}/{name}) for EventSourceARN.
func queueARN(u string) (region, arn string) {
	region = "us-east-1"
	parts := strings.Split(strings.TrimRight(u, "/"), "/")
	if len(parts) < 5 { // scheme, "", host, account, name
		return region, ""
	}
	if host := parts[2]; strings.HasPrefix(host, "sqs.") {
		if r := strings.Split(host, "."); len(r) > 2 {
			region = r[1]
		}
	}
	return region, "arn:aws:sqs:" + region + ":" + parts[len(parts)-2] + ":" + parts[len(parts)-1]
}

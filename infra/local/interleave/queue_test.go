package interleave

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/engine"
)

// The queue URLs the engine is given; the schedule's queue tells them apart.
const (
	eventsQueueURL = "https://sqs.local/events"
	dlqURL         = "https://sqs.local/events-dlq"
)

// queue is SQS as one schedule's engine sees it (engine.Queue): a continuation it sends
// to the events queue becomes a new message of the schedule, a dead letter is kept, a
// visibility change is the delay of the message's next delivery. Its calls go through the
// scheduler like the others.
type queue struct {
	s          *schedule
	nextCopyID int
}

var _ engine.Queue = (*queue)(nil)

// SendMessage queues a continuation or keeps a dead letter.
func (q *queue) SendMessage(ctx context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	inv := invocationOf(ctx)
	to := "→events"
	if aws.ToString(in.QueueUrl) == dlqURL {
		to = "→dlq"
	}
	if err := q.before(inv, call{service: "sqs", op: "SendMessage", detail: to}, func() {
		if to == "→dlq" {
			class := aws.ToString(in.MessageAttributes[envelope.AttrFailureClass].StringValue)
			q.s.dlq = append(q.s.dlq, deadLetter{msg: inv.msg.id, class: class})
			q.s.n.dlqClasses[class]++
			q.s.tracef("%-6s dead-lettered by the worker: %s", inv.name(), class)
			return
		}
		q.nextCopyID++
		m := &message{id: fmt.Sprintf("k%d", q.nextCopyID), due: q.s.now()}
		q.s.msgs = append(q.s.msgs, m)
		q.s.tracef("%-6s queued a continuation: %s", inv.name(), m.id)
	}); err != nil {
		return nil, err
	}
	return &sqs.SendMessageOutput{MessageId: aws.String("sent")}, nil
}

// ChangeMessageVisibility sets the delay of the message's next delivery.
func (q *queue) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	inv := invocationOf(ctx)
	if err := q.before(inv, call{service: "sqs", op: "ChangeMessageVisibility", detail: fmt.Sprintf("%ds", in.VisibilityTimeout)}, func() {
		inv.msg.delay = time.Duration(in.VisibilityTimeout) * time.Second
	}); err != nil {
		return nil, err
	}
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// before asks the scheduler about c and applies it (apply) when it reaches SQS; the error is
// what the engine sees.
func (q *queue) before(inv *invocation, c call, apply func()) error {
	if inv == nil {
		return fmt.Errorf("interleave: an SQS call outside any invocation")
	}
	switch d := inv.gate(c); d {
	case dead, crashBefore, kill:
		return errCrashed
	case fail:
		return fmt.Errorf("interleave: SQS refused %s", c.op)
	case lose:
		apply()
		return errLost
	case crashAfter:
		apply()
		inv.die()
		return errCrashed
	}
	apply()
	return nil
}

package engine

import (
	"context"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

// toDLQ sends the message to the DLQ with the failure attributes (deadletter.Attributes). It
// reports true (finished) only when the send succeeded, so a failed send leaves the message
// on the events queue.
func (m *message) toDLQ(ctx context.Context, class, stage string, cause error) bool {
	p := m.p
	attrs, cut := deadletter.Attributes(m.rec.Body, copyAttributes(m.rec.MessageAttributes),
		deadletter.Failure{Class: class, Stage: stage, At: p.now(), Cause: cause})
	if cut {
		m.log.Warn("message near SQS's size limit: the DLQ reason was cut to fit")
	}
	_, err := p.c.Queue.SendMessage(context.WithoutCancel(ctx), &sqs.SendMessageInput{
		QueueUrl: aws.String(p.c.DLQURL), MessageBody: aws.String(m.rec.Body), MessageAttributes: attrs,
	})
	if err != nil {
		m.log.Error("could not send to the DLQ; the message stays on the events queue", "dlq_error", err.Error())
		p.c.Metrics.Count("DLQSendErrors", 1)
		return false
	}
	p.c.Metrics.Count("DeadLettered", 1, metrics.Dim{Name: "Class", Value: class})
	return true
}

// copyAttributes turns a received message's attributes into ones to send.
func copyAttributes(in map[string]events.SQSMessageAttribute) map[string]sqstypes.MessageAttributeValue {
	attrs := make(map[string]sqstypes.MessageAttributeValue, len(in)+4)
	for name, a := range in {
		v := sqstypes.MessageAttributeValue{DataType: aws.String(a.DataType)}
		if a.StringValue != nil {
			v.StringValue = aws.String(*a.StringValue)
		} else if a.BinaryValue != nil {
			v.BinaryValue = a.BinaryValue
		} else {
			continue
		}
		attrs[name] = v
	}
	return attrs
}

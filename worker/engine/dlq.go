package engine

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/internal/text"
)

// maxReasonBytes bounds the FailureReason attribute.
const maxReasonBytes = 1024

// toDLQ sends the message to the DLQ with the failure attributes. It reports true (finished)
// only when the send succeeded, so a failed send leaves the message on the events queue.
// The failure attributes count toward SQS's size limit: when the message would not fit, the
// reason is cut first, then the optional attributes go, so the message never loses its way
// to the DLQ.
func (m *message) toDLQ(ctx context.Context, class, stage string, cause error) bool {
	p := m.p
	attrs := copyAttributes(m.rec.MessageAttributes)
	str := func(s string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
	}
	attrs[envelope.AttrFailureClass] = str(class)
	attrs[envelope.AttrFailedHandler] = str(stage)
	attrs[envelope.AttrFailedAt] = str(p.now().UTC().Format(time.RFC3339))
	reason := text.Truncate(cause.Error(), maxReasonBytes)
	attrs[envelope.AttrFailureReason] = str(reason)
	if over := envelope.SQSMessageSize(m.rec.Body, attrs) - envelope.MaxSQSMessageBytes; over > 0 {
		reason = text.Truncate(reason, max(len(reason)-over, 0))
		attrs[envelope.AttrFailureReason] = str(reason)
		m.log.Warn("message near SQS's size limit: the DLQ reason was cut to fit", "reason_bytes", len(reason))
		// Still too big: drop the receiver's informational attributes, keep the class.
		for _, optional := range []string{envelope.AttrFailureReason, envelope.AttrRetryNum, envelope.AttrTeamID, envelope.AttrEventType, envelope.AttrFailedAt, envelope.AttrFailedHandler} {
			if envelope.SQSMessageSize(m.rec.Body, attrs) <= envelope.MaxSQSMessageBytes {
				break
			}
			delete(attrs, optional)
		}
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

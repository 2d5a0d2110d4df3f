package deadletter

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

// FailureAttrs are the attributes the worker adds when it gives up on a message; a replay
// removes them.
var FailureAttrs = map[string]bool{
	envelope.AttrFailureReason: true,
	envelope.AttrFailureClass:  true,
	envelope.AttrFailedHandler: true,
	envelope.AttrFailedAt:      true,
}

// replayAttrs are m's attributes minus FailureAttrs, with ReplayCount one higher.
func replayAttrs(m *Message) map[string]types.MessageAttributeValue {
	out := make(map[string]types.MessageAttributeValue, len(m.Attrs)+1)
	for k, v := range m.Attrs {
		if FailureAttrs[k] || k == envelope.AttrReplayCount {
			continue
		}
		out[k] = types.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	out[envelope.AttrReplayCount] = types.MessageAttributeValue{
		DataType:    aws.String("Number"),
		StringValue: aws.String(strconv.Itoa(m.ReplayCount() + 1)),
	}
	return out
}

// Replay sends a held message to the events queue at eventsURL and, once that succeeded,
// deletes it from the DLQ. A message the hold lost is not sent (another reader may be
// replaying it), so a replay never sends a message twice on its own account.
func (h *Hold) Replay(ctx context.Context, eventsURL string, m *Message) error {
	if !h.Holds(m.ID) {
		return fmt.Errorf("no longer held by this scan, so not sent (another reader may have it; left in the DLQ)")
	}
	_, err := h.c.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(eventsURL),
		MessageBody:       aws.String(m.Body),
		MessageAttributes: replayAttrs(m),
	})
	if err != nil {
		return fmt.Errorf("send to %s: %w (left in the DLQ)", QueueName(eventsURL), err)
	}
	if err := h.Delete(context.WithoutCancel(ctx), m); err != nil {
		return fmt.Errorf("sent to %s, but deleting it from the DLQ failed: %w (the copy left in the DLQ is a duplicate; the worker's dedupe key keeps a second replay harmless)", QueueName(eventsURL), err)
	}
	return nil
}

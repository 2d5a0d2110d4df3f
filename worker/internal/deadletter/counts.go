package deadletter

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Counts are a queue's own (approximate) message counts.
type Counts struct {
	Visible  int `json:"visible"`   // ApproximateNumberOfMessages
	InFlight int `json:"in_flight"` // ApproximateNumberOfMessagesNotVisible (held by some reader)
	Delayed  int `json:"delayed"`   // ApproximateNumberOfMessagesDelayed
}

// Total is every message the queue holds.
func (c Counts) Total() int { return c.Visible + c.InFlight + c.Delayed }

// ReadCounts reads the counts of the queue at url.
func ReadCounts(ctx context.Context, c SQSAPI, url string) (Counts, error) {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		return Counts{}, fmt.Errorf("read the message counts of %s: %w", QueueName(url), err)
	}
	var cs Counts
	for name, dst := range map[types.QueueAttributeName]*int{
		types.QueueAttributeNameApproximateNumberOfMessages:           &cs.Visible,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible: &cs.InFlight,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed:    &cs.Delayed,
	} {
		raw, ok := out.Attributes[string(name)]
		if !ok {
			continue // a server without delayed messages may leave the attribute out
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return Counts{}, fmt.Errorf("%s of %s is %q, not a count", name, QueueName(url), raw)
		}
		*dst = n
	}
	return cs, nil
}

// QueueName is the last path element of a queue URL.
func QueueName(url string) string {
	url = strings.TrimRight(url, "/")
	if i := strings.LastIndexByte(url, '/'); i >= 0 {
		return url[i+1:]
	}
	return url
}

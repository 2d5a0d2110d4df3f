package deadletter

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/internal/textcut"
)

// MaxReasonBytes bounds the FailureReason attribute.
const MaxReasonBytes = 1024

// Failure is why a message is dead-lettered.
type Failure struct {
	// Class is one of envelope.FailureClass*; Stage the route or stage that failed.
	Class, Stage string
	At           time.Time
	Cause        error
}

// Attributes returns the message attributes of a dead letter of body: attrs (the message's
// own, copied) with the failure's. They count toward SQS's size limit: when the message would
// not fit, the reason is cut first, then the optional attributes go, so the message never
// loses its way to the DLQ. cut reports that the reason was shortened or attributes dropped.
func Attributes(body string, attrs map[string]sqstypes.MessageAttributeValue, f Failure) (out map[string]sqstypes.MessageAttributeValue, cut bool) {
	str := func(s string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
	}
	attrs[envelope.AttrFailureClass] = str(f.Class)
	attrs[envelope.AttrFailedHandler] = str(f.Stage)
	attrs[envelope.AttrFailedAt] = str(f.At.UTC().Format(time.RFC3339))
	reason := textcut.Truncate(f.Cause.Error(), MaxReasonBytes)
	attrs[envelope.AttrFailureReason] = str(reason)
	over := envelope.SQSMessageSize(body, attrs) - envelope.MaxSQSMessageBytes
	if over <= 0 {
		return attrs, false
	}
	reason = textcut.Truncate(reason, max(len(reason)-over, 0))
	attrs[envelope.AttrFailureReason] = str(reason)
	// Still too big: drop the receiver's informational attributes, keep the class.
	for _, optional := range []string{envelope.AttrFailureReason, envelope.AttrRetryNum, envelope.AttrTeamID, envelope.AttrEventType, envelope.AttrFailedAt, envelope.AttrFailedHandler} {
		if envelope.SQSMessageSize(body, attrs) <= envelope.MaxSQSMessageBytes {
			break
		}
		delete(attrs, optional)
	}
	return attrs, true
}

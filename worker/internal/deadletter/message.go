package deadletter

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

// Message is one DLQ message as a scan received it.
type Message struct {
	ID   string
	Body string
	// Attrs are the message attributes (never nil); SysAttrs the SQS system attributes.
	Attrs    map[string]types.MessageAttributeValue
	SysAttrs map[string]string
	// ReceiveCount is ApproximateReceiveCount at the scan's receive (peeks count too).
	ReceiveCount int
	// SentAt is when the message was sent to the DLQ (zero when unknown).
	SentAt time.Time
	// Env is the decoded envelope, nil when the body is not a valid one (EnvErr says why).
	Env    *envelope.Envelope
	EnvErr error

	receipt string // the newest receipt handle; guarded by the hold's mutex
}

func newMessage(m types.Message) *Message {
	msg := &Message{
		ID:       aws.ToString(m.MessageId),
		Body:     aws.ToString(m.Body),
		Attrs:    m.MessageAttributes,
		SysAttrs: m.Attributes,
		receipt:  aws.ToString(m.ReceiptHandle),
	}
	if msg.Attrs == nil {
		msg.Attrs = map[string]types.MessageAttributeValue{}
	}
	msg.ReceiveCount, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		msg.SentAt = time.UnixMilli(ms).UTC()
	}
	msg.Env, msg.EnvErr = envelope.Decode([]byte(msg.Body))
	return msg
}

// Attr returns a string message attribute, "" when absent.
func (m *Message) Attr(name string) string {
	if v, ok := m.Attrs[name]; ok {
		return aws.ToString(v.StringValue)
	}
	return ""
}

// Kind is the envelope's kind, else the Kind attribute.
func (m *Message) Kind() string {
	if m.Env != nil {
		return string(m.Env.Kind)
	}
	return m.Attr(envelope.AttrKind)
}

// EventType is the envelope's event type, else the EventType attribute.
func (m *Message) EventType() string {
	if m.Env != nil && m.Env.EventType != "" {
		return m.Env.EventType
	}
	return m.Attr(envelope.AttrEventType)
}

// Team is the envelope's team id, else the TeamId attribute.
func (m *Message) Team() string {
	if m.Env != nil && m.Env.TeamID != "" {
		return m.Env.TeamID
	}
	return m.Attr(envelope.AttrTeamID)
}

// EventTime is the envelope's event_time, else its received_at, else when the message was
// sent to the DLQ; zero when none is known.
func (m *Message) EventTime() time.Time {
	if m.Env != nil {
		if m.Env.EventTime > 0 {
			return time.Unix(m.Env.EventTime, 0).UTC()
		}
		if !m.Env.ReceivedAt.IsZero() {
			return m.Env.ReceivedAt
		}
	}
	return m.SentAt
}

// ReplayCount is the ReplayCount attribute (0 when absent).
func (m *Message) ReplayCount() int {
	n, _ := strconv.Atoi(m.Attr(envelope.AttrReplayCount))
	return n
}

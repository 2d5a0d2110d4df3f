// Package envelope defines the versioned message that the receiver puts on the events queue
// and the worker takes off it, with the SQS message attribute names both stages and the
// operators' tool agree on.
package envelope

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Version is the envelope format this code writes and the newest it reads.
const Version = 1

// Kind says which Slack surface a request came from.
type Kind string

// The kinds of Slack request the receiver accepts.
const (
	KindEvent        Kind = "event"
	KindSlashCommand Kind = "slash_command"
	KindInteraction  Kind = "interaction"
)

// Content types of the bodies an envelope carries.
const (
	ContentTypeJSON = "application/json"
	ContentTypeForm = "application/x-www-form-urlencoded"
)

// SQS message attribute names. The receiver sets the first four; the worker adds the failure
// attributes when it moves a message to the DLQ; the DLQ tool sets ReplayCount.
const (
	AttrKind          = "Kind"
	AttrEventType     = "EventType"
	AttrTeamID        = "TeamId"
	AttrRetryNum      = "RetryNum"
	AttrFailureReason = "FailureReason"
	AttrFailureClass  = "FailureClass"
	AttrFailedHandler = "FailedHandler"
	AttrFailedAt      = "FailedAt"
	AttrReplayCount   = "ReplayCount"
)

// MaxSQSMessageBytes is SQS's message size limit (1 MiB), which SQSMessageSize is checked against.
const MaxSQSMessageBytes = 1 << 20

// SQSMessageSize is the size SQS checks against MaxSQSMessageBytes when a message is sent: the
// body's bytes plus, for every message attribute, the bytes of its name, its data type and its
// value (StringValue, or BinaryValue for binary attributes).
func SQSMessageSize(body string, attrs map[string]sqstypes.MessageAttributeValue) int {
	n := len(body)
	for name, a := range attrs {
		n += len(name) + len(aws.ToString(a.DataType)) + len(aws.ToString(a.StringValue)) + len(a.BinaryValue)
	}
	return n
}

// Values of AttrFailureClass.
const (
	FailureClassPermanent = "permanent"
	FailureClassExhausted = "exhausted"
	// FailureClassConfig: retried until the receive count ran out because something the
	// worker needs is missing (a secret's SSM parameter): fix it, then replay.
	FailureClassConfig = "config"
	// FailureClassBusy: on its last receive this copy found another delivery holding the
	// event. Replaying it is safe: it does nothing once the event is answered.
	FailureClassBusy = "busy"
	// FailureClassStale: the event was older than the worker's record retention
	// (DLQ_RETENTION + REPLAY_WINDOW), so it was not answered: its record may have expired.
	FailureClassStale = "stale"
)

// Errors returned by Decode, matched with errors.Is.
var (
	ErrUnsupportedVersion = errors.New("unsupported envelope version")
	ErrInvalid            = errors.New("invalid envelope")
)

// Envelope is one verified Slack request on its way from the receiver to the worker. Body
// holds the request body byte for byte, so event types this code does not know pass through.
type Envelope struct {
	Version      int    `json:"v"`
	ID           string `json:"id"`
	Kind         Kind   `json:"kind"`
	TeamID       string `json:"team_id,omitempty"`
	EnterpriseID string `json:"enterprise_id,omitempty"`
	APIAppID     string `json:"api_app_id,omitempty"`
	EventType    string `json:"event_type,omitempty"`
	EventID      string `json:"event_id,omitempty"`
	EventTime    int64  `json:"event_time,omitempty"`
	// DedupeKey is what receivers before the worker's per-route policy wrote; the worker
	// decides the key from its own decoding and ignores it.
	DedupeKey   string    `json:"dedupe_key,omitempty"`
	ReceivedAt  time.Time `json:"received_at"`
	RetryNum    int       `json:"retry_num,omitempty"`
	RetryReason string    `json:"retry_reason,omitempty"`
	ContentType string    `json:"content_type"`
	Body        string    `json:"body"`
}

// NewID returns a random envelope id: 32 lowercase hex characters.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Decode parses and validates an envelope. Errors wrap ErrUnsupportedVersion or ErrInvalid.
func Decode(data []byte) (*Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if e.Version != Version {
		return nil, fmt.Errorf("%w: v=%d, this code reads v=%d", ErrUnsupportedVersion, e.Version, Version)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// Validate reports the first missing or malformed field, wrapping ErrInvalid.
func (e *Envelope) Validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("%w: missing id", ErrInvalid)
	case e.Kind != KindEvent && e.Kind != KindSlashCommand && e.Kind != KindInteraction:
		return fmt.Errorf("%w: unknown kind %q", ErrInvalid, e.Kind)
	case e.Body == "":
		return fmt.Errorf("%w: missing body", ErrInvalid)
	}
	return nil
}

// WorkingViewPrefix starts the private_metadata of a modal that asks to stay open while the
// worker handles its submission: the receiver answers the view_submission with a "working on
// it" view (response_action update), and the worker updates that view by its id later. What
// follows the prefix is the app's own private metadata.
const WorkingViewPrefix = "slackrelay:working;"

// Package envelope defines the versioned message that the receiver puts on the events queue
// and the worker takes off it, with the SQS message attribute names both stages and the
// operators' tool agree on.
package envelope

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Version is the envelope format written whenever the body fits in the message as a JSON
// string: nearly always, and the only format workers before VersionBodyBase64 read.
const Version = 1

// VersionBodyBase64 is the format of an envelope whose body travels base64-encoded in
// body_b64 (Envelope.BodyBase64) because its JSON string would not fit in an SQS message.
// It is version 1 plus that one field, under its own number so that a worker that predates
// it refuses such a message as an unsupported version (and dead-letters it, to be replayed
// once the worker is updated) instead of reading an empty body. Decode reads both versions.
const VersionBodyBase64 = 2

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
	// FailureClassNotInstalled: the event's workspace (or org) has no active installation
	// (never installed, uninstalled, or its token refused): it was not answered, and never
	// with another workspace's token. Replay it once the app is installed there.
	FailureClassNotInstalled = "not_installed"
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
// holds the request body byte for byte, so event types this code does not know pass through;
// on the wire it is a JSON string (version 1) or base64 (VersionBodyBase64), see Encode.
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
	// BodyBase64 is the body in standard padded base64, only in a VersionBodyBase64
	// envelope, written by Encode (with Body empty) when the body's JSON string would not
	// fit. Decode moves it into Body and clears it, so readers only ever look at Body.
	BodyBase64 string `json:"body_b64,omitempty"`
}

// NewID returns a random envelope id: 32 lowercase hex characters.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Decode parses and validates an envelope of either version; the body is in Body whichever
// form it travelled in. Errors wrap ErrUnsupportedVersion or ErrInvalid.
func Decode(data []byte) (*Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch e.Version {
	case Version:
		if e.BodyBase64 != "" {
			return nil, fmt.Errorf("%w: body_b64 in a v=%d envelope (only v=%d carries it)", ErrInvalid, Version, VersionBodyBase64)
		}
	case VersionBodyBase64:
		if e.BodyBase64 != "" {
			if e.Body != "" {
				return nil, fmt.Errorf("%w: both body and body_b64", ErrInvalid)
			}
			raw, err := base64.StdEncoding.DecodeString(e.BodyBase64)
			if err != nil {
				return nil, fmt.Errorf("%w: body_b64: %w", ErrInvalid, err)
			}
			e.Body, e.BodyBase64 = string(raw), ""
		}
	default:
		return nil, fmt.Errorf("%w: v=%d, this code reads v=%d and v=%d", ErrUnsupportedVersion, e.Version, Version, VersionBodyBase64)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// Validate reports the first missing or malformed field, wrapping ErrInvalid. The body may
// be in Body or, not yet decoded, in BodyBase64.
func (e *Envelope) Validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("%w: missing id", ErrInvalid)
	case e.Kind != KindEvent && e.Kind != KindSlashCommand && e.Kind != KindInteraction:
		return fmt.Errorf("%w: unknown kind %q", ErrInvalid, e.Kind)
	case e.Body == "" && e.BodyBase64 == "":
		return fmt.Errorf("%w: missing body", ErrInvalid)
	}
	return nil
}

// TooLargeError is Encode's error when an envelope does not fit in the size it was given
// even with its body in base64.
type TooLargeError struct {
	// Bytes is the size of the envelope with its body in base64; MaxBytes the size allowed.
	Bytes, MaxBytes int
}

// Error says both sizes.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("envelope too large: %d bytes with the body in base64, over the %d allowed", e.Bytes, e.MaxBytes)
}

// b64Field is what a body in base64 adds to an envelope besides its characters.
const b64Field = `,"body_b64":""`

// Encode writes e as one queue message body (JSON, no trailing newline) of at most maxBytes
// bytes, with the body in one of two forms:
//
//   - as a JSON string in a Version envelope when that fits and the body is UTF-8 (a JSON
//     string cannot hold other bytes exactly). It is what every worker reads, but its size
//     depends on the bytes: encoding/json writes a control character, <, > and & as
//     \u00XX, six bytes for one;
//   - otherwise in base64 in body_b64, in a VersionBodyBase64 envelope. That form takes 4
//     bytes per 3 bytes of body whatever they are (4·⌈n/3⌉), so a caller that bounds the
//     body's length and the other fields knows in advance that it always fits.
//
// A body that could not outgrow maxBytes even at six bytes a byte is written as a JSON
// string at once; for a longer one the JSON string's size is computed exactly before
// either form is written. e.Version and e.BodyBase64 are ignored (Encode sets them in its
// copy); e is not changed. version is the one written. The error is a *TooLargeError when neither form fits, or
// encoding/json's (a ReceivedAt outside the years 0-9999).
func Encode(e *Envelope, maxBytes int) (body string, version int, err error) {
	v := *e
	v.Version, v.BodyBase64 = Version, ""
	utf := utf8.ValidString(e.Body)
	// The common case, a body far under the limit, is written at once and measured: even at
	// six bytes a byte it could only be too long because of the other fields.
	if utf && 6*len(e.Body)+2 <= maxBytes {
		if out, err := encode(&v); err != nil || len(out) <= maxBytes {
			return out, Version, err
		}
	}
	v.Body = ""
	head, err := encode(&v) // ends with "body":""}
	if err != nil {
		return "", 0, err
	}
	if size, exact := jsonStringSize(e.Body); utf && exact && len(head)-2+size <= maxBytes {
		v.Body = e.Body
		if out, err := encode(&v); err != nil || len(out) <= maxBytes {
			return out, Version, err
		}
		// Only a change in encoding/json's escaping gets here: base64 still fits by size.
	}
	b64Bytes := len(head) + len(b64Field) + base64.StdEncoding.EncodedLen(len(e.Body))
	if b64Bytes > maxBytes {
		return "", 0, &TooLargeError{Bytes: b64Bytes, MaxBytes: maxBytes}
	}
	v.Version, v.Body, v.BodyBase64 = VersionBodyBase64, "", base64.StdEncoding.EncodeToString([]byte(e.Body))
	out, err := encode(&v)
	return out, VersionBodyBase64, err
}

// encode is encoding/json's output for e without the trailing newline. An Encoder writes
// straight into the builder, so a large body is not copied again from a []byte.
func encode(e *Envelope) (string, error) {
	var sb strings.Builder
	if err := json.NewEncoder(&sb).Encode(e); err != nil {
		return "", fmt.Errorf("encode envelope: %w", err)
	}
	return strings.TrimSuffix(sb.String(), "\n"), nil
}

// jsonStringSize is the length of s as encoding/json writes it as a JSON string (quotes
// included, HTML characters escaped as json.Marshal does); exact is false when s is not
// UTF-8, which that string then does not hold byte for byte.
func jsonStringSize(s string) (n int, exact bool) {
	n, exact = 2, true
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			switch {
			case b == '"', b == '\\', b == '\b', b == '\f', b == '\n', b == '\r', b == '\t':
				n += 2
			case b < 0x20, b == '<', b == '>', b == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n, exact = n+6, false // written as \ufffd
		case r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n, exact
}

// WorkingViewPrefix starts the private_metadata of a modal that asks to stay open while the
// worker handles its submission: the receiver answers the view_submission with a "working on
// it" view (response_action update), and the worker updates that view by its id later. What
// follows the prefix is the app's own private metadata.
const WorkingViewPrefix = "slackrelay:working;"

package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

// fmtAge prints a duration the way an operator reads it: 45s, 12m05s, 3h05m, 2d04h.
func fmtAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// ageOf is the event age of m, "?" when unknown.
func ageOf(m *deadletter.Message, now time.Time) string {
	if at := m.EventTime(); !at.IsZero() {
		return fmtAge(now.Sub(at))
	}
	return "?"
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// messageJSON is list --json's line: everything but the body, secrets redacted.
type messageJSON struct {
	MessageID       string            `json:"message_id"`
	ReceiveCount    int               `json:"receive_count"`
	SentTimestamp   int64             `json:"sent_timestamp,omitempty"`
	EnvelopeID      string            `json:"envelope_id,omitempty"`
	EnvelopeError   string            `json:"envelope_error,omitempty"`
	Kind            string            `json:"kind,omitempty"`
	EventType       string            `json:"event_type,omitempty"`
	EventID         string            `json:"event_id,omitempty"`
	TeamID          string            `json:"team_id,omitempty"`
	DedupeKey       string            `json:"dedupe_key,omitempty"`
	EventTime       *time.Time        `json:"event_time,omitempty"`
	EventAgeSeconds *int64            `json:"event_age_seconds,omitempty"`
	FailureClass    string            `json:"failure_class,omitempty"`
	FailureReason   string            `json:"failure_reason,omitempty"`
	FailedHandler   string            `json:"failed_handler,omitempty"`
	FailedAt        string            `json:"failed_at,omitempty"`
	ReplayCount     int               `json:"replay_count"`
	Attributes      map[string]string `json:"attributes"`
}

func toJSON(m *deadletter.Message, now time.Time) messageJSON {
	j := messageJSON{
		MessageID:     m.ID,
		ReceiveCount:  m.ReceiveCount,
		Kind:          m.Kind(),
		EventType:     m.EventType(),
		TeamID:        m.Team(),
		FailureClass:  m.Attr(envelope.AttrFailureClass),
		FailureReason: deadletter.RedactText(m.Attr(envelope.AttrFailureReason)),
		FailedHandler: m.Attr(envelope.AttrFailedHandler),
		FailedAt:      m.Attr(envelope.AttrFailedAt),
		ReplayCount:   m.ReplayCount(),
		Attributes:    map[string]string{},
	}
	if !m.SentAt.IsZero() {
		j.SentTimestamp = m.SentAt.UnixMilli()
	}
	if m.Env != nil {
		j.EnvelopeID, j.EventID, j.DedupeKey = m.Env.ID, m.Env.EventID, m.Env.DedupeKey
	} else if m.EnvErr != nil {
		j.EnvelopeError = m.EnvErr.Error()
	}
	if at := m.EventTime(); !at.IsZero() {
		age := int64(now.Sub(at) / time.Second)
		j.EventTime, j.EventAgeSeconds = &at, &age
	}
	for k, v := range m.Attrs {
		j.Attributes[k] = deadletter.RedactText(aws.ToString(v.StringValue))
	}
	return j
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

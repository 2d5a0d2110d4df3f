package deadletter

import (
	"strings"
	"time"

	"github.com/slackrelay/slackrelay/shared/envelope"
)

// Filter selects DLQ messages; a zero field does not filter.
type Filter struct {
	EventType, Team, Kind, Class string
	// Reason matches a substring of FailureReason, case-insensitive.
	Reason string
	// OlderThan / NewerThan bound the event's age (see Message.EventTime); a message whose
	// event time is unknown matches neither.
	OlderThan, NewerThan time.Duration
}

// Any reports whether the filter selects anything less than every message.
func (f Filter) Any() bool { return f != Filter{} }

// Match reports whether m passes the filter at time now.
func (f Filter) Match(m *Message, now time.Time) bool {
	switch {
	case f.EventType != "" && m.EventType() != f.EventType,
		f.Team != "" && m.Team() != f.Team,
		f.Kind != "" && m.Kind() != f.Kind,
		f.Class != "" && m.Attr(envelope.AttrFailureClass) != f.Class,
		f.Reason != "" && !strings.Contains(strings.ToLower(m.Attr(envelope.AttrFailureReason)), strings.ToLower(f.Reason)):
		return false
	}
	if f.OlderThan > 0 || f.NewerThan > 0 {
		at := m.EventTime()
		if at.IsZero() {
			return false
		}
		age := now.Sub(at)
		if f.OlderThan > 0 && age <= f.OlderThan || f.NewerThan > 0 && age >= f.NewerThan {
			return false
		}
	}
	return true
}

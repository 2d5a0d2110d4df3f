// Package logging builds the JSON slog logger both stages write to stdout, and the id
// attributes every line about a request carries.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/slackrelay/slackrelay/shared/envelope"
)

// Attribute keys carried by every line about a request or message.
const (
	KeyRequestID  = "request_id"
	KeyEnvelopeID = "envelope_id"
	KeyEventID    = "event_id"
	KeyKind       = "kind"
	KeyTeamID     = "team_id"
)

// ParseLevel reads debug, info, warn (or warning) and error, in any case; empty means info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

// New returns a JSON logger writing to w at the given level.
func New(w io.Writer, level string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})), nil
}

// WithEnvelope returns l with the request id and the envelope's ids attached; empty values
// are left out.
func WithEnvelope(l *slog.Logger, requestID string, e *envelope.Envelope) *slog.Logger {
	attrs := make([]any, 0, 5)
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add(KeyRequestID, requestID)
	if e != nil {
		add(KeyEnvelopeID, e.ID)
		add(KeyEventID, e.EventID)
		add(KeyKind, string(e.Kind))
		add(KeyTeamID, e.TeamID)
	}
	return l.With(attrs...)
}

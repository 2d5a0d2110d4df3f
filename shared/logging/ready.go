package logging

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
)

// The ready line is the contract between a binary and whatever starts it locally
// (infra/local/devworld, scripts): when the binary accepts work it writes one JSON line to
// stdout whose field "ready" is the boolean true, whatever LOG_LEVEL says. Its "component"
// names the binary; the receiver's local server adds "addr" (host:port it listens on) and
// "url" (its events URL), the worker's poller "queue_url". The line's msg text is not part of
// the contract, and no other line carries "ready". docs/local.md documents it.
const (
	KeyReady     = "ready"
	KeyComponent = "component"
	KeyAddr      = "addr"
)

// Ready writes the ready line for component to w with extra key/value attrs.
func Ready(w io.Writer, component string, attrs ...any) {
	args := append([]any{KeyReady, true, KeyComponent, component}, attrs...)
	slog.New(slog.NewJSONHandler(w, nil)).Info("ready", args...)
}

// ParseReady returns the fields of line when it is a ready line.
func ParseReady(line []byte) (map[string]any, bool) {
	if !bytes.Contains(line, []byte(`"`+KeyReady+`"`)) {
		return nil, false // most lines: skip decoding them
	}
	var m map[string]any
	if json.Unmarshal(line, &m) != nil || m[KeyReady] != true {
		return nil, false
	}
	return m, true
}

package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

func TestParseLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"", slog.LevelInfo, false}, {"DEBUG", slog.LevelDebug, false}, {"warning", slog.LevelWarn, false},
		{"warn", slog.LevelWarn, false}, {"error", slog.LevelError, false}, {"verbose", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestWithEnvelopeCarriesIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := New(&buf, "info")
	if err != nil {
		t.Fatal(err)
	}
	e := &envelope.Envelope{ID: "env1", EventID: "Ev1", Kind: envelope.KindEvent, TeamID: "T1"}
	WithEnvelope(l, "req1", e).Info("enqueued")
	l.Debug("hidden at info")
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("one JSON line expected, got %q: %v", buf.String(), err)
	}
	delete(got, "time")
	want := map[string]any{"level": "INFO", "msg": "enqueued", "request_id": "req1", "envelope_id": "env1", "event_id": "Ev1", "kind": "event", "team_id": "T1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
}

func TestWithEnvelopeSkipsEmpty(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, _ := New(&buf, "debug")
	WithEnvelope(l, "req1", &envelope.Envelope{Kind: envelope.KindSlashCommand}).Debug("x")
	var got map[string]any
	_ = json.Unmarshal(buf.Bytes(), &got)
	if _, ok := got[KeyEventID]; ok {
		t.Errorf("empty event_id logged: %v", got)
	}
	if got[KeyKind] != "slash_command" {
		t.Errorf("kind = %v, want slash_command", got[KeyKind])
	}
}

func TestReadyLine(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	Ready(&buf, "receiver", KeyAddr, "127.0.0.1:3000")
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) || bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("ready output %q, want one line", buf.String())
	}
	m, ok := ParseReady(buf.Bytes())
	if !ok {
		t.Fatalf("ParseReady(%q) = false, want true", buf.String())
	}
	if m[KeyComponent] != "receiver" || m[KeyAddr] != "127.0.0.1:3000" || m["level"] != "INFO" {
		t.Errorf("ready line fields = %v, want component receiver, addr 127.0.0.1:3000, level INFO", m)
	}
	for _, line := range []string{
		`{"level":"INFO","msg":"ready"}`,
		`{"level":"INFO","msg":"x","ready":"true"}`,
		`{"level":"INFO","msg":"x","ready":false}`,
		`{"ready":true`,
		`the service is "ready":true`,
	} {
		if _, ok := ParseReady([]byte(line)); ok {
			t.Errorf("ParseReady(%q) = true, want false", line)
		}
	}
}

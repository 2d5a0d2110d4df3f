package deadletter

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/envelope"
)

// An export line reads as a scanned message does: the envelope's kind, type and event time,
// else its attributes and the time it reached the DLQ.
func TestExportLineMessage(t *testing.T) {
	t.Parallel()
	env, err := json.Marshal(&envelope.Envelope{Version: envelope.Version, ID: "x", Kind: envelope.KindEvent, EventType: "app_mention",
		EventTime: 1_700_000_000, ContentType: envelope.ContentTypeJSON, Body: "{}"})
	if err != nil {
		t.Fatal(err)
	}
	kind := "slash_command"
	for _, tc := range []struct {
		name      string
		line      ExportLine
		kind, typ string
		at        time.Time
	}{
		{"envelope", ExportLine{MessageID: "m1", Body: string(env), SentTimestamp: 1_700_000_500_000}, "event", "app_mention", time.Unix(1_700_000_000, 0)},
		{"not an envelope", ExportLine{MessageID: "m2", Body: "{}", SentTimestamp: 1_700_000_500_000,
			Attributes: map[string]ExportAttr{envelope.AttrKind: {DataType: "String", StringValue: &kind}}}, "slash_command", "", time.Unix(1_700_000_500, 0)},
		{"no time at all", ExportLine{MessageID: "m3", Body: "{}"}, "", "", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := tc.line.Message()
			if m.ID != tc.line.MessageID || m.Kind() != tc.kind || m.EventType() != tc.typ || !m.EventTime().Equal(tc.at) || m.Attrs == nil {
				t.Errorf("Message() = id %s, kind %q, type %q, time %v; want %s, %q, %q, %v",
					m.ID, m.Kind(), m.EventType(), m.EventTime(), tc.line.MessageID, tc.kind, tc.typ, tc.at)
			}
		})
	}
}

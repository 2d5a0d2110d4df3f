package envelope

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func sample() Envelope {
	return Envelope{
		Version:      Version,
		ID:           "0123456789abcdef0123456789abcdef",
		Kind:         KindEvent,
		TeamID:       "T012AB3C4",
		EnterpriseID: "E0ENT",
		APIAppID:     "A0APP",
		EventType:    "app_mention",
		EventID:      "Ev08MFMKH6",
		EventTime:    1700000000,
		DedupeKey:    MessageDedupeKey("T012AB3C4", "C0CHAN", "1700000000.000100"),
		ReceivedAt:   time.Date(2026, 11, 23, 4, 5, 6, 789000000, time.UTC),
		RetryNum:     1,
		RetryReason:  "http_timeout",
		ContentType:  ContentTypeJSON,
		Body:         `{"type":"event_callback","event":{"type":"app_mention","text":"<@U0BOT> héllo 🎉"}}`,
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	minimal := Envelope{Version: Version, ID: "x", Kind: KindSlashCommand, DedupeKey: "cmd:T:1", ContentType: ContentTypeForm, Body: "command=%2Fask&text=hi"}
	tests := []struct {
		name string
		mod  func(*Envelope)
	}{
		{"full", func(*Envelope) {}},
		{"minimal", func(e *Envelope) { *e = minimal }},
		{"control chars", func(e *Envelope) { e.Body = "a\x00b\x01\x1f\n\r\t\"\\" }},
		{"html chars", func(e *Envelope) { e.Body = "<a href='x'>&amp;</a>" }},
		{"line separators", func(e *Envelope) { e.Body = "x\u2028y\u2029z" }},
		{"emoji and accents", func(e *Envelope) { e.Body = "日本語 ✅ ñ 🧵" }},
		{"invalid utf8", func(e *Envelope) { e.Body = "ok\xff\xfebad\xc3" }},
		{"local time zone", func(e *Envelope) { e.ReceivedAt = time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600)) }},
		{"negative event time", func(e *Envelope) { e.EventTime = -5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := sample()
			tt.mod(&e)
			want, err := json.Marshal(&e)
			if err != nil {
				t.Fatal(err)
			}
			got := e.AppendJSON(nil)
			if string(got) != string(want) {
				t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	want := sample()
	got, err := Decode(want.AppendJSON(nil))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mod     func(map[string]any)
		raw     string
		wantErr error
	}{
		{name: "future version", mod: func(m map[string]any) { m["v"] = 2 }, wantErr: ErrUnsupportedVersion},
		{name: "no version", mod: func(m map[string]any) { delete(m, "v") }, wantErr: ErrUnsupportedVersion},
		{name: "missing id", mod: func(m map[string]any) { delete(m, "id") }, wantErr: ErrInvalid},
		{name: "unknown kind", mod: func(m map[string]any) { m["kind"] = "webhook" }, wantErr: ErrInvalid},
		{name: "missing dedupe key", mod: func(m map[string]any) { m["dedupe_key"] = "" }, wantErr: ErrInvalid},
		{name: "missing body", mod: func(m map[string]any) { delete(m, "body") }, wantErr: ErrInvalid},
		{name: "not json", raw: "{nope", wantErr: ErrInvalid},
		{name: "wrong type", raw: `{"v":"one"}`, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := []byte(tt.raw)
			if tt.mod != nil {
				s := sample()
				var m map[string]any
				if err := json.Unmarshal(s.AppendJSON(nil), &m); err != nil {
					t.Fatal(err)
				}
				tt.mod(m)
				data, _ = json.Marshal(m)
			}
			_, err := Decode(data)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Decode error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestGoldenV1 pins the wire format: a change that breaks it must bump Version.
func TestGoldenV1(t *testing.T) {
	t.Parallel()
	path := filepath.Join("testdata", "envelope-v1.json")
	e := sample()
	got := e.AppendJSON(nil)
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update): %v", err)
	}
	if string(got) != strings.TrimSuffix(string(want), "\n") {
		t.Errorf("v1 format changed:\n got %s\nwant %s", got, want)
	}
	if _, err := Decode(want); err != nil {
		t.Errorf("golden v1 envelope no longer decodes: %v", err)
	}
}

func TestDedupeKeys(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{MessageDedupeKey("T1", "C1", "1.2"), "msg:T1:C1:1.2"},
		{EventDedupeKey("Ev1"), "evt:Ev1"},
		{TriggerDedupeKey(KindSlashCommand, "T1", "13345.abc", nil), "cmd:T1:13345.abc"},
		{TriggerDedupeKey(KindInteraction, "T1", "9.x", nil), "int:T1:9.x"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	a := TriggerDedupeKey(KindInteraction, "T1", "", []byte("payload=a"))
	b := TriggerDedupeKey(KindInteraction, "T1", "", []byte("payload=b"))
	if a == b || !strings.HasPrefix(a, "int:T1:sha256-") {
		t.Errorf("body digest keys: %q and %q, want distinct int:T1:sha256-… keys", a, b)
	}
	if a != TriggerDedupeKey(KindInteraction, "T1", "", []byte("payload=a")) {
		t.Error("body digest key is not stable")
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	a, b := NewID(), NewID()
	if len(a) != 32 || a == b || strings.Trim(a, "0123456789abcdef") != "" {
		t.Errorf("NewID() = %q, %q; want distinct 32-char lowercase hex", a, b)
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("plain", "evt:1", int64(1))
	f.Add("a\x00\"\\<>&\u2028", "msg:T:C:1.2", int64(0))
	f.Add("🎉 ñ", "k", int64(-1))
	f.Fuzz(func(t *testing.T, body, key string, eventTime int64) {
		e := sample()
		e.Body, e.DedupeKey, e.EventTime = body, key, eventTime
		data := e.AppendJSON(nil)
		want, _ := json.Marshal(&e)
		if string(data) != string(want) {
			t.Fatalf("AppendJSON differs from encoding/json:\n got %s\nwant %s", data, want)
		}
		if body == "" || key == "" {
			return
		}
		got, err := Decode(data)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if utf8.ValidString(body) && got.Body != body {
			t.Fatalf("body changed: got %q, want %q", got.Body, body)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	e := sample()
	e.Body = strings.Repeat(`{"type":"event_callback","text":"hello world"}`, 24)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Body)))
	for b.Loop() {
		buf = e.AppendJSON(buf[:0])
	}
}

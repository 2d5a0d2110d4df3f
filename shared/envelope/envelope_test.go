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

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
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
		DedupeKey:    "msg:T012AB3C4:C0CHAN:1700000000.000100", // what receivers before the worker's own policy wrote
		ReceivedAt:   time.Date(2026, 11, 23, 4, 5, 6, 789000000, time.UTC),
		RetryNum:     1,
		RetryReason:  "http_timeout",
		ContentType:  ContentTypeJSON,
		Body:         `{"type":"event_callback","event":{"type":"app_mention","text":"<@U0BOT> héllo 🎉"}}`,
	}
}

// TestRoundTrip: what encoding/json writes, Decode reads back unchanged, whatever the body holds.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Envelope)
	}{
		{"full", func(*Envelope) {}},
		{"minimal", func(e *Envelope) {
			*e = Envelope{Version: Version, ID: "x", Kind: KindSlashCommand, DedupeKey: "cmd:T:1", ContentType: ContentTypeForm, Body: "command=%2Fask&text=hi"}
		}},
		{"control chars", func(e *Envelope) { e.Body = "a\x00b\x01\x1f\n\r\t\"\\" }},
		{"html chars", func(e *Envelope) { e.Body = "<a href='x'>&amp;</a>" }},
		{"line separators", func(e *Envelope) { e.Body = "x\u2028y\u2029z" }},
		{"emoji and accents", func(e *Envelope) { e.Body = "日本語 ✅ ñ 🧵" }},
		{"negative event time", func(e *Envelope) { e.EventTime = -5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := sample()
			tt.mod(&want)
			data, err := json.Marshal(&want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
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
		{name: "future version", mod: func(m map[string]any) { m["v"] = 3 }, wantErr: ErrUnsupportedVersion},
		{name: "body_b64 in a v1 envelope", mod: func(m map[string]any) { m["body_b64"] = "e30=" }, wantErr: ErrInvalid},
		{name: "v2 with body and body_b64", mod: func(m map[string]any) { m["v"], m["body_b64"] = 2, "e30=" }, wantErr: ErrInvalid},
		{name: "v2 with body_b64 not base64", mod: func(m map[string]any) { m["v"], m["body"], m["body_b64"] = 2, "", "{}" }, wantErr: ErrInvalid},
		{name: "v2 without a body", mod: func(m map[string]any) { m["v"], m["body"] = 2, "" }, wantErr: ErrInvalid},
		{name: "no version", mod: func(m map[string]any) { delete(m, "v") }, wantErr: ErrUnsupportedVersion},
		{name: "missing id", mod: func(m map[string]any) { delete(m, "id") }, wantErr: ErrInvalid},
		{name: "unknown kind", mod: func(m map[string]any) { m["kind"] = "webhook" }, wantErr: ErrInvalid},
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
				if err := json.Unmarshal(mustMarshal(t, &s), &m); err != nil {
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
	got := mustMarshal(t, &e)
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

// Receivers no longer write dedupe_key (the worker decides the key); envelopes with and
// without it both decode.
func TestDedupeKeyIsOptional(t *testing.T) {
	t.Parallel()
	e := sample()
	e.DedupeKey = ""
	data := mustMarshal(t, &e)
	if strings.Contains(string(data), "dedupe_key") {
		t.Errorf("an empty dedupe key is written: %s", data)
	}
	if _, err := Decode(data); err != nil {
		t.Errorf("an envelope without dedupe_key does not decode: %v", err)
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	a, b := NewID(), NewID()
	if len(a) != 32 || a == b || strings.Trim(a, "0123456789abcdef") != "" {
		t.Errorf("NewID() = %q, %q; want distinct 32-char lowercase hex", a, b)
	}
}

func mustMarshal(t *testing.T, e *Envelope) []byte {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSQSMessageSize(t *testing.T) {
	t.Parallel()
	str := func(dataType, v string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String(dataType), StringValue: aws.String(v)}
	}
	tests := []struct {
		name  string
		body  string
		attrs map[string]sqstypes.MessageAttributeValue
		want  int
	}{
		{"body only", "hello", nil, 5},
		{"multi-byte body counts bytes", "héllo 🎉", nil, len("héllo 🎉")},
		// 4+6+5 + 9+6+11 + 8+6+1 = 56
		{"receiver's attributes", "{}", map[string]sqstypes.MessageAttributeValue{
			AttrKind: str("String", "event"), AttrEventType: str("String", "app_mention"), AttrRetryNum: str("Number", "1"),
		}, 2 + 56},
		{"binary attribute", "", map[string]sqstypes.MessageAttributeValue{
			"Blob": {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
		}, 4 + 6 + 3},
		{"custom data type label counts", "", map[string]sqstypes.MessageAttributeValue{"N": str("Number.int", "12")}, 1 + 10 + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := SQSMessageSize(tt.body, tt.attrs); got != tt.want {
				t.Errorf("SQSMessageSize = %d, want %d", got, tt.want)
			}
		})
	}
}

// BenchmarkMarshal is the cost of encoding one envelope around a 1.1 KB Events API body with
// encoding/json, as the receiver does for every request.
func BenchmarkMarshal(b *testing.B) {
	e := sample()
	e.Body = strings.Repeat(`{"type":"event_callback","text":"hello world"}`, 24)
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Body)))
	for b.Loop() {
		if _, err := json.Marshal(&e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode is the receiver's cost of the same envelope through Encode: the size of
// the JSON string form computed before it is written.
func BenchmarkEncode(b *testing.B) {
	e := sample()
	e.Body = strings.Repeat(`{"type":"event_callback","text":"hello world"}`, 24)
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Body)))
	for b.Loop() {
		if _, _, err := Encode(&e, MaxSQSMessageBytes); err != nil {
			b.Fatal(err)
		}
	}
}

package envelope

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// v1Form is what encoding/json writes for e as a version 1 envelope: what receivers wrote
// before Encode, and what Encode must still write whenever it fits.
func v1Form(t *testing.T, e Envelope) string {
	t.Helper()
	e.Version, e.BodyBase64 = Version, ""
	return string(mustMarshal(t, &e))
}

// b64Form is the size of e with its body in base64, from the body's length alone.
func b64Size(t *testing.T, e Envelope) int {
	t.Helper()
	size, _ := jsonStringSize(e.Body)
	return len(v1Form(t, e)) - size + 2 + len(b64Field) + base64.StdEncoding.EncodedLen(len(e.Body))
}

// TestEncodeChoosesTheForm: the body as a JSON string (v1, byte for byte what encoding/json
// writes) up to the last byte allowed, base64 (v2) one byte past it, and a size error only
// when the base64 form does not fit either. Whatever it writes decodes to the same envelope.
func TestEncodeChoosesTheForm(t *testing.T) {
	t.Parallel()
	small := sample()
	// 1,000 bytes of control characters and <>&: 6,000 as a JSON string, 1,336 in base64.
	escaped := sample()
	escaped.Body = strings.Repeat("\x01<>&\x1f", 200)
	tests := []struct {
		name     string
		e        Envelope
		maxBytes func(t *testing.T, e Envelope) int
		want     int // version written; 0: *TooLargeError
	}{
		{"a plain body fits as a JSON string", small, func(t *testing.T, e Envelope) int { return 1 << 20 }, Version},
		{"a plain body one byte short (base64 is longer)", small, func(t *testing.T, e Envelope) int { return len(v1Form(t, e)) - 1 }, 0},
		{"fits as a JSON string, exactly", escaped, func(t *testing.T, e Envelope) int { return len(v1Form(t, e)) }, Version},
		{"one byte short for the JSON string", escaped, func(t *testing.T, e Envelope) int { return len(v1Form(t, e)) - 1 }, VersionBodyBase64},
		{"escapes make the JSON string too long", escaped, func(t *testing.T, e Envelope) int { return 2000 }, VersionBodyBase64},
		{"base64 fits exactly", escaped, b64Size, VersionBodyBase64},
		{"base64 one byte too long", escaped, func(t *testing.T, e Envelope) int { return b64Size(t, e) - 1 }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			max := tt.maxBytes(t, tt.e)
			in := tt.e
			out, version, err := Encode(&in, max)
			if diff := cmp.Diff(tt.e, in); diff != "" {
				t.Errorf("Encode changed its argument (-before +after):\n%s", diff)
			}
			if tt.want == 0 {
				var tl *TooLargeError
				if !errors.As(err, &tl) || tl.Bytes != b64Size(t, tt.e) || tl.MaxBytes != max {
					t.Fatalf("Encode = %d bytes, %v; want a *TooLargeError of %d bytes over %d", len(out), err, b64Size(t, tt.e), max)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(out) > max {
				t.Errorf("Encode wrote %d bytes, over the %d allowed", len(out), max)
			}
			var wire struct {
				V       int     `json:"v"`
				Body    string  `json:"body"`
				BodyB64 *string `json:"body_b64"`
			}
			if err := json.Unmarshal([]byte(out), &wire); err != nil {
				t.Fatal(err)
			}
			switch {
			case wire.V != tt.want || version != tt.want:
				t.Errorf("wrote v=%d and reported v=%d, want v=%d", wire.V, version, tt.want)
			case tt.want == Version && out != v1Form(t, tt.e):
				t.Errorf("v1 form differs from encoding/json's:\n got %s\nwant %s", out, v1Form(t, tt.e))
			case tt.want == VersionBodyBase64 && (wire.Body != "" || wire.BodyB64 == nil):
				t.Errorf("v2 form without body_b64 or with a body: %.200s", out)
			case tt.want == VersionBodyBase64 && len(out) != b64Size(t, tt.e):
				t.Errorf("v2 form is %d bytes, want %d as computed in advance", len(out), b64Size(t, tt.e))
			}
			got, err := Decode([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.e
			want.Version = tt.want
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGoldenV2 pins the base64 form and what Decode makes of it: Body filled, BodyBase64
// empty, everything else as written.
func TestGoldenV2(t *testing.T) {
	t.Parallel()
	path := filepath.Join("testdata", "envelope-v2.json")
	e := sample()
	e.Body = "command=%2Fask&text=" + strings.Repeat("\x01", 40)
	e.Kind, e.ContentType, e.EventType, e.EventID, e.DedupeKey = KindSlashCommand, ContentTypeForm, "/ask", "", ""
	got, _, err := Encode(&e, len(v1Form(t, e))-1)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update): %v", err)
	}
	if got != strings.TrimSuffix(string(want), "\n") {
		t.Errorf("v2 format changed:\n got %s\nwant %s", got, want)
	}
	dec, err := Decode(want)
	if err != nil {
		t.Fatalf("golden v2 envelope does not decode: %v", err)
	}
	e.Version = VersionBodyBase64
	if diff := cmp.Diff(&e, dec); diff != "" {
		t.Errorf("decoded golden v2 (-want +got):\n%s", diff)
	}
}

// An older worker reads only v=1 and refuses any other version as unsupported (a loud,
// replayable dead letter). The base64 form must therefore never be written as v=1: the
// older worker would otherwise find "body":"" and fail on a missing body, or a reader that
// skips validation would see an empty request.
func TestBase64FormIsNeverVersion1(t *testing.T) {
	t.Parallel()
	e := sample()
	e.Body = strings.Repeat("<", 300)
	out, _, err := Encode(&e, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, `{"v":2,`) || !strings.Contains(out, `"body_b64":`) {
		t.Fatalf("base64 form written as %.60s…", out)
	}
	var older struct {
		V    int    `json:"v"`
		Body string `json:"body"`
	}
	if err := json.Unmarshal([]byte(out), &older); err != nil || older.V == Version {
		t.Fatalf("an older decoder reads v=%d (%v): it must see a version it does not know", older.V, err)
	}
}

// FuzzEncode: jsonStringSize agrees with encoding/json for any string, and Encode, for
// any body and any size, writes at most that size, prefers the JSON string when it fits
// (and the body is UTF-8), and writes what Decode reads back byte for byte.
func FuzzEncode(f *testing.F) {
	f.Add("hello", 400)
	f.Add("a\x00b\x01\x1f\n\r\t\"\\\b\f", 300)
	f.Add("<a href='x'>&amp;</a>", 330)
	f.Add("x\u2028y\u2029z\x7f", 320)
	f.Add("\xff\xfe bad utf-8 \xc3", 310)
	f.Add("日本語 ✅ ñ 🧵", 350)
	f.Fuzz(func(t *testing.T, body string, maxBytes int) {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		if got, exact := jsonStringSize(body); got != len(b) || exact != utf8.ValidString(body) {
			t.Fatalf("jsonStringSize(%q) = %d, %v; encoding/json writes %d bytes", body, got, exact, len(b))
		}
		if body == "" {
			return
		}
		e := sample()
		e.Body = body
		out, _, err := Encode(&e, maxBytes)
		var tl *TooLargeError
		if errors.As(err, &tl) {
			if tl.Bytes <= maxBytes || (utf8.ValidString(body) && len(v1Form(t, e)) <= maxBytes) {
				t.Fatalf("too large at %d bytes, but a form fits (v1 %d, base64 %d)", maxBytes, len(v1Form(t, e)), tl.Bytes)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > maxBytes {
			t.Fatalf("wrote %d bytes, %d allowed", len(out), maxBytes)
		}
		if v1 := v1Form(t, e); utf8.ValidString(body) && len(v1) <= maxBytes && out != v1 {
			t.Fatalf("the JSON string form fits (%d of %d bytes) but Encode wrote %.80s", len(v1), maxBytes, out)
		}
		got, err := Decode([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		if got.Body != body {
			t.Fatalf("body %q read back as %q", body, got.Body)
		}
	})
}

package slackverify

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	secret := []byte("8f742231b10e8888abcd99yyyzzz85a5")
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"type":"event_callback","event":{"type":"app_mention","text":"hi"}}`)
	nonASCII := []byte(`{"text":"héllo wörld 日本 🎉"}`)
	binary := []byte{0x00, 0xff, 0x10, 0x80}
	tests := []struct {
		name      string
		secret    []byte
		timestamp string
		signature string
		body      []byte
		wantErr   error
	}{
		{name: "valid", timestamp: ts, signature: Sign(secret, ts, body), body: body},
		{name: "non-ASCII body", timestamp: ts, signature: Sign(secret, ts, nonASCII), body: nonASCII},
		{name: "binary body", timestamp: ts, signature: Sign(secret, ts, binary), body: binary},
		{name: "empty body", timestamp: ts, signature: Sign(secret, ts, nil), body: nil},
		{name: "wrong secret", secret: []byte("other"), timestamp: ts, signature: Sign(secret, ts, body), body: body, wantErr: ErrBadSignature},
		{name: "tampered body", timestamp: ts, signature: Sign(secret, ts, body), body: append([]byte(nil), append(body[:len(body)-1:len(body)-1], ' ')...), wantErr: ErrBadSignature},
		{name: "timestamp not the signed one", timestamp: strconv.FormatInt(now.Unix()-1, 10), signature: Sign(secret, ts, body), body: body, wantErr: ErrBadSignature},
		{name: "stale", timestamp: strconv.FormatInt(now.Unix()-301, 10), signature: Sign(secret, strconv.FormatInt(now.Unix()-301, 10), body), body: body, wantErr: ErrStaleTimestamp},
		{name: "edge of window", timestamp: strconv.FormatInt(now.Unix()-300, 10), signature: Sign(secret, strconv.FormatInt(now.Unix()-300, 10), body), body: body},
		{name: "future", timestamp: strconv.FormatInt(now.Unix()+301, 10), signature: Sign(secret, strconv.FormatInt(now.Unix()+301, 10), body), body: body, wantErr: ErrFutureTimestamp},
		{name: "missing timestamp", signature: Sign(secret, ts, body), body: body, wantErr: ErrMissingHeader},
		{name: "missing signature", timestamp: ts, body: body, wantErr: ErrMissingHeader},
		{name: "malformed timestamp", timestamp: "12ab", signature: "v0=00", body: body, wantErr: ErrMalformedTimestamp},
		{name: "negative timestamp", timestamp: "-5", signature: "v0=00", body: body, wantErr: ErrMalformedTimestamp},
		{name: "no v0 prefix", timestamp: ts, signature: strings.TrimPrefix(Sign(secret, ts, body), "v0="), body: body, wantErr: ErrBadSignature},
		{name: "v1 prefix", timestamp: ts, signature: "v1=" + strings.TrimPrefix(Sign(secret, ts, body), "v0="), body: body, wantErr: ErrBadSignature},
		{name: "not hex", timestamp: ts, signature: "v0=" + strings.Repeat("zz", 32), body: body, wantErr: ErrBadSignature},
		{name: "short", timestamp: ts, signature: Sign(secret, ts, body)[:40], body: body, wantErr: ErrBadSignature},
		{name: "upper-case hex", timestamp: ts, signature: "v0=" + strings.ToUpper(strings.TrimPrefix(Sign(secret, ts, body), "v0=")), body: body},
	}
	v := Verifier{Now: func() time.Time { return now }}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := secret
			if tt.secret != nil {
				s = tt.secret
			}
			err := v.Verify(s, tt.timestamp, tt.signature, tt.body)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify() = %v, want %v", err, tt.wantErr)
			}
			// CheckHeaders finds, without the secret, every failure that needs none.
			herr := v.CheckHeaders(tt.timestamp, tt.signature)
			needsSecret := err == nil || (errors.Is(err, ErrBadSignature) && len(tt.signature) == len(sigPrefix)+64 && strings.HasPrefix(tt.signature, sigPrefix))
			if needsSecret != (herr == nil) || (herr != nil && !errors.Is(herr, tt.wantErr)) {
				t.Fatalf("CheckHeaders() = %v; Verify() = %v", herr, err)
			}
			if err != nil && strings.Contains(err.Error(), string(secret)) {
				t.Errorf("error %q contains the secret", err)
			}
			if err != nil && strings.Contains(err.Error(), strings.TrimPrefix(Sign(s, tt.timestamp, tt.body), "v0=")) {
				t.Errorf("error %q contains the expected signature", err)
			}
		})
	}
}

func TestVerifyWindowOption(t *testing.T) {
	t.Parallel()
	secret := []byte("s")
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix()-61, 10)
	v := Verifier{Window: time.Minute, Now: func() time.Time { return now }}
	if err := v.Verify(secret, ts, Sign(secret, ts, []byte("b")), []byte("b")); !errors.Is(err, ErrStaleTimestamp) {
		t.Errorf("61 s old with a 1 min window: got %v, want ErrStaleTimestamp", err)
	}
}

// TestSignKnownVector checks Sign against a signature computed independently
// (printf 'v0:1531420618:body' | openssl dgst -sha256 -hmac secret).
func TestSignKnownVector(t *testing.T) {
	t.Parallel()
	got := Sign([]byte("secret"), "1531420618", []byte("body"))
	const want = "v0=78e394d129df51c593e1d449277f576c39c361411fecc54edd326794263d3f84"
	if got != want {
		t.Fatalf("Sign() = %q, want %q", got, want)
	}
}

func TestSecretChangeUsesNewSecret(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	v := Verifier{Now: func() time.Time { return now }}
	body := []byte("x")
	for i := range 3 {
		old, rotated := []byte("old"), []byte("rotated")
		if err := v.Verify(old, ts, Sign(old, ts, body), body); err != nil {
			t.Fatalf("round %d old secret: %v", i, err)
		}
		if err := v.Verify(rotated, ts, Sign(old, ts, body), body); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("round %d: signature by old secret accepted under rotated secret: %v", i, err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	secret := []byte("8f742231b10e8888abcd99yyyzzz85a5")
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(strings.Repeat("x", 1100))
	sig := Sign(secret, ts, body)
	v := Verifier{Now: func() time.Time { return now }}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(secret, ts, sig, body); err != nil {
			b.Fatal(err)
		}
	}
}

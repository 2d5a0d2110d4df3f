package intake

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

// FuzzHandle feeds arbitrary signed bodies to every route, under a message limit of its
// own so that short bodies reach both forms of the envelope: the handler must never panic,
// never answer 5xx for bad input, and anything it enqueues must be a valid envelope that
// carries the body byte for byte within the limit, as a JSON string (v=1) whenever that
// fits. It refuses a body for its size only when even base64 does not fit.
func FuzzHandle(f *testing.F) {
	f.Add(0, mentionBody, uint16(0))
	f.Add(0, `{"type":"url_verification","challenge":"c"}`, uint16(0))
	f.Add(0, `{"type":"app_rate_limited"}`, uint16(0))
	f.Add(0, `{"type":"event_callback","event_id":"E","event":{"type":"message","channel":"C","ts":"1.2"}}`, uint16(0))
	f.Add(0, `{"type":"event_callback","event_id":"E","event":{"type":"m","text":"<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<"}}`, uint16(300))
	f.Add(0, `{"type":1}`, uint16(0))
	f.Add(0, `[]`, uint16(0))
	f.Add(0, `{"type":"event_callback","event_id":"E","event":null}`, uint16(0))
	f.Add(1, url.Values{"command": {"/ask"}, "trigger_id": {"t"}}.Encode(), uint16(0))
	f.Add(1, "command=/ask&text=\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f", uint16(220))
	f.Add(1, "ssl_check=1", uint16(0))
	f.Add(1, "%zz", uint16(0))
	f.Add(2, "payload="+url.QueryEscape(`{"type":"block_actions","team":{"id":"T"}}`), uint16(0))
	f.Add(2, "payload="+url.QueryEscape(`{"type":"view_submission","team":null}`), uint16(0))
	f.Add(2, "payload=%7B", uint16(0))
	paths := []string{PathEvents, PathCommands, PathInteractivity}
	f.Fuzz(func(t *testing.T, route int, body string, limit uint16) {
		if route < 0 {
			route = -route
		}
		s := &fakeSender{}
		var logs bytes.Buffer
		h := newHandler(s, staticSecrets(), &logs)
		if limit > 0 { // else SQS's limit
			h.messageLimit = 128 + int(limit)%2048
		}
		messageLimit := cmp.Or(h.messageLimit, envelope.MaxSQSMessageBytes)
		resp := h.Handle(context.Background(), signed(paths[route%3], body))
		if resp.Status >= 500 {
			t.Fatalf("status %d for bad input", resp.Status)
		}
		if len(s.sent) > 1 {
			t.Fatalf("enqueued %d messages for one request", len(s.sent))
		}
		if resp.Status == 413 {
			// Only when the message would not fit even with the body in base64.
			var line struct {
				Reason       string `json:"reason"`
				MessageBytes int    `json:"message_bytes"`
				LimitBytes   int    `json:"limit_bytes"`
			}
			if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil || line.Reason != reasonEnvelopeBig ||
				line.LimitBytes != messageLimit || line.MessageBytes <= line.LimitBytes ||
				line.MessageBytes < base64.StdEncoding.EncodedLen(len(body)) {
				t.Fatalf("413 for a body of %d bytes under a %d-byte limit: %s", len(body), messageLimit, logs.Bytes())
			}
		}
		if len(s.sent) == 0 {
			return
		}
		if resp.Status != 200 && resp.Status != 202 {
			t.Fatalf("enqueued but answered %d", resp.Status)
		}
		wire := aws.ToString(s.sent[0].MessageBody)
		e, err := envelope.Decode([]byte(wire))
		if err != nil {
			t.Fatalf("enqueued an invalid envelope: %v", err)
		}
		if e.Body != body {
			t.Fatal("enqueued body differs from the request body")
		}
		attrBytes := envelope.SQSMessageSize("", s.sent[0].MessageAttributes)
		if size := len(wire) + attrBytes; size > messageLimit {
			t.Fatalf("message of %d bytes, over the %d-byte limit", size, messageLimit)
		}
		if e.Version == envelope.VersionBodyBase64 {
			// The JSON string form must not have fitted.
			v1 := *e
			v1.Version = envelope.Version
			b, err := json.Marshal(&v1)
			if err != nil {
				t.Fatal(err)
			}
			if len(b)+attrBytes <= messageLimit {
				t.Fatalf("base64 written though the JSON string fits (%d + %d of %d bytes)", len(b), attrBytes, messageLimit)
			}
		}
	})
}

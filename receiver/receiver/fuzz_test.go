package receiver

import (
	"context"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

// FuzzHandle feeds arbitrary signed bodies to every route: the handler must never panic,
// never answer 5xx for bad input, and anything it enqueues must be a valid envelope that
// carries the body byte for byte.
func FuzzHandle(f *testing.F) {
	f.Add(0, mentionBody)
	f.Add(0, `{"type":"url_verification","challenge":"c"}`)
	f.Add(0, `{"type":"app_rate_limited"}`)
	f.Add(0, `{"type":"event_callback","event_id":"E","event":{"type":"message","channel":"C","ts":"1.2"}}`)
	f.Add(0, `{"type":1}`)
	f.Add(0, `[]`)
	f.Add(0, `{"type":"event_callback","event_id":"E","event":null}`)
	f.Add(1, url.Values{"command": {"/ask"}, "trigger_id": {"t"}}.Encode())
	f.Add(1, "ssl_check=1")
	f.Add(1, "%zz")
	f.Add(2, "payload="+url.QueryEscape(`{"type":"block_actions","team":{"id":"T"}}`))
	f.Add(2, "payload="+url.QueryEscape(`{"type":"view_submission","team":null}`))
	f.Add(2, "payload=%7B")
	paths := []string{PathEvents, PathCommands, PathInteractivity}
	f.Fuzz(func(t *testing.T, route int, body string) {
		if route < 0 {
			route = -route
		}
		s := &fakeSender{}
		resp := newHandler(s, staticSecrets(), nil).Handle(context.Background(), signed(paths[route%3], body))
		if resp.Status >= 500 {
			t.Fatalf("status %d for bad input", resp.Status)
		}
		if len(s.sent) > 1 {
			t.Fatalf("enqueued %d messages for one request", len(s.sent))
		}
		if len(s.sent) == 1 {
			if resp.Status != 200 && resp.Status != 202 {
				t.Fatalf("enqueued but answered %d", resp.Status)
			}
			e, err := envelope.Decode([]byte(aws.ToString(s.sent[0].MessageBody)))
			if err != nil {
				t.Fatalf("enqueued an invalid envelope: %v", err)
			}
			if e.Body != body {
				t.Fatal("enqueued body differs from the request body")
			}
		}
	})
}

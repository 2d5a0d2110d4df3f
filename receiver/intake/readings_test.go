package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

// reading is what the receiver takes from an Events API body for the envelope (the worker
// routes, deduplicates and replies from its own decoding; see worker/relay's test on the same
// bodies).
type reading struct {
	EventType, EventID, TeamID, EnterpriseID, APIAppID string
}

// receiverReading sends body through Handle and reads the fields back from the envelope it
// enqueued, with the body as a JSON string or, under a message limit that the JSON string
// does not fit, in base64.
func receiverReading(t *testing.T, body []byte, base64 bool) reading {
	t.Helper()
	s := &fakeSender{}
	h := newHandler(s, staticSecrets(), nil)
	if base64 {
		h.messageLimit = 2*len(body) + 1024 // over the base64 form, under the JSON string
	}
	resp := h.Handle(context.Background(), signed(PathEvents, string(body)))
	if resp.Status != 202 || len(s.sent) != 1 {
		t.Fatalf("receiver answered %d (%s) and enqueued %d messages, want 202 and 1", resp.Status, bytes.TrimSpace(resp.Body), len(s.sent))
	}
	wire := aws.ToString(s.sent[0].MessageBody)
	if got, want := strings.Contains(wire, `"body_b64":`), base64; got != want {
		t.Fatalf("body in base64: %v, want %v", got, want)
	}
	e, err := envelope.Decode([]byte(wire))
	if err != nil {
		t.Fatalf("enqueued envelope: %v", err)
	}
	if e.Body != string(body) {
		t.Fatal("the enqueued body differs from the request body")
	}
	return reading{e.EventType, e.EventID, e.TeamID, e.EnterpriseID, e.APIAppID}
}

// withEscapes adds a member to a body's outer object whose value encoding/json writes six
// bytes a character, so that the body's JSON string is over four times its length and a
// limit can let only its base64 form through.
func withEscapes(t *testing.T, body []byte) []byte {
	t.Helper()
	i := bytes.LastIndexByte(body, '}')
	if i < 0 {
		t.Fatal("body is not an object")
	}
	return slices.Concat(body[:i], []byte(`,"x_escapes":"`+strings.Repeat("<>&", 1000)+`"`), body[i:])
}

// slackGoReading is what slack-go's ParseEvent reads from the same body.
func slackGoReading(t *testing.T, body []byte) reading {
	t.Helper()
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		t.Fatalf("slack-go cannot parse the body (the table holds only bodies the worker reads): %v", err)
	}
	cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent)
	if !ok {
		t.Fatalf("slack-go read a %T, want an event_callback", ev.Data)
	}
	return reading{EventType: ev.InnerEvent.Type, EventID: cb.EventID, TeamID: ev.TeamID, EnterpriseID: ev.EnterpriseID, APIAppID: ev.APIAppID}
}

func readBodies(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bodies in testdata/%s (%v)", dir, err)
	}
	bodies := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bodies[strings.TrimSuffix(filepath.Base(f), ".json")] = bytes.TrimSuffix(b, []byte("\n"))
	}
	return bodies
}

// TestReceiverReadsLikeSlackGo: the receiver and the worker (through slack-go) decode one body
// with encoding/json, which matches keys case-insensitively and lets the last duplicate win.
// For bodies built on exactly that (duplicate and mixed-case keys at both levels, escaped and
// Unicode-folded keys, a repeated event object), the envelope's fields must equal slack-go's
// reading.
func TestReceiverReadsLikeSlackGo(t *testing.T) {
	t.Parallel()
	for name, body := range readBodies(t, "readings") {
		for form, b64 := range map[string]bool{"json string": false, "base64": true} {
			t.Run(name+"/"+form, func(t *testing.T) {
				t.Parallel()
				b := body
				if b64 {
					b = withEscapes(t, body)
				}
				got, want := receiverReading(t, b, b64), slackGoReading(t, b)
				if got != want {
					t.Errorf("receiver and slack-go read the body differently:\n got (receiver) %+v\nwant (slack-go) %+v", got, want)
				}
			})
		}
	}
}

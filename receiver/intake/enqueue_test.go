package intake

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/metrics"
)

// paddedMention is an app_mention whose text holds angles, which encoding/json writes as
// \u003c (six bytes for one, as Slack's <@U…> mentions), and pad letters, one byte each.
func paddedMention(angles, letters int) string {
	text := strings.Repeat("<", angles) + strings.Repeat("a", letters)
	return `{"type":"event_callback","team_id":"T1","api_app_id":"A1","event_id":"EvBig","event_time":1700000000,` +
		`"event":{"type":"app_mention","user":"U1","channel":"C1","ts":"1700000000.000100","text":"` + text + `"}}`
}

// boundaryAngles keeps the request well under MAX_BODY_BYTES while its envelope, with the
// body as a JSON string, reaches SQS's limit.
const boundaryAngles = 60000

// sentMessage is the one message s got: its envelope as written, decoded, and its SQS size.
func sentMessage(t *testing.T, s *fakeSender) (wire string, e *envelope.Envelope, size int) {
	t.Helper()
	if len(s.sent) != 1 {
		t.Fatalf("sent %d messages, want 1", len(s.sent))
	}
	wire = aws.ToString(s.sent[0].MessageBody)
	e, err := envelope.Decode([]byte(wire))
	if err != nil {
		t.Fatalf("sent an envelope Decode refuses: %v", err)
	}
	return wire, e, envelope.SQSMessageSize(wire, s.sent[0].MessageAttributes)
}

// lettersForSize returns the pad letters that make the message, body as a JSON string,
// exactly size bytes.
func lettersForSize(t *testing.T, size int) int {
	t.Helper()
	s := &fakeSender{}
	if resp := newHandler(s, staticSecrets(), nil).Handle(context.Background(), signed(PathEvents, paddedMention(boundaryAngles, 0))); resp.Status != 202 {
		t.Fatalf("status %d (%s), want 202", resp.Status, resp.Body)
	}
	_, _, base := sentMessage(t, s)
	if base >= size {
		t.Fatalf("message without padding is %d bytes, not under %d", base, size)
	}
	return size - base
}

func wireVersion(t *testing.T, wire string) int {
	t.Helper()
	var v struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal([]byte(wire), &v); err != nil {
		t.Fatal(err)
	}
	return v.V
}

// A body under MAX_BODY_BYTES whose JSON escaping takes its message past SQS's limit (the
// attributes counted) is enqueued whole with the body in base64, where it was answered
// 413 and lost before. Up to the limit the body stays a JSON string (v=1, what every
// worker reads).
func TestBodyFormAtTheSQSLimit(t *testing.T) {
	t.Parallel()
	letters := lettersForSize(t, envelope.MaxSQSMessageBytes)
	for _, tc := range []struct {
		name    string
		body    string
		size    int // of the message with the body as a JSON string
		version int
	}{
		{"one byte under the limit", paddedMention(boundaryAngles, letters-1), envelope.MaxSQSMessageBytes - 1, envelope.Version},
		{"at the limit", paddedMention(boundaryAngles, letters), envelope.MaxSQSMessageBytes, envelope.Version},
		{"one byte over the limit", paddedMention(boundaryAngles, letters+1), envelope.MaxSQSMessageBytes + 1, envelope.VersionBodyBase64},
		// 250,000 bytes of body, 1.5 MB as a JSON string.
		{"escapes make it half again the limit", paddedMention(250000, 0), 0, envelope.VersionBodyBase64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := tc.body
			if len(body) > receiverconfig.DefaultMaxBodyBytes {
				t.Fatalf("request body %d bytes, over DefaultMaxBodyBytes: the test no longer probes the message limit", len(body))
			}
			var logs, metricLines bytes.Buffer
			s := &fakeSender{}
			h := newHandler(s, staticSecrets(), &logs)
			h.Metrics = metrics.New(&metricLines, "test")
			resp := h.Handle(context.Background(), signed(PathEvents, body))
			if resp.Status != 202 {
				t.Fatalf("status %d (%s), want 202", resp.Status, bytes.TrimSpace(resp.Body))
			}
			wire, e, size := sentMessage(t, s)
			if e.Body != body {
				t.Fatal("the enqueued body differs from the request body")
			}
			if v := wireVersion(t, wire); v != tc.version {
				t.Errorf("wrote v=%d, want v=%d", v, tc.version)
			}
			switch {
			case size > envelope.MaxSQSMessageBytes:
				t.Errorf("message of %d bytes, over SQS's %d", size, envelope.MaxSQSMessageBytes)
			case tc.version == envelope.Version && size != tc.size:
				t.Errorf("message size %d, want %d", size, tc.size)
			}
			if tc.version == envelope.VersionBodyBase64 && !strings.Contains(logs.String(), `"body_encoding":"base64"`) {
				t.Errorf("the enqueued line does not say the body went in base64:\n%s", logs.String())
			}
			if m := metricLines.String(); strings.Contains(m, `"Rejected"`) {
				t.Errorf("a rejection was counted: %s", m)
			}
		})
	}
}

// The longest strings the receiver copies from a request into the envelope (ids, types) and
// the characters with the longest escapes.
var (
	longID      = strings.Repeat("<", maxFieldBytes)
	longControl = strings.Repeat("\x01", maxFieldBytes)
)

// worstCase returns, for every route, a signed request of exactly n bytes whose message is
// the largest the receiver can write for a body that long: every id at the receiver's bound
// in characters encoding/json writes as six bytes, the body made of them too (so its JSON
// string cannot fit and it goes in base64), and Slack's retry headers at their longest.
func worstCase(t *testing.T, n int) map[string]*Request {
	t.Helper()
	retry := []string{HeaderRetryNum, "9223372036854775807", HeaderRetryReason, strings.Repeat("\x01", 1000)}
	pad := func(prefix, suffix string) string {
		if len(prefix)+len(suffix) > n {
			t.Fatalf("worst case of %d bytes: the fields alone take %d", n, len(prefix)+len(suffix))
		}
		return prefix + strings.Repeat("<", n-len(prefix)-len(suffix)) + suffix
	}
	event := pad(`{"type":"event_callback","team_id":"`+longID+`","enterprise_id":"`+longID+`","api_app_id":"`+longID+
		`","event_id":"`+longID+`","event_time":-9223372036854775808,"event":{"type":"`+longID+`","text":"`, `"}}`)
	command := pad("command="+longControl+"&team_id="+longControl+"&enterprise_id="+longControl+"&api_app_id="+longControl+"&text=", "")
	interaction := pad(`payload={"type":"`+longID+`","api_app_id":"`+longID+`","team":{"id":"`+longID+`","enterprise_id":"`+longID+
		`"},"enterprise":{"id":"`+longID+`"}}&pad=`, "")
	return map[string]*Request{
		"event":       signed(PathEvents, event, retry...),
		"command":     signed(PathCommands, command, retry...),
		"interaction": signed(PathInteractivity, interaction, retry...),
	}
}

// replayCount is the attribute a DLQ replay adds, at its longest.
var replayCount = sqstypes.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String("9223372036854775807")}

// TestEveryBodyUpToTheLimitIsEnqueuedWhole: at the largest MAX_BODY_BYTES, the worst request
// of every route is enqueued whole and its message, with the ReplayCount a DLQ replay adds,
// fits in SQS's limit with the overhead receiverconfig.MaxBodyBytesLimit documents; one
// byte more is answered 413 with X-Slack-No-Retry and a body that names the limit.
func TestEveryBodyUpToTheLimitIsEnqueuedWhole(t *testing.T) {
	t.Parallel()
	limit := receiverconfig.MaxBodyBytesLimit
	over := worstCase(t, limit+1)
	for name, req := range worstCase(t, limit) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := &fakeSender{}
			h := newHandler(s, staticSecrets(), nil)
			h.MaxBodyBytes = limit
			if resp := h.Handle(context.Background(), req); resp.Status/100 != 2 {
				t.Fatalf("status %d (%s), want 2xx", resp.Status, bytes.TrimSpace(resp.Body))
			}
			wire, e, _ := sentMessage(t, s)
			if e.Body != string(req.Body) {
				t.Fatal("the enqueued body differs from the request body")
			}
			if v := wireVersion(t, wire); v != envelope.VersionBodyBase64 {
				t.Errorf("wrote v=%d; the worst case must need base64", v)
			}
			if len(e.RetryReason) != maxFieldBytes || e.RetryNum != 9223372036854775807 {
				t.Errorf("retry reason of %d bytes, retry num %d; want the reason cut to %d bytes", len(e.RetryReason), e.RetryNum, maxFieldBytes)
			}
			attrs := map[string]sqstypes.MessageAttributeValue{envelope.AttrReplayCount: replayCount}
			for k, v := range s.sent[0].MessageAttributes {
				attrs[k] = v
			}
			size := envelope.SQSMessageSize(wire, attrs)
			overhead := size - base64.StdEncoding.EncodedLen(limit)
			t.Logf("message %d bytes: body in base64 %d, everything else %d", size, base64.StdEncoding.EncodedLen(limit), overhead)
			if size > envelope.MaxSQSMessageBytes || overhead > 6<<10 {
				t.Errorf("message of %d bytes (%d besides the body) with a replay's ReplayCount: over SQS's %d, or over the 6 KiB documented",
					size, overhead, envelope.MaxSQSMessageBytes)
			}

			s = &fakeSender{}
			h.Sender = s
			resp := h.Handle(context.Background(), over[name])
			if resp.Status != 413 || !resp.NoRetry || len(s.sent) != 0 {
				t.Fatalf("one byte over: status %d, no-retry %v, sent %d; want 413 with X-Slack-No-Retry, nothing sent", resp.Status, resp.NoRetry, len(s.sent))
			}
			if msg := string(resp.Body); !strings.Contains(msg, "780288 bytes") || !strings.Contains(msg, "MAX_BODY_BYTES") {
				t.Errorf("413 body %q does not say what the limit is", msg)
			}
		})
	}
}

// Ids longer than any of Slack's make the body malformed (400, no retry): with them bounded,
// the envelope's size is known but for the body. Slack's retry reason is informational and
// cut to the bound instead.
func TestOverlongIDsAreMalformed(t *testing.T) {
	t.Parallel()
	id := func(n int) string { return strings.Repeat("T", n) }
	event := func(team string) string {
		return `{"type":"event_callback","team_id":"` + team + `","event_id":"Ev1","event":{"type":"app_mention"}}`
	}
	for _, tc := range []struct {
		name   string
		req    *Request
		status int
	}{
		{"team id at the bound", signed(PathEvents, event(id(maxFieldBytes))), 202},
		{"team id over the bound", signed(PathEvents, event(id(maxFieldBytes+1))), 400},
		{"event type over the bound", signed(PathEvents, `{"type":"event_callback","event_id":"Ev1","event":{"type":"`+id(maxFieldBytes+1)+`"}}`), 400},
		{"event id over the bound", signed(PathEvents, `{"type":"event_callback","event_id":"`+id(maxFieldBytes+1)+`","event":{"type":"x"}}`), 400},
		{"command over the bound", signed(PathCommands, "command=/"+id(maxFieldBytes)), 400},
		{"interaction app id over the bound", signed(PathInteractivity, `payload={"type":"block_actions","api_app_id":"`+id(maxFieldBytes+1)+`"}`), 400},
		{"long retry reason is cut", signed(PathEvents, event("T1"), HeaderRetryNum, "1", HeaderRetryReason, "é"+strings.Repeat("x", 500)), 202},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &fakeSender{}
			resp := newHandler(s, staticSecrets(), nil).Handle(context.Background(), tc.req)
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, bytes.TrimSpace(resp.Body), tc.status)
			}
			if tc.status == 400 {
				if !resp.NoRetry || len(s.sent) != 0 {
					t.Fatalf("no-retry %v, sent %d; want X-Slack-No-Retry and nothing sent", resp.NoRetry, len(s.sent))
				}
				return
			}
			_, e, _ := sentMessage(t, s)
			if len(e.RetryReason) > maxFieldBytes {
				t.Errorf("retry reason of %d bytes, over %d", len(e.RetryReason), maxFieldBytes)
			}
		})
	}
}

// An envelope that encoding/json cannot write (a received-at time past year 9999, from a broken
// clock) is this host's fault: 503 so that Slack retries, nothing sent.
func TestEncodeFailureIs503(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := &fakeSender{}
	h := newHandler(s, staticSecrets(), &logs)
	h.Now = func() time.Time { return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }
	h.Verifier.Now = func() time.Time { return fixedNow }
	resp := h.Handle(context.Background(), signed(PathEvents, mentionBody))
	if resp.Status != 503 || resp.NoRetry || len(s.sent) != 0 {
		t.Fatalf("status %d noRetry %v sent %d; want 503 that Slack retries, nothing sent", resp.Status, resp.NoRetry, len(s.sent))
	}
	if !strings.Contains(logs.String(), `"reason":"`+reasonEncode+`"`) {
		t.Fatalf("log lacks reason %s: %s", reasonEncode, logs.String())
	}
}

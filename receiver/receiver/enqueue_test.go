package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/metrics"
)

// paddedMention is an app_mention whose text holds quotes, which the envelope escapes again
// (\" becomes \\\"), and pad letters, which add one byte each to the message.
func paddedMention(quotes, letters int) string {
	text := strings.Repeat(`\"`, quotes) + strings.Repeat("a", letters)
	return `{"type":"event_callback","team_id":"T1","api_app_id":"A1","event_id":"EvBig","event_time":1700000000,` +
		`"event":{"type":"app_mention","user":"U1","channel":"C1","ts":"1700000000.000100","text":"` + text + `"}}`
}

// boundaryQuotes keeps the request under receiverconfig.DefaultMaxBodyBytes while its message reaches SQS's
// limit, as a quote-heavy message near the limit does.
const boundaryQuotes = 20000

// messageSize is the SQS size of the message Handle sends for body.
func messageSize(t *testing.T, body string) int {
	t.Helper()
	s := &fakeSender{}
	if resp := newHandler(s, staticSecrets(), nil).Handle(context.Background(), signed(PathEvents, body)); resp.Status != 202 {
		t.Fatalf("status %d (%s), want 202", resp.Status, resp.Body)
	}
	return envelope.SQSMessageSize(aws.ToString(s.sent[0].MessageBody), s.sent[0].MessageAttributes)
}

// lettersForSize returns the pad letters that make the message exactly size bytes.
func lettersForSize(t *testing.T, size int) int {
	t.Helper()
	base := messageSize(t, paddedMention(boundaryQuotes, 0))
	if base >= size {
		t.Fatalf("message without padding is %d bytes, not under %d", base, size)
	}
	return size - base
}

func TestMessageSizeLimitCountsAttributes(t *testing.T) {
	t.Parallel()
	letters := lettersForSize(t, envelope.MaxSQSMessageBytes)
	for _, tc := range []struct {
		name     string
		size     int
		enqueued bool
	}{
		{"one byte under the limit", envelope.MaxSQSMessageBytes - 1, true},
		{"at the limit", envelope.MaxSQSMessageBytes, true},
		{"one byte over the limit", envelope.MaxSQSMessageBytes + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := paddedMention(boundaryQuotes, letters+tc.size-envelope.MaxSQSMessageBytes)
			if len(body) > receiverconfig.DefaultMaxBodyBytes {
				t.Fatalf("request body %d bytes, over DefaultMaxBodyBytes: the test no longer probes the message limit", len(body))
			}
			var logs, metricLines bytes.Buffer
			s := &fakeSender{}
			h := newHandler(s, staticSecrets(), &logs)
			h.Metrics = metrics.New(&metricLines, "test")
			resp := h.Handle(context.Background(), signed(PathEvents, body))
			if tc.enqueued {
				if resp.Status != 202 || len(s.sent) != 1 {
					t.Fatalf("status %d, sent %d; want 202 and 1 message", resp.Status, len(s.sent))
				}
				if got := envelope.SQSMessageSize(aws.ToString(s.sent[0].MessageBody), s.sent[0].MessageAttributes); got != tc.size {
					t.Fatalf("message size %d, want %d", got, tc.size)
				}
				return
			}
			if resp.Status != 413 || !resp.NoRetry || len(s.sent) != 0 {
				t.Fatalf("status %d noRetry %v sent %d; want 413 with X-Slack-No-Retry and nothing sent", resp.Status, resp.NoRetry, len(s.sent))
			}
			var line struct {
				Level          string `json:"level"`
				Reason         string `json:"reason"`
				EventID        string `json:"event_id"`
				EnvelopeID     string `json:"envelope_id"`
				EnvelopeBytes  int    `json:"envelope_bytes"`
				AttributeBytes int    `json:"attribute_bytes"`
				MessageBytes   int    `json:"message_bytes"`
				LimitBytes     int    `json:"limit_bytes"`
			}
			raw := lastLine(t, logs.Bytes())
			if err := json.Unmarshal(raw, &line); err != nil {
				t.Fatal(err)
			}
			if line.Level != "WARN" || line.Reason != reasonEnvelopeBig || line.EventID != "EvBig" || len(line.EnvelopeID) != 32 {
				t.Errorf("log line %s: want WARN, reason %s, the event and envelope ids", raw, reasonEnvelopeBig)
			}
			if line.MessageBytes != tc.size || line.LimitBytes != envelope.MaxSQSMessageBytes || line.EnvelopeBytes+line.AttributeBytes != tc.size {
				t.Errorf("log line %s: want message_bytes %d = envelope_bytes + attribute_bytes, limit_bytes %d", raw, tc.size, envelope.MaxSQSMessageBytes)
			}
			// The envelope alone fits: only counting the attributes finds this message too large.
			if line.EnvelopeBytes > envelope.MaxSQSMessageBytes || line.AttributeBytes == 0 {
				t.Errorf("envelope %d bytes, attributes %d: the case no longer shows the attributes counting", line.EnvelopeBytes, line.AttributeBytes)
			}
			if m := metricLines.String(); !strings.Contains(m, `"Reason":"envelope_too_large"`) || !strings.Contains(m, `"Rejected":1`) {
				t.Errorf("metrics %s: want Rejected 1 with Reason envelope_too_large", m)
			}
		})
	}
}

func lastLine(t *testing.T, b []byte) []byte {
	t.Helper()
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) == 0 || len(lines[len(lines)-1]) == 0 {
		t.Fatal("nothing logged")
	}
	return lines[len(lines)-1]
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

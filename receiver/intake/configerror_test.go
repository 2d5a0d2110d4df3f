package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/slackrelay/slackrelay/shared/secrets"
)

func levelsByMessage(t *testing.T, logs []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, raw := range bytes.Split(bytes.TrimSpace(logs), []byte("\n")) {
		var l struct{ Level, Msg string }
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("log line %s: %v", raw, err)
		}
		out[l.Msg] = append(out[l.Msg], l.Level)
	}
	return out
}

// A configuration error found at run time is logged at ERROR once, not per request; each
// request it fails is a WARN. A transient failure stays an ERROR per request.
func TestConfigurationErrorsAreLoggedOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		err       error
		wantOnce  bool
		wantLevel string
	}{
		{"queue does not exist", &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue", Message: "The specified queue does not exist."}, true, "WARN"},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform sqs:SendMessage"}, true, "WARN"},
		{"throttled", &smithy.GenericAPIError{Code: "RequestThrottled", Message: "slow down"}, false, "ERROR"},
		{"network", errors.New("dial tcp: connection refused"), false, "ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			h := newHandler(&fakeSender{err: tc.err}, staticSecrets(), &logs)
			for i := 0; i < 3; i++ {
				if resp := h.Handle(context.Background(), signed(PathEvents, mentionBody)); resp.Status != 503 {
					t.Fatalf("status %d, want 503", resp.Status)
				}
			}
			got := levelsByMessage(t, logs.Bytes())
			once := got["configuration error: every enqueue fails this way until the configuration is fixed"]
			if (len(once) == 1 && once[0] == "ERROR") != tc.wantOnce || (!tc.wantOnce && len(once) != 0) {
				t.Fatalf("configuration error lines %v; want one ERROR: %v", once, tc.wantOnce)
			}
			per := got["enqueue failed; answering 503 so Slack retries"]
			if len(per) != 3 || per[0] != tc.wantLevel {
				t.Fatalf("per-request lines %v; want 3 at %s", per, tc.wantLevel)
			}
		})
	}
}

// A missing signing secret is reported by the store (once, at ERROR); the requests it turns
// away are WARN lines.
func TestMissingSecretRequestsAreWarnings(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	h := newHandler(&fakeSender{}, secrets.NewStatic(nil), &logs)
	for i := 0; i < 2; i++ {
		if resp := h.Handle(context.Background(), signed(PathEvents, mentionBody)); resp.Status != 503 {
			t.Fatalf("status %d, want 503", resp.Status)
		}
	}
	if got := levelsByMessage(t, logs.Bytes())["request rejected"]; len(got) != 2 || got[0] != "WARN" || got[1] != "WARN" {
		t.Fatalf("request rejected lines %v; want 2 WARN", got)
	}
}

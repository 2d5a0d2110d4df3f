package lambdaworld

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slackrelay/slackrelay/shared/slackverify"
)

func TestHTTPEvent(t *testing.T) {
	t.Parallel()
	const body, secret = `{"type":"event_callback","text":"héllo ✓"}`, "s3cret"
	for _, tc := range []struct {
		name, stage, secret, wantPath string
		b64                           bool
	}{
		{"signed, default stage", "$default", secret, "/slack/events", false},
		{"signed, base64 body", "$default", secret, "/slack/events", true},
		{"named stage", "prod", secret, "/prod/slack/events", false},
		{"unsigned", "$default", "", "/slack/events", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(HTTPEvent(tc.stage, "/slack/events", "application/json", body, tc.secret, tc.b64), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Version != "2.0" || ev.RouteKey != "POST /slack/events" || ev.RawPath != tc.wantPath || ev.RequestContext.Stage != tc.stage ||
				ev.RequestContext.HTTP.Method != "POST" || ev.RequestContext.RequestID == "" || ev.Headers["content-type"] != "application/json" {
				t.Fatalf("event %+v; want a POST of /slack/events on stage %s at raw path %s", ev, tc.stage, tc.wantPath)
			}
			got := ev.Body
			if ev.IsBase64Encoded != tc.b64 {
				t.Fatalf("isBase64Encoded %v, want %v", ev.IsBase64Encoded, tc.b64)
			}
			if tc.b64 {
				raw, err := base64.StdEncoding.DecodeString(ev.Body)
				if err != nil {
					t.Fatal(err)
				}
				got = string(raw)
			}
			if got != body {
				t.Fatalf("body %q, want %q", got, body)
			}
			ts, sig := ev.Headers["x-slack-request-timestamp"], ev.Headers["x-slack-signature"]
			if tc.secret == "" {
				if ts != "" || sig != "" {
					t.Fatalf("unsigned event has timestamp %q and signature %q, want neither", ts, sig)
				}
				return
			}
			if err := (slackverify.Verifier{}).Verify([]byte(tc.secret), ts, sig, []byte(body)); err != nil {
				t.Fatalf("the signature does not verify: %v", err)
			}
		})
	}
}

func TestEnvValue(t *testing.T) {
	t.Parallel()
	env := []string{"A=1", "AB=2", "C=x=y", "E="}
	for name, want := range map[string]string{"A": "1", "AB": "2", "C": "x=y", "E": "", "B": "", "": ""} {
		if got := EnvValue(env, name); got != want {
			t.Errorf("EnvValue(%q) = %q, want %q", name, got, want)
		}
	}
}

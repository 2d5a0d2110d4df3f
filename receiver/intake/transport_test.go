package intake

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/slackverify"
)

// API Gateway lower-cases header names; names delivered in another case are still found.
func TestLambdaHeadersInAnyCase(t *testing.T) {
	t.Parallel()
	ev := lambdaEvent(signed(PathEvents, mentionBody, HeaderRetryNum, "3"), false)
	for _, name := range []string{slackverify.HeaderTimestamp, slackverify.HeaderSignature} {
		ev.Headers[name] = ev.Headers[strings.ToLower(name)]
		delete(ev.Headers, strings.ToLower(name))
	}
	ev.Headers["X-SLACK-RETRY-NUM"] = "3"
	s := &fakeSender{}
	if resp, _ := newHandler(s, staticSecrets(), nil).HandleLambda(context.Background(), ev); resp.StatusCode != 202 || len(s.sent) != 1 {
		t.Fatalf("canonical-case headers: status %d, sent %d; want 202 and 1", resp.StatusCode, len(s.sent))
	}
	if got := aws.ToString(s.sent[0].MessageAttributes[envelope.AttrRetryNum].StringValue); got != "3" {
		t.Fatalf("upper-case retry header: RetryNum attribute %q, want 3", got)
	}
}

// lambdaFixture reads an API Gateway or Function URL event from testdata/lambda and gives it
// path, a body and its signature.
func lambdaFixture(t *testing.T, file, rawPath, body string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "lambda", file))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if rawPath != "" {
		ev.RawPath = rawPath
	}
	r := signed(PathEvents, body)
	ev.Body = body
	ev.Headers["x-slack-request-timestamp"] = r.Header(slackverify.HeaderTimestamp)
	ev.Headers["x-slack-signature"] = r.Header(slackverify.HeaderSignature)
	return ev
}

// Routes match on the $default stage, on a named stage (whose name prefixes rawPath) and
// behind a Function URL; an unknown path is 404, retryable by Slack when under /slack/.
func TestRoutingAcrossStagesAndFunctionURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file, rawPath string
		status              int
		noRetry             bool
	}{
		{"$default stage", "http_api_default_stage.json", "", 202, false},
		{"named stage", "http_api_named_stage.json", "", 202, false},
		{"named stage, path without the stage (custom domain)", "http_api_named_stage.json", "/slack/events", 202, false},
		{"function URL", "function_url.json", "", 202, false},
		{"unknown route under /slack/", "http_api_default_stage.json", "/slack/event", 404, false},
		{"unknown route under /slack/ on a named stage", "http_api_named_stage.json", "/prod/slack/nope", 404, false},
		{"stage name only as a prefix of a segment", "http_api_named_stage.json", "/production/slack/events", 404, true},
		{"path outside /slack/", "function_url.json", "/wp-login.php", 404, true},
		{"stage root", "http_api_named_stage.json", "/prod", 404, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &fakeSender{}
			resp, err := newHandler(s, staticSecrets(), nil).HandleLambda(context.Background(), lambdaFixture(t, tc.file, tc.rawPath, mentionBody))
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), err %v; want %d", resp.StatusCode, resp.Body, err, tc.status)
			}
			if got := resp.Headers["x-slack-no-retry"] == "1"; got != tc.noRetry {
				t.Fatalf("X-Slack-No-Retry %v, want %v", got, tc.noRetry)
			}
			if want := map[bool]int{true: 1}[tc.status == 202]; len(s.sent) != want {
				t.Fatalf("enqueued %d, want %d", len(s.sent), want)
			}
		})
	}
}

package receiver

import (
	"context"
	"strings"
	"testing"

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

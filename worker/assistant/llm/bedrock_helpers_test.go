package llm

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
)

// testModelID is an inference profile's ARN: its ':' and '/' must survive the request path.
const testModelID = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-test-v1:0"

// setupBedrock starts the Bedrock stand-in and returns it with a client pointed at it (the
// real SDK client, placeholder credentials), emitting metrics into the returned buffer.
func setupBedrock(t testing.TB, opts fakebedrock.Options) (*fakebedrock.Server, *Bedrock, *logbuf.Buffer) {
	t.Helper()
	srv := fakebedrock.New(opts)
	url, err := srv.Start("")
	if err != nil {
		t.Fatalf("start fakebedrock: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	var out logbuf.Buffer
	b := &Bedrock{
		Client:  NewBedrockClient(awsclient.Local(), "eu-west-1", aws.String(url)),
		ModelID: testModelID,
		Metrics: metrics.New(&out, "slackrelay/worker"),
	}
	return srv, b, &out
}

// toBedrock is msgs as the stand-in records them when each is sent as one text block.
func toBedrock(msgs []Message) []fakebedrock.Message {
	out := make([]fakebedrock.Message, len(msgs))
	for i, m := range msgs {
		out[i] = fakebedrock.Message{Role: m.Role, Texts: []string{m.Content}}
	}
	return out
}

package receiver

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

type discardSender struct{}

func (discardSender) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return &sqs.SendMessageOutput{}, nil
}

// BenchmarkHandleAppMention is the receiver's in-process cost for one signed app_mention
// (about 700 bytes): verify, lean decode, envelope, the SendMessage input, logs and metrics.
// The SQS call itself is replaced by a no-op.
func BenchmarkHandleAppMention(b *testing.B) {
	h := newHandler(discardSender{}, staticSecrets(), nil)
	req := signed(PathEvents, mentionBody)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(mentionBody)))
	for b.Loop() {
		if r := h.Handle(ctx, req); r.Status != 202 {
			b.Fatal(r.Status)
		}
	}
}

func BenchmarkHandleLambdaAppMention(b *testing.B) {
	h := newHandler(discardSender{}, staticSecrets(), nil)
	ev := lambdaEvent(signed(PathEvents, mentionBody), false)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := h.HandleLambda(ctx, ev); r.StatusCode != 202 {
			b.Fatal(r.StatusCode)
		}
	}
}

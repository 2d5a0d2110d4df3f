package intake

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/shared/slackverify"
)

type discardSender struct{}

func (discardSender) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return &sqs.SendMessageOutput{}, nil
}

// BenchmarkHandleAppMention is the receiver's in-process cost for one signed app_mention
// (about 700 bytes): verify, decode, envelope, the SendMessage input, logs and metrics.
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

// realMention is an app_mention as Slack sends it (rich-text blocks, authorizations,
// event_context): 1.1 KB.
const realMention = `{"token":"ZZZZZZWSxiZZZ2yIvs3peJ","team_id":"T123ABC456","enterprise_id":"E123ABC456","api_app_id":"A123ABC456","event":{"type":"app_mention","user":"U123ABC456","text":"<@U0LAN0Z89> can you summarise the \"incident\" from yesterday's deploy and list the follow-ups?","ts":"1515449522.000016","client_msg_id":"d9d2c4a0-6f5e-4c0a-8d8b-3f1e0b0b8a51","team":"T123ABC456","blocks":[{"type":"rich_text","block_id":"BJ7fW","elements":[{"type":"rich_text_section","elements":[{"type":"user","user_id":"U0LAN0Z89"},{"type":"text","text":" can you summarise the \"incident\" from yesterday's deploy and list the follow-ups?"}]}]}],"channel":"C123ABC456","event_ts":"1515449522.000016"},"type":"event_callback","event_id":"Ev123ABC456","event_time":1515449522,"authorizations":[{"enterprise_id":"E123ABC456","team_id":"T123ABC456","user_id":"U0LAN0Z89","is_bot":true,"is_enterprise_install":false}],"is_ext_shared_channel":false,"event_context":"4-eyJldCI6ImFwcF9tZW50aW9uIiwidGlkIjoiVDEyM0FCQzQ1NiIsImFpZCI6IkExMjNBQkM0NTYiLCJjaWQiOiJDMTIzQUJDNDU2In0"}`

// BenchmarkReceive is the receiver's whole in-process path for the Lambda front end: an API
// Gateway HTTP API v2 event carrying a signed 1.1 KB app_mention, verified, decoded, wrapped
// and handed to a no-op SQS sender.
func BenchmarkReceive(b *testing.B) {
	h := newHandler(discardSender{}, staticSecrets(), nil)
	ev := lambdaEvent(signed(PathEvents, realMention), false)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(realMention)))
	for b.Loop() {
		if r, _ := h.HandleLambda(ctx, ev); r.StatusCode != 202 {
			b.Fatal(r.StatusCode)
		}
	}
}

// floorFields is what a minimal Events API reader takes from a body: five top-level fields.
type floorFields struct {
	Type      string `json:"type"`
	TeamID    string `json:"team_id"`
	APIAppID  string `json:"api_app_id"`
	EventID   string `json:"event_id"`
	EventTime int64  `json:"event_time"`
}

// BenchmarkFloor is the least any receiver must spend on the request BenchmarkReceive sends,
// written the plainest way: crypto/hmac over Slack's signed basestring and one
// encoding/json.Unmarshal of the 1.1 KB app_mention into five fields. BenchmarkReceive is
// compared against it, in the same run.
func BenchmarkFloor(b *testing.B) {
	req := signed(PathEvents, realMention)
	ts := req.Header(slackverify.HeaderTimestamp)
	want, err := hex.DecodeString(strings.TrimPrefix(req.Header(slackverify.HeaderSignature), "v0="))
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(realMention)
	b.ReportAllocs()
	b.SetBytes(int64(len(realMention)))
	for b.Loop() {
		mac := hmac.New(sha256.New, []byte(testSecret))
		mac.Write([]byte("v0:" + ts + ":"))
		mac.Write(body)
		if !hmac.Equal(mac.Sum(nil), want) {
			b.Fatal("signature mismatch")
		}
		var f floorFields
		if err := json.Unmarshal(body, &f); err != nil || f.EventID != "Ev123ABC456" {
			b.Fatalf("decoded %+v, %v", f, err)
		}
	}
}

package assistant

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/worker/threadmemory"
)

// countingDB counts the thread memory's DynamoDB calls.
type countingDB struct {
	db         threadmemory.DynamoDB
	gets, puts atomic.Int64
}

func (c *countingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.gets.Add(1)
	return c.db.GetItem(ctx, in, opts...)
}

func (c *countingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.puts.Add(1)
	return c.db.PutItem(ctx, in, opts...)
}

// What the thread memory costs an answer: a follow-up mention in a channel thread, answered
// through the tool loop on the real engine, with the memory in DynamoDB (many workspaces: no
// Slack read) and, to compare, without a memory (the thread read with conversations.replies).
// Reports the memory's GetItem and PutItem calls and the Slack reads per answer.
func BenchmarkFollowUpWithTheThreadMemory(b *testing.B) {
	for _, kind := range []string{"dynamodb", "off"} {
		b.Run(kind, func(b *testing.B) {
			var db *countingDB
			var mem ThreadMemory
			if kind == "dynamodb" {
				db = &countingDB{db: awstest.DynamoDB(b)}
				mem = threadmemory.NewDynamo(db, awstest.NewTable(b), threadmemory.Limits{}, nil)
			}
			h, _ := memoryBot(b, echoReply, mem, mem != nil)
			const ch = "C0CHAN"
			root := post(b, h, ch, "", "<@UBOT> what is a river?")
			deliver(b, h, "m0.json", mentionIn(b, "T0001", "Ev0", ch, root, "", "what is a river?"))
			reads := h.Slack.Calls("conversations.replies")
			if db != nil {
				db.gets.Store(0)
				db.puts.Store(0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				q := fmt.Sprintf("question %d", i)
				ts := post(b, h, ch, root, "<@UBOT> "+q)
				deliver(b, h, fmt.Sprintf("m%d.json", i+1), mentionIn(b, "T0001", fmt.Sprintf("Ev%d", i+1), ch, ts, root, q))
			}
			b.StopTimer()
			n := float64(b.N)
			if db != nil {
				b.ReportMetric(float64(db.gets.Load())/n, "gets/answer")
				b.ReportMetric(float64(db.puts.Load())/n, "puts/answer")
			}
			b.ReportMetric(float64(h.Slack.Calls("conversations.replies")-reads)/n, "replies-calls/answer")
		})
	}
}

package threadmemory

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/slackrelay/slackrelay/shared/awstest"
)

// Counting counts the memory's DynamoDB calls and the size of the items it writes (as
// DynamoDB sizes them: attribute names and values, in bytes).
type Counting struct {
	DB                DynamoDB
	Gets, Puts, Bytes atomic.Int64
}

func (c *Counting) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.Gets.Add(1)
	return c.DB.GetItem(ctx, in, opts...)
}

func (c *Counting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.Puts.Add(1)
	c.Bytes.Add(int64(itemSize(in.Item)))
	return c.DB.PutItem(ctx, in, opts...)
}

func itemSize(m map[string]types.AttributeValue) int {
	n := 0
	for k, v := range m {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return len(v.Value)/2 + 1
	case *types.AttributeValueMemberBOOL:
		return 1
	case *types.AttributeValueMemberM:
		return 3 + itemSize(v.Value)
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	}
	return 0
}

// One turn added to a thread at its caps (the default 50 turns, 32,000 characters): one
// strongly consistent GetItem and one conditional PutItem of the whole record.
func BenchmarkAddAtTheCaps(b *testing.B) {
	turn := strings.Repeat("a river is water on its way to the sea. ", 16) // 640 characters
	for _, kind := range []string{"memory", "dynamodb"} {
		b.Run(kind, func(b *testing.B) {
			var s *Store
			var counted *Counting
			switch kind {
			case "memory":
				s = NewMemory(Limits{}, nil)
			default:
				counted = &Counting{DB: awstest.DynamoDB(b)}
				s = NewDynamo(counted, awstest.NewTable(b), Limits{}, nil)
			}
			k := Key{"T1", "C1", "1700000000.000000"}
			for i := range DefaultMaxTurns {
				if _, err := s.Add(ctx, k, Turn{TS: fmt.Sprintf("1700000000.%06d", i), User: "U1", Text: turn}); err != nil {
					b.Fatal(err)
				}
			}
			if counted != nil {
				counted.Gets.Store(0)
				counted.Puts.Store(0)
				counted.Bytes.Store(0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Add(ctx, k, Turn{TS: fmt.Sprintf("1700000001.%06d", i), User: "U1", Text: turn}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if counted != nil {
				n := float64(b.N)
				b.ReportMetric(float64(counted.Gets.Load())/n, "gets/op")
				b.ReportMetric(float64(counted.Puts.Load())/n, "puts/op")
				b.ReportMetric(float64(counted.Bytes.Load())/n, "item-bytes/op")
			}
		})
	}
}

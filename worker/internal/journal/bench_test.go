package journal

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/awstest"
)

// BenchmarkStepSave is one step write of an event's journal on the local DynamoDB server
// (one conditional UpdateItem): what the journal adds per write a handler's step takes (a
// side-effecting tool's intent and result, a stream's flush, a task card's state).
func BenchmarkStepSave(b *testing.B) {
	table := awstest.NewTable(b)
	s := &Store{DB: awstest.DynamoDB(b), Table: table, TTL: time.Hour}
	ctx := context.Background()
	c, err := s.Claim(ctx, "bench:save", NewOwner("m1"), time.Now().Add(time.Hour))
	if err != nil || c.Lease == nil {
		b.Fatalf("claim: %+v %v", c, err)
	}
	v := step{Text: "a tool's result of a few hundred bytes, as a tool round records it, " + fmt.Sprint(make([]int, 40))}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := c.Lease.Save(ctx, fmt.Sprintf("once:agent:tool:%d:0", i%8), v); err != nil {
			b.Fatal(err)
		}
	}
}

package progress

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/infra/local/localstack"
	"github.com/slackrelay/slackrelay/infra/local/localstack/localstacktest"
	"github.com/slackrelay/slackrelay/shared/awsclient"
)

func TestMain(m *testing.M) { os.Exit(localstacktest.Run(m)) }

var seq atomic.Int64

// clock is a settable time shared by a test and its store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setup(t *testing.T) (*Store, *clock) {
	t.Helper()
	stack := localstacktest.Stack(t)
	table := fmt.Sprintf("progress-%d", seq.Add(1))
	if err := localstack.CreateTable(context.Background(), stack.DynamoDB(), table); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	return &Store{DB: stack.DynamoDB(), Table: table, TTL: time.Hour, Now: clk.Now}, clk
}

func claim(t *testing.T, s *Store, key, owner string, lease time.Time, want Outcome) Claim {
	t.Helper()
	c, err := s.Claim(context.Background(), key, owner, lease)
	if err != nil {
		t.Fatalf("claim %s by %s: %v", key, owner, err)
	}
	if c.Outcome != want {
		t.Fatalf("claim %s by %s = %v, want %v", key, owner, c.Outcome, want)
	}
	return c
}

func TestClaimCompleteDuplicate(t *testing.T) {
	t.Parallel()
	s, clk := setup(t)
	ctx := context.Background()
	lease := clk.Now().Add(time.Minute)

	a := claim(t, s, "evt:1", "a", lease, Claimed)
	if got := a.Lease.Attempt(); got != 1 {
		t.Errorf("first attempt = %d, want 1", got)
	}
	b := claim(t, s, "evt:1", "b", lease, Busy)
	if !b.LeaseUntil.Equal(lease) {
		t.Errorf("busy until %v, want %v", b.LeaseUntil, lease)
	}
	if err := a.Lease.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	claim(t, s, "evt:1", "c", lease, Done)
	// After the TTL the key is free again even if DynamoDB has not deleted it yet.
	clk.Add(2 * time.Hour)
	d := claim(t, s, "evt:1", "d", clk.Now().Add(time.Minute), Claimed)
	if got := d.Lease.Attempt(); got != 1 {
		t.Errorf("attempt on an expired record = %d, want 1 (a fresh record)", got)
	}
}

func TestReleaseKeepsStepsAndCountsAttempts(t *testing.T) {
	t.Parallel()
	s, clk := setup(t)
	ctx := context.Background()
	lease := clk.Now().Add(time.Minute)

	first := claim(t, s, "msg:T:C:1", "a", lease, Claimed).Lease
	step := Step{Kind: "reply", Parts: []string{"one", "two", "three"}, Sent: []string{"1.1"}, Pending: true}
	if err := first.Save(ctx, "reply#1", step); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(ctx, "post reply part 2/3: HTTP 500"); err != nil {
		t.Fatal(err)
	}
	// Released: the next delivery claims at once (no waiting for the old lease) and resumes.
	second := claim(t, s, "msg:T:C:1", "b", lease, Claimed).Lease
	if got := second.Attempt(); got != 2 {
		t.Errorf("attempt after a release = %d, want 2", got)
	}
	if got := second.LastError(); got != "post reply part 2/3: HTTP 500" {
		t.Errorf("last error = %q", got)
	}
	got, ok := second.Step("reply#1")
	if !ok {
		t.Fatal("step reply#1 lost across the release")
	}
	if diff := cmp.Diff(step, got); diff != "" {
		t.Errorf("step after release (-want +got):\n%s", diff)
	}
	// The first owner can no longer write.
	if err := first.Save(ctx, "reply#1", Step{Kind: "reply"}); !errors.Is(err, ErrNotOwner) {
		t.Errorf("save by the released owner: %v, want ErrNotOwner", err)
	}
	if err := first.Complete(ctx); !errors.Is(err, ErrNotOwner) {
		t.Errorf("complete by the released owner: %v, want ErrNotOwner", err)
	}
}

func TestLapsedLeaseIsTakenOverAndFencesTheOldOwner(t *testing.T) {
	t.Parallel()
	s, clk := setup(t)
	ctx := context.Background()
	old := claim(t, s, "evt:2", "crashed", clk.Now().Add(10*time.Second), Claimed).Lease
	if err := old.Save(ctx, "respond#1", Step{Kind: "respond", Parts: []string{"x"}, Pending: true}); err != nil {
		t.Fatal(err)
	}
	claim(t, s, "evt:2", "early", clk.Now().Add(time.Minute), Busy)
	clk.Add(11 * time.Second)
	next := claim(t, s, "evt:2", "next", clk.Now().Add(time.Minute), Claimed).Lease
	if next.Attempt() != 2 {
		t.Errorf("attempt = %d, want 2", next.Attempt())
	}
	if st, ok := next.Step("respond#1"); !ok || !st.Pending {
		t.Errorf("pending step not carried over: %+v %v", st, ok)
	}
	if err := old.Save(ctx, "respond#1", Step{Kind: "respond", Done: true}); !errors.Is(err, ErrNotOwner) {
		t.Errorf("save by the owner whose lease lapsed: %v, want ErrNotOwner", err)
	}
	if err := old.Release(ctx, "late"); !errors.Is(err, ErrNotOwner) {
		t.Errorf("release by the owner whose lease lapsed: %v, want ErrNotOwner", err)
	}
}

func TestCompleteDropsPlannedText(t *testing.T) {
	t.Parallel()
	s, clk := setup(t)
	ctx := context.Background()
	l := claim(t, s, "evt:3", "a", clk.Now().Add(time.Minute), Claimed).Lease
	if err := l.Save(ctx, "reply#1", Step{Kind: "reply", Parts: []string{"a secretless but long answer"}, Sent: []string{"1.2"}, Done: true}); err != nil {
		t.Fatal(err)
	}
	if err := l.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: keyOf("evt:3"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range out.Item {
		names = append(names, name)
	}
	for _, n := range names {
		if n == stepPrefix+"reply#1" || n == attrOwner || n == attrLease {
			t.Errorf("completed record still holds %s (attributes %v)", n, names)
		}
	}
	if got := stringAttr(out.Item, attrStatus); got != statusCompleted {
		t.Errorf("status = %q, want %q", got, statusCompleted)
	}
}

func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	t.Parallel()
	s, clk := setup(t)
	for round, released := range []bool{false, true} {
		key := fmt.Sprintf("evt:race-%d", round)
		if released {
			l := claim(t, s, key, "first", clk.Now().Add(time.Minute), Claimed).Lease
			if err := l.Release(context.Background(), "failed"); err != nil {
				t.Fatal(err)
			}
		}
		var claimed atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := s.Claim(context.Background(), key, fmt.Sprint("w", i), clk.Now().Add(time.Minute))
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if c.Outcome == Claimed {
					claimed.Add(1)
				}
			}()
		}
		wg.Wait()
		if got := claimed.Load(); got != 1 {
			t.Errorf("released=%v: %d concurrent claims won, want exactly 1", released, got)
		}
	}
}

func TestStoreUnreachable(t *testing.T) {
	t.Parallel()
	stack := localstacktest.Stack(t)
	proxy, err := localstack.NewFaultProxy(strings.TrimPrefix(stack.DynamoDBEndpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	db := dynamodb.NewFromConfig(awsclient.Local(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(proxy.URL())
		o.RetryMaxAttempts = 1
	})
	table := fmt.Sprintf("progress-%d", seq.Add(1))
	if err := localstack.CreateTable(context.Background(), db, table); err != nil {
		t.Fatal(err)
	}
	s := &Store{DB: db, Table: table}
	proxy.SetDown(true)
	c, err := s.Claim(context.Background(), "evt:down", "a", time.Now().Add(time.Minute))
	if err == nil {
		t.Fatalf("claim with the store down = %v, want an error", c.Outcome)
	}
	proxy.SetDown(false)
	claim(t, s, "evt:down", "a", time.Now().Add(time.Minute), Claimed)
}

func TestNotes(t *testing.T) {
	t.Parallel()
	s, clk := setup(t)
	ctx := context.Background()
	if v, err := s.Note(ctx, "context:T1:U1"); err != nil || v != "" {
		t.Fatalf("missing note = %q, %v; want empty", v, err)
	}
	if err := s.PutNote(ctx, "context:T1:U1", "C42", time.Hour); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Note(ctx, "context:T1:U1"); v != "C42" {
		t.Errorf("note = %q, want C42", v)
	}
	// A note is not a dedupe key: claiming the same name is unaffected.
	claim(t, s, "context:T1:U1", "a", clk.Now().Add(time.Minute), Claimed)
	clk.Add(2 * time.Hour)
	if v, _ := s.Note(ctx, "context:T1:U1"); v != "" {
		t.Errorf("expired note = %q, want empty", v)
	}
}

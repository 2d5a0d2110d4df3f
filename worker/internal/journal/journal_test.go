package journal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/awstest"
)

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

// countingDB counts the writes and reads that reach DynamoDB; with twice set, every write is
// sent twice and the second answer returned, as when the SDK retries a write whose first
// attempt was applied and whose answer was lost.
type countingDB struct {
	DB
	mu            sync.Mutex
	writes, reads int
	twice         bool
}

func (c *countingDB) count(write bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if write {
		c.writes++
	} else {
		c.reads++
	}
	return c.twice && write
}

func (c *countingDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if c.count(true) {
		if _, err := c.DB.UpdateItem(ctx, in, o...); err != nil {
			return nil, err
		}
	}
	return c.DB.UpdateItem(ctx, in, o...)
}

func (c *countingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.count(true)
	return c.DB.PutItem(ctx, in, o...)
}

func (c *countingDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.count(true)
	return c.DB.DeleteItem(ctx, in, o...)
}

func (c *countingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.count(false)
	return c.DB.GetItem(ctx, in, o...)
}

func (c *countingDB) counts() (writes, reads int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.reads
}

func setup(t *testing.T) (*Store, *clock, *countingDB) {
	t.Helper()
	table := awstest.NewTable(t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	db := &countingDB{DB: awstest.DynamoDB(t)}
	return &Store{DB: db, Table: table, TTL: time.Hour, Now: clk.Now}, clk, db
}

func claim(t *testing.T, s journalStore, key string, owner Owner, lease time.Time, want Outcome) Claim {
	t.Helper()
	c, err := s.Claim(context.Background(), key, owner, lease)
	if err != nil {
		t.Fatalf("claim %s by %s: %v", key, owner.Token(), err)
	}
	if c.Outcome != want {
		t.Fatalf("claim %s by %s = %v, want %v", key, owner.Token(), c.Outcome, want)
	}
	return c
}

type step struct {
	Text string `json:"text"`
}

func TestClaimCompleteDuplicate(t *testing.T) {
	t.Parallel()
	s, clk, db := setup(t)
	ctx := context.Background()
	lease := clk.Now().Add(time.Minute)

	a := claim(t, s, "evt:1", NewOwner("m1"), lease, Claimed)
	if got := a.Lease.Attempt(); got != 1 {
		t.Errorf("first attempt = %d, want 1", got)
	}
	if w, r := db.counts(); w != 1 || r != 0 {
		t.Errorf("a new claim cost %d writes and %d reads, want 1 and 0", w, r)
	}
	b := claim(t, s, "evt:1", NewOwner("m2"), lease, Busy)
	if !b.LeaseUntil.Equal(lease) || b.Holder != "m1" {
		t.Errorf("busy until %v held by %q, want %v by m1", b.LeaseUntil, b.Holder, lease)
	}
	if err := a.Lease.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	claim(t, s, "evt:1", NewOwner("m3"), lease, Done)
	if done, err := s.Peek(ctx, "evt:1"); err != nil || !done {
		t.Errorf("Peek = %v, %v; want done", done, err)
	}
	// After the TTL the record says nothing: the key is claimed anew (attempt 1).
	clk.Add(2 * time.Hour)
	c := claim(t, s, "evt:1", NewOwner("m4"), clk.Now().Add(time.Minute), Claimed)
	if c.Lease.Attempt() != 1 {
		t.Errorf("claim after expiry is attempt %d, want 1", c.Lease.Attempt())
	}
}

// A later receive of the same SQS message (after a crash, or a Release that failed) takes its
// own earlier lease over at once; the earlier receive is fenced off.
func TestSameMessageTakesOverItsOwnLease(t *testing.T) {
	t.Parallel()
	s, clk, _ := setup(t)
	ctx := context.Background()
	first := claim(t, s, "evt:own", NewOwner("m1"), clk.Now().Add(time.Hour), Claimed).Lease
	if err := first.Save(ctx, "post:C1:T1", step{"planned"}); err != nil {
		t.Fatal(err)
	}
	// Another message of the same event waits for the lease.
	claim(t, s, "evt:own", NewOwner("m2"), clk.Now().Add(time.Hour), Busy)
	second := claim(t, s, "evt:own", NewOwner("m1"), clk.Now().Add(time.Hour), Claimed).Lease
	if second.Attempt() != 2 {
		t.Errorf("takeover is attempt %d, want 2", second.Attempt())
	}
	var got step
	if ok, err := second.Load("post:C1:T1", &got); !ok || err != nil || got.Text != "planned" {
		t.Errorf("step after takeover = %+v, %v, %v; want the first receive's", got, ok, err)
	}
	if err := first.Save(ctx, "post:C1:T1", step{"late"}); !errors.Is(err, ErrNotOwner) {
		t.Errorf("the earlier receive's write after the takeover = %v, want ErrNotOwner", err)
	}
	if err := first.Release(ctx, "late"); !errors.Is(err, ErrNotOwner) {
		t.Errorf("the earlier receive's release after the takeover = %v, want ErrNotOwner", err)
	}
	if err := second.Complete(ctx); err != nil {
		t.Fatal(err)
	}
}

// Every write survives the SDK retrying it after its first attempt was applied and its answer
// lost: the claim recognises its own owner, the others their own write token.
func TestWritesAreRetrySafe(t *testing.T) {
	t.Parallel()
	s, clk, db := setup(t)
	ctx := context.Background()
	db.twice = true
	l := claim(t, s, "evt:twice", NewOwner("m1"), clk.Now().Add(time.Minute), Claimed).Lease
	if l.Attempt() != 1 {
		t.Errorf("claim applied twice counts attempt %d, want 1", l.Attempt())
	}
	if err := l.Save(ctx, "a", step{"one"}); err != nil {
		t.Fatalf("save applied twice: %v", err)
	}
	if err := l.Release(ctx, "failed"); err != nil {
		t.Fatalf("release applied twice: %v", err)
	}
	l2 := claim(t, s, "evt:twice", NewOwner("m2"), clk.Now().Add(time.Minute), Claimed).Lease
	if l2.Attempt() != 2 || l2.LastError() != "failed" {
		t.Errorf("next claim: attempt %d, last error %q; want 2, failed", l2.Attempt(), l2.LastError())
	}
	if err := l2.Complete(ctx); err != nil {
		t.Fatalf("complete applied twice: %v", err)
	}
	db.twice = false
	claim(t, s, "evt:twice", NewOwner("m3"), clk.Now().Add(time.Minute), Done)
}

// A step and the deferred results before it go out in one write; Release writes what was
// deferred; Complete drops every step.
func TestDeferredStepsRideTheNextWrite(t *testing.T) {
	t.Parallel()
	s, clk, db := setup(t)
	ctx := context.Background()
	l := claim(t, s, "evt:defer", NewOwner("m1"), clk.Now().Add(time.Minute), Claimed).Lease
	w0, _ := db.counts()
	if err := l.Defer("a", step{"a1"}); err != nil {
		t.Fatal(err)
	}
	if !l.Progressed() {
		t.Error("Progressed after a deferred step = false")
	}
	if err := l.Save(ctx, "b", step{"b1"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Defer("c", step{"c1"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, "cut"); err != nil {
		t.Fatal(err)
	}
	if w, _ := db.counts(); w-w0 != 2 {
		t.Errorf("a save and a release with deferred steps cost %d writes, want 2", w-w0)
	}
	l2 := claim(t, s, "evt:defer", NewOwner("m2"), clk.Now().Add(time.Minute), Claimed).Lease
	if got := strings.Join(l2.Steps(), ","); got != "a,b,c" {
		t.Errorf("steps after the release = %s, want a,b,c", got)
	}
	if err := l2.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: keyOf("evt:defer"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	for name := range out.Item {
		if strings.HasPrefix(name, stepPrefix) || name == attrOwner || name == attrLease {
			t.Errorf("completed record still holds %s", name)
		}
	}
}

func TestLapsedLeaseIsTakenOverAndFencesTheOldOwner(t *testing.T) {
	t.Parallel()
	s, clk, _ := setup(t)
	ctx := context.Background()
	old := claim(t, s, "evt:lapse", NewOwner("m1"), clk.Now().Add(10*time.Second), Claimed).Lease
	claim(t, s, "evt:lapse", NewOwner("m2"), clk.Now().Add(time.Minute), Busy)
	clk.Add(11 * time.Second)
	taker := claim(t, s, "evt:lapse", NewOwner("m2"), clk.Now().Add(time.Minute), Claimed).Lease
	if taker.Attempt() != 2 {
		t.Errorf("takeover attempt = %d, want 2", taker.Attempt())
	}
	if err := old.Save(ctx, "x", step{"late"}); !errors.Is(err, ErrNotOwner) {
		t.Errorf("old owner's save = %v, want ErrNotOwner", err)
	}
	if err := old.Complete(ctx); !errors.Is(err, ErrNotOwner) {
		t.Errorf("old owner's complete = %v, want ErrNotOwner", err)
	}
	if err := taker.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := taker.Save(ctx, "x", step{"after"}); !errors.Is(err, ErrNotOwner) {
		t.Errorf("save after complete = %v, want ErrNotOwner", err)
	}
}

func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	t.Parallel()
	s, clk, _ := setup(t)
	for round, released := range []bool{false, true} {
		key := fmt.Sprintf("evt:race-%d", round)
		if released {
			l := claim(t, s, key, NewOwner("first"), clk.Now().Add(time.Minute), Claimed).Lease
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
				c, err := s.Claim(context.Background(), key, NewOwner(fmt.Sprint("w", i)), clk.Now().Add(time.Minute))
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

// A record written before the step journal (steps by call order under "step:") is claimed,
// its steps read through Legacy, and dropped on completion.
func TestRecordOfTheEarlierReleaseIsRead(t *testing.T) {
	t.Parallel()
	s, clk, _ := setup(t)
	ctx := context.Background()
	item := keyOf("msg:T1:C1:1.2")
	item[attrStatus] = str(statusInProgress)
	item[attrLease] = num(0)
	item[attrAttempts] = num(1)
	item[attrExpires] = num(clk.Now().Add(time.Hour).Unix())
	item["step:post#1"] = str(`{"kind":"post","parts":["a","b"],"sent":["1.3"],"pending":true}`)
	if _, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table), Item: item}); err != nil {
		t.Fatal(err)
	}
	l := claim(t, s, "msg:T1:C1:1.2", NewOwner("m1"), clk.Now().Add(time.Minute), Claimed).Lease
	raw, ok := l.Legacy("post#1")
	if !ok || !l.HasLegacy() || !strings.Contains(string(raw), `"sent":["1.3"]`) {
		t.Fatalf("legacy step = %s, %v", raw, ok)
	}
	if l.Attempt() != 2 {
		t.Errorf("attempt = %d, want 2", l.Attempt())
	}
	if err := l.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	out, _ := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: keyOf("msg:T1:C1:1.2"), ConsistentRead: aws.Bool(true)})
	if _, still := out.Item["step:post#1"]; still {
		t.Error("completed record still holds the legacy step")
	}
}

func TestTooLargeIsRefusedBeforeWriting(t *testing.T) {
	t.Parallel()
	s, clk, db := setup(t)
	l := claim(t, s, "evt:big", NewOwner("m1"), clk.Now().Add(time.Minute), Claimed).Lease
	w0, _ := db.counts()
	err := l.Save(context.Background(), "big", step{strings.Repeat("x", MaxItemBytes)})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("save of %d bytes = %v, want ErrTooLarge", MaxItemBytes, err)
	}
	if w, _ := db.counts(); w != w0 {
		t.Error("a refused save reached DynamoDB")
	}
}

func TestStoreUnreachable(t *testing.T) {
	t.Parallel()
	table := awstest.NewTable(t)
	proxy := awstest.NewProxy(t, awstest.Endpoint(t, awstest.EnvDynamoDB))
	db := dynamodb.NewFromConfig(awsclient.Local(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(proxy.URL())
		o.RetryMaxAttempts = 1
	})
	s := &Store{DB: db, Table: table}
	proxy.SetDown(true)
	c, err := s.Claim(context.Background(), "evt:down", NewOwner("m1"), time.Now().Add(time.Minute))
	if err == nil {
		t.Fatalf("claim with the store down = %v, want an error", c.Outcome)
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		t.Fatalf("an outage reads as a failed condition: %v", err)
	}
	proxy.SetDown(false)
	claim(t, s, "evt:down", NewOwner("m1"), time.Now().Add(time.Minute), Claimed)
}

func TestNotes(t *testing.T) {
	t.Parallel()
	s, clk, _ := setup(t)
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
	claim(t, s, "context:T1:U1", NewOwner("m1"), clk.Now().Add(time.Minute), Claimed)
	clk.Add(2 * time.Hour)
	if v, _ := s.Note(ctx, "context:T1:U1"); v != "" {
		t.Errorf("expired note = %q, want empty", v)
	}
}

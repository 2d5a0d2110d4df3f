package idempotency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/localstack"
	"github.com/slackrelay/slackrelay/infra/local/localstack/localstacktest"
)

func TestMain(m *testing.M) { os.Exit(localstacktest.Run(m)) }

var seq atomic.Int64

func newStore(t *testing.T, now *time.Time) *Store {
	stack := localstacktest.Stack(t)
	table := fmt.Sprintf("idem-%d", seq.Add(1))
	if err := localstack.CreateTable(context.Background(), stack.DynamoDB(), table); err != nil {
		t.Fatal(err)
	}
	return &Store{DB: stack.DynamoDB(), Table: table, TTL: time.Hour, Now: func() time.Time { return *now }}
}

func TestClaimLifecycle(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newStore(t, &now)
	ctx := context.Background()
	lease := now.Add(time.Minute)

	c, err := s.Claim(ctx, "evt:1", "a", lease)
	if err != nil || c.Outcome != Claimed {
		t.Fatalf("first claim = %v, %v", c.Outcome, err)
	}
	c, err = s.Claim(ctx, "evt:1", "b", lease)
	if err != nil || c.Outcome != Busy || !c.LeaseUntil.Equal(lease) {
		t.Fatalf("second claim = %+v, %v; want busy until %v", c, err, lease)
	}
	if err := s.Complete(ctx, "evt:1", "b"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("complete by non-owner: %v", err)
	}
	if err := s.Complete(ctx, "evt:1", "a"); err != nil {
		t.Fatal(err)
	}
	c, err = s.Claim(ctx, "evt:1", "c", lease)
	if err != nil || c.Outcome != Done {
		t.Fatalf("claim after completion = %v, %v", c.Outcome, err)
	}
	// After the TTL the key is free again even if DynamoDB has not yet deleted it.
	now = now.Add(2 * time.Hour)
	c, err = s.Claim(ctx, "evt:1", "d", now.Add(time.Minute))
	if err != nil || c.Outcome != TakenOver {
		t.Fatalf("claim after TTL = %v, %v", c.Outcome, err)
	}
}

func TestReleaseLetsARetryRun(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newStore(t, &now)
	ctx := context.Background()
	if c, _ := s.Claim(ctx, "k", "a", now.Add(time.Minute)); c.Outcome != Claimed {
		t.Fatal(c.Outcome)
	}
	if err := s.Release(ctx, "k", "b"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("release by non-owner: %v", err)
	}
	if err := s.Release(ctx, "k", "a"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Claim(ctx, "k", "b", now.Add(time.Minute)); c.Outcome != Claimed {
		t.Fatalf("claim after release = %v", c.Outcome)
	}
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newStore(t, &now)
	ctx := context.Background()
	s.Claim(ctx, "k", "dead-worker", now.Add(30*time.Second))
	now = now.Add(31 * time.Second)
	c, err := s.Claim(ctx, "k", "b", now.Add(time.Minute))
	if err != nil || c.Outcome != TakenOver {
		t.Fatalf("claim after lease = %v, %v", c.Outcome, err)
	}
	if err := s.Complete(ctx, "k", "dead-worker"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("the dead worker's late completion must fail: %v", err)
	}
}

func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newStore(t, &now)
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := s.Claim(context.Background(), "race", fmt.Sprint("w", i), now.Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if c.Outcome == Claimed {
				won.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d winners, want 1", won.Load())
	}
}

func TestStoreUnreachable(t *testing.T) {
	now := time.Now()
	s := newStore(t, &now)
	s.Table = "no-such-table"
	if _, err := s.Claim(context.Background(), "k", "a", now.Add(time.Minute)); err == nil {
		t.Fatal("claim against a missing table succeeded")
	}
}

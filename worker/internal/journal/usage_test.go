package journal

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/slackrelay/slackrelay/worker/internal/core"
)

// recordUsage reads the usage a completed record keeps, from either store.
func recordUsage(t *testing.T, j journalStore, key string) (core.Usage, time.Time, bool) {
	t.Helper()
	switch s := j.(type) {
	case *Memory:
		return s.Usage(key)
	case *Store:
		out, err := s.DB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: keyOf(key), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatalf("read the record of %s: %v", key, err)
		}
		if stringAttr(out.Item, attrStatus) != statusCompleted || out.Item[attrUsage] == nil {
			return core.Usage{}, time.Time{}, false
		}
		u, err := usageOf(out.Item[attrUsage])
		if err != nil {
			t.Fatalf("usage of %s: %v", key, err)
		}
		return u, time.UnixMilli(numAttr(out.Item, attrCompleted)), true
	}
	t.Fatalf("no usage reader for %T", j)
	return core.Usage{}, time.Time{}, false
}

func cost(v float64) *float64 { return &v }

var usageCases = []struct {
	name string
	run  func(t *testing.T, j journalStore, clk *clock)
}{
	{"the completion keeps the usage, a release does not", func(t *testing.T, j journalStore, clk *clock) {
		ctx := context.Background()
		first := claim(t, j, "msg:T1:C1:1", NewOwner("m1"), clk.Now().Add(time.Minute), Claimed).Lease
		first.SetUsage(core.Usage{Model: "early", InputTokens: 1})
		if err := first.Release(ctx, "cut"); err != nil {
			t.Fatal(err)
		}
		second := claim(t, j, "msg:T1:C1:1", NewOwner("m2"), clk.Now().Add(time.Minute), Claimed).Lease
		want := core.Usage{Model: "anthropic.claude-x", Team: "T1", InputTokens: 1200, OutputTokens: 300, CachedTokens: 1000,
			CacheWriteTokens: 100, ModelCalls: 2, ToolCalls: 1, ModelMillis: 2500, CostUSD: cost(0.012345)}
		second.SetUsage(core.Usage{Model: "replaced"})
		second.SetUsage(want)
		clk.Add(3 * time.Second)
		if err := second.Complete(ctx); err != nil {
			t.Fatal(err)
		}
		got, at, ok := recordUsage(t, j, "msg:T1:C1:1")
		if !ok {
			t.Fatal("the completed record keeps no usage")
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("usage on the record (-want +got):\n%s", diff)
		}
		if !at.Equal(clk.Now()) {
			t.Errorf("completed at %v, want %v", at, clk.Now())
		}
		// An event completed without usage keeps none; an unknown cost stays unknown.
		plain := claim(t, j, "evt:plain", NewOwner("m3"), clk.Now().Add(time.Minute), Claimed).Lease
		if err := plain.Complete(ctx); err != nil {
			t.Fatal(err)
		}
		if u, _, ok := recordUsage(t, j, "evt:plain"); ok {
			t.Errorf("a completion without usage keeps %+v", u)
		}
		unpriced := claim(t, j, "evt:unpriced", NewOwner("m4"), clk.Now().Add(time.Minute), Claimed).Lease
		unpriced.SetUsage(core.Usage{Model: "no-price", OutputTokens: 7})
		if err := unpriced.Complete(ctx); err != nil {
			t.Fatal(err)
		}
		if u, _, ok := recordUsage(t, j, "evt:unpriced"); !ok || u.CostUSD != nil || u.OutputTokens != 7 {
			t.Errorf("usage without a cost = %+v (%v), want 7 output tokens and no cost", u, ok)
		}
	}},

	{"daily counters add up per day, once per event", func(t *testing.T, j journalStore, clk *clock) {
		ctx := context.Background()
		complete := func(key string, counts map[string]int64) {
			t.Helper()
			l := claim(t, j, key, NewOwner("m-"+key), clk.Now().Add(time.Minute), Claimed).Lease
			for name, n := range counts {
				l.CountDaily(name, n)
			}
			if err := l.Complete(ctx); err != nil {
				t.Fatalf("complete %s: %v", key, err)
			}
		}
		read := func(name string) int64 {
			t.Helper()
			n, err := j.DailyCount(ctx, name)
			if err != nil {
				t.Fatalf("DailyCount %s: %v", name, err)
			}
			return n
		}
		if n := read("T1:tokens"); n != 0 {
			t.Errorf("a counter nothing added to = %d, want 0", n)
		}
		complete("evt:a", map[string]int64{"T1:tokens": 100})
		complete("evt:b", map[string]int64{"T1:tokens": 20, "T2:tokens": 7})
		l := claim(t, j, "evt:c", NewOwner("m-c"), clk.Now().Add(time.Minute), Claimed).Lease
		l.CountDaily("T1:tokens", 1)
		l.CountDaily("T1:tokens", 2) // calls add up
		l.CountDaily("T1:tokens", 0) // nothing
		if err := l.Complete(ctx); err != nil {
			t.Fatal(err)
		}
		if a, b := read("T1:tokens"), read("T2:tokens"); a != 123 || b != 7 {
			t.Errorf("counters T1 %d, T2 %d; want 123 and 7", a, b)
		}
		// The add of the event that added last, applied again (the SDK's retry of an add
		// whose answer was lost), is not counted twice.
		var b backend
		switch s := j.(type) {
		case *Memory:
			b = memBackend{s}
		case *Store:
			b = dynamoBackend{s}
		}
		if err := b.count(ctx, "evt:c", "T1:tokens", 3); err != nil {
			t.Fatal(err)
		}
		if n := read("T1:tokens"); n != 123 {
			t.Errorf("after the last add again: %d, want 123", n)
		}
		// A new UTC day starts from nothing.
		now := clk.Now().UTC()
		clk.Add(time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 1, 0, time.UTC).Sub(now))
		if n := read("T1:tokens"); n != 0 {
			t.Errorf("the next day's counter = %d, want 0", n)
		}
		complete("evt:d", map[string]int64{"T1:tokens": 5})
		if n := read("T1:tokens"); n != 5 {
			t.Errorf("the next day's counter after an add = %d, want 5", n)
		}
	}},
}

// The completion with usage and a counter costs the completion's write and one more; the
// usage rides the completion.
func TestCompletionWithUsageWritesOnceAndCountsOnce(t *testing.T) {
	t.Parallel()
	s, clk, db := setup(t)
	ctx := context.Background()
	l := claim(t, s, "msg:T1:C1:2", NewOwner("m1"), clk.Now().Add(time.Minute), Claimed).Lease
	before, _ := db.counts()
	l.SetUsage(core.Usage{Model: "m", InputTokens: 10})
	l.CountDaily("T1:tokens", 10)
	if err := l.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	if w, _ := db.counts(); w-before != 2 {
		t.Errorf("completion with usage and a counter took %d writes, want 2 (the completion, the count)", w-before)
	}
}

// A count that fails after the completion is reported as ErrNotCounted; the event is
// completed all the same.
func TestAFailedCountIsReportedAfterTheCompletion(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := &Memory{Now: clk.Now, Fault: func(_, op string, _ []string) error {
		if op == "count" {
			return ErrInjected
		}
		return nil
	}}
	l := claim(t, m, "evt:x", NewOwner("m1"), clk.Now().Add(time.Minute), Claimed).Lease
	l.CountDaily("T1:tokens", 10)
	err := l.Complete(context.Background())
	if !errors.Is(err, ErrNotCounted) || !errors.Is(err, ErrInjected) || !strings.Contains(err.Error(), "T1:tokens") {
		t.Errorf("Complete = %v, want ErrNotCounted naming the counter and its cause", err)
	}
	if done, _ := m.Peek(context.Background(), "evt:x"); !done {
		t.Error("the event is not completed")
	}
}

// pagedScanner makes every scan page hold at most limit items, and fails page failAt.
type pagedScanner struct {
	Scanner
	limit  int32
	failAt int
	mu     sync.Mutex
	pages  int
}

func (p *pagedScanner) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	p.mu.Lock()
	p.pages++
	n := p.pages
	p.mu.Unlock()
	if n == p.failAt {
		return nil, errors.New("ProvisionedThroughputExceededException: rate of requests exceeds the allowed throughput")
	}
	c := *in
	c.Limit = aws.Int32(p.limit)
	return p.Scanner.Scan(ctx, &c, o...)
}

// ScanAnswered finds, across pages, exactly the records completed in the window that carry
// usage (of one team when asked), and a failed page ends the scan with an error.
func TestScanAnswered(t *testing.T) {
	t.Parallel()
	s, clk, _ := setup(t)
	s.TTL = 30 * 24 * time.Hour
	ctx := context.Background()
	day := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	complete := func(key string, at time.Time, u *core.Usage) {
		t.Helper()
		clk.Add(at.Sub(clk.Now()))
		l := claim(t, s, key, NewOwner("m-"+key), clk.Now().Add(time.Minute), Claimed).Lease
		if u != nil {
			l.SetUsage(*u)
		}
		l.CountDaily("T1:tokens", 1) // a counter item in the table, which the scan must skip
		if err := l.Complete(ctx); err != nil {
			t.Fatal(err)
		}
	}
	complete("msg:T1:C1:before", day.Add(-time.Millisecond), &core.Usage{Team: "T1", CostUSD: cost(9)})
	for i := range 7 {
		team := "T1"
		if i%3 == 2 {
			team = "T2"
		}
		complete(fmt.Sprintf("msg:%s:C1:%d", team, i), day.Add(time.Duration(i)*3*time.Hour), &core.Usage{Model: "m", Team: team, OutputTokens: int64(i), CostUSD: cost(float64(i) / 100)})
	}
	complete("msg:T1:C1:nousage", day.Add(time.Hour), nil)
	complete("msg:T1:C1:after", day.Add(24*time.Hour), &core.Usage{Team: "T1", CostUSD: cost(9)})
	inProgress := claim(t, s, "msg:T1:C1:open", NewOwner("m-open"), clk.Now().Add(time.Minute), Claimed).Lease
	inProgress.SetUsage(core.Usage{Team: "T1"}) // never completed: not listed
	if err := s.PutNote(ctx, "context:T1:U1", "C1", time.Hour); err != nil {
		t.Fatal(err)
	}

	scan := func(db Scanner, team string) ([]string, int, error) {
		var keys []string
		pages, err := ScanAnswered(ctx, db, s.Table, day, day.Add(24*time.Hour), team, func(a Answered) error {
			if a.Completed.Before(day) || !a.Completed.Before(day.Add(24*time.Hour)) || a.Usage.Model != "m" {
				t.Errorf("record %s completed %v with %+v, outside the day or not what was written", a.Key, a.Completed, a.Usage)
			}
			keys = append(keys, a.Key)
			return nil
		})
		sort.Strings(keys)
		return keys, pages, err
	}
	all := []string{"msg:T1:C1:0", "msg:T1:C1:1", "msg:T1:C1:3", "msg:T1:C1:4", "msg:T1:C1:6", "msg:T2:C1:2", "msg:T2:C1:5"}
	paged := &pagedScanner{Scanner: awsDB(t, s), limit: 3}
	keys, pages, err := scan(paged, "")
	if err != nil || !cmp.Equal(keys, all) {
		t.Errorf("scan of the day = %v, %v; want %v", keys, err, all)
	}
	if pages < 5 {
		t.Errorf("the scan read %d pages of at most 3 items, want every page (at least 5 for 14 items)", pages)
	}
	keys, _, err = scan(&pagedScanner{Scanner: awsDB(t, s), limit: 3}, "T2")
	if want := []string{"msg:T2:C1:2", "msg:T2:C1:5"}; err != nil || !cmp.Equal(keys, want) {
		t.Errorf("scan of T2 = %v, %v; want %v", keys, err, want)
	}
	_, pages, err = scan(&pagedScanner{Scanner: awsDB(t, s), limit: 3, failAt: 2}, "")
	if err == nil || pages != 1 || !strings.Contains(err.Error(), "page 2") {
		t.Errorf("a scan whose second page failed = %d pages, %v; want an error naming page 2 after 1 page", pages, err)
	}
	stop := errors.New("enough")
	if _, err := ScanAnswered(ctx, awsDB(t, s), s.Table, day, day.Add(24*time.Hour), "", func(Answered) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("fn's error = %v, want it returned", err)
	}
}

// awsDB is the store's DynamoDB client as a Scanner (the test store counts its calls through
// countingDB, which does not scan).
func awsDB(t *testing.T, s *Store) Scanner {
	t.Helper()
	sc, ok := s.DB.(*countingDB).DB.(Scanner)
	if !ok {
		t.Fatal("the test's DynamoDB client cannot scan")
	}
	return sc
}

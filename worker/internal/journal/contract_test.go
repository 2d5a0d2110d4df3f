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
)

// journalStore is what the contract cases use of a journal; Store and Memory satisfy it.
type journalStore interface {
	Claim(ctx context.Context, key string, owner Owner, leaseUntil time.Time) (Claim, error)
	Peek(ctx context.Context, key string) (bool, error)
	PutNote(ctx context.Context, key, value string, ttl time.Duration) error
	Note(ctx context.Context, key string) (string, error)
	DailyCount(ctx context.Context, name string) (int64, error)
}

var (
	_ journalStore = (*Store)(nil)
	_ journalStore = (*Memory)(nil)
)

// TestContract runs the same claim and lease cases against Store on the local DynamoDB
// server and against Memory, so that the in-memory journal the handler tests use cannot
// drift from the one the worker runs on.
func TestContract(t *testing.T) {
	t.Parallel()
	stores := []struct {
		name string
		new  func(t *testing.T) (journalStore, *clock)
	}{
		{"dynamodb", func(t *testing.T) (journalStore, *clock) { s, clk, _ := setup(t); return s, clk }},
		{"memory", func(t *testing.T) (journalStore, *clock) {
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			return &Memory{Now: clk.Now}, clk
		}},
	}
	for _, c := range contractCases {
		for _, s := range stores {
			t.Run(c.name+"/"+s.name, func(t *testing.T) {
				t.Parallel()
				j, clk := s.new(t)
				c.run(t, j, clk)
			})
		}
	}
}

var contractCases = append([]struct {
	name string
	run  func(t *testing.T, j journalStore, clk *clock)
}{
	{"a save supersedes the value deferred under its name", func(t *testing.T, j journalStore, clk *clock) {
		// What a part's post settles (part 1 sent), then the intent to send part 2; part 2's
		// answer is lost, the attempt releases, and the next receive must read the intent.
		ctx := context.Background()
		lease := clk.Now().Add(time.Minute)
		l := claim(t, j, "msg:split", NewOwner("m1"), lease, Claimed).Lease
		if err := l.Defer("post", "part 1 sent"); err != nil {
			t.Fatal(err)
		}
		if err := l.Save(ctx, "post", "part 2 pending"); err != nil {
			t.Fatal(err)
		}
		var now string
		if _, err := l.Load("post", &now); err != nil || now != "part 2 pending" {
			t.Errorf("after Save, Load = %q (%v), want what was saved", now, err)
		}
		if err := l.Release(ctx, "post part 2/2: connection reset"); err != nil {
			t.Fatal(err)
		}
		again := claim(t, j, "msg:split", NewOwner("m1"), lease, Claimed).Lease
		var got string
		if _, err := again.Load("post", &got); err != nil || got != "part 2 pending" {
			t.Errorf("the next receive reads %q (%v), want the intent %q", got, err, "part 2 pending")
		}
	}},
	{"claim, busy, done", func(t *testing.T, j journalStore, clk *clock) {
		ctx := context.Background()
		lease := clk.Now().Add(time.Minute)
		if done, err := j.Peek(ctx, "evt:1"); err != nil || done {
			t.Errorf("Peek of an unknown key = %v, %v; want not done", done, err)
		}
		a := claim(t, j, "evt:1", NewOwner("m1"), lease, Claimed).Lease
		if a.Key() != "evt:1" || a.Attempt() != 1 || a.LastError() != "" || a.Progressed() || len(a.Steps()) != 0 || !a.Started().Equal(clk.Now()) {
			t.Errorf("first claim: key %q attempt %d last error %q progressed %v steps %v started %v; want evt:1, 1, none, false, none, now",
				a.Key(), a.Attempt(), a.LastError(), a.Progressed(), a.Steps(), a.Started())
		}
		b := claim(t, j, "evt:1", NewOwner("m2"), lease, Busy)
		if !b.LeaseUntil.Equal(lease) || b.Holder != "m1" || b.Lease != nil {
			t.Errorf("busy until %v held by %q (lease %v), want %v by m1 and no lease", b.LeaseUntil, b.Holder, b.Lease, lease)
		}
		if done, err := j.Peek(ctx, "evt:1"); err != nil || done {
			t.Errorf("Peek of an event in progress = %v, %v; want not done", done, err)
		}
		if err := a.Complete(ctx); err != nil {
			t.Fatal(err)
		}
		claim(t, j, "evt:1", NewOwner("m3"), lease, Done)
		claim(t, j, "evt:1", NewOwner("m1"), lease, Done) // the same message again, too
		if done, err := j.Peek(ctx, "evt:1"); err != nil || !done {
			t.Errorf("Peek of a completed event = %v, %v; want done", done, err)
		}
		if err := a.Complete(ctx); !errors.Is(err, ErrNotOwner) {
			t.Errorf("a second complete = %v, want ErrNotOwner", err)
		}
	}},

	{"a claim is idempotent for its owner", func(t *testing.T, j journalStore, clk *clock) {
		o := NewOwner("m1")
		claim(t, j, "evt:again", o, clk.Now().Add(time.Minute), Claimed)
		l := claim(t, j, "evt:again", o, clk.Now().Add(time.Minute), Claimed).Lease
		if l.Attempt() != 1 {
			t.Errorf("the same owner's claim again is attempt %d, want 1", l.Attempt())
		}
		if err := l.Complete(context.Background()); err != nil {
			t.Errorf("complete by the repeated claim: %v", err)
		}
	}},

	{"the same message takes its own lease over", func(t *testing.T, j journalStore, clk *clock) {
		ctx := context.Background()
		first := claim(t, j, "evt:own", NewOwner("m1"), clk.Now().Add(time.Hour), Claimed).Lease
		if err := first.Save(ctx, "post", step{"planned"}); err != nil {
			t.Fatal(err)
		}
		claim(t, j, "evt:own", NewOwner("m2"), clk.Now().Add(time.Hour), Busy)
		second := claim(t, j, "evt:own", NewOwner("m1"), clk.Now().Add(time.Hour), Claimed).Lease
		if second.Attempt() != 2 || second.LastError() != "" {
			t.Errorf("takeover: attempt %d, last error %q; want 2 and none", second.Attempt(), second.LastError())
		}
		var got step
		if ok, err := second.Load("post", &got); !ok || err != nil || got.Text != "planned" {
			t.Errorf("step after takeover = %+v, %v, %v; want the first receive's", got, ok, err)
		}
		// The earlier receive is fenced off: its writes change nothing.
		if err := first.Release(ctx, "late"); !errors.Is(err, ErrNotOwner) {
			t.Errorf("the earlier receive's release after the takeover = %v, want ErrNotOwner", err)
		}
		if err := first.Save(ctx, "post", step{"late"}); !errors.Is(err, ErrNotOwner) {
			t.Errorf("the earlier receive's save after the takeover = %v, want ErrNotOwner", err)
		}
		claim(t, j, "evt:own", NewOwner("m2"), clk.Now().Add(time.Hour), Busy)
		if err := second.Complete(ctx); err != nil {
			t.Fatal(err)
		}
		claim(t, j, "evt:own", NewOwner("m2"), clk.Now().Add(time.Hour), Done)
	}},

	{"a lapsed lease is taken over and fences its owner off", func(t *testing.T, j journalStore, clk *clock) {
		ctx := context.Background()
		old := claim(t, j, "evt:lapse", NewOwner("m1"), clk.Now().Add(10*time.Second), Claimed).Lease
		if err := old.Defer("lost", step{"never written"}); err != nil {
			t.Fatal(err)
		}
		clk.Add(10 * time.Second) // the lease's last instant: still held
		claim(t, j, "evt:lapse", NewOwner("m2"), clk.Now().Add(time.Minute), Busy)
		clk.Add(time.Millisecond)
		taker := claim(t, j, "evt:lapse", NewOwner("m2"), clk.Now().Add(time.Minute), Claimed).Lease
		if taker.Attempt() != 2 {
			t.Errorf("takeover attempt = %d, want 2", taker.Attempt())
		}
		if ok, _ := taker.Load("lost", &step{}); ok {
			t.Error("a step deferred by the lapsed lease and never written was found")
		}
		if err := old.Save(ctx, "x", step{"late"}); !errors.Is(err, ErrNotOwner) {
			t.Errorf("old owner's save = %v, want ErrNotOwner", err)
		}
		if err := old.Complete(ctx); !errors.Is(err, ErrNotOwner) {
			t.Errorf("old owner's complete = %v, want ErrNotOwner", err)
		}
		if err := taker.Save(ctx, "y", step{"mine"}); err != nil {
			t.Fatal(err)
		}
		if err := taker.Release(ctx, "cut"); err != nil {
			t.Fatal(err)
		}
		third := claim(t, j, "evt:lapse", NewOwner("m3"), clk.Now().Add(time.Minute), Claimed).Lease
		if got := strings.Join(third.Steps(), ","); third.Attempt() != 3 || third.LastError() != "cut" || got != "y" {
			t.Errorf("after the release: attempt %d, last error %q, steps %s; want 3, cut, y (not the fenced owner's x)", third.Attempt(), third.LastError(), got)
		}
		if err := third.Complete(ctx); err != nil {
			t.Fatal(err)
		}
		if err := third.Save(ctx, "z", step{"after"}); !errors.Is(err, ErrNotOwner) {
			t.Errorf("save after complete = %v, want ErrNotOwner", err)
		}
	}},

	{"save, defer, release, complete", func(t *testing.T, j journalStore, clk *clock) {
		ctx := context.Background()
		l := claim(t, j, "evt:steps", NewOwner("m1"), clk.Now().Add(time.Minute), Claimed).Lease
		if err := l.Defer("a", step{"a1"}); err != nil {
			t.Fatal(err)
		}
		var got step
		if ok, err := l.Load("a", &got); !ok || err != nil || got.Text != "a1" || !l.Progressed() {
			t.Errorf("a deferred step: load %+v, %v, %v; progressed %v; want a1 at once", got, ok, err, l.Progressed())
		}
		if err := l.Save(ctx, "b", step{"b1"}); err != nil {
			t.Fatal(err)
		}
		if err := l.Defer("c", step{"c1"}); err != nil {
			t.Fatal(err)
		}
		if err := l.Defer("d", step{"d1"}); err != nil {
			t.Fatal(err)
		}
		if err := l.Save(ctx, "d", step{"d2"}); err != nil { // supersedes the deferred d
			t.Fatal(err)
		}
		if got := strings.Join(l.Steps(), ","); got != "a,b,c,d" {
			t.Errorf("steps = %s, want a,b,c,d", got)
		}
		if err := l.Release(ctx, "cut"); err != nil {
			t.Fatal(err)
		}
		if err := l.Save(ctx, "e", step{"e1"}); !errors.Is(err, ErrNotOwner) {
			t.Errorf("save after release = %v, want ErrNotOwner", err)
		}
		// A released claim is free at once, its steps kept.
		l2 := claim(t, j, "evt:steps", NewOwner("m2"), clk.Now().Add(time.Minute), Claimed).Lease
		if l2.Attempt() != 2 || l2.LastError() != "cut" || l2.Progressed() {
			t.Errorf("after release: attempt %d, last error %q, progressed %v; want 2, cut, false", l2.Attempt(), l2.LastError(), l2.Progressed())
		}
		want := map[string]string{"a": "a1", "b": "b1", "c": "c1", "d": "d2"}
		for name, text := range want {
			var got step
			if ok, err := l2.Load(name, &got); !ok || err != nil || got.Text != text {
				t.Errorf("step %s after release = %+v, %v, %v; want %s", name, got, ok, err, text)
			}
		}
		if len(l2.Steps()) != len(want) {
			t.Errorf("steps after release = %v", l2.Steps())
		}
		if err := l2.Complete(ctx); err != nil {
			t.Fatal(err)
		}
		claim(t, j, "evt:steps", NewOwner("m3"), clk.Now().Add(time.Minute), Done)
		if err := l2.Release(ctx, "late"); !errors.Is(err, ErrNotOwner) {
			t.Errorf("release after complete = %v, want ErrNotOwner", err)
		}
	}},

	{"a step too large is refused", func(t *testing.T, j journalStore, clk *clock) {
		l := claim(t, j, "evt:big", NewOwner("m1"), clk.Now().Add(time.Minute), Claimed).Lease
		if err := l.Save(context.Background(), "big", step{strings.Repeat("x", MaxItemBytes)}); !errors.Is(err, ErrTooLarge) {
			t.Errorf("save of %d bytes = %v, want ErrTooLarge", MaxItemBytes, err)
		}
		if err := l.Complete(context.Background()); err != nil {
			t.Errorf("complete after a refused save: %v", err)
		}
	}},

	{"concurrent claims have one winner", func(t *testing.T, j journalStore, clk *clock) {
		for round, released := range []bool{false, true} {
			key := fmt.Sprintf("evt:race-%d", round)
			if released {
				l := claim(t, j, key, NewOwner("first"), clk.Now().Add(time.Minute), Claimed).Lease
				if err := l.Release(context.Background(), "failed"); err != nil {
					t.Fatal(err)
				}
			}
			var claimed atomic.Int32
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					c, err := j.Claim(context.Background(), key, NewOwner(fmt.Sprint("w", i)), clk.Now().Add(time.Minute))
					if err != nil {
						t.Errorf("claim: %v", err)
					} else if c.Outcome == Claimed {
						claimed.Add(1)
					}
				})
			}
			wg.Wait()
			if got := claimed.Load(); got != 1 {
				t.Errorf("released=%v: %d concurrent claims won, want exactly 1", released, got)
			}
		}
	}},

	{"notes", func(t *testing.T, j journalStore, clk *clock) {
		ctx := context.Background()
		if v, err := j.Note(ctx, "context:T1:U1"); err != nil || v != "" {
			t.Fatalf("missing note = %q, %v; want empty", v, err)
		}
		if err := j.PutNote(ctx, "context:T1:U1", "C42", time.Hour); err != nil {
			t.Fatal(err)
		}
		if v, _ := j.Note(ctx, "context:T1:U1"); v != "C42" {
			t.Errorf("note = %q, want C42", v)
		}
		claim(t, j, "context:T1:U1", NewOwner("m1"), clk.Now().Add(time.Minute), Claimed) // not a dedupe key
		clk.Add(2 * time.Hour)
		if v, _ := j.Note(ctx, "context:T1:U1"); v != "" {
			t.Errorf("expired note = %q, want empty", v)
		}
	}},
}, usageCases...)

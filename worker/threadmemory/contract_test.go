package threadmemory

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/shared/awstest"
)

// clock is a test's clock: now plus what Advance added.
type clock struct{ skew atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *clock) advance(d time.Duration) { c.skew.Add(int64(d)) }

// stores runs f against each implementation: the same contract for both. newStore returns
// another client of the same memory, as separate workers (Lambdas) have.
func stores(t *testing.T, limits Limits, f func(t *testing.T, newStore func() *Store, c *clock)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		c := &clock{}
		b := &memoryBackend{records: map[string]record{}}
		f(t, func() *Store { return newStore(b, limits, c.now) }, c)
	})
	t.Run("dynamodb", func(t *testing.T) {
		t.Parallel()
		table := awstest.NewTable(t)
		endpoint := awstest.Endpoint(t, awstest.EnvDynamoDB)
		c := &clock{}
		f(t, func() *Store { return NewDynamo(awstest.DynamoDBAt(endpoint), table, limits, c.now) }, c)
	})
}

var ctx = context.Background()

func user(ts, text string) Turn { return Turn{TS: ts, User: "U1", Text: text} }
func bot(ts, text string) Turn  { return Turn{TS: ts, Text: text, Bot: true} }

func texts(th Thread) string {
	var out []string
	for _, t := range th.Turns {
		out = append(out, t.Text)
	}
	return strings.Join(out, "|")
}

func TestContract(t *testing.T) {
	t.Parallel()
	stores(t, Limits{}, func(t *testing.T, newStore func() *Store, c *clock) {
		s := newStore()
		k := Key{"T1", "C1", "1700000000.000100"}

		// A thread the memory never saw: not found, and Add creates it.
		if th, err := s.Read(ctx, k); err != nil || th.Found || len(th.Turns) != 0 {
			t.Fatalf("read of an unknown thread: %+v, %v; want not found", th, err)
		}
		th, err := s.Add(ctx, k, user("1700000000.000100", "what is a river?"))
		if err != nil || th.Found || texts(th) != "what is a river?" {
			t.Fatalf("first add: %+v, %v; want the turn, found false (no record before)", th, err)
		}
		// The answer, then the same question again (a retried delivery): added once; turns
		// come back in ts order whatever order they were added in.
		if _, err := s.Add(ctx, k, bot("1700000001.000200", "water, moving")); err != nil {
			t.Fatal(err)
		}
		th, err = s.Add(ctx, k, user("1700000000.000100", "a retry's copy"), user("1700000000.900000", "a late one"))
		if err != nil || !th.Found {
			t.Fatalf("add to a known thread: %+v, %v", th, err)
		}
		want := Thread{Found: true, Turns: []Turn{user("1700000000.000100", "what is a river?"), user("1700000000.900000", "a late one"), bot("1700000001.000200", "water, moving")}}
		got, err := newStore().Read(ctx, k) // another client sees the same
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("thread after the adds (-want +got):\n%s", d)
		}

		// Nothing crosses workspaces, conversations or threads.
		for _, other := range []Key{{"T2", "C1", k.Thread}, {"T1", "C2", k.Thread}, {"T1", "C1", "1700000000.000101"}} {
			if th, err := s.Read(ctx, other); err != nil || th.Found {
				t.Errorf("read of %+v after writes to %+v: %+v, %v; want not found", other, k, th, err)
			}
		}

		// Edit replaces a turn's text (a user's edit, a regenerated answer), keeping who
		// wrote it; an unknown turn is left alone.
		if ok, err := s.Edit(ctx, k, "1700000000.000100", "what is a lake?"); !ok || err != nil {
			t.Fatalf("edit of a user turn: %v, %v", ok, err)
		}
		if ok, err := s.Edit(ctx, k, "1700000001.000200", "still water"); !ok || err != nil {
			t.Fatalf("edit of the bot's turn: %v, %v", ok, err)
		}
		if th, _ := s.Read(ctx, k); !th.Turns[2].Bot || th.Turns[0].User != "U1" {
			t.Fatalf("an edit changed who wrote the turn: %+v", th.Turns)
		}
		if ok, err := s.Edit(ctx, k, "1700000009.000000", "x"); ok || err != nil {
			t.Fatalf("edit of an unknown turn: %v, %v; want false", ok, err)
		}
		// Remove drops a turn.
		if ok, err := s.Remove(ctx, k, "1700000000.900000"); !ok || err != nil {
			t.Fatalf("remove: %v, %v", ok, err)
		}
		if ok, err := s.Remove(ctx, k, "1700000000.900000"); ok || err != nil {
			t.Fatalf("remove again: %v, %v; want false", ok, err)
		}
		if th, _ := s.Read(ctx, k); texts(th) != "what is a lake?|still water" {
			t.Fatalf("after edit and remove: %q", texts(th))
		}

		// Edits, removals and AddIfKnown never create a record.
		unknown := Key{"T1", "C1", "1700000005.000000"}
		if ok, err := s.AddIfKnown(ctx, unknown, user("1700000005.000100", "x")); ok || err != nil {
			t.Fatalf("AddIfKnown of an unknown thread: %v, %v", ok, err)
		}
		if _, err := s.Edit(ctx, unknown, "1700000005.000100", "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Remove(ctx, unknown, "1700000005.000100"); err != nil {
			t.Fatal(err)
		}
		if th, _ := s.Read(ctx, unknown); th.Found {
			t.Fatal("a record was created by AddIfKnown, Edit or Remove")
		}
		if ok, err := s.AddIfKnown(ctx, k, user("1700000002.000000", "a reply")); !ok || err != nil {
			t.Fatalf("AddIfKnown of a known thread: %v, %v", ok, err)
		}

		// The record expires TTL after its last write; an Add then starts over.
		c.advance(DefaultTTL + time.Minute)
		if th, err := s.Read(ctx, k); err != nil || th.Found {
			t.Fatalf("read after the TTL: %+v, %v; want not found", th, err)
		}
		if ok, _ := s.AddIfKnown(ctx, k, user("1700000003.000000", "late")); ok {
			t.Fatal("AddIfKnown added to an expired thread")
		}
		th, err = s.Add(ctx, k, user("1700000004.000000", "fresh"))
		if err != nil || th.Found || texts(th) != "fresh" {
			t.Fatalf("add after expiry: %+v, %v; want a new record with only the new turn", th, err)
		}

		// A malformed key is refused.
		for _, bad := range []Key{{"", "C1", "1"}, {"T1", "", "1"}, {"T1", "C1", ""}, {"T1:x", "C1", "1"}} {
			if _, err := s.Add(ctx, bad, user("1", "x")); err == nil {
				t.Errorf("add with key %+v: no error", bad)
			}
		}
	})
}

// The caps drop the oldest turns first; a turn alone over the character cap is cut.
func TestContractCaps(t *testing.T) {
	t.Parallel()
	stores(t, Limits{MaxTurns: 3, MaxChars: 10}, func(t *testing.T, newStore func() *Store, _ *clock) {
		s := newStore()
		k := Key{"T1", "D1", "1700000000.000000"}
		for i, text := range []string{"aaa", "bbb", "ccc", "ddd"} {
			if _, err := s.Add(ctx, k, user(fmt.Sprintf("1700000000.%06d", i), text)); err != nil {
				t.Fatal(err)
			}
		}
		if th, _ := s.Read(ctx, k); texts(th) != "bbb|ccc|ddd" {
			t.Fatalf("after 4 turns with MaxTurns 3: %q, want the newest 3", texts(th))
		}
		if _, err := s.Add(ctx, k, bot("1700000001.000000", "éééééé")); err != nil {
			t.Fatal(err)
		}
		if th, _ := s.Read(ctx, k); texts(th) != "ddd|éééééé" {
			t.Fatalf("with 10 characters at most: %q, want the newest turns that fit (characters, not bytes)", texts(th))
		}
		if _, err := s.Add(ctx, k, user("1700000002.000000", "0123456789abc")); err != nil {
			t.Fatal(err)
		}
		if th, _ := s.Read(ctx, k); texts(th) != "0123456789" {
			t.Fatalf("a turn over the cap alone: %q, want it cut to 10 characters", texts(th))
		}
	})
}

// Events of one thread at once (workers on other events of the thread) all land: the
// writes are conditional on the version read, and a loser reads again.
func TestContractConcurrentAdds(t *testing.T) {
	t.Parallel()
	stores(t, Limits{}, func(t *testing.T, newStore func() *Store, _ *clock) {
		k := Key{"T1", "C1", "1700000000.000000"}
		const n = 10
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				s := newStore()
				_, err := s.Add(ctx, k, user(fmt.Sprintf("1700000000.%06d", i+1), fmt.Sprintf("turn %d", i+1)), user("1700000000.000000", "the root"))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		th, err := newStore().Read(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if len(th.Turns) != n+1 || th.Turns[0].Text != "the root" {
			t.Fatalf("%d turns after %d concurrent adds (and the root %d times): %q; want %d, root first", len(th.Turns), n, n, texts(th), n+1)
		}
	})
}

func TestCompareTS(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1700000000.000100", "1700000000.000100", 0},
		{"1700000000.0001", "1700000000.000100", 0},
		{"1700000000.000100", "1700000000.1", -1},
		{"999999999.999999", "1700000000.000000", -1},
		{"1700000001.000000", "1700000000.999999", 1},
	} {
		if got := CompareTS(c.a, c.b); got != c.want {
			t.Errorf("CompareTS(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

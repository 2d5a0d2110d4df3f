package relay

import (
	"context"
	"errors"
	"testing"
)

// BeforeRun runs only when the effect is about to run: not when its result is recorded, and
// before the intent (so its failure leaves nothing unknown).
func TestOnceBeforeRun(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	var before, runs int
	run := func(context.Context, string) (int, error) { runs++; return 7, nil }
	hook := BeforeRun(func(context.Context) error { before++; return nil })
	if v, err := Once(ctx, f.session(), "fx", run, hook); err != nil || v != 7 || before != 1 || runs != 1 {
		t.Fatalf("first: %v %v before=%d runs=%d, want 7, nil, 1, 1", v, err, before, runs)
	}
	f.retry()
	if v, err := Once(ctx, f.session(), "fx", run, hook); err != nil || v != 7 || before != 1 || runs != 1 {
		t.Fatalf("recorded: %v %v before=%d runs=%d, want 7 from the record and no hook", v, err, before, runs)
	}
	g := setup(t)
	boom := errors.New("boom")
	if _, err := Once(ctx, g.session(), "fx", run, BeforeRun(func(context.Context) error { return boom })); !errors.Is(err, boom) {
		t.Fatalf("failing hook: %v, want boom", err)
	}
	g.crash()
	if v, err := Once(ctx, g.session(), "fx", run, hook); err != nil || v != 7 {
		t.Fatalf("after a failed hook and a crash: %v %v, want the effect run (no intent was written)", v, err)
	}
}

// An intent the journal refused to write: the effect did not run, and the next attempt runs
// it rather than call its outcome unknown.
func TestOnceIntentWriteFailedIsNotUnknown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.mu.Lock()
	f.failWrite = func(n int) bool { return n == 1 }
	f.mu.Unlock()
	runs := 0
	run := func(context.Context, string) (int, error) { runs++; return 7, nil }
	if _, err := Once(ctx, f.session(), "fx", run); err == nil || runs != 0 {
		t.Fatalf("first attempt: err %v, runs %d; want the write's error and no run", err, runs)
	}
	f.retry()
	if v, err := Once(ctx, f.session(), "fx", run); err != nil || v != 7 || runs != 1 {
		t.Fatalf("next attempt: %v %v runs %d; want the effect run once", v, err, runs)
	}
}

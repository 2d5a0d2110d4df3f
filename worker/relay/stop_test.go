package relay

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
)

// click leaves the note a Stop click on w's button leaves (what stopClicked writes).
func click(t *testing.T, f *fixture, w *Stream) {
	t.Helper()
	if err := f.session().Remember(context.Background(), stopNote(w.stopID()), "U0USER "+"0"); err != nil {
		t.Fatal(err)
	}
}

// The Stop button shows above the streamed text; after a click the next flush stops the
// answer: Append says ErrStopped, what was not yet sent is dropped, and Finish ends the
// message with what was shown and a note, the final blocks under it.
func TestStopEndsTheAnswerWithWhatWasShown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.rt.Notes = f.mem
	ctx := context.Background()
	w, err := f.session().Stream(ctx, StreamOptions{FlushChars: 10, FlushEvery: time.Hour, Stop: true})
	if err != nil {
		t.Fatal(err)
	}
	streamAll(t, w, []string{"The first part ", "of the answer. "})
	r := botMessages(f)
	if len(r) != 1 || !r[0].Streaming || len(r[0].Actions) != 1 || r[0].Actions[0] != StopActionID {
		t.Fatalf("while streaming: %+v, want one message with the Stop button", r)
	}
	click(t, f, w)
	err = w.Append(ctx, "More text that nobody will see. ")
	for err == nil {
		err = w.Append(ctx, "more ")
	}
	if !errors.Is(err, ErrStopped) || !w.Stopped() {
		t.Fatalf("Append after the click: %v, Stopped %v; want ErrStopped", err, w.Stopped())
	}
	if _, err := w.Finish(ctx, buttons()); err != nil {
		t.Fatal(err)
	}
	r = botMessages(f)
	if len(r) != 1 || r[0].Streaming || r[0].Text != "The first part of the answer. \n\n_Stopped._" {
		t.Fatalf("after the stop: %+v, want what was shown and the note", r)
	}
	// A redelivery finds the answer done: nothing more.
	f.retry()
	again, _ := f.session().Stream(ctx, StreamOptions{Stop: true})
	if !again.Done() {
		t.Error("a stopped answer is not Done on a redelivery")
	}
}

// Watch cancels the work's context soon after a click, with ErrStopped as the cause, even
// while no text flows (a model thinking, a tool running); a stop noted by an attempt that
// died is kept by the next.
func TestWatchCancelsTheWorkOnAStop(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.rt.Notes = f.mem
	ctx := context.Background()
	opts := StreamOptions{FlushChars: 10, FlushEvery: time.Hour, Stop: true}
	w, _ := f.session().Stream(ctx, opts)
	streamAll(t, w, []string{"Thinking hard about it. "})
	wctx, done := w.Watch(ctx)
	defer done()
	clicked := time.Now()
	click(t, f, w)
	select {
	case <-wctx.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the work's context was not cancelled within 3 s of the click")
	}
	if took := time.Since(clicked); took > 2*stopPoll {
		t.Errorf("the stop took %v to notice, want within %v", took, 2*stopPoll)
	}
	if !errors.Is(context.Cause(wctx), ErrStopped) {
		t.Errorf("cause %v, want ErrStopped", context.Cause(wctx))
	}
	// The attempt dies before finishing: the next one opens stopped and only finishes.
	f.crash()
	w2, _ := f.session().Stream(ctx, opts)
	if !w2.Stopped() {
		t.Fatal("a new attempt does not see the stop")
	}
	if wctx2, done2 := w2.Watch(ctx); wctx2.Err() == nil {
		t.Error("Watch on a stopped answer gives a live context")
	} else {
		done2()
	}
	if _, err := w2.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if r := botMessages(f); len(r) != 1 || !strings.HasSuffix(r[0].Text, "_Stopped._") || strings.Count(r[0].Text, "Stopped") != 1 {
		t.Fatalf("answer %+v, want it once with one note", r)
	}
}

// Streaming off: the Stop button sits under the message set whole until the final blocks
// replace it.
func TestStopButtonUnderAMessageSetWhole(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.rt.Notes = f.mem
	ctx := context.Background()
	w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 10, FlushEvery: time.Hour, Stop: true, Disabled: true})
	streamAll(t, w, []string{"Part one of it. "})
	r := botMessages(f)
	if len(r) != 1 || len(r[0].Actions) != 1 || r[0].Actions[0] != StopActionID {
		t.Fatalf("while writing: %+v, want the Stop button under the text", r)
	}
	if _, err := w.Finish(ctx, buttons()); err != nil {
		t.Fatal(err)
	}
	if r := botMessages(f); len(r) != 1 || len(r[0].Actions) != 1 || r[0].Actions[0] == StopActionID {
		t.Fatalf("finished: %+v, want the final button only", r)
	}
	_ = fakeslack.Task{}
}

// stopClick is a Stop click by user on w's button.
func stopClick(w *Stream, user, blockID string) *Request[slack.InteractionCallback] {
	cb := &slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user}}
	cb.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: StopActionID, BlockID: blockID, Value: "U0USER"}}
	return &Request[slack.InteractionCallback]{Payload: cb, Session: w.s}
}

// The click route: the person the answer is for stops it (twice is once); anyone else is told
// they cannot, and a button that names no answer is refused for good.
func TestStopClicks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.rt.Notes = f.mem
	ctx := context.Background()
	w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 10, FlushEvery: time.Hour, Stop: true})
	streamAll(t, w, []string{"Some text to show. "})
	block := stopBlockPrefix + w.stopID()
	var r *Request[slack.InteractionCallback]
	r = stopClick(w, "U0OTHER", block)
	r.Session = f.session()
	if err := stopClicked(ctx, r); err != nil {
		t.Fatal(err)
	}
	if eph := f.slack.Ephemerals(testChannel, "U0OTHER"); len(eph) != 1 || !strings.Contains(eph[0].Text, "Only <@U0USER> can stop") {
		t.Errorf("ephemerals to the other user: %+v", eph)
	}
	if err := w.Append(ctx, "still going "); err != nil {
		t.Fatalf("a click by someone else stopped the answer: %v", err)
	}
	for range 2 {
		r = stopClick(w, "U0USER", block)
		r.Session = f.session()
		if err := stopClicked(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); !errors.Is(err, ErrStopped) {
		t.Fatalf("after the asker's clicks: %v, want ErrStopped", err)
	}
	if _, err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if r := botMessages(f); len(r) != 1 || strings.Count(r[0].Text, "Stopped") != 1 {
		t.Fatalf("answer %+v, want one stop note", r)
	}
	r = stopClick(w, "U0USER", "slackrelay_stop:not-an-answer")
	r.Session = f.session()
	if err := stopClicked(ctx, r); err == nil || !strings.Contains(err.Error(), "does not name an answer") {
		t.Errorf("a forged block_id: %v, want a permanent refusal", err)
	}
}

package relay

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
)

// botMessages is the thread's answer messages as Slack renders them.
func botMessages(f *fixture) []fakeslack.Rendered {
	var out []fakeslack.Rendered
	for _, r := range f.slack.RenderedThread(testChannel, testTS) {
		if r.Bot && r.TS != testTS {
			out = append(out, r)
		}
	}
	return out
}

func card(id, title string, st slack.TaskCardStatus, output string) Task {
	return Task{ID: id, Title: title, Status: st, Output: output}
}

func mustTask(t *testing.T, w *Stream, c Task) {
	t.Helper()
	if err := w.Task(c); err != nil {
		t.Fatal(err)
	}
}

// A step before any text starts the stream with its card; the card is updated in place as
// the step goes on, the text streams beside it, and the finished answer shows one card per
// step in its last state.
func TestStreamTaskCardsUpdateInPlace(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	w, err := f.session().Stream(ctx, StreamOptions{FlushChars: 1000, FlushEvery: time.Hour, Tasks: TasksPlan})
	if err != nil {
		t.Fatal(err)
	}
	mustTask(t, w, card("t1", "Calculate 6*7", slack.TaskCardStatusPending, ""))
	mustTask(t, w, card("t2", "Look up the time", slack.TaskCardStatusPending, ""))
	if err := w.Plan("Two steps"); err != nil {
		t.Fatal(err)
	}
	mustTask(t, w, card("t1", "Calculate 6*7", slack.TaskCardStatusInProgress, ""))
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r := botMessages(f); len(r) != 1 || !r[0].Streaming || len(r[0].Tasks) != 2 || r[0].Tasks[0].Status != "in_progress" {
		t.Fatalf("after the first flush: %+v, want one streaming message with two cards, the first in progress", r)
	}
	mustTask(t, w, card("t1", "Calculate 6*7", slack.TaskCardStatusComplete, "42"))
	mustTask(t, w, card("t2", "Look up the time", slack.TaskCardStatusError, "no clock"))
	// The same state again sends nothing more.
	mustTask(t, w, card("t2", "Look up the time", slack.TaskCardStatusError, "no clock"))
	streamAll(t, w, []string{"It is 42."})
	if _, err := w.Finish(ctx, buttons()); err != nil {
		t.Fatal(err)
	}
	r := botMessages(f)
	want := []fakeslack.Task{{ID: "t1", Title: "Calculate 6*7", Status: "complete", Output: "42"},
		{ID: "t2", Title: "Look up the time", Status: "error", Output: "no clock"}}
	if len(r) != 1 || !cmp.Equal(r[0].Tasks, want) || r[0].Plan != "Two steps" || r[0].TaskDisplay != "plan" || r[0].Text != "It is 42." {
		t.Fatalf("answer = %+v, want one message: the text, the plan title, cards %+v", r, want)
	}
	st := f.slack.Streams()[0]
	for _, c := range st.Calls {
		if c.MarkdownText != "" {
			t.Errorf("%s sent markdown_text: a stream with cards must send its text as chunks", c.Method)
		}
	}
	if n := len(st.Calls); n != 2 {
		t.Errorf("%d stream calls, want 2 (start with the cards, stop with the text and the last states)", n)
	}
	if wr, c := f.writes(), textCalls(f); wr != c {
		t.Errorf("%d journal writes for %d calls, want one each", wr, c)
	}
}

// A call carrying only cards whose answer is lost: the next attempt sends the recorded state
// again, which Slack draws as the same cards; the message keeps streaming (nothing to set
// whole) and no card appears twice.
func TestStreamLostCardUpdateIsSentAgain(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	opts := StreamOptions{FlushChars: 1000, FlushEvery: time.Hour, Tasks: TasksTimeline}
	w, _ := f.session().Stream(ctx, opts)
	streamAll(t, w, []string{"Checking. "})
	mustTask(t, w, card("t1", "Search", slack.TaskCardStatusInProgress, ""))
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.faults.at("chat.appendStream", 2, "lose") // the first carried the card in progress
	mustTask(t, w, card("t1", "Search", slack.TaskCardStatusComplete, "3 pages"))
	if err := w.Flush(ctx); err == nil {
		t.Fatal("no error although the append's answer was lost")
	}
	f.crash()
	w2, _ := f.session().Stream(ctx, opts)
	// The handler replays its steps: the same states again.
	mustTask(t, w2, card("t1", "Search", slack.TaskCardStatusInProgress, ""))
	mustTask(t, w2, card("t1", "Search", slack.TaskCardStatusComplete, "3 pages"))
	streamAll(t, w2, []string{strings.TrimPrefix("Checking. Found it.", w2.Text())})
	if _, err := w2.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	r := botMessages(f)
	if len(r) != 1 || r[0].Text != "Checking. Found it." || !cmp.Equal(r[0].Tasks, []fakeslack.Task{{ID: "t1", Title: "Search", Status: "complete", Output: "3 pages"}}) {
		t.Fatalf("answer = %+v, want the text once and one complete card", r)
	}
	if n := f.slack.Calls("chat.update"); n != 0 {
		t.Errorf("%d chat.update calls: a lost card update needs none", n)
	}
}

// Text and cards in one lost call: the message is set whole (the text may or may not have
// landed), and the cards show as a summary under its text.
func TestStreamSetWholeShowsCardsSummary(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	opts := StreamOptions{FlushChars: 1000, FlushEvery: time.Hour, Tasks: TasksTimeline}
	w, _ := f.session().Stream(ctx, opts)
	streamAll(t, w, []string{"Checking. "})
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.faults.at("chat.appendStream", 1, "lose")
	mustTask(t, w, card("t1", "Search", slack.TaskCardStatusComplete, "3 pages"))
	streamAll(t, w, []string{"Found it."})
	if err := w.Flush(ctx); err == nil {
		t.Fatal("no error although the append's answer was lost")
	}
	f.crash()
	w2, _ := f.session().Stream(ctx, opts)
	mustTask(t, w2, card("t1", "Search", slack.TaskCardStatusComplete, "3 pages"))
	if _, err := w2.Finish(ctx, buttons()); err != nil {
		t.Fatal(err)
	}
	r := botMessages(f)
	if len(r) != 1 || r[0].Text != "Checking. Found it.\n✓ Search: 3 pages" || len(r[0].Actions) != 1 {
		t.Fatalf("answer = %+v, want the text, the cards summary and the button", r)
	}
}

// Streaming off: the cards show as a summary under the text of the message set whole; a
// stream opened without Tasks shows none and sends markdown_text.
func TestStreamCardsWithoutStreamingAndWithoutTasks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	w, _ := f.session().Stream(ctx, StreamOptions{Disabled: true, Tasks: TasksTimeline})
	mustTask(t, w, card("t1", "Calculate", slack.TaskCardStatusComplete, "42"))
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(botMessages(f)); n != 0 {
		t.Fatalf("%d messages before any text: a message set whole waits for its text", n)
	}
	streamAll(t, w, []string{"It is 42."})
	if _, err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if r := botMessages(f); len(r) != 1 || r[0].Text != "It is 42.\n✓ Calculate: 42" {
		t.Fatalf("answer = %+v, want the text and the summary", r)
	}

	g := setup(t)
	w, _ = g.session().Stream(ctx, StreamOptions{})
	mustTask(t, w, card("t1", "Calculate", slack.TaskCardStatusComplete, "42"))
	streamAll(t, w, []string{"It is 42."})
	if _, err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if r := botMessages(g); len(r) != 1 || len(r[0].Tasks) != 0 || r[0].Text != "It is 42." {
		t.Fatalf("answer = %+v, want the text and no cards", r)
	}
	if err := w.Task(Task{ID: "x", Title: "y", Status: "done"}); err != nil {
		t.Errorf("Task on a finished stream: %v, want nil", err)
	}
	w3, _ := setup(t).session().Stream(ctx, StreamOptions{Tasks: TasksTimeline})
	if err := w3.Task(Task{ID: "x", Title: "y", Status: "done"}); err == nil || !strings.Contains(err.Error(), `status "done"`) {
		t.Errorf("Task with status done: %v, want an error naming the status", err)
	}
	if err := w3.Task(Task{Title: "y"}); err == nil {
		t.Error("Task without an id: no error")
	}
}

// Slack ended the stream by itself (its window, or while the worker was down) while a card
// was in progress: the message is set whole from then on, its text and every card's latest
// state, and no card is drawn in a second message.
func TestCardsOnAStreamSlackEnded(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	w, _ := f.session().Stream(ctx, StreamOptions{FlushChars: 1000, FlushEvery: time.Hour, Tasks: TasksTimeline})
	streamAll(t, w, []string{"Checking. "})
	mustTask(t, w, card("t1", "Search", slack.TaskCardStatusInProgress, ""))
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ts := botMessages(f)[0].TS
	client, _ := f.rt.Slack(ctx, Tenant{})
	if _, _, err := client.StopStreamContext(ctx, testChannel, ts); err != nil { // Slack ends it
		t.Fatal(err)
	}
	mustTask(t, w, card("t1", "Search", slack.TaskCardStatusComplete, "3 pages"))
	streamAll(t, w, []string{"Found it."})
	if _, err := w.Finish(ctx, buttons()); err != nil {
		t.Fatal(err)
	}
	r := botMessages(f)
	if len(r) != 1 || r[0].Text != "Checking. Found it.\n✓ Search: 3 pages" || len(r[0].Tasks) != 0 {
		t.Fatalf("answer = %+v, want one message set whole with the card's last state", r)
	}
}

package relay

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"
	txt "github.com/slackrelay/slackrelay/worker/internal/textcut"
)

// TaskDisplay is how a streamed answer shows its task cards (StreamOptions.Tasks).
type TaskDisplay string

// The ways task cards show: one after another (Slack's default), or grouped as a plan under
// a title (Stream.Plan).
const (
	TasksTimeline TaskDisplay = "timeline"
	TasksPlan     TaskDisplay = "plan"
)

// Task is a task card of a streamed answer: a step the answer takes (a tool call, a search),
// shown beside its text as Slack's agent UI does. A card is named by its ID: a Task with an
// ID already shown updates that card.
type Task struct {
	ID    string
	Title string
	// Status is slack.TaskCardStatusPending, InProgress, Complete or Error.
	Status slack.TaskCardStatus
	// Details says what the step does; Output what it found (a short summary).
	Details, Output string
}

// Bounds on cards: Slack documents none; these keep an answer's record small and its
// summary (a message set whole) within a message's blocks.
const (
	maxTasks          = 30
	maxTaskTitleRunes = 120
	maxTaskTextRunes  = 300
	// tasksReserve is what a message's cards summary may take of its blocks, in JSON
	// characters (a message set whole shows its cards as one context block).
	tasksReserve = 1000
)

// cardState is what a card shows.
type cardState struct {
	Title   string `json:"title"`
	Status  string `json:"status,omitempty"`
	Details string `json:"details,omitempty"`
	Output  string `json:"output,omitempty"`
}

// streamTask is a card in the stream's journal entry: its last state, and the state Slack is
// known to show. Until the two agree every send carries the last state again (a task_update
// with the same id updates the card: sending twice draws once). A handler that replays its
// steps on a resumed attempt passes through earlier states and ends at the one shown: nothing
// is sent again.
type streamTask struct {
	ID string `json:"id"`
	cardState
	Shown *cardState `json:"shown,omitempty"`
}

func (t *streamTask) due() bool { return t.Shown == nil || *t.Shown != t.cardState }

// Task records a card's new state; it is sent with the next flush (Flush, Append's, Finish),
// written to the journal first like the text. A resumed answer sends the recorded state of
// every card Slack was not known to show, never a second card. On a stream opened without
// StreamOptions.Tasks it does nothing.
func (w *Stream) Task(t Task) error {
	if w.opts.Tasks == "" || w.finished || w.st.Done {
		return nil
	}
	switch {
	case t.ID == "" || strings.TrimSpace(t.Title) == "":
		return Permanent(fmt.Errorf("stream %s: a task card needs an id and a title", w.name))
	case t.Status != "" && t.Status != slack.TaskCardStatusPending && t.Status != slack.TaskCardStatusInProgress &&
		t.Status != slack.TaskCardStatusComplete && t.Status != slack.TaskCardStatusError:
		return Permanent(fmt.Errorf("stream %s: task card %s: status %q is none of pending, in_progress, complete, error", w.name, t.ID, t.Status))
	}
	next := cardState{Title: clip(t.Title, maxTaskTitleRunes), Status: string(t.Status),
		Details: clip(t.Details, maxTaskTextRunes), Output: clip(t.Output, maxTaskTextRunes)}
	for i := range w.st.Tasks {
		if w.st.Tasks[i].ID == t.ID {
			w.st.Tasks[i].cardState = next
			return nil
		}
	}
	if len(w.st.Tasks) >= maxTasks {
		w.s.Log.Warn("task card not shown: the answer has the most cards it may show", "step", w.name, "task", t.ID, "max", maxTasks)
		return nil
	}
	w.st.Tasks = append(w.st.Tasks, streamTask{ID: t.ID, cardState: next})
	return nil
}

// Plan sets the title over the answer's cards, sent with the next flush; it does nothing
// unless the stream shows its cards as a plan (StreamOptions.Tasks TasksPlan).
func (w *Stream) Plan(title string) error {
	if w.opts.Tasks != TasksPlan || w.finished || w.st.Done {
		return nil
	}
	title = clip(strings.TrimSpace(title), maxTaskTitleRunes)
	if title == "" {
		return Permanent(fmt.Errorf("stream %s: a plan needs a title", w.name))
	}
	w.st.Plan = title
	return nil
}

// clip keeps s within n runes, marking a cut with an ellipsis.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// cardsDue reports cards or a plan title Slack is not known to show.
func (w *Stream) cardsDue() bool {
	if w.st.Plan != w.st.PlanShown {
		return true
	}
	for i := range w.st.Tasks {
		if w.st.Tasks[i].due() {
			return true
		}
	}
	return false
}

// chunks is what a streaming call in chunks mode carries: text (may be empty), then the plan
// title and every card not known to be shown.
func (w *Stream) chunks(text string) []slack.StreamChunk {
	var out []slack.StreamChunk
	if text != "" {
		out = append(out, slack.NewMarkdownTextChunk(text))
	}
	if w.st.Plan != w.st.PlanShown {
		out = append(out, slack.NewPlanUpdateChunk(w.st.Plan))
	}
	for _, t := range w.st.Tasks {
		if !t.due() {
			continue
		}
		c := slack.NewTaskUpdateChunk(t.ID, t.Title)
		c.Status, c.Details, c.Output = slack.TaskCardStatus(t.Status), t.Details, t.Output
		out = append(out, c)
	}
	return out
}

// cardsShown marks every card and the plan title as shown (a call carrying them all was
// acknowledged).
func (w *Stream) cardsShown() {
	w.st.PlanShown = w.st.Plan
	for i := range w.st.Tasks {
		shown := w.st.Tasks[i].cardState
		w.st.Tasks[i].Shown = &shown
	}
}

// taskMarks are how a cards summary shows each status.
var taskMarks = map[string]string{"": "•", "pending": "○", "in_progress": "◐", "complete": "✓", "error": "✗"}

// cardsSummary is the answer's cards as one context block, for a message set whole
// (chat.update replaces a streamed message's cards with the rest of it); nil without cards.
func (w *Stream) cardsSummary() []slack.Block {
	if len(w.st.Tasks) == 0 && w.st.Plan == "" {
		return nil
	}
	var b strings.Builder
	if w.st.Plan != "" {
		b.WriteString("*" + w.st.Plan + "*\n")
	}
	for _, t := range w.st.Tasks {
		line := taskMarks[t.Status] + " " + t.Title
		if t.Output != "" {
			line += ": " + clip(t.Output, 80)
		}
		b.WriteString(line + "\n")
	}
	text := txt.Truncate(strings.TrimSpace(b.String()), tasksReserve/2)
	return []slack.Block{slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, text, false, false))}
}

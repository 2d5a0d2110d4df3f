package fakeslack

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
)

func taskChunk(id, title string, status slack.TaskCardStatus, output string) slack.TaskUpdateChunk {
	c := slack.NewTaskUpdateChunk(id, title)
	c.Status, c.Output = status, output
	return c
}

// Task cards: task_update chunks draw one card per id, later chunks update it in place, a
// plan_update titles the plan, and the message renders them beside its text.
func TestStreamTaskCards(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	api := newAPI(s)
	ctx := context.Background()
	parent, ts := startDMStream(t, s, api, slack.MsgOptionTaskDisplayMode(slack.TaskDisplayModePlan),
		slack.MsgOptionChunks(slack.NewMarkdownTextChunk("Let me check. "),
			taskChunk("t1", "Calculate", slack.TaskCardStatusPending, ""),
			taskChunk("t2", "Look up", slack.TaskCardStatusPending, "")))
	if _, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionChunks(
		taskChunk("t1", "Calculate", slack.TaskCardStatusComplete, "84"),
		slack.NewPlanUpdateChunk("Two steps"),
		slack.NewMarkdownTextChunk("It is 84."))); err != nil {
		t.Fatalf("chat.appendStream with task_update chunks: %v", err)
	}
	// Sending a card's state again changes nothing: the card is drawn once.
	if _, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionChunks(
		taskChunk("t1", "Calculate", slack.TaskCardStatusComplete, "84"))); err != nil {
		t.Fatal(err)
	}
	r, _ := s.Rendered("D1", ts)
	want := []Task{{ID: "t1", Title: "Calculate", Status: "complete", Output: "84"}, {ID: "t2", Title: "Look up", Status: "pending"}}
	if !cmp.Equal(r.Tasks, want) || r.Plan != "Two steps" || r.TaskDisplay != "plan" || r.Text != "Let me check. It is 84." {
		t.Fatalf("rendered = tasks %+v plan %q display %q text %q, want %+v, \"Two steps\", plan, the text", r.Tasks, r.Plan, r.TaskDisplay, r.Text, want)
	}
	if _, _, err := api.StopStreamContext(ctx, "D1", ts); err != nil {
		t.Fatal(err)
	}
	// A chat.update replaces the whole message, cards too.
	if _, _, _, err := api.UpdateMessageContext(ctx, "D1", ts, slack.MsgOptionText("set whole", false)); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Rendered("D1", ts); len(r.Tasks) != 0 || r.Text != "set whole" {
		t.Fatalf("after chat.update: %+v, want no cards", r)
	}
	_ = parent
}

func TestStreamTaskCardErrors(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	api := newAPI(s)
	ctx := context.Background()
	_, ts := startDMStream(t, s, api, slack.MsgOptionMarkdownText("text first"))
	for name, tc := range map[string]struct {
		opt  slack.MsgOption
		want string
	}{
		"cards in a markdown_text stream": {slack.MsgOptionChunks(taskChunk("t1", "A", slack.TaskCardStatusPending, "")), "streaming_mode_mismatch"},
		"unknown status":                  {slack.MsgOptionChunks(taskChunk("t1", "A", "done", "")), "invalid_chunks"},
		"no title":                        {slack.MsgOptionChunks(slack.TaskUpdateChunk{Type: slack.StreamChunkTaskUpdate, ID: "t1"}), "invalid_chunks"},
		"no id":                           {slack.MsgOptionChunks(slack.NewTaskUpdateChunk("", "A")), "invalid_chunks"},
		"empty plan title":                {slack.MsgOptionChunks(slack.NewPlanUpdateChunk("")), "invalid_chunks"},
	} {
		if _, _, err := api.AppendStreamContext(ctx, "D1", ts, tc.opt); slackErrCode(err) != tc.want {
			t.Errorf("%s: got %v, want %s", name, err, tc.want)
		}
	}
	if _, _, err := api.StartStreamContext(ctx, "D1", slack.MsgOptionTS(ts), slack.MsgOptionTaskDisplayMode("grid"),
		slack.MsgOptionMarkdownText("x")); slackErrCode(err) != "invalid_arguments" {
		t.Errorf("task_display_mode grid: got %v, want invalid_arguments", err)
	}
}

package assistant

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// numbered answers "answer N to: prompt", N counting calls, so a test sees which run wrote what.
type numbered struct{ calls atomic.Int32 }

func (n *numbered) Respond(_ context.Context, prompt string) (string, error) {
	return fmt.Sprintf("answer %d to: %s", n.calls.Add(1), prompt), nil
}

func setup(t *testing.T) (*relaytest.Harness, *numbered) {
	t.Helper()
	llm := &numbered{}
	return relaytest.New(t, func(b *relay.Router) { Register(b, Config{LLM: llm, Model: "test"}) }), llm
}

// button returns the action block element a post carries, if any.
func button(t *testing.T, p fakeslack.Post) (actionID, value string) {
	t.Helper()
	var blocks []struct {
		Type     string `json:"type"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if len(p.Blocks) == 0 {
		return "", ""
	}
	if err := json.Unmarshal(p.Blocks, &blocks); err != nil {
		t.Fatalf("post blocks: %v", err)
	}
	for _, b := range blocks {
		if b.Type == "actions" && len(b.Elements) > 0 {
			return b.Elements[0].ActionID, b.Elements[0].Value
		}
	}
	return "", ""
}

func TestMentionIsAnsweredInItsThreadWithARegenerateButton(t *testing.T) {
	t.Parallel()
	h, _ := setup(t)
	got := h.Deliver(t, "testdata/app_mention.json")
	if got.Err != nil || len(got.Posts) != 1 {
		t.Fatalf("err=%v posts=%d, want one reply", got.Err, len(got.Posts))
	}
	p := got.Posts[0]
	if p.Channel != "C0CHAN" || p.ThreadTS != "1515449522.000016" || p.Text != "answer 1 to: is it everything a river should be?" {
		t.Errorf("reply %q in %s thread %s, want the answer without the mention in C0CHAN thread 1515449522.000016", p.Text, p.Channel, p.ThreadTS)
	}
	if id, _ := button(t, p); id != ActionRegenerate {
		t.Errorf("the reply's button is %q, want %q", id, ActionRegenerate)
	}
	if twin := h.Deliver(t, "testdata/message_twin.json"); twin.Skip == "" || len(twin.Posts) != 0 {
		t.Errorf("the mention's message twin: skip=%q posts=%d, want declined without posting", twin.Skip, len(twin.Posts))
	}
}

// A click on Regenerate answers again and replaces the clicked message, once per click:
// Slack's retries of the click (the same payload) change nothing more.
func TestRegenerateReplacesTheAnswerOncePerClick(t *testing.T) {
	t.Parallel()
	h, llm := setup(t)
	reply := h.Deliver(t, "testdata/app_mention.json").Posts[0]
	body := regenerateClick(t, reply)

	for i := range 3 {
		got := h.DeliverBody(t, "regenerate_click.json", body)
		if got.Err != nil {
			t.Fatalf("click delivery %d: %v", i+1, got.Err)
		}
		if i > 0 && !got.Duplicate {
			t.Errorf("click delivery %d was not recognised as the same click", i+1)
		}
	}
	if n := h.Slack.Calls("chat.update"); n != 1 {
		t.Errorf("chat.update called %d times for one click, want 1", n)
	}
	if n := llm.calls.Load(); n != 2 {
		t.Errorf("the responder ran %d times, want 2 (the answer, then the click)", n)
	}
	msgs, _, _, err := slack.New(relaytest.Token, slack.OptionAPIURL(h.Slack.APIURL())).GetConversationReplies(
		&slack.GetConversationRepliesParameters{ChannelID: "C0CHAN", Timestamp: "1515449522.000016"})
	if err != nil {
		t.Fatal(err)
	}
	var text string
	for _, m := range msgs {
		if m.Timestamp == reply.TS {
			text = m.Text
		}
	}
	if text != "answer 2 to: is it everything a river should be?" {
		t.Errorf("the clicked answer now reads %q, want the second answer", text)
	}
}

func TestAskAnswersInTheChannel(t *testing.T) {
	t.Parallel()
	h, _ := setup(t)
	got := h.Deliver(t, "testdata/ask.form")
	if got.Err != nil || len(got.Posts) != 1 {
		t.Fatalf("err=%v posts=%d, want one response", got.Err, len(got.Posts))
	}
	if p := got.Posts[0]; p.Method != fakeslack.ResponseURLMethod || p.ResponseType != "in_channel" || p.Text != "answer 1 to: what is slackrelay?" {
		t.Errorf("response = %+v, want the answer through response_url, in_channel", p)
	}
}

// /ask without a question opens a modal that stays open on submission; the submission is
// answered in the modal itself, by updating the view the receiver replaced with "working".
func TestAskWithoutAQuestionOpensAModalAnsweredInPlace(t *testing.T) {
	t.Parallel()
	h, _ := setup(t)
	if got := h.Deliver(t, "testdata/ask_empty.form"); got.Err != nil || len(got.Posts) != 0 {
		t.Fatalf("err=%v posts=%d, want a modal and no post", got.Err, len(got.Posts))
	}
	views := h.Slack.Views()
	if len(views) != 1 {
		t.Fatalf("%d views opened, want 1", len(views))
	}
	v := views[0]
	if v.CallbackID != CallbackAsk || !strings.HasPrefix(v.PrivateMetadata, envelope.WorkingViewPrefix) {
		t.Fatalf("view callback %q metadata %q, want %q marked to stay open", v.CallbackID, v.PrivateMetadata, CallbackAsk)
	}
	raw, err := os.ReadFile("testdata/ask_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	submitted := strings.NewReplacer(`"id": "V0MODAL"`, `"id": "`+v.ID+`"`, `"private_metadata": "C0CHAN"`, `"private_metadata": "`+v.PrivateMetadata+`"`).Replace(string(raw))
	if got := h.DeliverBody(t, "ask_submitted.json", submitted); got.Err != nil {
		t.Fatal(got.Err)
	}
	after, _ := h.Slack.View(v.ID)
	if len(after.History) != 2 || !strings.Contains(string(after.Payload), "answer 1 to: what is slackrelay?") {
		t.Errorf("view after the submission: %d states, payload %s; want it updated with the answer", len(after.History), after.Payload)
	}
}

// A modal that cannot open in time (Slack accepts a trigger for 3 s) is not a dead letter: the
// user is told through the response_url.
func TestAskModalTooLateFallsBackToAResponse(t *testing.T) {
	t.Parallel()
	h := relaytest.New(t, func(b *relay.Router) { Register(b, Config{LLM: &numbered{}, Model: "test"}) }, relaytest.QueueDelay(4*time.Second))
	got := h.Deliver(t, "testdata/ask_empty.form")
	if got.Err != nil {
		t.Fatalf("err = %v, want the user told instead of a failure", got.Err)
	}
	if len(h.Slack.Views()) != 0 {
		t.Error("a view opened with a trigger 4 s old")
	}
	if len(got.Posts) != 1 || got.Posts[0].Method != fakeslack.ResponseURLMethod || !strings.Contains(got.Posts[0].Text, "could not open in time") {
		t.Errorf("posts = %+v, want one response_url message saying the form could not open", got.Posts)
	}
}

// A long answer to the modal's question is shown within Slack's limits for a view: sections of
// under 3,000 characters, at most 100 blocks, cut with a note (the local Slack server refuses
// a view that breaks them, as Slack does).
func TestAskModalAnswerFitsSlacksViewLimits(t *testing.T) {
	t.Parallel()
	long := strings.Repeat(strings.Repeat("word ", 500)+"\n\n", 150) // 375,000 characters
	v := answerModal("q", long)
	if n := len(v.Blocks.BlockSet); n > relay.MaxViewBlocks {
		t.Fatalf("%d blocks, more than a modal holds", n)
	}
	raw, _ := json.Marshal(v)
	if !strings.Contains(string(raw), "too long for this form") {
		t.Error("the cut answer does not say it was cut")
	}
	h := relaytest.New(t, func(b *relay.Router) { Register(b, Config{LLM: &scripted{answer: long}, Model: "test"}) })
	if got := h.Deliver(t, "testdata/ask_empty.form"); got.Err != nil {
		t.Fatal(got.Err)
	}
	views := h.Slack.Views()
	raw2, _ := os.ReadFile("testdata/ask_submitted.json")
	submitted := strings.NewReplacer(`"id": "V0MODAL"`, `"id": "`+views[0].ID+`"`, `"private_metadata": "C0CHAN"`, `"private_metadata": "`+views[0].PrivateMetadata+`"`).Replace(string(raw2))
	if got := h.DeliverBody(t, "ask_submitted.json", submitted); got.Err != nil {
		t.Fatalf("the answer did not fit the modal: %v", got.Err)
	}
}

// regenerateClick is the interactivity payload of a click on reply's Regenerate button, with
// the button's value as the bot set it.
func regenerateClick(t *testing.T, reply fakeslack.Post) string {
	t.Helper()
	_, value := button(t, reply)
	raw, err := os.ReadFile("testdata/regenerate_click.json")
	if err != nil {
		t.Fatal(err)
	}
	click := strings.NewReplacer(`"ts": "1515449601.000200"`, `"ts": "`+reply.TS+`"`, `"message_ts": "1515449601.000200"`, `"message_ts": "`+reply.TS+`"`).Replace(string(raw))
	var payload map[string]any
	if err := json.Unmarshal([]byte(click), &payload); err != nil {
		t.Fatal(err)
	}
	payload["actions"].([]any)[0].(map[string]any)["value"] = value
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

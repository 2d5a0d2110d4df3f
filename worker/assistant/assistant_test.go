package assistant

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// scripted streams a fixed answer a word at a time and keeps the requests it was given.
type scripted struct {
	answer string
	mu     sync.Mutex
	reqs   []llm.Request
}

func (s *scripted) Respond(context.Context, string) (string, error) { return s.answer, nil }

func (s *scripted) Stream(_ context.Context, req llm.Request, onDelta func(string) error) (llm.Result, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	for _, w := range strings.SplitAfter(s.answer, " ") {
		if err := onDelta(w); err != nil {
			return llm.Result{}, err
		}
	}
	return llm.Result{Text: s.answer, FinishReason: "stop"}, nil
}

func (s *scripted) requests() []llm.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]llm.Request(nil), s.reqs...)
}

const scriptedAnswer = "Rivers are everything a river should be: wet, long, and on their way somewhere."

func setupAssistant(t *testing.T, cfg Config) (*relaytest.Harness, *scripted) {
	t.Helper()
	s := &scripted{answer: scriptedAnswer}
	if cfg.LLM == nil {
		cfg.LLM = s
	}
	cfg.Model = "test-model"
	return relaytest.New(t, func(b *relay.Router) { Register(b, cfg) }), s
}

// A DM is answered by a stream in its thread, with the thread's status while the bot works
// (cleared by the answer), the question as the thread's title, and Regenerate and feedback
// buttons under the answer.
func TestDirectMessageIsStreamedWithStatusTitleAndButtons(t *testing.T) {
	t.Parallel()
	h, _ := setupAssistant(t, Config{})
	if got := h.Deliver(t, "testdata/message_im.json"); got.Err != nil {
		t.Fatal(got.Err)
	}
	streams := h.Slack.Streams()
	if len(streams) != 1 {
		t.Fatalf("%d streams, want 1", len(streams))
	}
	st := streams[0]
	if st.Channel != "D0DM" || st.ThreadTS != "1515449600.000100" || st.State != fakeslack.StreamStopped || st.Text != scriptedAnswer {
		t.Errorf("stream in %s thread %s, %s, text %q; want the whole answer, stopped, in D0DM's thread 1515449600.000100", st.Channel, st.ThreadTS, st.State, st.Text)
	}
	if v, ok := fixture.ButtonValue(st.Blocks, ActionRegenerate); !ok || !strings.Contains(v, "hello bot") {
		t.Errorf("no Regenerate button carrying the question in %s", st.Blocks)
	}
	if !bytes.Contains(st.Blocks, []byte(`"feedback_buttons"`)) || !bytes.Contains(st.Blocks, []byte(ActionFeedback)) {
		t.Errorf("no feedback buttons in %s", st.Blocks)
	}
	th, ok := h.Slack.AssistantThread("D0DM", "1515449600.000100")
	if !ok {
		t.Fatal("the thread got no status or title")
	}
	var setStatus, cleared bool
	for _, c := range th.History {
		setStatus = setStatus || c.Status == status
		cleared = cleared || (setStatus && c.Cleared != "")
	}
	if !setStatus || !cleared || th.Status != "" {
		t.Errorf("status history %+v (now %q): want %q set while working, then cleared", th.History, th.Status, status)
	}
	if th.Title != "hello bot" {
		t.Errorf("thread title = %q, want the first question", th.Title)
	}
	if n := h.Slack.Calls("reactions.add"); n != 0 {
		t.Errorf("%d reactions in a DM: the status says the bot is working there", n)
	}
}

// A follow-up in a thread sends the thread's earlier messages with the question.
func TestFollowUpSendsTheThreadsHistory(t *testing.T) {
	t.Parallel()
	h, llmCalls := setupAssistant(t, Config{})
	thread := "1515449600.000100"
	for _, m := range []fakeslack.UserMessage{
		{Channel: "D0DM", User: "U0USER", Text: "what is a river?", TS: thread},
		{Channel: "D0DM", User: "U0USER", Text: "and a lake?", TS: "1515449700.000100", ThreadTS: thread},
	} {
		if _, err := h.Slack.AddUserMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	body := fixture.MessageTwin("Ev0FOLLOW", "D0DM", "1515449700.000100", "and a lake?")
	var ev map[string]any
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		t.Fatal(err)
	}
	inner := ev["event"].(map[string]any)
	inner["channel_type"], inner["thread_ts"], inner["text"] = "im", thread, "and a lake?"
	raw, _ := json.Marshal(ev)
	if got := h.DeliverBody(t, "follow_up.json", string(raw)); got.Err != nil {
		t.Fatal(got.Err)
	}
	reqs := llmCalls.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model calls, want 1", len(reqs))
	}
	var msgs []string
	for _, m := range reqs[0].Messages {
		msgs = append(msgs, m.Role+": "+m.Content)
	}
	if want := []string{"user: what is a river?", "user: and a lake?"}; strings.Join(msgs, " | ") != strings.Join(want, " | ") {
		t.Errorf("model got %q, want the thread's earlier message then the question %q", msgs, want)
	}
}

// assistant_thread_started greets the thread with suggested prompts and remembers the channel
// the user opened it from, which the next answer's system prompt names.
func TestAssistantThreadRemembersTheChannelInView(t *testing.T) {
	t.Parallel()
	h, llmCalls := setupAssistant(t, Config{})
	if got := h.Deliver(t, "testdata/assistant_thread_started.json"); got.Err != nil || got.Route != "assistant" {
		t.Fatalf("route %q err %v", got.Route, got.Err)
	}
	th, _ := h.Slack.AssistantThread("D0DM", "1515449600.000100")
	if len(th.Prompts) != len(suggestedPrompts) {
		t.Errorf("%d suggested prompts, want %d", len(th.Prompts), len(suggestedPrompts))
	}
	if got := h.Deliver(t, "testdata/message_im.json"); got.Err != nil {
		t.Fatal(got.Err)
	}
	reqs := llmCalls.requests()
	if len(reqs) != 1 || !strings.Contains(reqs[0].System, "<#C0LOOKING>") {
		t.Errorf("system prompt %q, want it to name the channel in view <#C0LOOKING>", reqs[0].System)
	}
}

// ASSISTANT_VIEW=off (an app with only the agent view): the older assistant view's events are
// not routed, so nothing is posted or set for them; the agent view's are still served.
func TestAssistantViewOff(t *testing.T) {
	t.Parallel()
	h, _ := setupAssistant(t, Config{NoAssistantView: true})
	for _, f := range []string{"testdata/assistant_thread_started.json"} {
		if got := h.Deliver(t, f); got.Route != "" || got.Err != nil {
			t.Errorf("%s: route %q err %v, want unrouted", f, got.Route, got.Err)
		}
	}
	if th, ok := h.Slack.AssistantThread("D0DM", "1515449600.000100"); ok && len(th.Prompts) > 0 {
		t.Errorf("prompts set for an assistant thread with the assistant view off: %+v", th)
	}
	if got := h.Deliver(t, "testdata/app_home_opened_messages.json"); got.Route != "assistant" {
		t.Errorf("the messages tab went to %q, want the assistant route", got.Route)
	}
}

// The agent view's messages tab gets the suggested prompts; the home tab is declined. Agent
// apps set prompts without thread_ts (Slack applies them to the conversation's latest
// message; with thread_ts an agent app's call silently fails), so the DM has a message.
func TestMessagesTabGetsSuggestedPrompts(t *testing.T) {
	t.Parallel()
	h, _ := setupAssistant(t, Config{})
	if _, err := h.Slack.AddUserMessage(fakeslack.UserMessage{Channel: "D0DM", User: "U0USER", Text: "hi", TS: "1515449400.000100"}); err != nil {
		t.Fatal(err)
	}
	if got := h.Deliver(t, "testdata/app_home_opened_home.json"); got.Skip == "" {
		t.Errorf("the home tab was not declined: %+v", got)
	}
	if got := h.Deliver(t, "testdata/app_home_opened_messages.json"); got.Err != nil || got.Skip != "" {
		t.Fatalf("messages tab: skip %q err %v", got.Skip, got.Err)
	}
	var prompts int
	for _, th := range h.Slack.AssistantThreads() {
		if th.Channel == "D0DM" {
			prompts += len(th.Prompts)
		}
	}
	if prompts != len(suggestedPrompts) {
		t.Errorf("%d suggested prompts in the messages tab, want %d", prompts, len(suggestedPrompts))
	}
}

// A feedback click is recorded once — one log line, one Feedback metric by model and
// verdict — and the user is thanked privately, however often Slack delivers the click.
func TestFeedbackIsRecordedOncePerClick(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	h, _ := setupAssistant(t, Config{Metrics: metrics.New(&out, "slackrelay/worker")})
	raw, err := readFile("testdata/feedback_click.json")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got := h.DeliverBody(t, "feedback_click.json", raw)
		if got.Err != nil {
			t.Fatalf("delivery %d: %v", i+1, got.Err)
		}
	}
	lines := strings.Count(out.String(), `"Feedback":1`)
	if lines != 1 || !strings.Contains(out.String(), `"Model":"test-model"`) || !strings.Contains(out.String(), `"Verdict":"good"`) {
		t.Errorf("%d Feedback metric lines (%s), want one by model test-model and verdict good", lines, out.String())
	}
	var ephemerals int
	for _, p := range h.Slack.Posts() {
		if p.Method == "chat.postEphemeral" && p.User == "U0USER" {
			ephemerals++
		}
	}
	if ephemerals != 1 {
		t.Errorf("%d private thank-yous, want 1", ephemerals)
	}
}

// With streaming off the answer is a message updated in place as it grows.
func TestStreamingOffAnswersWithAMessageUpdatedInPlace(t *testing.T) {
	t.Parallel()
	h, _ := setupAssistant(t, Config{NoStreaming: true})
	if got := h.Deliver(t, "testdata/message_im.json"); got.Err != nil {
		t.Fatal(got.Err)
	}
	if n := len(h.Slack.Streams()); n != 0 {
		t.Errorf("%d streams with streaming off", n)
	}
	var answers []fakeslack.Message
	for _, m := range h.Slack.Messages("D0DM") {
		if m.Bot {
			answers = append(answers, m)
		}
	}
	if len(answers) != 1 || answers[0].Text != scriptedAnswer {
		t.Errorf("answers = %+v, want one message with the whole answer", answers)
	}
}

func readFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	return string(b), err
}

// A DM that only shares a file (subtype file_share) is answered, not declined: the model is
// told which file the user shared and that the bot cannot open it.
func TestDirectMessageWithAFileIsAnswered(t *testing.T) {
	t.Parallel()
	h, s := setupAssistant(t, Config{})
	if got := h.Deliver(t, "testdata/message_im_file_share.json"); got.Err != nil || got.Skip != "" {
		t.Fatalf("err=%v skip=%q, want it answered", got.Err, got.Skip)
	}
	if n := len(h.Slack.Streams()); n != 1 {
		t.Fatalf("%d streams, want the answer", n)
	}
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model requests, want 1", len(reqs))
	}
	q := reqs[0].Messages[len(reqs[0].Messages)-1].Content
	if !strings.Contains(q, "incident-report.pdf") || !strings.Contains(q, "cannot open files") {
		t.Errorf("the model was asked %q, want the file named and the bot's limit said", q)
	}
}

// The messages tab greets a user once a day, however often they open it; the next day again.
func TestMessagesTabGreetsOncePerUserPerDay(t *testing.T) {
	t.Parallel()
	h, _ := setupAssistant(t, Config{})
	raw, err := readFile("testdata/app_home_opened_messages.json")
	if err != nil {
		t.Fatal(err)
	}
	open := func(eventID, ts string) relaytest.Result {
		body := strings.ReplaceAll(strings.ReplaceAll(raw, "Ev0HOME", eventID), "1515449500.000100", ts)
		return h.DeliverBody(t, "app_home_opened.json", body)
	}
	greetings := func() int {
		n := 0
		for _, m := range h.Slack.RenderedChannel("D0DM", "") {
			if m.Bot && m.Text == greeting {
				n++
			}
		}
		return n
	}
	if got := open("EvH1", "1515449500.000100"); got.Err != nil || greetings() != 1 {
		t.Fatalf("first open: %+v, %d greetings", got, greetings())
	}
	if got := open("EvH2", "1515453100.000100"); got.Err != nil || !got.Duplicate || greetings() != 1 { // an hour later
		t.Fatalf("second open the same day: %+v, %d greetings; want a duplicate and one greeting", got, greetings())
	}
	if got := open("EvH3", "1515535900.000100"); got.Err != nil || greetings() != 2 { // the next day
		t.Fatalf("the next day: %+v, %d greetings; want a second", got, greetings())
	}
}

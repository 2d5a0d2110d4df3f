package assistant

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// openAIBot is the shipped bot built by New with LLM_PROVIDER=openai against the local
// OpenAI-compatible server, on the real engine. env adds or overrides variables.
func openAIBot(t testing.TB, opts fakellm.Options, env ...string) (*relaytest.Harness, *fakellm.Server) {
	t.Helper()
	srv := fakellm.New(opts)
	if _, err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	vars := map[string]string{EnvLLMProvider: "openai", EnvLLMBaseURL: srv.APIURL(), EnvLLMAPIKey: "sk-local", EnvLLMModel: "local-model"}
	for i := 0; i+1 < len(env); i += 2 {
		vars[env[i]] = env[i+1]
	}
	setup := &worker.Setup{Getenv: func(k string) string { return vars[k] }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: metrics.New(io.Discard, "slackrelay/worker")}
	h := relaytest.New(t, func(r *relay.Router) {
		if err := New(r, setup); err != nil {
			t.Fatalf("New: %v", err)
		}
	})
	return h, srv
}

// The question the tool tests ask, the call the scripted model makes and what it says.
const (
	priceQuestion = "hello bot" // testdata/message_im.json
	priceInput    = `{"expression":"2340 * 17.5 / 100 + 12.99"}`
	priceIntro    = "Let me work that out."
	priceAnswer   = "With shipping it comes to 422.49."
	priceShown    = priceIntro + "\n\n" + priceAnswer
)

// priceReply is a model on the OpenAI-compatible server that calls calculate, then answers
// with its result.
func priceReply(msgs []fakellm.Message) *fakellm.Reply {
	last := msgs[len(msgs)-1]
	if last.Role != "tool" {
		return &fakellm.Reply{Text: priceIntro, ToolCalls: []fakellm.ToolCall{{ID: "call_1", Name: ToolCalculate, Arguments: priceInput}}}
	}
	return &fakellm.Reply{Text: "With shipping it comes to " + last.Content + "."}
}

// priceTurns is the same model on the Bedrock stand-in.
var priceTurns = []fakebedrock.Turn{
	{Text: priceIntro, Tools: []fakebedrock.ToolCall{{ID: "tooluse_1", Name: ToolCalculate, Input: json.RawMessage(priceInput)}}},
	{Text: "With shipping it comes to " + fakebedrock.ToolResultPlaceholder + "."},
}

// offered is the names of the tools a request offered.
func offered[T any](tools []T, name func(T) string) []string {
	var names []string
	for _, t := range tools {
		names = append(names, name(t))
	}
	slices.Sort(names)
	return names
}

var shippedTools = []string{ToolCalculate, ToolCurrentTime, ToolEarlierAnswers}

// With either provider the shipped bot offers its tools; the model calls calculate, the
// worker runs it and hands back its result, and the thread shows the one answer both turns
// wrote, under the buttons; the log line says what it took.
func TestAnAnswerCallsCalculateThenAnswers(t *testing.T) {
	t.Parallel()
	t.Run("provider=openai", func(t *testing.T) {
		t.Parallel()
		h, srv := openAIBot(t, fakellm.Options{Reply: priceReply})
		if got := h.Deliver(t, "testdata/message_im.json"); got.Err != nil || got.Runs != 1 || len(got.DeadLetters) != 0 {
			t.Fatalf("err=%v runs=%d dead=%v", got.Err, got.Runs, got.DeadLetters)
		}
		oneStreamedAnswer(t, h, priceShown)
		reqs := srv.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d model requests, want 2 (the tool call, then the answer)", len(reqs))
		}
		if got := offered(reqs[0].Tools, func(s fakellm.ToolSpec) string { return s.Name }); !slices.Equal(got, shippedTools) {
			t.Errorf("the model was offered %v, want %v", got, shippedTools)
		}
		last := reqs[1].Messages[len(reqs[1].Messages)-1]
		if last.Role != "tool" || last.ToolCallID != "call_1" || last.Content != "422.49" {
			t.Errorf("the second request ends with %+v, want calculate's result 422.49 for call_1", last)
		}
		checkAnsweredLog(t, h, 2, 1)
	})
	t.Run("provider=bedrock", func(t *testing.T) {
		t.Parallel()
		h, srv, _ := bedrockBot(t, fakebedrock.Options{})
		srv.SetTurns(priceTurns...)
		if got := h.Deliver(t, "testdata/message_im.json"); got.Err != nil || got.Runs != 1 || len(got.DeadLetters) != 0 {
			t.Fatalf("err=%v runs=%d dead=%v", got.Err, got.Runs, got.DeadLetters)
		}
		oneStreamedAnswer(t, h, priceShown)
		reqs := srv.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d Bedrock calls, want 2 (the tool use, then the answer)", len(reqs))
		}
		if got := offered(reqs[0].Tools, func(s fakebedrock.ToolSpec) string { return s.Name }); !slices.Equal(got, shippedTools) {
			t.Errorf("the model was offered %v, want %v", got, shippedTools)
		}
		last := reqs[1].Messages[len(reqs[1].Messages)-1]
		if len(last.ToolResults) != 1 || last.ToolResults[0].ToolUseID != "tooluse_1" || last.ToolResults[0].Text() != "422.49" || last.ToolResults[0].Status == "error" {
			t.Errorf("the second call ends with %+v, want calculate's result 422.49 for tooluse_1", last)
		}
		checkAnsweredLog(t, h, 2, 1)
	})
}

// checkAnsweredLog checks the "answered" line counts the model's turns and the tool calls,
// with the tokens the model reported.
func checkAnsweredLog(t *testing.T, h *relaytest.Harness, turns, calls int) {
	t.Helper()
	for _, line := range strings.Split(h.Logs(), "\n") {
		if !strings.Contains(line, `"msg":"answered"`) {
			continue
		}
		var l struct {
			Turns      int `json:"model_turns"`
			Calls      int `json:"tool_calls"`
			Completion int `json:"completion_tokens"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if l.Turns != turns || l.Calls != calls || l.Completion <= 0 {
			t.Errorf("answered with %d turns, %d tool calls, %d completion tokens; want %d, %d and the model's count:\n%s", l.Turns, l.Calls, l.Completion, turns, calls, line)
		}
		return
	}
	t.Errorf("no answered line in the logs:\n%s", h.Logs())
}

// A model that keeps calling tools is stopped at AGENT_MAX_ROUNDS: the answer ends politely,
// with a note, under the buttons, and the model is not asked again.
func TestToolRoundsEndPolitelyAtTheBound(t *testing.T) {
	t.Parallel()
	always := func(msgs []fakellm.Message) *fakellm.Reply {
		n := 0
		for _, m := range msgs {
			if m.Role == "tool" {
				n++
			}
		}
		return &fakellm.Reply{Text: fmt.Sprintf("Step %d.", n+1), ToolCalls: []fakellm.ToolCall{{ID: fmt.Sprintf("call_%d", n), Name: ToolCalculate, Arguments: `{"expression":"1+1"}`}}}
	}
	h, srv := openAIBot(t, fakellm.Options{Reply: always}, EnvAgentMaxRounds, "3")
	if got := h.Deliver(t, "testdata/message_im.json"); got.Err != nil || got.Runs != 1 || len(got.DeadLetters) != 0 {
		t.Fatalf("err=%v runs=%d dead=%v", got.Err, got.Runs, got.DeadLetters)
	}
	oneStreamedAnswer(t, h, "Step 1.\n\nStep 2.\n\nStep 3.\n\n_I stopped after 3 rounds of tool calls without a final answer._")
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d model requests, want 3 (AGENT_MAX_ROUNDS)", n)
	}
	if !strings.Contains(h.Logs(), `"stopped":"I stopped after 3 rounds`) {
		t.Errorf("the answered line does not say the bound stopped it:\n%s", h.Logs())
	}
}

// The demo responder cannot call tools: with AGENT_TOOLS on (the default) it streams its
// answer as it always did.
func TestTheDemoResponderAnswersWithoutTools(t *testing.T) {
	t.Parallel()
	vars := map[string]string{EnvDemoDelay: "1ms", EnvDemoTokenRate: "10000"}
	setup := &worker.Setup{Getenv: func(k string) string { return vars[k] }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: metrics.New(io.Discard, "slackrelay/worker")}
	h := relaytest.New(t, func(r *relay.Router) {
		if err := New(r, setup); err != nil {
			t.Fatalf("New: %v", err)
		}
	})
	if got := h.Deliver(t, "testdata/message_im.json"); got.Err != nil || got.Runs != 1 {
		t.Fatalf("err=%v runs=%d", got.Err, got.Runs)
	}
	want, err := llm.Demo{Delay: time.Millisecond, TokensPerSecond: 10000}.Stream(context.Background(),
		llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: priceQuestion}}}, func(string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	oneStreamedAnswer(t, h, want.Text)
	if answeredThroughTheLoop(h) {
		t.Errorf("the demo responder's answer went through the tool loop:\n%s", h.Logs())
	}
}

// AGENT_TOOLS=off: the model is offered no tools and the answer is the plain stream's.
func TestAgentToolsOffStreamsAPlainAnswer(t *testing.T) {
	t.Parallel()
	h, srv := openAIBot(t, fakellm.Options{Pace: fakellm.Pace{AnswerTokens: 12}}, EnvAgentTools, "off")
	if got := h.Deliver(t, "testdata/message_im.json"); got.Err != nil || got.Runs != 1 {
		t.Fatalf("err=%v runs=%d", got.Err, got.Runs)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || len(reqs[0].Tools) != 0 {
		t.Fatalf("%d requests (the first offering %d tools), want one offering none", len(reqs), len(reqs[0].Tools))
	}
	oneStreamedAnswer(t, h, srv.AnswerText(reqs[0].Messages, 0))
	if answeredThroughTheLoop(h) {
		t.Errorf("with AGENT_TOOLS=off the answer went through the tool loop:\n%s", h.Logs())
	}
}

// answeredThroughTheLoop reports whether the "answered" line counts model turns, which only
// the tool loop's answers do.
func answeredThroughTheLoop(h *relaytest.Harness) bool {
	for _, line := range strings.Split(h.Logs(), "\n") {
		if strings.Contains(line, `"msg":"answered"`) && strings.Contains(line, `"model_turns"`) {
			return true
		}
	}
	return false
}

// A follow-up in a DM thread, through the tool loop: the model gets the thread's history (the
// user's first question and the bot's answer to it, as the assistant's) before the question,
// and earlier_answers reads the bot's own answer from the thread.
func TestFollowUpThroughTheToolLoopGetsTheHistoryAndEarlierAnswers(t *testing.T) {
	t.Parallel()
	const first, riverAnswer, followUp = "what is a river?", "A river is water on its way to the sea.", "and a lake?"
	reply := func(msgs []fakellm.Message) *fakellm.Reply {
		last := msgs[len(msgs)-1]
		switch {
		case last.Role == "user" && last.Content == first:
			return &fakellm.Reply{Text: riverAnswer}
		case last.Role == "user":
			return &fakellm.Reply{ToolCalls: []fakellm.ToolCall{{ID: "call_e", Name: ToolEarlierAnswers, Arguments: `{"last":1}`}}}
		}
		return &fakellm.Reply{Text: "Unlike the river I described, a lake stays put."}
	}
	h, srv := openAIBot(t, fakellm.Options{Reply: reply})
	const channel, thread = "D0DM", "1515449600.000100"
	if _, err := h.Slack.AddUserMessage(fakeslack.UserMessage{Channel: channel, User: "U0USER", Text: first, TS: thread}); err != nil {
		t.Fatal(err)
	}
	if got := h.DeliverBody(t, "first.json", dmBody(t, "Ev0FIRST", channel, thread, "", first)); got.Err != nil {
		t.Fatal(got.Err)
	}
	ts, err := h.Slack.AddUserMessage(fakeslack.UserMessage{Channel: channel, User: "U0USER", Text: followUp, ThreadTS: thread})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.DeliverBody(t, "follow_up.json", dmBody(t, "Ev0FOLLOW", channel, ts, thread, followUp)); got.Err != nil {
		t.Fatal(got.Err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d model requests, want 3 (the first answer, then the follow-up's two turns)", len(reqs))
	}
	var conv []string
	for _, m := range reqs[1].Messages {
		conv = append(conv, m.Role+": "+m.Content)
	}
	want := []string{"system: " + llm.SlackSystemPrompt, "user: " + first, "assistant: " + riverAnswer, "user: " + followUp}
	if !slices.Equal(conv, want) {
		t.Errorf("the follow-up's conversation is %q, want %q", conv, want)
	}
	last := reqs[2].Messages[len(reqs[2].Messages)-1]
	var res earlierAnswers
	if err := json.Unmarshal([]byte(last.Content), &res); err != nil || last.Role != "tool" {
		t.Fatalf("the last request ends with %+v (%v), want earlier_answers' result", last, err)
	}
	if len(res.Answers) != 1 || res.Answers[0].Text != riverAnswer || res.Total != 1 {
		t.Errorf("earlier_answers gave %+v, want the bot's one earlier answer", res)
	}
}

// dmBody is a user's direct message as the Events API sends it (thread "" for a new thread).
func dmBody(t *testing.T, id, channel, ts, thread, text string) string {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal([]byte(fixture.MessageTwin(id, channel, ts, text)), &ev); err != nil {
		t.Fatal(err)
	}
	inner := ev["event"].(map[string]any)
	inner["channel_type"], inner["user"] = "im", "U0USER"
	if thread != "" {
		inner["thread_ts"] = thread
	}
	raw, _ := json.Marshal(ev)
	return string(raw)
}

// A Slack failure after the tool round (the stream's stop refused once): the retry replays
// the recorded turns and the tool's result — the model is not asked again — and the thread
// shows the answer once.
func TestASlackFailureAfterTheToolRoundReplaysIt(t *testing.T) {
	t.Parallel()
	h, srv := openAIBot(t, fakellm.Options{Reply: priceReply})
	h.Slack.FailNext("chat.stopStream", 1, "internal_error")
	got := h.Deliver(t, "testdata/message_im.json")
	if got.Err != nil || got.Runs != 2 || len(got.DeadLetters) != 0 {
		t.Fatalf("err=%v runs=%d dead=%v, want answered on the second run", got.Err, got.Runs, got.DeadLetters)
	}
	oneStreamedAnswer(t, h, priceShown)
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("%d model requests, want 2: the retry replays both recorded turns", n)
	}
}

// The channel the user is looking at (from the assistant thread) reaches the tool loop's
// model as part of its system prompt.
func TestTheChannelInViewReachesTheToolLoop(t *testing.T) {
	t.Parallel()
	h, srv, _ := bedrockBot(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 5}})
	if got := h.Deliver(t, "testdata/assistant_thread_started.json"); got.Err != nil {
		t.Fatal(got.Err)
	}
	if got := h.Deliver(t, "testdata/message_im.json"); got.Err != nil {
		t.Fatal(got.Err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || len(reqs[0].Tools) == 0 {
		t.Fatalf("%d Bedrock calls, want one through the tool loop", len(reqs))
	}
	if sys := strings.Join(reqs[0].System, " "); !strings.HasPrefix(sys, llm.SlackSystemPrompt) || !strings.Contains(sys, "<#C0LOOKING>") {
		t.Errorf("system prompt %q, want the Slack prompt and the channel in view <#C0LOOKING>", sys)
	}
}

// An answer that failed for good (the bot not in the channel) goes to the dead letters with
// its reason, nothing left streaming; replayed once the bot is invited, it is answered: the
// model turn that failed is asked again, not failed again from the journal.
func TestADeadLetterReplayedAfterTheFixIsAnsweredThroughTheToolLoop(t *testing.T) {
	t.Parallel()
	for _, provider := range []string{"openai", "bedrock"} {
		t.Run("provider="+provider, func(t *testing.T) {
			t.Parallel()
			var h *relaytest.Harness
			var asked func() int
			if provider == "openai" {
				var srv *fakellm.Server
				h, srv = openAIBot(t, fakellm.Options{Reply: priceReply})
				asked = func() int { return len(srv.Requests()) }
			} else {
				var srv *fakebedrock.Server
				h, srv, _ = bedrockBot(t, fakebedrock.Options{})
				srv.SetTurns(priceTurns...)
				asked = func() int { return len(srv.Requests()) }
			}
			h.Slack.FailNext("chat.startStream", 1, "not_in_channel")
			got := h.Deliver(t, "testdata/message_im.json")
			if len(got.DeadLetters) != 1 || !strings.Contains(got.DeadLetters[0].Reason, "not_in_channel") || got.DeadLetters[0].Class != "permanent" {
				t.Fatalf("dead letters %+v, want one, permanent, naming not_in_channel", got.DeadLetters)
			}
			for _, st := range h.Slack.Streams() {
				if st.State == fakeslack.Streaming {
					t.Errorf("a stream was left open: %+v", st)
				}
			}
			replayed := h.Redeliver(t, got)
			if replayed.Err != nil || len(replayed.DeadLetters) != 0 {
				t.Fatalf("the replay: err=%v dead=%+v, want it answered", replayed.Err, replayed.DeadLetters)
			}
			oneStreamedAnswer(t, h, priceShown)
			if n := asked(); n != 3 {
				t.Errorf("%d model requests, want 3: the failed first turn, then both turns of the replay", n)
			}
		})
	}
}

package answercheck

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
)

const thread = "1700000000.000100"

// msg is a finished message of the bot in the thread.
func msg(ts, text string, actions ...string) fakeslack.Rendered {
	return fakeslack.Rendered{Channel: "C1", TS: ts, ThreadTS: thread, User: "UBOT", Bot: true, Text: text, Actions: actions}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	const answer = "Local answer to \"hello\" after 2 messages: the queue keeps every event"
	buttons := AnswerActions
	parent := fakeslack.Rendered{Channel: "C1", TS: thread, User: "U0USER", Text: "<@UBOT> hello"}
	streaming := msg("1700000000.000200", answer[:20], assistant.ActionRegenerate)
	streaming.Streaming = true
	tests := []struct {
		name    string
		thread  []fakeslack.Rendered
		want    Expect
		outcome Outcome
		problem string // a part of one of the problems
	}{
		{"one message, its buttons", []fakeslack.Rendered{parent, msg("1700000000.000200", answer, buttons...)}, Answer(answer), Answered, ""},
		{"split in two messages, buttons under the last", []fakeslack.Rendered{
			msg("1700000000.000200", answer[:30]), msg("1700000000.000300", answer[30:], buttons...)}, Answer(answer), Answered, ""},
		{"the text unknown, shown once", []fakeslack.Rendered{msg("1700000000.000200", answer, buttons...)}, Expect{Actions: buttons}, Answered, ""},
		{"no actions expected, none shown", []fakeslack.Rendered{msg("1700000000.000200", answer)}, Expect{Text: answer}, Answered, ""},
		{"nothing in the thread", []fakeslack.Rendered{parent}, Answer(answer), Missing, "no message of the bot"},
		{"a Stop button above each streamed message's text", []fakeslack.Rendered{
			msg("1700000000.000200", answer[:30], relay.StopActionID), msg("1700000000.000300", answer[30:], append([]string{relay.StopActionID}, buttons...)...)},
			Answer(answer), Answered, ""},
		{"two Stop buttons in one message", []fakeslack.Rendered{msg("1700000000.000200", answer, append([]string{relay.StopActionID, relay.StopActionID}, buttons...)...)},
			Answer(answer), Doubled, "2 Stop buttons"},
		{"a user's reply is not the bot's", []fakeslack.Rendered{parent, {Channel: "C1", TS: "1700000000.000200", ThreadTS: thread, User: "U2", Text: answer}}, Answer(answer), Missing, ""},
		{"still streaming", []fakeslack.Rendered{streaming}, Answer(answer), Streaming, "still streaming"},
		{"streamed, then repeated in the final blocks", []fakeslack.Rendered{msg("1700000000.000200", answer+"\n"+answer, buttons...)}, Answer(answer), Doubled, "shown 2 times"},
		{"two messages with the answer", []fakeslack.Rendered{msg("1700000000.000200", answer, buttons...), msg("1700000000.000300", answer, buttons...)}, Answer(answer), Doubled, "shown 2 times"},
		{"an orphan holding the answer's beginning", []fakeslack.Rendered{msg("1700000000.000200", answer[:len(answer)-5]), msg("1700000000.000300", answer, buttons...)}, Answer(answer), Doubled, "beginning"},
		{"an orphan, the text unknown", []fakeslack.Rendered{msg("1700000000.000200", answer[:len(answer)-5]), msg("1700000000.000300", answer, buttons...)}, Expect{Actions: buttons}, Doubled, "beginning"},
		{"a repeat beside one still streaming", []fakeslack.Rendered{msg("1700000000.000200", answer, buttons...), streaming}, Answer(answer), Doubled, "still streaming"},
		{"buttons twice", []fakeslack.Rendered{msg("1700000000.000200", answer[:30], buttons...), msg("1700000000.000300", answer[30:], buttons...)}, Answer(answer), Doubled, "action slackrelay_regenerate is shown 2 times"},
		{"incomplete", []fakeslack.Rendered{msg("1700000000.000200", answer[:30], buttons...)}, Answer(answer), Wrong, "incomplete: 30 of"},
		{"another answer", []fakeslack.Rendered{msg("1700000000.000200", "You said: hello", buttons...)}, Answer(answer), Wrong, "not the answer"},
		{"an empty message", []fakeslack.Rendered{msg("1700000000.000200", ""), msg("1700000000.000300", answer, buttons...)}, Answer(answer), Wrong, "shows no text"},
		{"no buttons", []fakeslack.Rendered{msg("1700000000.000200", answer)}, Answer(answer), Wrong, "the last message shows actions []"},
		{"buttons under the first message only", []fakeslack.Rendered{msg("1700000000.000200", answer[:30], buttons...), msg("1700000000.000300", answer[30:])}, Answer(answer), Wrong, "not the answer's last"},
		{"regenerated: the feedback buttons are kept", []fakeslack.Rendered{msg("1700000000.000200", answer, assistant.ActionRegenerate)}, Regenerated(answer), Wrong, "want [slackrelay_regenerate slackrelay_feedback]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := Judge("C1", thread, tc.thread, tc.want)
			if v.Outcome != tc.outcome {
				t.Fatalf("outcome %v, want %v; problems %q", v.Outcome, tc.outcome, v.Problems)
			}
			if (v.Err() == nil) != (tc.outcome == Answered) {
				t.Errorf("Err() = %v for outcome %v", v.Err(), v.Outcome)
			}
			if tc.problem != "" && !strings.Contains(strings.Join(v.Problems, "|"), tc.problem) {
				t.Errorf("problems %q; want one containing %q", v.Problems, tc.problem)
			}
		})
	}
}

// The judgement against the local Slack server as the bot drives it: the answer streamed and
// stopped with only its buttons is answered once; stopped with blocks that repeat the answer,
// the API's text is still the answer once, but the thread shows it twice.
func TestJudgeTheRendering(t *testing.T) {
	t.Parallel()
	// Thread timestamps before the server's own (it hands out 1700000000.000100 first).
	srv := fakeslack.New(fakeslack.Options{Token: "xoxb-test"})
	base, err := srv.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	api := slack.New("xoxb-test", slack.OptionAPIURL(srv.APIURL()))
	ctx := context.Background()
	const answer = "The queue keeps every event until a worker has answered it once."
	text := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	buttons := []slack.Block{
		slack.NewActionBlock("", slack.NewButtonBlockElement(assistant.ActionRegenerate, "again", text("Regenerate"))),
		slack.NewContextActionsBlock("", slack.NewFeedbackButtonsBlockElement(assistant.ActionFeedback,
			slack.NewFeedbackButton(text("Good"), "good"), slack.NewFeedbackButton(text("Bad"), "bad"))),
	}
	stream := func(threadTS string, final []slack.Block) {
		t.Helper()
		_, ts, err := api.StartStreamContext(ctx, "C1", slack.MsgOptionTS(threadTS), slack.MsgOptionMarkdownText(answer[:20]),
			slack.MsgOptionRecipientUserID("U0USER"), slack.MsgOptionRecipientTeamID("T0001"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := api.AppendStreamContext(ctx, "C1", ts, slack.MsgOptionMarkdownText(answer[20:])); err != nil {
			t.Fatal(err)
		}
		if _, _, err := api.StopStreamContext(ctx, "C1", ts, slack.MsgOptionBlocks(final...)); err != nil {
			t.Fatal(err)
		}
	}
	stream("1600000000.000100", buttons)
	stream("1600000000.000200", append([]slack.Block{slack.NewMarkdownBlock("", answer)}, buttons...))
	for _, th := range []Threads{InProcess{srv}, &fakeslack.Client{BaseURL: base}} {
		v, err := Check(ctx, th, "C1", "1600000000.000100", Answer(answer))
		if err != nil || !v.OK() {
			t.Errorf("%T: the answer stopped with its buttons: %v, %v", th, err, v.Err())
		}
		v, err = Check(ctx, th, "C1", "1600000000.000200", Answer(answer))
		if err != nil || v.Outcome != Doubled {
			t.Errorf("%T: the answer repeated in the final blocks: outcome %v (%v), want %v", th, v.Outcome, err, Doubled)
		}
		if api := srv.BotReplies("C1", "1600000000.000200"); len(api) != 1 || api[0].Text != answer {
			t.Errorf("the API's view %+v; want one message whose text is the answer once (what the rendering is for)", api)
		}
	}
	if _, err := Await(ctx, InProcess{srv}, "C1", "1600000000.000300", Answer(answer), 200*time.Millisecond); err == nil {
		t.Error("Await of an empty thread succeeded")
	}
}

func TestDemoStreamed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	got, err := DemoStreamed(ctx, 10*time.Millisecond, "  are you there?  ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "You said: are you there?\nThis is the first message of the conversation.") || !strings.Contains(got, "after 10ms of pretend work") {
		t.Errorf("DemoStreamed = %q", got)
	}
	all, err := DemoStreamedAll(ctx, 10*time.Millisecond, "a", "b")
	if err != nil || len(all) != 2 || all["a"] == all["b"] || !strings.HasPrefix(all["b"], "You said: b\n") {
		t.Errorf("DemoStreamedAll = %q, %v", all, err)
	}
	reply, err := DemoReply(ctx, 10*time.Millisecond, "a")
	if err != nil || !strings.HasPrefix(reply, "You said: a\n(This is slackrelay's demo responder") {
		t.Errorf("DemoReply = %q, %v", reply, err)
	}
}

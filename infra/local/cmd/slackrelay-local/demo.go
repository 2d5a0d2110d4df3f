package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/devenv"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// demoAnswer is what the demo's local LLM answers: it says what the reader is watching.
func demoAnswer(msgs []fakellm.Message) string {
	q := ""
	if n := len(msgs); n > 0 {
		q = msgs[n-1].Content
	}
	return fmt.Sprintf("You asked: %q. This answer comes from the local LLM server a word at a time. "+
		"The worker gathers the words and appends them to one Slack message about once a second, so the thread shows it growing. "+
		"The message's timestamp was saved before the first append: if the worker dies now, the redelivery finishes this same message "+
		"instead of posting a second one.", q)
}

// The tool step's question: the model is scripted to answer it in two turns, the first
// asking for the shipped bot's calculate tool (assistant.ToolCalculate) with toolExpression,
// the second quoting the tool's result (toolResult, as the worker's calculate computes it).
const (
	toolQuestion   = "what do 3 licences at 1,240.50 cost with 17.5% tax?"
	toolExpression = "3 * 1240.50 * 1.175"
	toolResult     = "4372.7625"
	toolIntro      = "Let me calculate that exactly."
	toolAnswer     = "Three licences at 1,240.50 with 17.5%% tax come to %s."
)

// toolCallInput is calculate's input in the scripted tool call.
var toolCallInput = `{"expression":"` + toolExpression + `"}`

// toolAnswerText is the answer the thread should show after the tool step: both turns.
func toolAnswerText(result string) string {
	return toolIntro + "\n\n" + fmt.Sprintf(toolAnswer, result)
}

// demoReply scripts the local LLM's answer to the tool step's question (fakellm.Options.Reply):
// a call of calculate, then, once its result has come, an answer quoting it. Other questions
// get the demo's text (nil: demoAnswer).
func demoReply(msgs []fakellm.Message) *fakellm.Reply {
	question, result := "", ""
	for _, m := range msgs {
		switch m.Role {
		case "user":
			question = m.Content
		case "tool":
			result = m.Content
		}
	}
	if question != toolQuestion {
		return nil
	}
	if result == "" {
		return &fakellm.Reply{Text: toolIntro, ToolCalls: []fakellm.ToolCall{{ID: "call_calc", Name: assistant.ToolCalculate, Arguments: toolCallInput}}}
	}
	return &fakellm.Reply{Text: fmt.Sprintf(toolAnswer, result)}
}

// demoModel is the local model the tour's worker answers from: the OpenAI-compatible LLM
// server (the default), or with LOCAL_LLM=bedrock the Bedrock ConverseStream stand-in, which
// the worker reaches through its Bedrock client (LLM_PROVIDER=bedrock).
type demoModel interface {
	// name is how the tour calls it ("the local LLM").
	name() string
	// answerTo is its answer to a conversation of the one question.
	answerTo(question string) string
	// asked is the number of requests it has received.
	asked() int
	// answerToRequest is its answer to its request i (false when it has received no such).
	answerToRequest(i int) (string, bool)
	// scriptTool makes it answer toolQuestion by calling calculate, then quoting the result,
	// in answers of their own length; undo puts it back as it was.
	scriptTool() (undo func())
	// toolResults are the tool results its requests from the i-th on carried, in order.
	toolResults(i int) []string
}

// openAIModel is the local OpenAI-compatible LLM server.
type openAIModel struct{ s *fakellm.Server }

func (openAIModel) name() string { return "the local LLM" }
func (m openAIModel) answerTo(question string) string {
	return m.s.AnswerText([]fakellm.Message{{Role: "user", Content: question}}, 0)
}
func (m openAIModel) asked() int { return len(m.s.Requests()) }
func (m openAIModel) answerToRequest(i int) (string, bool) {
	reqs := m.s.Requests()
	if i >= len(reqs) {
		return "", false
	}
	return m.s.AnswerText(reqs[i].Messages, reqs[i].MaxTokens), true
}

// scriptTool: demoReply answers toolQuestion already; the answers are kept to their own
// length (a -tokens pace would fill them up with generated words).
func (m openAIModel) scriptTool() func() {
	pace := m.s.Pace()
	short := pace
	short.AnswerTokens = 0
	m.s.SetPace(short)
	return func() { m.s.SetPace(pace) }
}

func (m openAIModel) toolResults(i int) []string {
	var out []string
	for _, r := range m.s.Requests()[i:] {
		if n := len(r.Messages); n > 0 && r.Messages[n-1].Role == "tool" {
			out = append(out, r.Messages[n-1].Content)
		}
	}
	return out
}

// bedrockModel is the local Bedrock stand-in. It has no demo text of its own: its answers
// name the question, then go on with generated words, as long as the demo's text.
type bedrockModel struct{ s *fakebedrock.Server }

func (bedrockModel) name() string { return "the local Bedrock stand-in" }
func (m bedrockModel) answerTo(question string) string {
	return m.s.AnswerText([]fakebedrock.Message{{Role: "user", Texts: []string{question}}}, 0)
}
func (m bedrockModel) asked() int { return len(m.s.Requests()) }
func (m bedrockModel) answerToRequest(i int) (string, bool) {
	reqs := m.s.Requests()
	if i >= len(reqs) {
		return "", false
	}
	maxTokens := 0
	if reqs[i].MaxTokens != nil {
		maxTokens = *reqs[i].MaxTokens
	}
	return m.s.AnswerText(reqs[i].Messages, maxTokens), true
}

// scriptTool scripts the stand-in's turns (SetTurns): the first answer of a conversation asks
// for calculate, the one after its result quotes it; at the tour's pace but of their own
// length (the stand-in fills scripted answers up to its answer length otherwise).
func (m bedrockModel) scriptTool() func() {
	pace := m.s.Pace()
	short := pace
	short.AnswerTokens = 0
	m.s.SetPace(short)
	m.s.SetTurns(
		fakebedrock.Turn{Text: toolIntro, Tools: []fakebedrock.ToolCall{{ID: "tooluse_calc", Name: assistant.ToolCalculate, Input: json.RawMessage(toolCallInput)}}},
		fakebedrock.Turn{Text: fmt.Sprintf(toolAnswer, fakebedrock.ToolResultPlaceholder)},
	)
	return func() {
		m.s.SetTurns()
		m.s.SetPace(pace)
	}
}

func (m bedrockModel) toolResults(i int) []string {
	var out []string
	for _, r := range m.s.Requests()[i:] {
		if n := len(r.Messages); n > 0 {
			for _, res := range r.Messages[n-1].ToolResults {
				out = append(out, res.Text())
			}
		}
	}
	return out
}

// invocationFor is the invocation deadline (at least 8 s, whole seconds) in which the worker
// streams an answer of answerTime whole: its handlers stop a tenth of the invocation (at most
// 2 s) before the deadline, and a stream yields relay.DefaultYieldBefore before that to go
// on in a new delivery. The demo's model is asked again by a new delivery (LLM_PREFILL=off,
// the worker's default), which regenerates what was shown at the same pace: an answer that
// does not fit one invocation would barely get further in the next.
func invocationFor(answerTime time.Duration) time.Duration {
	need := answerTime + relay.DefaultYieldBefore + time.Second // the poll, the claim, the reaction
	t := need + min(need/9, 2*time.Second)
	return max(8*time.Second, t.Round(time.Second)+time.Second)
}

// demoTour is the state the demo's steps share.
type demoTour struct {
	ctx     context.Context
	s       *devworld.World
	llm     demoModel
	c       checker
	channel string
	// answerWait is how long an answer may take to be complete once its event is handled.
	answerWait time.Duration
	// want is what each thread the tour asked in should show, by thread ts.
	want map[string]answercheck.Expect
}

// demo is the tour. It answers from the local OpenAI-compatible LLM server, or with
// LOCAL_LLM=bedrock from the local Bedrock stand-in through the worker's Bedrock client: the
// same steps, at the same pace, with answers as long.
func demo(args []string, settings devenv.Settings) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	delay := fs.Duration("delay", 800*time.Millisecond, "the local LLM's time to the first token")
	rate := fs.Float64("rate", 15, "the local LLM's tokens (words) a second")
	tokens := fs.Int("tokens", 0, "the answer's length in words: 0 for the demo's text as it is; more fills it up with generated words (-tokens 5000 -rate 20: 25,000 characters over about 4 minutes)")
	verbose := fs.Bool("v", false, "show the binaries' JSON logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *delay < 0 || *rate <= 0 || *tokens < 0 {
		return fmt.Errorf("-delay and -tokens must not be negative and -rate must be positive")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	fmt.Println(paint(bold, "slackrelay demo") + ": a Slack AI bot that answers slowly, streamed, exactly once, without ever missing Slack's 3-second deadline")
	bins, err := build(ctx)
	if err != nil {
		return err
	}
	var logOut io.Writer = io.Discard
	if *verbose {
		logOut = os.Stderr
	}
	// The worker's invocation deadline leaves an answer a second to spare and no more, so the
	// step that kills the worker does not wait longer than it must for the redelivery (the
	// queue's visibility timeout is 2 s above it); see invocationFor.
	words := len(strings.Fields(demoAnswer([]fakellm.Message{{Content: "summarise yesterday's incidents"}})))
	if *tokens > 0 {
		words = *tokens
	}
	pace := fakellm.Pace{FirstToken: *delay, TokensPerSecond: *rate, AnswerTokens: *tokens}
	answerTime := pace.Span(words + 1)
	handlerTimeout := invocationFor(answerTime)
	step("starting the local stack")
	out := prefixWriter{os.Stdout, "   "}
	// The app is distributed: the default workspace installed it before the tour starts, a
	// second one (acme) installs it in step 9 through the receiver's pages, and a third
	// (globex) never does.
	opts := devworld.Options{Bins: bins, HandlerTimeout: handlerTimeout, LogOut: logOut, SlackOut: out,
		ManyWorkspaces: true, TokenRotation: true, Workspaces: []fakeslack.Workspace{
			{ID: demoSecondTeam, Name: "acme", Channels: []string{demoSecondChannel}},
			{ID: demoUninstalledTeam, Name: "globex", Channels: []string{demoUninstalledChannel}},
		}}
	if settings.LocalBedrock {
		// The stand-in's answers are as long as the demo's text, so the tour takes as long.
		opts.LocalBedrock = &fakebedrock.Options{Pace: fakebedrock.Pace{FirstToken: *delay, TokensPerSecond: *rate, AnswerTokens: words}, Out: out}
	} else {
		opts.LocalLLM = &fakellm.Options{Pace: pace, Answer: demoAnswer, Reply: demoReply, Out: out}
	}
	s, err := devworld.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		step("stopping everything the demo started")
		s.Stop()
		say("done")
	}()
	if err := s.Install(ctx, fakeslack.Workspace{ID: demoFirstTeam, Token: devworld.LocalBotToken}); err != nil {
		return err
	}
	say("SQS (fauxqs)         %s", s.Local.SQSEndpoint)
	say("DynamoDB (dynalite)  %s", s.Local.DynamoDBEndpoint)
	say("Slack Web API (fake) %s", s.SlackURL)
	var model demoModel
	if s.Bedrock != nil {
		model = bedrockModel{s.Bedrock}
		say("LLM: Bedrock (LLM_PROVIDER=bedrock), model %s in %s", devworld.LocalBedrockModel, devworld.LocalBedrockRegion)
		say("     ConverseStream (local stand-in) %s: %d ms to the first token, then %g words a second (answers of %d words)",
			s.Bedrock.URL(), delay.Milliseconds(), *rate, words)
	} else {
		model = openAIModel{s.LLM}
		say("LLM (local, OpenAI-compatible) %s: %d ms to the first token, then %g words a second (answers of about %d words)",
			s.LLM.APIURL(), delay.Milliseconds(), *rate, words)
	}
	say("receiver             %s/slack/events, install page %s/slack/install", s.ReceiverURL, s.ReceiverURL)
	say("installations        table %s (workspace %s installed; acme and globex not yet)", s.InstallationsTable, demoFirstTeam)
	say("worker               polling %s (invocation deadline %s)", s.Local.QueueURL, handlerTimeout)

	t := &demoTour{ctx: ctx, s: s, llm: model, channel: "C0DEMO", answerWait: answerTime + 15*time.Second, want: map[string]answercheck.Expect{}}
	now := time.Now()
	threads := map[string]string{"first": fmt.Sprintf("%d.000100", now.Unix()), "crash": fmt.Sprintf("%d.000300", now.Unix()),
		"dlq": fmt.Sprintf("%d.000200", now.Unix()), "tool": fmt.Sprintf("%d.000400", now.Unix())}
	eventID := fmt.Sprintf("Ev%dDEMO", now.Unix())
	if err := t.streamedAnswer(threads["first"], eventID, "summarise yesterday's incidents"); err != nil {
		return err
	}
	if err := t.toolAnswer(threads["tool"], eventID+"4"); err != nil {
		return err
	}
	if err := t.killMidStream(threads["crash"], eventID+"3", "how do retries work?", handlerTimeout+2*time.Second); err != nil {
		return err
	}
	if err := t.deadLetter(threads["dlq"], eventID+"2", "what's on the roadmap?"); err != nil {
		return err
	}
	t.interactive(threads["first"], "summarise yesterday's incidents")
	if err := t.secondWorkspace(fmt.Sprintf("%d.000500", now.Unix()), eventID+"9"); err != nil {
		return err
	}

	step("summary")
	// Each thread as a Slack client shows it, against the answer it should show.
	counts := map[answercheck.Outcome]int{}
	for _, ts := range threads {
		v := t.verdict(ts)
		counts[v.Outcome]++
		if !v.OK() {
			say("%s", paint(dim, v.Err().Error()))
		}
	}
	say("events sent: %d (one of them twice, one answered with a tool, one handled by a worker that was killed) · answered once: %d · shown twice: %d · lost or unfinished: %d",
		len(threads), counts[answercheck.Answered], counts[answercheck.Doubled], len(threads)-counts[answercheck.Answered]-counts[answercheck.Doubled])
	if len(t.c.failed) > 0 {
		return fmt.Errorf("demo expectations failed: %s", strings.Join(t.c.failed, "; "))
	}
	say("%s", paint(green, "everything behaved"))
	say("next: `make dev` keeps this stack running for a real Slack app (see docs/local.md)")
	return nil
}

// mention sends an app_mention of text at ts and says how fast the receiver answered.
func (t *demoTour) mention(eventID, ts, text string, headers ...string) (devworld.Reply, error) {
	r, err := t.s.Send(t.ctx, "/slack/events", "application/json", fixture.AppMention(eventID, t.channel, ts, text), headers...)
	if err != nil {
		return r, err
	}
	say("receiver answered %d in %s %s", r.Status, paint(bold, fmt.Sprintf("%.1f ms", float64(r.Latency.Microseconds())/1000)), paint(dim, "(Slack wants < 3000 ms)"))
	return r, nil
}

// ask records that the thread ts should show the local model's answer to question (its
// answer is the same for every request with that question).
func (t *demoTour) ask(ts, question string) {
	t.want[ts] = answercheck.Answer(t.llm.answerTo(question))
}

// verdict is the thread ts as a Slack client shows it, judged against its answer.
func (t *demoTour) verdict(ts string) answercheck.Verdict {
	return answercheck.Judge(t.channel, ts, t.s.Slack.RenderedThread(t.channel, ts), t.want[ts])
}

// answered reports whether the thread ts shows its answer exactly once, as a client shows it.
func (t *demoTour) answered(ts string) bool { return t.verdict(ts).OK() }

// settled waits until every delivery is handled (the events queue empty, in flight included),
// so that a duplicate answer would show by then, and reports whether the thread ts still
// shows its answer exactly once.
func (t *demoTour) settled(ts string) (answercheck.Verdict, bool) {
	err := devworld.WaitFor(t.answerWait, func() bool {
		n, err := t.s.Local.Depth(t.ctx, t.s.Local.QueueURL)
		return err == nil && n == 0
	})
	v := t.verdict(ts)
	return v, err == nil && v.OK()
}

// streamsIn returns the streams started in the thread ts.
func (t *demoTour) streamsIn(ts string) []fakeslack.Stream {
	var out []fakeslack.Stream
	for _, st := range t.s.Slack.Streams() {
		if st.Channel == t.channel && st.ThreadTS == ts {
			out = append(out, st)
		}
	}
	return out
}

// firstText is when the stream first showed text: its first call that carried some.
func firstText(st fakeslack.Stream) (time.Time, bool) {
	for _, c := range st.Calls {
		if c.MarkdownText != "" || len(c.Chunks) > 0 {
			return c.At, true
		}
	}
	return time.Time{}, false
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// streamedAnswer is steps 1 and 2: a mention answered by a stream, then Slack's retry of it.
func (t *demoTour) streamedAnswer(ts, eventID, question string) error {
	s, c := t.s, &t.c
	step("1. a user mentions the bot; the answer streams into the thread from %s", t.llm.name())
	sent := time.Now()
	t.ask(ts, question)
	r, err := t.mention(eventID, ts, question)
	if err != nil {
		return err
	}
	c.check(r.Status == 202, "acknowledged at once, before any work")
	say("%s", paint(dim, "the answer as it grows: ▶ starts the stream, + is an append, ■ stops it"))
	err = devworld.WaitFor(t.answerWait, func() bool { return t.answered(ts) })
	streams := t.streamsIn(ts)
	if err != nil || len(streams) != 1 {
		c.check(false, fmt.Sprintf("one answer, streamed, within %s", t.answerWait))
		return nil
	}
	st := streams[0]
	first, _ := firstText(st)
	c.check(true, fmt.Sprintf("the first words showed %s after the request; the answer grew by %d appends in one message, complete %s after it",
		paint(bold, seconds(first.Sub(sent))), st.Count("chat.appendStream"), paint(bold, seconds(st.StoppedAt.Sub(sent)))))
	noReaction := func() bool {
		for _, x := range s.Slack.Reactions() {
			if x.Channel == t.channel && x.Timestamp == ts {
				return false
			}
		}
		return true
	}
	err = devworld.WaitFor(2*time.Second, noReaction)
	c.check(s.Slack.Calls("reactions.add") >= 1 && err == nil, ":hourglass_flowing_sand: on the question while the bot worked, removed with the answer")

	step("2. Slack retries the same event (as it does when an ack is slow or lost)")
	streamsBefore := len(s.Slack.Streams())
	r, err = t.mention(eventID, ts, question, "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout")
	if err != nil {
		return err
	}
	say("the retry is enqueued, never dropped; the worker decides")
	_, one := t.settled(ts)
	c.check(r.Status == 202 && one && len(s.Slack.Streams()) == streamsBefore, "no second answer: the worker saw the event was already answered")
	return nil
}

// toolAnswer is step 3: a question the model answers with the shipped bot's calculate tool:
// its first turn asks for the tool, the worker runs it (recorded in the event's journal before
// the next turn) and hands back its result, and the second turn's answer quotes it, in the
// same message.
func (t *demoTour) toolAnswer(ts, eventID string) error {
	c := &t.c
	step("3. a question that needs arithmetic: the model calls the bot's calculate tool, the worker runs it once, the answer uses its result")
	undo := t.llm.scriptTool()
	defer undo()
	asked := t.llm.asked()
	t.want[ts] = answercheck.Answer(toolAnswerText(toolResult))
	if _, err := t.mention(eventID, ts, toolQuestion); err != nil {
		return err
	}
	err := devworld.WaitFor(t.answerWait, func() bool { return t.answered(ts) })
	results := t.llm.toolResults(asked)
	if err != nil {
		c.check(false, "the answer with the tool's result: "+t.verdict(ts).Err().Error())
		return nil
	}
	say("the model asked for %s(%s); the worker ran it and handed back %s", assistant.ToolCalculate, toolExpression, paint(bold, strings.Join(results, ", ")))
	v, one := t.settled(ts)
	c.check(one && len(results) == 1 && results[0] == toolResult && t.llm.asked()-asked == 2,
		fmt.Sprintf("one answer in %d message, both turns in it, after %d model requests: the tool call, then the answer with its result", len(v.Messages), t.llm.asked()-asked))
	return nil
}

// killMidStream is step 4: the worker SIGKILLed while an answer streams, and the redelivery
// finishing that same message.
func (t *demoTour) killMidStream(ts, eventID, question string, visibility time.Duration) error {
	s, c := t.s, &t.c
	step("4. the worker is killed (SIGKILL) while an answer streams")
	asked := t.llm.asked()
	t.ask(ts, question)
	if _, err := t.mention(eventID, ts, question); err != nil {
		return err
	}
	var st fakeslack.Stream
	err := devworld.WaitFor(t.answerWait, func() bool {
		streams := t.streamsIn(ts)
		if len(streams) == 0 {
			return false
		}
		st = streams[0]
		return st.Count("chat.appendStream") >= 2
	})
	if err != nil {
		c.check(false, "the answer started streaming")
		return nil
	}
	s.KillWorker()
	killedAt := time.Now()
	st, _ = s.Slack.Stream(t.channel, st.TS)
	c.check(st.State == fakeslack.Streaming, fmt.Sprintf("worker killed after %d appends: the thread shows %d characters of the answer, still streaming",
		st.Count("chat.appendStream"), len([]rune(st.Text))))
	if err := s.StartWorker(t.ctx); err != nil {
		return err
	}
	say("worker restarted; SQS hands the event out again when its visibility timeout (%s) runs out,", visibility)
	say("the model answers again, and its whole answer finishes the same message (chat.stopStream, then chat.update):")
	answer, ok := t.llm.answerToRequest(asked)
	if !ok {
		c.check(false, t.llm.name()+" was asked")
		return nil
	}
	t.want[ts] = answercheck.Answer(answer)
	err = devworld.WaitFor(visibility+t.answerWait, func() bool { return t.answered(ts) })
	if err != nil {
		c.check(false, "the redelivery finished the answer: "+t.verdict(ts).Err().Error())
		return nil
	}
	finished := time.Since(killedAt)
	v, one := t.settled(ts)
	c.check(one && v.Messages[0].TS == st.TS, fmt.Sprintf("finished %s after the kill, in the same message, with the whole answer shown once", seconds(finished)))
	c.check(len(t.streamsIn(ts)) == 1, "answered once, not repeated: no second stream was started")
	return nil
}

// deadLetter is steps 5 and 6: an answer that fails permanently lands in the DLQ, and is
// answered once after the operator replays it.
func (t *demoTour) deadLetter(ts, eventID, question string) error {
	s, c, ctx := t.s, &t.c, t.ctx
	step("5. an answer fails permanently (the bot is not in the channel)")
	s.Slack.FailNext("chat.startStream", 1, "not_in_channel")
	t.ask(ts, question)
	if _, err := t.mention(eventID, ts, question); err != nil {
		return err
	}
	err := devworld.WaitFor(t.answerWait, func() bool { return dlqDepth(ctx, s) == 1 })
	c.check(err == nil, "the event is in the dead-letter queue, not lost and not retried in vain")
	out, _ := s.DLQ(ctx, "list")
	say("%s", paint(dim, "$ slackrelay-dlq list"))
	fmt.Print(indent(out))

	step("6. the bot is invited to the channel; the operator replays the DLQ")
	say("%s", paint(dim, "$ slackrelay-dlq replay --all --yes"))
	out, err = s.DLQ(ctx, "replay", "--all", "--yes")
	fmt.Print(indent(out))
	c.check(err == nil, "replayed")
	err = devworld.WaitFor(t.answerWait, func() bool { return t.answered(ts) })
	c.check(err == nil, "the replayed event got its answer")
	_, one := t.settled(ts)
	c.check(dlqDepth(ctx, s) == 0 && one, "DLQ empty, exactly one answer")
	return nil
}

// interactive shows the buttons and modals going through the queue: a Regenerate click on the
// first answer (and Slack's retry of it), then /ask without a question, whose modal opens
// with the command's trigger and is answered in place after its submission.
func (t *demoTour) interactive(thread, question string) {
	s, c, ctx := t.s, &t.c, t.ctx
	step("7. the user clicks Regenerate on the first answer (Slack delivers the click twice)")
	var reply fakeslack.Message // the button's value is in the API's view
	if a := s.Slack.BotReplies(t.channel, thread); len(a) == 1 {
		reply = a[0]
	}
	value, ok := fixture.ButtonValue(reply.Blocks, "slackrelay_regenerate")
	c.check(ok, "the answer carries a Regenerate button")
	updates := s.Slack.Calls("chat.update")
	click := fixture.BlockActions("slackrelay_regenerate", value, t.channel, reply.TS, thread, fmt.Sprintf("%d.000001", time.Now().Unix()))
	for i, headers := range [][]string{nil, {"X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout"}} {
		r, err := s.Send(ctx, "/slack/interactivity", "application/x-www-form-urlencoded", click, headers...)
		if err != nil {
			c.check(false, "click delivered: "+err.Error())
			return
		}
		say("click %d: receiver answered %d in %.1f ms", i+1, r.Status, float64(r.Latency.Microseconds())/1000)
	}
	// The model's new answer (not streamed) replaces the message, with Regenerate under it.
	t.want[thread] = answercheck.Regenerated(t.llm.answerTo(question))
	err := devworld.WaitFor(t.answerWait, func() bool { return s.Slack.Calls("chat.update") > updates })
	say("%s", paint(dim, "the click's second delivery waits until the first one's claim ends, then finds the click handled"))
	v, one := t.settled(thread)
	c.check(err == nil && s.Slack.Calls("chat.update") == updates+1 && one && v.Messages[0].TS == reply.TS,
		"the answer was regenerated and replaced in place, once for the click")
	say("%s", paint(dim, "("+t.llm.name()+" answers a question the same way every time; a real model's second answer differs)"))

	step("8. /ask without a question opens a modal; the user types a question and submits it")
	trigger := s.Slack.NewTrigger()
	sent := time.Now()
	cmd := fixture.SlashCommand("/ask", "", trigger, s.Slack.ResponseURL("demo-ask"))
	r, err := s.Send(ctx, "/slack/commands", "application/x-www-form-urlencoded", cmd)
	if err != nil {
		c.check(false, "slash command delivered: "+err.Error())
		return
	}
	say("receiver answered %d in %.1f ms", r.Status, float64(r.Latency.Microseconds())/1000)
	var view fakeslack.View
	err = devworld.WaitFor(10*time.Second, func() bool {
		var ok bool
		view, ok = s.Slack.ViewByTrigger(trigger)
		return ok
	})
	if err != nil {
		c.check(false, "the modal opened")
		return
	}
	opened := view.History[0].At.Sub(sent)
	c.check(opened < 3*time.Second, fmt.Sprintf("the modal opened %s after the command, through the queue (Slack allows 3 s)", paint(bold, fmt.Sprintf("%.0f ms", float64(opened.Microseconds())/1000))))
	submit := fixture.ViewSubmission(view.ID, view.CallbackID, view.PrivateMetadata, "question", "text", "how do retries work?")
	r, err = s.Send(ctx, "/slack/interactivity", "application/x-www-form-urlencoded", submit)
	if err != nil {
		c.check(false, "submission delivered: "+err.Error())
		return
	}
	say("receiver answered %d in %.1f ms: %s", r.Status, float64(r.Latency.Microseconds())/1000, paint(dim, strings.TrimSpace(r.Body)))
	c.check(strings.Contains(r.Body, `"response_action":"update"`), "the modal stays open with a \"working on it\" view")
	err = devworld.WaitFor(t.answerWait, func() bool {
		v, _ := s.Slack.View(view.ID)
		return len(v.History) >= 2
	})
	c.check(err == nil, "the worker answered in the modal itself (views.update by its id)")
}

func dlqDepth(ctx context.Context, s *devworld.World) int {
	n, err := s.Local.Depth(ctx, s.Local.DLQURL)
	if err != nil {
		return -1
	}
	return n
}

// The workspaces of step 9 and their channels.
const (
	demoFirstTeam          = "T0001" // the local Slack's default workspace
	demoSecondTeam         = "T0002"
	demoSecondChannel      = "C0ACME"
	demoUninstalledTeam    = "T0003"
	demoUninstalledChannel = "C0GLOBEX"
)

// secondWorkspace is step 9: a second workspace installs the app through the receiver's pages
// (the local Slack's consent page, a rotating token), and its first mention is answered with
// its own token; a workspace that never installed it gets nothing, and its event waits in the
// DLQ as not_installed.
func (t *demoTour) secondWorkspace(ts, eventID string) error {
	s, c, ctx := t.s, &t.c, t.ctx
	step("9. a second workspace, acme, installs the app (Add to Slack → Slack's consent page → back to the receiver)")
	started := time.Now()
	done, _, err := s.InstallThroughPages(ctx, demoSecondTeam, true)
	if err != nil {
		return err
	}
	c.check(done.Status == 200 && strings.Contains(done.Body, "is installed in acme"),
		fmt.Sprintf("the success page after %d ms: %q", time.Since(started).Milliseconds(), "slackrelay is installed in acme"))
	question := "who answers in acme?"
	t.want[ts] = answercheck.Answer(t.llm.answerTo(question))
	body := fixture.InTeam(fixture.AppMention(eventID, demoSecondChannel, ts, question), demoSecondTeam, "", false)
	r, err := s.Send(ctx, "/slack/events", "application/json", body)
	if err != nil {
		return err
	}
	say("acme's user mentions the bot; receiver answered %d", r.Status)
	err = devworld.WaitFor(t.answerWait, func() bool {
		return answercheck.Judge(demoSecondChannel, ts, s.Slack.RenderedThread(demoSecondChannel, ts), t.want[ts]).OK()
	})
	var by string
	for _, m := range s.Slack.RenderedThread(demoSecondChannel, ts) {
		if m.Bot {
			by = m.User
		}
	}
	c.check(err == nil && by == "UB0002", fmt.Sprintf("answered in acme by acme's own bot user (%s), with the token its install stored", by))

	other := fmt.Sprintf("%s.%s", strings.Split(ts, ".")[0], "000600")
	body = fixture.InTeam(fixture.AppMention(eventID+"X", demoUninstalledChannel, other, "anyone there?"), demoUninstalledTeam, "", false)
	if _, err := s.Send(ctx, "/slack/events", "application/json", body); err != nil {
		return err
	}
	say("globex, which never installed the app, mentions it")
	var class string
	err = devworld.WaitFor(15*time.Second, func() bool {
		n, err := s.Local.Depth(ctx, s.Local.DLQURL)
		return err == nil && n > 0
	})
	if err == nil {
		class = t.dlqClassOf(eventID + "X")
	}
	quiet := true
	for _, m := range s.Slack.RenderedThread(demoUninstalledChannel, other) {
		quiet = quiet && !m.Bot
	}
	c.check(quiet && class == envelope.FailureClassNotInstalled,
		fmt.Sprintf("not answered (never with another workspace's token); in the DLQ as %q, to replay if globex installs it", class))
	return nil
}

// dlqClassOf is the failure class of the dead letter of event id ("" when there is none); it
// leaves the message in the DLQ.
func (t *demoTour) dlqClassOf(id string) string {
	resp, err := t.s.Local.SQS().ReceiveMessage(t.ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(t.s.Local.DLQURL),
		MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
	if err != nil {
		return ""
	}
	for _, m := range resp.Messages {
		env, err := envelope.Decode([]byte(aws.ToString(m.Body)))
		if err == nil && env.EventID == id {
			if a, ok := m.MessageAttributes[envelope.AttrFailureClass]; ok {
				return aws.ToString(a.StringValue)
			}
		}
	}
	return ""
}

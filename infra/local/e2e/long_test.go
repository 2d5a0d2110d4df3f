package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// longRun is the shape of TestFiveMinuteAnswer: how long Slack keeps a stream open, how long
// one invocation of the worker lasts, and how fast the model writes how much.
type longRun struct {
	name string
	// lifetime is the worker's STREAM_LIFETIME and the local Slack server's stream lifetime.
	lifetime time.Duration
	// invocation is the worker's HANDLER_TIMEOUT: the local poller's invocation deadline.
	invocation time.Duration
	// pace is the local LLM's: its answer spans about lifetime.
	pace fakellm.Pace
}

// The two shapes of TestFiveMinuteAnswer. Both answer 1,500 tokens (about 8,000 characters:
// one message's worth, so only Slack's stream window, never the message size, makes the
// answer take a second message) in about one stream lifetime, with invocations a fifth of it.
var (
	// fullLength is the case: a 5-minute answer, 60 s invocations, Slack's 5-minute
	// stream window.
	fullLength = longRun{name: "full length", lifetime: 5 * time.Minute, invocation: time.Minute,
		pace: fakellm.Pace{FirstToken: 200 * time.Millisecond, TokensPerSecond: 5, AnswerTokens: 1500}}
	// timeScaled is fullLength at a fifth of the time: a 1-minute answer, 12 s invocations, a
	// 1-minute stream window.
	timeScaled = longRun{name: "time-scaled 1/5", lifetime: time.Minute, invocation: 12 * time.Second,
		pace: fakellm.Pace{FirstToken: 200 * time.Millisecond, TokensPerSecond: 25, AnswerTokens: 1500}}
)

// EnvLong chooses TestFiveMinuteAnswer's shape: the full length (the default, about 5 minutes,
// overlapping the rest of the suite) or, with SLACKRELAY_LONG=0, the time-scaled version
// (about a minute), for a quick run of the suite.
const EnvLong = "SLACKRELAY_LONG"

// longAnswer is TestFiveMinuteAnswer's run: started by TestMain before the other tests, so
// that the model's minutes overlap the whole suite, and judged by the test.
var longAnswer struct {
	run   longRun
	stack *devworld.World
	logs  logbuf.Buffer
	ts    string
	sent  time.Time
	err   error
}

// startLongAnswer starts the long-answer stack and sends its mention.
func startLongAnswer(ctx context.Context) {
	l := &longAnswer
	l.run = fullLength
	if os.Getenv(EnvLong) == "0" {
		l.run = timeScaled
	}
	l.stack, l.err = devworld.Start(ctx, devworld.Options{
		Bins: bins, HandlerTimeout: l.run.invocation, MaxReceiveCount: 4, BackoffBase: time.Second, LogOut: &l.logs,
		LocalLLM: &fakellm.Options{Pace: l.run.pace},
		WorkerEnv: []string{
			workerconfig.EnvStreamLifetime + "=" + l.run.lifetime.String(),
			assistant.EnvLLMPrefill + "=continue",
		},
	})
	if l.err != nil {
		return
	}
	l.stack.Slack.SetStreamLifetime(l.run.lifetime)
	id, ts := event()
	l.ts, l.sent = ts, time.Now()
	r, err := l.stack.Send(ctx, "/slack/events", "application/json", fixture.AppMention(id, "C1", ts, "tell me everything about queues"))
	switch {
	case err != nil:
		l.err = fmt.Errorf("the long answer's mention: %w", err)
	case r.Status != 202:
		l.err = fmt.Errorf("the long answer's mention: status %d, want 202", r.Status)
	}
}

// 14. An answer longer than an invocation and than Slack's stream window: the model takes about
// a stream lifetime to write it, each invocation a fifth of that. Each invocation streams until
// near its deadline, checkpoints and hands over to a continuation (a copy of the message on
// the events queue), which asks the model to continue the recorded text (LLM_PREFILL=continue,
// which the local LLM server honours); the message nearing Slack's window is stopped and the
// answer goes on in a new message. Judged by what a client shows: the thread holds exactly
// the local LLM's answer, once, in order, across its messages, none left streaming, the
// Regenerate and feedback buttons once, under the last one; and by the records: every
// continuation asked the model for the rest of the text shown, never for any of it again.
//
// By default it is the full length (a 5-minute answer, 60 s invocations, Slack's
// 5-minute window); SLACKRELAY_LONG=0 runs it time-scaled (a 1-minute answer, 12 s
// invocations, a 1-minute window: the same ratios). TestMain starts its stack and sends the
// mention before any test, so the model's minutes overlap the whole suite; the test waits for
// the answer and judges it (docs/benchmarks.md has both shapes' figures).
func TestFiveMinuteAnswer(t *testing.T) {
	localawstest.Require(t, stackErr)
	l := &longAnswer
	if l.err != nil {
		t.Fatalf("the long-answer stack: %v", l.err)
	}
	run, s, ts, sent := l.run, l.stack, l.ts, l.sent
	logsOnFailure(t, &l.logs, 30000)
	logs := &l.logs
	t.Parallel()

	within := 2*run.lifetime + time.Minute
	err := waitEvery(time.Second, within, func() bool {
		msgs := botMessages(s, "C1", ts)
		return len(msgs) > 0 && !slices.ContainsFunc(msgs, func(m fakeslack.Rendered) bool { return m.Streaming }) &&
			len(msgs[len(msgs)-1].Actions) > 0
	})
	if err != nil {
		t.Fatalf("the answer was not finished within %v (%s); the bot's messages: %+v", within, run.name, summary(botMessages(s, "C1", ts)))
	}
	err = waitEvery(200*time.Millisecond, 10*time.Second, func() bool {
		return depth(t, s, s.Local.QueueURL) == 0 && depth(t, s, s.Local.DLQURL) == 0
	})
	if err != nil {
		t.Fatalf("queue depth %d, DLQ depth %d after the answer; want both empty", depth(t, s, s.Local.QueueURL), depth(t, s, s.Local.DLQURL))
	}

	// What a person reads: the local LLM's answer, whole, once, in order.
	reqs := s.LLM.Requests()
	if len(reqs) == 0 || reqs[0].Continued != nil {
		t.Fatalf("the local LLM's first request: %+v; want a new answer", reqs)
	}
	want := s.LLM.AnswerText(reqs[0].Messages, reqs[0].MaxTokens)
	v := answercheck.Judge("C1", ts, s.Slack.RenderedThread("C1", ts), answercheck.Answer(want))
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	msgs := v.Messages
	if v.Text != want { // a stream's messages are not trimmed: the text joins exactly
		t.Fatalf("the thread reads (%d characters in %d messages):\n%s\nwant the local LLM's answer (%d characters):\n%s\nfirst difference at character %d",
			utf8.RuneCountInString(v.Text), len(msgs), v.Text, utf8.RuneCountInString(want), want, firstDifference(v.Text, want))
	}

	// Slack's window: every message was stopped by the worker before it, none by Slack.
	streams := s.Slack.Streams()
	if len(streams) != len(msgs) || s.Slack.Calls("chat.startStream") != len(msgs) {
		t.Errorf("%d streams, %d chat.startStream calls for %d messages; want one stream per message", len(streams), s.Slack.Calls("chat.startStream"), len(msgs))
	}
	for i, st := range streams {
		if st.EndedBy != "chat.stopStream" || st.StoppedAt.Sub(st.StartedAt) >= run.lifetime {
			t.Errorf("stream %d of %d ended by %q after %v; want chat.stopStream before the %v window", i+1, len(streams), st.EndedBy, st.StoppedAt.Sub(st.StartedAt), run.lifetime)
		}
	}
	if len(msgs) < 2 {
		t.Errorf("the answer took %d message; streaming for about %v it must outlive the first message's %v window and go on in a new one", len(msgs), run.pace.Span(run.pace.AnswerTokens), run.lifetime)
	}
	if n := s.Slack.Calls("chat.update"); n != 0 {
		t.Errorf("chat.update called %d times; nothing was uncertain, so no message should have been set whole", n)
	}

	// The records: one delivery per invocation, each asking the model once; every
	// continuation asked for the rest of what was shown (prefill), so no shown text was
	// written twice.
	w := workerLog(t, logs.String())
	continuations, resumed := w.count("continues in a new delivery"), w.ints("resuming an answer an earlier attempt began", "chars")
	if w.count("processed") != 1 || continuations == 0 || len(resumed) != continuations || len(reqs) != continuations+1 {
		t.Errorf("%d processed, %d continuations, %d resumed attempts, %d model requests; want 1 processed, and one resumed attempt and one model request per continuation (+1)",
			w.count("processed"), continuations, len(resumed), len(reqs))
	}
	if n := w.count("transient failure; retrying with backoff") + w.count("permanent failure; moving to the DLQ"); n != 0 {
		t.Errorf("%d attempts failed; want every invocation to end by continuing, the last by finishing", n)
	}
	regenerated := 0
	for k, r := range reqs[1:] {
		c := r.Continued
		if c == nil || c.Via != fakellm.ViaContinueFinalMessage || c.NotAPrefix {
			t.Errorf("model request %d: continued %+v; want a continue_final_message prefill of the answer's beginning", k+2, c)
			continue
		}
		if k >= len(resumed) {
			break
		}
		// The worker sends what it showed less trailing whitespace, which the model writes again.
		head := string([]rune(want)[:min(resumed[k], utf8.RuneCountInString(want))])
		if trimmed := utf8.RuneCountInString(strings.TrimRightFunc(head, unicode.IsSpace)); c.Chars != trimmed {
			t.Errorf("continuation %d: the model was given %d characters; the attempt resumed from %d shown (%d without trailing whitespace)", k+1, c.Chars, resumed[k], trimmed)
		}
		regenerated += resumed[k] - c.Chars
		if k > 0 && resumed[k] <= resumed[k-1] {
			t.Errorf("continuation %d resumed from %d characters, continuation %d from %d: an invocation added nothing", k+1, resumed[k], k, resumed[k-1])
		}
	}

	var took time.Duration // from the request to the last chat.stopStream
	perMessage := make([]string, len(streams))
	for i, st := range streams {
		took = max(took, st.StoppedAt.Sub(sent))
		perMessage[i] = fmt.Sprintf("%d chars, stopped %v after its start", utf8.RuneCountInString(st.Text), st.StoppedAt.Sub(st.StartedAt).Round(100*time.Millisecond))
	}
	t.Logf("%s: %d characters answered in %v (request → last chat.stopStream; the model alone %v); %d deliveries (%d continuations), %d model requests; %d messages [%s]; %d characters written again by the model (trailing whitespace of the prefills)",
		run.name, utf8.RuneCountInString(want), took.Round(100*time.Millisecond), run.pace.Span(run.pace.AnswerTokens), continuations+1, continuations, len(reqs),
		len(msgs), strings.Join(perMessage, "; "), regenerated)
}

// waitEvery polls cond every interval until it is true or timeout passes (devworld.WaitFor
// polls every 50 ms: too often for minutes of waiting beside the rest of the suite).
func waitEvery(interval, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(interval)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return devworld.ErrTimeout
		}
		<-t.C
	}
	return nil
}

// botMessages is the bot's messages in the thread ts of channel, as a client shows them.
func botMessages(s *devworld.World, channel, ts string) []fakeslack.Rendered {
	var out []fakeslack.Rendered
	for _, m := range s.Slack.RenderedThread(channel, ts) {
		if m.Bot && m.TS != ts {
			out = append(out, m)
		}
	}
	return out
}

// summary describes rendered messages without their whole text.
func summary(msgs []fakeslack.Rendered) string {
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = fmt.Sprintf("{ts %s, %d chars, streaming %v, actions %q}", m.TS, utf8.RuneCountInString(m.Text), m.Streaming, m.Actions)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// firstDifference is the index of the first character where a and b differ.
func firstDifference(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	for i := range min(len(ra), len(rb)) {
		if ra[i] != rb[i] {
			return i
		}
	}
	return min(len(ra), len(rb))
}

// workerLines are the worker's JSON log lines as devworld copies them to LogOut
// ("worker   {…}").
type workerLines []map[string]any

func workerLog(t *testing.T, logs string) workerLines {
	t.Helper()
	var out workerLines
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, rest, _ := strings.Cut(sc.Text(), " ")
		if name != "worker" {
			continue
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(rest)), &line); err != nil {
			t.Fatalf("a worker log line is not JSON: %v: %s", err, rest)
		}
		out = append(out, line)
	}
	return out
}

// count is how many lines have the message msg.
func (w workerLines) count(msg string) int {
	n := 0
	for _, l := range w {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

// ints is the number field of every line with the message msg, in order.
func (w workerLines) ints(msg, field string) []int {
	var out []int
	for _, l := range w {
		if v, ok := l[field].(float64); ok && l["msg"] == msg {
			out = append(out, int(v))
		}
	}
	return out
}

package e2e

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
)

// bedrockPace is the Bedrock stand-in's pace: 80 tokens at 20 a second after 200 ms, an
// answer streamed for 4 s, as streamPace.
var bedrockPace = fakebedrock.Pace{FirstToken: 200 * time.Millisecond, TokensPerSecond: 20, AnswerTokens: 80}

// bedrockInvocation is the Bedrock stack's invocation deadline: its stream may run until 1 s
// (a tenth) and relay.DefaultYieldBefore (3 s) before it, 6 s, so an answer at bedrockPace
// fits one invocation with 2 s to spare and the worker asks the model once per answer (the
// worker's default LLM_PREFILL=off would regenerate a continuation at the same pace).
const bedrockInvocation = 10 * time.Second

// 17. The Bedrock path whole: the real binaries, the worker's Bedrock client
// (LLM_PROVIDER=bedrock, as devworld and LOCAL_LLM=bedrock set it up) against the local
// ConverseStream stand-in, which speaks the service's event-stream wire format. Its own stack,
// its subtests in order:
//   - a mention answered once, streamed (chat.startStream, appends, chat.stopStream), the
//     request as the worker's settings say (model, signed for its region, maxTokens, system
//     prompt, the question);
//   - the first call throttled (HTTP 429 ThrottlingException): no Slack call for it, the
//     worker's retry answered once;
//   - the worker SIGKILLed mid-answer and restarted with LLM_PREFILL=continue: the redelivery
//     sends what was shown as a final assistant message, the stand-in continues it, and the
//     answer is finished once in the same message.
func TestBedrock(t *testing.T) {
	localawstest.Require(t, stackErr)
	var blogs logbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	s, err := devworld.Start(ctx, devworld.Options{
		Bins: bins, HandlerTimeout: bedrockInvocation, MaxReceiveCount: 4, BackoffBase: time.Second, LogOut: &blogs,
		LocalBedrock: &fakebedrock.Options{Pace: bedrockPace},
	})
	cancel()
	if err != nil {
		t.Fatalf("the Bedrock stack: %v", err)
	}
	t.Cleanup(s.Stop)
	logsOnFailure(t, &blogs, 20000)
	setup := func(t *testing.T) {
		t.Helper()
		s.Slack.Reset()
		s.Bedrock.Reset()
	}

	t.Run("a mention answered once, streamed", func(t *testing.T) {
		setup(t)
		id, ts := event()
		question := "what does bedrock stream?"
		if r := mention(t, s, fixture.AppMention(id, "C1", ts, question)); r.Status != 202 {
			t.Fatalf("mention: status %d, want 202", r.Status)
		}
		want, reqs := bedrockAnswer(t, s, 1)
		st := oneStream(t, s, settleBedrock(t, s, ts, want))
		if st.Count("chat.appendStream") < 2 {
			t.Errorf("the stream had %d appends, want at least 2 (4 s of answer, appended about once a second)", st.Count("chat.appendStream"))
		}
		if reqs = s.Bedrock.Requests(); len(reqs) != 1 {
			t.Fatalf("the stand-in got %d requests, want 1: %+v", len(reqs), reqs)
		}
		r := reqs[0]
		if r.ModelID != devworld.LocalBedrockModel || r.Region != devworld.LocalBedrockRegion || r.Status != http.StatusOK || r.Fault != "" || r.Prefill != nil {
			t.Errorf("the request: model %q, region %q, status %d, fault %q, prefill %+v; want %s signed for %s, 200, no fault, no prefill",
				r.ModelID, r.Region, r.Status, r.Fault, r.Prefill, devworld.LocalBedrockModel, devworld.LocalBedrockRegion)
		}
		if r.MaxTokens == nil || *r.MaxTokens != 4096 || len(r.System) == 0 {
			t.Errorf("the request's maxTokens %v, system %q; want the worker's LLM_MAX_TOKENS default (4096) and its system prompt", r.MaxTokens, r.System)
		}
		if len(r.Messages) != 1 || r.Messages[0].Role != "user" || !slices.Equal(r.Messages[0].Texts, []string{question}) {
			t.Errorf("the request's messages = %+v, want the question alone, the user's", r.Messages)
		}
	})

	t.Run("throttled on the first call, then answered once", func(t *testing.T) {
		setup(t)
		s.Bedrock.ThrottleNext(1, 0)
		id, ts := event()
		sent := time.Now()
		if r := mention(t, s, fixture.AppMention(id, "C1", ts, "answer after a throttle")); r.Status != 202 {
			t.Fatalf("mention: status %d, want 202", r.Status)
		}
		want, _ := bedrockAnswer(t, s, 2)
		oneStream(t, s, settleBedrock(t, s, ts, want))
		reqs := s.Bedrock.Requests()
		if len(reqs) != 2 {
			t.Fatalf("the stand-in got %d requests, want 2 (the throttled one and the retry): %+v", len(reqs), reqs)
		}
		if r := reqs[0]; r.Fault != fakebedrock.FaultThrottle || r.Status != http.StatusTooManyRequests || r.Exception != fakebedrock.ThrottlingException {
			t.Errorf("the first request: fault %q, status %d, exception %q; want throttle, 429, %s", r.Fault, r.Status, r.Exception, fakebedrock.ThrottlingException)
		}
		if r := reqs[1]; r.Fault != "" || r.Status != http.StatusOK || r.Prefill != nil {
			t.Errorf("the retry: fault %q, status %d, prefill %+v; want none, 200, none", r.Fault, r.Status, r.Prefill)
		}
		// The Bedrock client's own retries are off: the retry is the worker's, a delivery later
		// (the queue's backoff), not an SDK retry a few milliseconds after the refusal.
		if gap := reqs[1].At.Sub(reqs[0].At); gap < 500*time.Millisecond {
			t.Errorf("the retry came %v after the throttled call, want the worker's backoff (BACKOFF_BASE 1s: the message comes back a second later)", gap)
		}
		t.Logf("throttled %v after the mention, retried %v later, answered once %v after the mention",
			reqs[0].At.Sub(sent).Round(time.Millisecond), reqs[1].At.Sub(reqs[0].At).Round(time.Millisecond), time.Since(sent).Round(time.Millisecond))
	})

	t.Run("the worker killed mid-answer, the answer finished once in the same message", func(t *testing.T) {
		setup(t)
		id, ts := event()
		sent := time.Now()
		if r := mention(t, s, fixture.AppMention(id, "C1", ts, "stream through a crash on bedrock")); r.Status != 202 {
			t.Fatalf("mention: status %d, want 202", r.Status)
		}
		st := killMidStream(t, s, "C1")
		killed := time.Since(sent)
		partial := st.Text
		want, _ := bedrockAnswer(t, s, 1)
		if !strings.HasPrefix(want, partial) || len(partial) >= len(want) {
			t.Fatalf("at the kill the stream held %q; want a strict beginning of the answer %q", partial, want)
		}
		// The restarted worker continues by prefill: what was shown goes to Bedrock as the
		// assistant's final message, which Anthropic's models (and the stand-in) continue.
		if err := s.StartWorker(context.Background(), assistant.EnvLLMPrefill+"=continue"); err != nil {
			t.Fatal(err)
		}
		// Redelivery after the visibility timeout (the invocation + 2 s) and the killed
		// attempt's lease.
		got := settleBedrock(t, s, ts, want)
		done := time.Since(sent)
		if len(got) != 1 || got[0].TS != st.TS {
			t.Fatalf("the bot's messages in the thread: %+v; want exactly the stream %s", got, st.TS)
		}
		oneStream(t, s, got)
		reqs := s.Bedrock.Requests()
		if len(reqs) != 2 {
			t.Fatalf("the stand-in got %d requests, want 2 (the killed attempt's and the redelivery's): %+v", len(reqs), reqs)
		}
		if p := reqs[1].Prefill; p == nil || p.NotAPrefix || p.Chars == 0 {
			t.Errorf("the redelivery's request continued %+v; want a prefill of the answer's beginning", p)
		}
		if d := depth(t, s, s.Local.DLQURL); d != 0 {
			t.Fatalf("DLQ depth %d; want it empty", d)
		}
		t.Logf("killed %v after the request, %d appends in (%d of %d characters visible); the redelivery continued %d characters and finished the message once %v after the request",
			killed.Round(time.Millisecond), st.Count("chat.appendStream"), len(partial), len(want), reqs[1].Prefill.Chars, done.Round(time.Millisecond))
	})
}

// bedrockAnswer waits until the Bedrock stand-in has recorded n requests and returns the
// answer to its first (the conversation's whole answer, as long as the request let it be).
func bedrockAnswer(t *testing.T, s *devworld.World, n int) (string, []fakebedrock.Request) {
	t.Helper()
	if err := devworld.WaitFor(15*time.Second, func() bool { return len(s.Bedrock.Requests()) >= n }); err != nil {
		t.Fatalf("the Bedrock stand-in got %d requests within 15 s, want %d", len(s.Bedrock.Requests()), n)
	}
	reqs := s.Bedrock.Requests()
	maxTokens := 0
	if reqs[0].MaxTokens != nil {
		maxTokens = *reqs[0].MaxTokens
	}
	return s.Bedrock.AnswerText(reqs[0].Messages, maxTokens), reqs
}

// settleBedrock waits until the thread ts of C1 shows want once, as a client renders it, and
// every copy of its event is handled, and returns the bot's messages there.
func settleBedrock(t *testing.T, s *devworld.World, ts, want string) []fakeslack.Rendered {
	t.Helper()
	return settle(t, s, "C1", ts, answercheck.Answer(want), bedrockInvocation+15*time.Second).Messages
}

// oneStream checks that the answer (the bot's messages got) is the one stream started since
// the Slack server's reset, stopped by chat.stopStream, and returns it.
func oneStream(t *testing.T, s *devworld.World, got []fakeslack.Rendered) fakeslack.Stream {
	t.Helper()
	streams := s.Slack.Streams()
	if n := s.Slack.Calls("chat.startStream"); n != 1 || len(got) != 1 || len(streams) != 1 || streams[0].TS != got[0].TS ||
		streams[0].EndedBy != "chat.stopStream" {
		t.Fatalf("chat.startStream called %d times; the bot's messages %+v, the streams %+v; want one message, the one stream, stopped by chat.stopStream",
			n, got, streams)
	}
	return streams[0]
}

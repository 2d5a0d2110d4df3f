package e2e

import (
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/shared/fixture"
)

// The two tests below reproduce, with the real binaries, a bug the e2e soak found (as did the
// crash sweep and the interleaving test), fixed since: a Release after a Slack call that took
// effect but whose answer was lost wrote the step back as it was before that call
// (journal.Lease.Save kept an older deferred copy of the step it wrote), so the next attempt
// took the call as never made and repeated its text.

// 15. Slack applies chat.stopStream (the answer's last text and its buttons) and its answer
// is lost: the attempt fails, and the next one must find the answer's last call pending and
// finish the same message (stopped, set whole with the recorded text): one message, the
// answer once.
func TestStopStreamAnswerLost(t *testing.T) {
	s := setup(t)
	s.Slack.LoseResponseNext("chat.stopStream", 1)
	id, ts := event()
	if r := mention(t, s, fixture.AppMention(id, "C1", ts, "stop lost")); r.Status != 202 {
		t.Fatalf("mention: status %d, want 202", r.Status)
	}
	settle(t, s, "C1", ts, answerTo(t, "stop lost"), 15*time.Second)
}

// 16. Slack applies a chat.appendStream and its answer is lost, mid-answer: the next attempt
// must take the appended text as possibly shown (stop the stream, set it whole with the
// recorded text) and finish the answer in that message, once.
func TestAppendStreamAnswerLost(t *testing.T) {
	s := streamSetup(t)
	s.Slack.LoseResponseNext("chat.appendStream", 1)
	id, ts := event()
	if r := mention(t, s, fixture.AppMention(id, "C1", ts, "append lost")); r.Status != 202 {
		t.Fatalf("mention: status %d, want 202", r.Status)
	}
	// Once the append whose answer is lost was sent, the model answers the retry at once:
	// what is tested is how the retry takes up the stream, not the model's second run (at
	// streamPace an answer outlasts this stack's invocation, see TestWorkerKilledMidStream).
	err := devworld.WaitFor(10*time.Second, func() bool {
		streams := s.Slack.Streams()
		return len(streams) > 0 && streams[0].Count("chat.appendStream") > 0
	})
	if err != nil {
		t.Fatalf("no append within 10 s; streams: %+v", s.Slack.Streams())
	}
	pace := s.LLM.Pace()
	pace.TokensPerSecond = 0
	s.LLM.SetPace(pace)
	want, _ := expectedAnswer(t, s)
	settle(t, s, "C1", ts, answercheck.Answer(want), 20*time.Second)
}

package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
)

// The streaming tests run the worker against the local LLM server at a pace slow enough to
// watch: a stack of their own, because the worker needs a longer handler timeout than the
// reliability tests' 4 s (an answer takes about 4 s), and a longer timeout would slow every
// redelivery there.
var (
	streamOnce  sync.Once
	streamStack *devworld.World
	streamErr   error
)

// streamPace is 80 tokens at 20 a second after 200 ms: the answer streams for 4 s, and the
// worker, which flushes about once a second, starts the stream after about 1 s and appends
// about every second after that.
var streamPace = fakellm.Pace{FirstToken: 200 * time.Millisecond, TokensPerSecond: 20, AnswerTokens: 80}

// streamSetup gives a test the streaming stack, started on first use, with the Slack and LLM
// servers' records and faults cleared and the LLM at streamPace.
func streamSetup(t *testing.T) *devworld.World {
	t.Helper()
	localawstest.Require(t, stackErr)
	streamOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// The answer may outlast an invocation's streaming window (the stream yields a fifth
		// of the invocation before its end): the next delivery continues it by prefill, as
		// docs/worker.md advises for answers longer than an invocation.
		streamStack, streamErr = devworld.Start(ctx, devworld.Options{
			Bins: bins, HandlerTimeout: 8 * time.Second, MaxReceiveCount: 4, BackoffBase: time.Second, LogOut: &logs,
			LocalLLM:  &fakellm.Options{Pace: streamPace},
			WorkerEnv: []string{assistant.EnvLLMPrefill + "=continue"},
		})
	})
	if streamErr != nil {
		t.Fatalf("the streaming stack: %v", streamErr)
	}
	streamStack.Slack.Reset()
	streamStack.LLM.Reset()
	logsOnFailure(t, &logs, 20000)
	return streamStack
}

// expectedAnswer is what the local LLM answers the first request it recorded.
func expectedAnswer(t *testing.T, s *devworld.World) (string, []fakellm.Request) {
	t.Helper()
	reqs := s.LLM.Requests()
	if len(reqs) == 0 {
		t.Fatal("the local LLM received no request")
	}
	return s.LLM.AnswerText(reqs[0].Messages, reqs[0].MaxTokens), reqs
}

// killMidStream waits for the first stream in channel to have 2 appends, SIGKILLs the worker
// and returns the stream as the kill left it (still streaming).
func killMidStream(t *testing.T, s *devworld.World, channel string) fakeslack.Stream {
	t.Helper()
	var st fakeslack.Stream
	err := devworld.WaitFor(10*time.Second, func() bool {
		streams := s.Slack.Streams()
		if len(streams) == 0 {
			return false
		}
		st = streams[0]
		return st.Count("chat.appendStream") >= 2
	})
	if err != nil {
		t.Fatalf("no stream with 2 appends within 10 s; streams: %+v", s.Slack.Streams())
	}
	s.KillWorker()
	st, _ = s.Slack.Stream(channel, st.TS)
	if st.State != fakeslack.Streaming {
		t.Fatalf("the stream ended before the kill: %+v; the pace leaves it more than a second to go", st)
	}
	return st
}

// 12. The worker SIGKILLed mid-stream, after the stream started and a few appends landed: the
// redelivery runs the model again and finishes that same message with the whole answer. One
// message in the thread, finished, complete; no second stream; nothing dead-lettered.
func TestWorkerKilledMidStream(t *testing.T) {
	s := streamSetup(t)
	id, ts := event()
	sent := time.Now()
	if r := mention(t, s, fixture.AppMention(id, "C1", ts, "stream through a crash")); r.Status != 202 {
		t.Fatalf("mention: status %d, want 202", r.Status)
	}
	st := killMidStream(t, s, "C1")
	killed := time.Since(sent)
	partial := st.Text
	// What is tested is the redelivery finishing the message, not the model's second run:
	// let the model give the same answer at once.
	pace := s.LLM.Pace()
	pace.TokensPerSecond = 0
	s.LLM.SetPace(pace)
	if err := s.StartWorker(context.Background()); err != nil {
		t.Fatal(err)
	}
	want, _ := expectedAnswer(t, s)
	if !strings.HasPrefix(want, partial) || len(partial) >= len(want) {
		t.Fatalf("at the kill the stream held %q; want a strict beginning of the answer %q", partial, want)
	}
	// Redelivery after the visibility timeout (handler timeout + 2 s) and the killed
	// attempt's lease; then the thread as a client renders it: the whole answer, once, its
	// buttons under it.
	_, err := answercheck.Await(context.Background(), answercheck.InProcess{Server: s.Slack}, "C1", ts, answercheck.Answer(want), 20*time.Second)
	if err != nil {
		t.Fatalf("within 20 s of the kill: %v", err)
	}
	done := time.Since(sent)
	got := settle(t, s, "C1", ts, answercheck.Answer(want), 5*time.Second).Messages
	if len(got) != 1 || got[0].TS != st.TS {
		t.Fatalf("the bot's messages in the thread: %+v; want exactly the stream %s", got, st.TS)
	}
	if got[0].Metadata == nil || got[0].Metadata.EventType != "slackrelay_reply" {
		t.Errorf("the finished answer's metadata = %+v, want event_type slackrelay_reply", got[0].Metadata)
	}
	streams := s.Slack.Streams()
	if n := s.Slack.Calls("chat.startStream"); n != 1 || len(streams) != 1 {
		t.Fatalf("chat.startStream called %d times, %d streams; want 1 and 1 (no second stream)", n, len(streams))
	}
	if streams[0].EndedBy != "chat.stopStream" {
		t.Errorf("the stream ended by %q, want chat.stopStream", streams[0].EndedBy)
	}
	_, reqs := expectedAnswer(t, s)
	if len(reqs) != 2 {
		t.Errorf("the local LLM got %d requests, want 2 (the killed attempt's and the redelivery's)", len(reqs))
	}
	if d := depth(t, s, s.Local.DLQURL); d != 0 {
		t.Fatalf("DLQ depth %d; want it empty", d)
	}
	t.Logf("killed %v after the request, %d appends in (%d of %d characters visible); finished once by the redelivery %v after the request",
		killed.Round(time.Millisecond), st.Count("chat.appendStream"), len(partial), len(want), done.Round(time.Millisecond))
}

// 13. STREAMING=off: the answer is posted when its first text is ready and updated in place as
// it grows; one message, complete, no stream.
func TestAnswerWithoutStreaming(t *testing.T) {
	s := streamSetup(t)
	s.StopWorker()
	if err := s.StartWorker(context.Background(), assistant.EnvStreaming+"=off"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.StopWorker()
		if err := s.StartWorker(context.Background()); err != nil {
			t.Errorf("restarting the streaming worker: %v", err)
		}
	})
	// 60 tokens at 40 a second: the first text is posted after about a second, then updated.
	s.LLM.SetPace(fakellm.Pace{FirstToken: 200 * time.Millisecond, TokensPerSecond: 40, AnswerTokens: 60})
	// The stopped worker's last long poll may still wait at the queue server (up to its 1 s
	// POLL_WAIT); a message sent meanwhile would go to that process, which is gone, and come
	// back only after the visibility timeout. Send once it has run out.
	time.Sleep(1200 * time.Millisecond)
	id, ts := event()
	if r := mention(t, s, fixture.AppMention(id, "C1", ts, "no streaming please")); r.Status != 202 {
		t.Fatalf("mention: status %d, want 202", r.Status)
	}
	if err := devworld.WaitFor(10*time.Second, func() bool { return len(s.LLM.Requests()) > 0 }); err != nil {
		t.Fatal("the local LLM was not asked within 10 s")
	}
	want, _ := expectedAnswer(t, s)
	a := settle(t, s, "C1", ts, answercheck.Answer(want), 10*time.Second).Messages[0]
	var posts []fakeslack.Post
	for _, p := range s.Slack.PostsFor("C1") {
		if p.ThreadTS == ts {
			posts = append(posts, p)
		}
	}
	if len(posts) != 1 || posts[0].TS != a.TS || !strings.HasPrefix(want, posts[0].Text) || len(posts[0].Text) >= len(want) ||
		!s.Slack.BotReplies("C1", ts)[0].Edited {
		t.Fatalf("posts in the thread: %+v; want one, the answer's beginning, later updated (edited) to the whole", posts)
	}
	if n, streams := s.Slack.Calls("chat.startStream"), s.Slack.Streams(); n != 0 || len(streams) != 0 {
		t.Errorf("chat.startStream called %d times (%d streams) with STREAMING=off, want 0", n, len(streams))
	}
	if n := s.Slack.Calls("chat.update"); n < 2 {
		t.Errorf("chat.update called %d times; want at least 2 (the answer growing, then finished with its buttons)", n)
	}
}

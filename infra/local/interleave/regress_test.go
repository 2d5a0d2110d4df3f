package interleave

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/awstest"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/engine"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// The bugs this suite found, fixed since, each kept as a regression test: the seeds that
// met them, played strictly, and a minimal case of each through the engine (the journal is
// internal to the worker module: the first bug's case on the journal alone, a Save
// superseding a deferred value of its step, is for worker/internal/journal's own tests).
//
//   - A stale deferred step: journal.Lease.Save(name, v) wrote v but left an older value of
//     the same step deferred, and the Release after a failed call wrote it back over v. A call
//     to Slack whose answer was lost after its intent was saved (a reply's second part, an
//     append to a stream) was then recorded as never sent and sent again: text shown twice.
//     Seeds 24 and 50 (a chat.appendStream), 35 (a reply's second chat.postMessage).
//   - A stream marked complete before its text: relay.Stream.Finish marked the answer
//     complete before the rest of the buffer was in a message, so an attempt that ended
//     while an answer longer than one message was being finished left a record saying
//     complete without the rest, and the next attempt finished a cut answer. Seed 47; seed
//     282 met both.
var regressionSeeds = []uint64{24, 35, 47, 50, 282}

// TestSeedsThatFoundBugs replays the schedules that found the bugs above.
func TestSeedsThatFoundBugs(t *testing.T) {
	t.Parallel()
	w := newWorker(t, newHarness(t, localawstest.Stack(t)))
	for _, seed := range regressionSeeds {
		s, err := w.play(seed)
		if err != nil || len(s.violations) > 0 {
			t.Error(s.report(err))
		}
	}
}

// The worker end to end: a two-part reply whose second chat.postMessage took effect but lost
// its answer must not show the second part twice once the message comes back.
func TestReplyPartWhoseAnswerIsLostIsNotPostedAgain(t *testing.T) {
	t.Parallel()
	f := newBugFixture(t, "CBUG1")
	answer := words("r", 700) // two messages
	relay.Event(f.bot, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		_, err := req.Reply(ctx, answer, relay.WithBlocks(button()))
		return err
	})
	f.lose = map[int]bool{2: true} // part 2's answer is lost
	if out := f.receive(t, 1); len(out.BatchItemFailures) != 1 {
		t.Fatalf("the first receive: %+v, want it to fail on the lost answer", out)
	}
	if out := f.receive(t, 2); len(out.BatchItemFailures) != 0 {
		t.Fatalf("the second receive: %+v, want it to finish", out)
	}
	var firsts []string
	for _, r := range f.slack.RenderedThread(f.channel, f.thread) {
		if r.Bot {
			firsts = append(firsts, strings.Fields(r.Text)[0])
		}
	}
	if len(firsts) != 2 {
		t.Errorf("the thread shows %d bot messages, starting with %v; want the two parts once", len(firsts), firsts)
	}
}

// The engine with its journal on DynamoDB: an answer longer than one message whose first
// message's chat.stopStream fails must be finished whole by the next attempt.
func TestStreamIsNotRecordedCompleteWithoutItsRest(t *testing.T) {
	t.Parallel()
	f := newBugFixture(t, "CBUG2")
	answer := words("l", 2000) // 12,000 characters: two messages
	relay.Event(f.bot, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		w, err := req.Stream(ctx, relay.StreamOptions{FlushChars: 3000, FlushEvery: time.Hour})
		if err != nil || w.Done() {
			return err
		}
		if !w.Complete() {
			rest, _ := strings.CutPrefix(answer, w.Text())
			for len(rest) > 0 {
				n := min(1000, len(rest))
				if err := w.Append(ctx, rest[:n]); err != nil {
					return err
				}
				rest = rest[n:]
			}
		}
		_, err = w.Finish(ctx, button())
		return err
	})
	// The first message is full; stopping it (to go on in a second one) fails.
	f.slack.FailNext("chat.stopStream", 1, "internal_error")
	if out := f.receive(t, 1); len(out.BatchItemFailures) != 1 {
		t.Fatalf("the first receive: %+v, want it to fail on chat.stopStream", out)
	}
	if out := f.receive(t, 2); len(out.BatchItemFailures) != 0 {
		t.Fatalf("the second receive: %+v, want it to finish", out)
	}
	var got strings.Builder
	for _, r := range f.slack.RenderedThread(f.channel, f.thread) {
		if r.Bot && r.TS != f.thread {
			got.WriteString(r.Text)
		}
	}
	if g, w := squeeze(got.String()), squeeze(answer); g != w {
		t.Errorf("the thread shows %d of the answer's %d characters", len(g), len(w))
	}
}

// bugFixture is a worker on the local dynalite and a local Slack, without the scheduler.
type bugFixture struct {
	bot             *relay.Router
	proc            *engine.Engine
	slack           *fakeslack.Server
	channel, thread string
	env             envelope.Envelope
	posts           int
	lose            map[int]bool // chat.postMessage calls (1-based) whose answer is lost
}

// newBugFixture makes the fixture, its thread in channel, on a fresh table.
func newBugFixture(t *testing.T, channel string) *bugFixture {
	t.Helper()
	ctx := context.Background()
	stack := localawstest.Stack(t)
	table := fmt.Sprintf("interleave-bug-%d", tables.Add(1))
	if err := awstest.CreateTable(ctx, stack.DynamoDB(), table); err != nil {
		t.Fatal(err)
	}
	f := &bugFixture{bot: relay.NewRouter(), slack: fakeslack.New(fakeslack.Options{}), channel: channel, thread: "1700000000.000100"}
	if _, err := f.slack.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.slack.Close() })
	if _, err := f.slack.AddUserMessage(userMessage(f.channel, f.thread)); err != nil {
		t.Fatal(err)
	}
	client := slack.New("xoxb-bug", slack.OptionAPIURL(f.slack.APIURL()), slack.OptionHTTPClient(f))
	proc, err := engine.New(engine.Config{
		Router: f.bot,
		Slack:  func(context.Context, engine.Tenant) (*slack.Client, error) { return client, nil },
		Identity: func(context.Context, engine.Tenant) (engine.Identity, error) {
			return engine.Identity{UserID: "UBOT", BotID: "BBOT"}, nil
		},
		DynamoDB: stack.DynamoDB(), Table: table,
		Queue: discardQueue{}, QueueURL: eventsQueueURL, DLQURL: dlqURL, MaxReceiveCount: maxReceiveCount,
		BackoffBase: time.Second, BackoffMax: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.proc = proc
	f.env = envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindEvent, EventType: "app_mention",
		DedupeKey: "unused", ReceivedAt: time.Now().UTC(), ContentType: envelope.ContentTypeJSON,
		Body: fixture.AppMention("Ev"+channel, f.channel, f.thread, "answer me")}
	return f
}

// Do is the Slack client's HTTP: it loses the answers f.lose names.
func (f *bugFixture) Do(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/chat.postMessage") {
		f.posts++
		if f.lose[f.posts] {
			_ = resp.Body.Close()
			return nil, errLost
		}
	}
	return resp, err
}

// receive hands the event to the engine as receive n of SQS message m1.
func (f *bugFixture) receive(t *testing.T, n int) events.SQSEventResponse {
	t.Helper()
	raw, err := json.Marshal(f.env)
	if err != nil {
		t.Fatal(err)
	}
	rec := events.SQSMessage{MessageId: "m1", ReceiptHandle: fmt.Sprint("rh", n), Body: string(raw),
		Attributes: map[string]string{"ApproximateReceiveCount": fmt.Sprint(n)}}
	out, _ := f.proc.HandleSQS(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec}})
	return out
}

// discardQueue is SQS for a test that sends nothing it reads back.
type discardQueue struct{}

var _ engine.Queue = discardQueue{}

// SendMessage sends nothing.
func (discardQueue) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return &sqs.SendMessageOutput{MessageId: aws.String("x")}, nil
}

// ChangeMessageVisibility changes nothing.
func (discardQueue) ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

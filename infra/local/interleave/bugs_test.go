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

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/infra/local/fixture"
	"github.com/slackrelay/slackrelay/infra/local/localslack"
	"github.com/slackrelay/slackrelay/infra/local/localstack"
	"github.com/slackrelay/slackrelay/infra/local/localstack/localstacktest"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/journal"
	"github.com/slackrelay/slackrelay/worker/journal/journaltest"
	"github.com/slackrelay/slackrelay/worker/processor"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// knownBug is a bug of the worker this suite found and that is not fixed yet. A schedule
// recognises it by the journal invariant it breaks (see invocation.observe and ended), so the
// schedules it spoils are reported apart (with their seeds) and do not hide new failures;
// -strict fails them too. Each has a skipped minimal test below.
type knownBug string

const (
	// bugStaleDeferred: journal.Lease.Save(name, v) writes v but leaves an older value of the
	// same step in the lease's deferred set (write keeps a deferred step unless it equals
	// what was written), and the next write of the lease — the Release after a failed call —
	// writes that older value back over v. A call to Slack whose answer is lost after its
	// intent was saved (a reply's second part, an append to a stream) is then recorded as
	// never sent, and the next attempt sends it again: the text shows twice.
	bugStaleDeferred knownBug = "stale deferred step"
	// bugCompleteTooEarly: relay.Stream.Finish marks the answer Complete before the rest of
	// the buffer is in a message; when the answer goes on in another message (it is longer
	// than relay.MaxAnswerMessageChars) the intent written for the full first message says
	// "complete" without the rest. An attempt that ends there (chat.stopStream of the full
	// message fails, or the invocation dies) leaves a record that says the whole text is
	// known, and the next attempt only finishes it: the answer is cut and marked done.
	bugCompleteTooEarly knownBug = "stream complete before its text"
)

// skipKnownBug skips a test that fails until a known bug is fixed, unless -bugs asks to run
// it (to see whether a fix holds).
func skipKnownBug(t *testing.T, why string) {
	t.Helper()
	if !*flagBugs {
		t.Skip("bug: " + why + " (run it with -bugs)")
	}
}

// known records that the schedule met bug (what it saw is in the trace).
func (s *schedule) known(bug knownBug, format string, args ...any) {
	if s.bugs == nil {
		s.bugs = map[knownBug]bool{}
	}
	s.bugs[bug] = true
	s.tracef("KNOWN BUG (%s): "+format, append([]any{bug}, args...)...)
}

// Seeds of schedules spoiled by each known bug, replayed in TestKnownBugSeeds: 35 loses the
// answer of a reply's second chat.postMessage, 24 and 50 of a chat.appendStream; 47 fails the
// chat.stopStream that ends the first message of a long answer. (282 meets both: the second
// message's post loses its answer after the first was stopped.)
var knownBugSeeds = map[knownBug][]uint64{
	bugStaleDeferred:    {24, 35, 50},
	bugCompleteTooEarly: {47},
}

// TestKnownBugSeeds replays the schedules the known bugs spoil, strictly.
func TestKnownBugSeeds(t *testing.T) {
	skipKnownBug(t, "the journal writes a stale deferred step over its intent (journal.Lease.write); relay.Stream.Finish records Complete before the text (see knownBug)")
	t.Parallel()
	w := newWorker(t, newHarness(t, localstacktest.Stack(t)))
	for bug, seeds := range knownBugSeeds {
		for _, seed := range seeds {
			s, err := w.play(seed)
			if err != nil || len(s.violations) > 0 {
				t.Errorf("%s:\n%s", bug, s.report(err))
			}
		}
	}
}

// The journal alone: a step saved after a value of it was deferred must be what the next
// receive reads.
func TestBugSaveLeavesAnOlderDeferredValueThatReleaseWritesBack(t *testing.T) {
	skipKnownBug(t, "journal.Lease.Save keeps an older deferred value of the step it writes; Release writes it back over the saved one")
	t.Parallel()
	ctx := context.Background()
	stack := localstacktest.Stack(t)
	table := fmt.Sprintf("interleave-bug-%d", tables.Add(1))
	if err := localstack.CreateTable(ctx, stack.DynamoDB(), table); err != nil {
		t.Fatal(err)
	}
	store := &journal.Store{DB: stack.DynamoDB(), Table: table}
	owner := journal.NewOwner("m1")
	c, err := store.Claim(ctx, "k", owner, time.Now().Add(time.Minute))
	if err != nil || c.Outcome != journal.Claimed {
		t.Fatalf("claim: %+v %v", c, err)
	}
	// What a part's post settles (part 1 sent), then the intent to send part 2.
	if err := c.Lease.Defer("post", "part 1 sent"); err != nil {
		t.Fatal(err)
	}
	if err := c.Lease.Save(ctx, "post", "part 2 pending"); err != nil {
		t.Fatal(err)
	}
	var now string
	if _, err := c.Lease.Load("post", &now); err != nil || now != "part 2 pending" {
		t.Errorf("after Save, Load = %q (%v), want what was saved", now, err)
	}
	// Part 2's answer is lost: the attempt fails and releases the claim.
	if err := c.Lease.Release(ctx, "post part 2/2: connection reset"); err != nil {
		t.Fatal(err)
	}
	again, err := store.Claim(ctx, "k", journal.NewOwner("m1"), time.Now().Add(time.Minute))
	if err != nil || again.Outcome != journal.Claimed {
		t.Fatalf("claim again: %+v %v", again, err)
	}
	var got string
	if _, err := again.Lease.Load("post", &got); err != nil || got != "part 2 pending" {
		t.Errorf("the next receive reads %q (%v), want the intent %q", got, err, "part 2 pending")
	}
}

// The worker end to end: a two-part reply whose second chat.postMessage took effect but lost
// its answer must not show the second part twice once the message comes back.
func TestBugReplyPartLostIsPostedAgain(t *testing.T) {
	skipKnownBug(t, "the Release after the lost part writes the stale deferred step over the part's intent (journal.Lease.write); the part is posted again")
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

// The handler library alone (the in-memory journal): an answer longer than one message whose
// first message's chat.stopStream fails must be finished whole by the next attempt.
func TestBugStreamRecordedCompleteWithoutItsRest(t *testing.T) {
	skipKnownBug(t, "relay.Stream.Finish records the answer Complete while the rest of it is still in the buffer; the next attempt finishes a cut answer")
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
	d, err := f.bot.Dispatch(context.Background(), f.rt, &f.env)
	if err != nil {
		t.Fatal(err)
	}
	lease := journaltest.New(d.Key)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The first message is full; stopping it (to go on in a second one) fails.
	f.slack.FailNext("chat.stopStream", 1, "internal_error")
	if err := d.Run(context.Background(), f.rt, lease, log); err == nil {
		t.Fatal("the first attempt did not fail")
	}
	lease.Release()
	lease.NextAttempt()
	if err := d.Run(context.Background(), f.rt, lease, log); err != nil {
		t.Fatal(err)
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
	bot             *relay.Bot
	rt              *relay.Runtime
	proc            *processor.Processor
	slack           *localslack.Server
	channel, thread string
	env             envelope.Envelope
	posts           int
	lose            map[int]bool // chat.postMessage calls (1-based) whose answer is lost
}

// newBugFixture makes the fixture, its thread in channel, on a fresh table.
func newBugFixture(t *testing.T, channel string) *bugFixture {
	t.Helper()
	ctx := context.Background()
	stack := localstacktest.Stack(t)
	table := fmt.Sprintf("interleave-bug-%d", tables.Add(1))
	if err := localstack.CreateTable(ctx, stack.DynamoDB(), table); err != nil {
		t.Fatal(err)
	}
	f := &bugFixture{bot: relay.New(), slack: localslack.New(localslack.Options{}), channel: channel, thread: "1700000000.000100"}
	if _, err := f.slack.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.slack.Close() })
	if _, err := f.slack.AddUserMessage(userMessage(f.channel, f.thread)); err != nil {
		t.Fatal(err)
	}
	client := slack.New("xoxb-bug", slack.OptionAPIURL(f.slack.APIURL()), slack.OptionHTTPClient(f))
	f.rt = &relay.Runtime{
		Slack: func(context.Context) (*slack.Client, error) { return client, nil },
		Identity: func(context.Context) (relay.Identity, error) {
			return relay.Identity{UserID: "UBOT", BotID: "BBOT"}, nil
		},
	}
	f.proc = &processor.Processor{Bot: f.bot, Runtime: f.rt, Store: &journal.Store{DB: stack.DynamoDB(), Table: table},
		Queue: discardQueue{}, QueueURL: eventsQueueURL, DLQURL: dlqURL, MaxReceiveCount: maxReceiveCount,
		BackoffBase: time.Second, BackoffMax: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
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

// receive hands the event to the processor as receive n of SQS message m1.
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

var _ processor.Queue = discardQueue{}

// SendMessage sends nothing.
func (discardQueue) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return &sqs.SendMessageOutput{MessageId: aws.String("x")}, nil
}

// ChangeMessageVisibility changes nothing.
func (discardQueue) ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

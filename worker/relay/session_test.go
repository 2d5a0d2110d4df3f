package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/worker/internal/core"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
	"github.com/slackrelay/slackrelay/worker/internal/journal"
)

// faultTransport sits between slack-go and the local Slack server. For the n-th call of a
// method (1-based) it can answer 500 without passing the call on ("fail"), or pass it on and
// then lose the answer ("lose": Slack acted, the worker cannot know).
type faultTransport struct {
	mu     sync.Mutex
	calls  map[string]int
	faults map[string]map[int]string
}

func (f *faultTransport) at(method string, n int, what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults[method] == nil {
		f.faults[method] = map[int]string{}
	}
	f.faults[method][n] = what
}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	method := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
	f.mu.Lock()
	f.calls[method]++
	what := f.faults[method][f.calls[method]]
	f.mu.Unlock()
	switch what {
	case "fail":
		return &http.Response{StatusCode: 500, Status: "500 Internal Server Error", Body: io.NopCloser(strings.NewReader("oops")),
			Header: http.Header{}, Request: req}, nil
	case "lose":
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return nil, errors.New("connection reset after the request was sent")
	}
	return http.DefaultTransport.RoundTrip(req)
}

const testToken = "xoxb-relay-test"

type fixture struct {
	slack  *fakeslack.Server
	faults *faultTransport
	rt     *core.Services
	// The event's journal is the in-memory one the test helper uses: each attempt claims it as
	// a new receive of the same SQS message would.
	mem   *journal.Memory
	key   string
	lease *journal.Lease

	mu        sync.Mutex
	saves     int              // step writes attempted over the event's life
	failWrite func(n int) bool // fails the n-th step write (1-based, over the event's life); reset by the next attempt
}

const (
	testChannel = "C0CHAN"
	testTS      = "1515449522.000016"
)

func setup(t *testing.T) *fixture {
	t.Helper()
	srv := fakeslack.New(fakeslack.Options{Token: testToken})
	if _, err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	faults := &faultTransport{calls: map[string]int{}, faults: map[string]map[int]string{}}
	client := slack.New(testToken, slack.OptionAPIURL(srv.APIURL()), slack.OptionHTTPClient(&http.Client{Transport: faults}))
	rt := &core.Services{
		Slack:               func(context.Context, core.Tenant) (*slack.Client, error) { return client, nil },
		HTTP:                &http.Client{Transport: faults},
		ResponseURLPrefixes: []string{strings.TrimSuffix(srv.ResponseURL("x"), "x")},
	}
	rt.Identity = func(context.Context, core.Tenant) (core.Identity, error) {
		return core.Identity{UserID: "UBOT", BotID: "BBOT"}, nil
	}
	f := &fixture{slack: srv, faults: faults, rt: rt, key: "msg:T0001:" + testChannel + ":" + testTS}
	f.mem = &journal.Memory{Fault: f.fault}
	f.claim(t)
	return f
}

// claim starts an attempt: a receive of the event's SQS message claims its journal.
func (f *fixture) claim(t testing.TB) {
	t.Helper()
	c, err := f.mem.Claim(context.Background(), f.key, journal.NewOwner("m1"), time.Now().Add(time.Minute))
	if err != nil || c.Outcome != journal.Claimed {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	f.lease = c.Lease
}

// fault counts the journal's step writes and fails the one failWrite picks, as a store outage
// would (nothing written).
func (f *fixture) fault(_, op string, _ []string) error {
	if op != "save" {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves++
	if f.failWrite != nil && f.failWrite(f.saves) {
		return journal.ErrInjected
	}
	return nil
}

// writes is how many step writes were attempted.
func (f *fixture) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.saves
}

// setLegacy writes a step as the earlier release recorded it ("post#1"); the next attempt
// (the one the test then runs) reads it.
func (f *fixture) setLegacy(t testing.TB, id, raw string) {
	t.Helper()
	if err := f.mem.SetLegacy(f.key, id, raw); err != nil {
		t.Fatal(err)
	}
	f.claim(t)
}

// session is one run of a handler: a fresh Session on the same record.
func (f *fixture) session() *Session {
	client, _ := f.rt.Slack(context.Background(), core.Tenant{})
	return &Session{Slack: client, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), run: &runState{rt: f.rt, lease: f.lease,
		about: about{team: "T0001", channel: testChannel, ts: testTS, user: "U0USER", responseURL: f.slack.ResponseURL("r1"), triggerID: "1.2.abc"},
		used:  map[string]bool{}, legacy: map[string]int{}}}
}

// retry is the next delivery after an attempt that failed: its results were written with the
// release.
func (f *fixture) retry() {
	_ = f.lease.Release(context.Background(), "retry") // a lease the attempt ended already refuses
	f.next()
}

// crash is the next delivery after an attempt that died: what it learned after its last write
// is lost (the same message takes its own claim over at once).
func (f *fixture) crash() { f.next() }

// next claims the event for the next attempt, with the write faults of the last one cleared.
func (f *fixture) next() {
	f.mu.Lock()
	f.failWrite = nil
	f.mu.Unlock()
	c, err := f.mem.Claim(context.Background(), f.key, journal.NewOwner("m1"), time.Now().Add(time.Minute))
	if err != nil || c.Outcome != journal.Claimed {
		panic(fmt.Sprintf("claim for the next attempt: %+v, %v", c, err))
	}
	f.lease = c.Lease
}

// threeParts is text that splits into exactly three messages, each starting with tag+n.
func threeParts(tag string) string {
	para := func(n int) string { return strings.Repeat(fmt.Sprintf("%s%d ", tag, n), MaxPartRunes/(len(tag)+3)) }
	return para(1) + "\n\n" + para(2) + "\n\n" + para(3)
}

func posts(s *fakeslack.Server, method string) []fakeslack.Post {
	var out []fakeslack.Post
	for _, p := range s.Posts() {
		if p.Method == method {
			out = append(out, p)
		}
	}
	return out
}

// wantParts checks that exactly the three parts of tag's text were posted, once each, in order.
func wantParts(t *testing.T, got []fakeslack.Post, tag string) {
	t.Helper()
	if len(got) != 3 {
		t.Fatalf("%d messages posted, want 3", len(got))
	}
	for i, p := range got {
		if want := fmt.Sprintf("%s%d ", tag, i+1); !strings.HasPrefix(p.Text, want) {
			t.Errorf("message %d starts %q, want %q", i+1, p.Text[:min(20, len(p.Text))], want)
		}
	}
}

func TestReplyCutShortIsFinishedNotRepeated(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault string // what happens to part 2 on the first attempt
	}{
		{"part 2 refused with HTTP 500", "fail"},
		{"part 2 posted but the answer lost", "lose"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ctx := context.Background()
			f.faults.at("chat.postMessage", 2, tc.fault)
			if _, err := f.session().Reply(ctx, threeParts("first")); err == nil {
				t.Fatal("first attempt: no error although part 2 failed")
			}
			// The next delivery runs the handler again; the model answers differently now.
			f.retry()
			posted, err := f.session().Reply(ctx, threeParts("second"))
			if err != nil {
				t.Fatalf("second attempt: %v", err)
			}
			wantParts(t, posts(f.slack, "chat.postMessage"), "first")
			if len(posted.TS) != 3 {
				t.Errorf("Posted.TS = %v, want 3 entries", posted.TS)
			}
			// A third delivery (a DLQ replay, say) posts nothing.
			f.retry()
			if _, err := f.session().Reply(ctx, "anything"); err != nil {
				t.Fatal(err)
			}
			if n := len(posts(f.slack, "chat.postMessage")); n != 3 {
				t.Errorf("after a replay: %d messages, want 3", n)
			}
		})
	}
}

// The record cannot say whether part 2 went out when the store failed right after Slack
// accepted it: the thread is read instead.
func TestStoreFailureAfterPostFallsBackToTheThread(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	// Writes: 1 plan with part 1's intent, 2 part 2's intent, 3 part 3's intent ← fails, and
	// the worker dies: what Slack answered for part 2 is lost with it.
	f.failWrite = func(n int) bool { return n == 3 }
	if _, err := f.session().Reply(ctx, threeParts("a")); err == nil {
		t.Fatal("no error although the store failed")
	}
	if n := len(posts(f.slack, "chat.postMessage")); n != 2 {
		t.Fatalf("%d parts posted before the store failed, want 2", n)
	}
	f.crash()
	if _, err := f.session().Reply(ctx, threeParts("b")); err != nil {
		t.Fatal(err)
	}
	wantParts(t, posts(f.slack, "chat.postMessage"), "a")
	if f.slack.Calls("conversations.replies") == 0 {
		t.Error("the thread was not read to settle the uncertain part")
	}
}

func TestThreadCheckFailureIsRetryable(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.faults.at("chat.postMessage", 1, "lose")
	if _, err := f.session().Reply(ctx, "short answer"); err == nil {
		t.Fatal("no error although the answer was lost")
	}
	f.retry()
	f.slack.FailNext("conversations.replies", 1, "missing_scope")
	_, err := f.session().Reply(ctx, "short answer")
	if c, _ := failure.Classify(err); err == nil || c != failure.Transient {
		t.Fatalf("thread check answering missing_scope: err=%v class=%v, want a transient error (never a dead letter)", err, c)
	}
	// Once the check works, the lost post is found and not repeated.
	f.retry()
	if _, err := f.session().Reply(ctx, "short answer"); err != nil {
		t.Fatal(err)
	}
	if n := len(posts(f.slack, "chat.postMessage")); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestThreadCheckPagesThroughLongThreads(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	// A busy thread: the user's message and 450 replies by other people before the bot answers.
	if _, err := f.slack.AddUserMessage(fakeslack.UserMessage{Channel: testChannel, User: "U0USER", Text: "question", TS: testTS}); err != nil {
		t.Fatal(err)
	}
	for i := range 450 {
		if _, err := f.slack.AddUserMessage(fakeslack.UserMessage{Channel: testChannel, User: "U0OTHER", Text: fmt.Sprint("chatter ", i), ThreadTS: testTS}); err != nil {
			t.Fatal(err)
		}
	}
	f.faults.at("chat.postMessage", 1, "lose")
	if _, err := f.session().Reply(ctx, "the answer"); err == nil {
		t.Fatal("no error although the answer was lost")
	}
	before := f.slack.Calls("conversations.replies")
	f.retry()
	if _, err := f.session().Reply(ctx, "the answer"); err != nil {
		t.Fatal(err)
	}
	if n := len(posts(f.slack, "chat.postMessage")); n != 1 {
		t.Errorf("the answer was posted %d times, want 1", n)
	}
	if pages := f.slack.Calls("conversations.replies") - before; pages < 3 {
		t.Errorf("thread read in %d pages; the answer is reply 451 and a page holds 200", pages)
	}
}

func TestRespondCutShortIsFinishedNotRepeated(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.faults.at("r1", 2, "fail")
	if err := f.session().Respond(ctx, threeParts("first"), InChannel()); err == nil {
		t.Fatal("no error although response_url part 2 failed")
	}
	f.retry()
	if err := f.session().Respond(ctx, threeParts("second"), InChannel()); err != nil {
		t.Fatal(err)
	}
	got := posts(f.slack, fakeslack.ResponseURLMethod)
	wantParts(t, got, "first")
	for _, p := range got {
		if p.ResponseType != "in_channel" {
			t.Errorf("response_type = %q, want in_channel", p.ResponseType)
		}
	}
}

func TestRespondRefusesHostsOutsideSlack(t *testing.T) {
	t.Parallel()
	f := setup(t)
	s := f.session()
	s.run.about.responseURL = "https://attacker.example/steal?token=secret-token"
	err := s.Respond(context.Background(), "hi")
	if c, _ := failure.Classify(err); err == nil || c != failure.Permanent {
		t.Fatalf("err=%v class=%v, want permanent", err, c)
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Errorf("error leaks the URL's token: %v", err)
	}
	if n := len(f.slack.Posts()); n != 0 {
		t.Errorf("%d posts", n)
	}
}

func TestRespondKeepsWithinFiveMessages(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	long := strings.Repeat(strings.Repeat("word ", MaxPartRunes/5)+"\n\n", 7)
	s := f.session()
	if err := s.Named("ack").Respond(ctx, "working on it"); err != nil {
		t.Fatal(err)
	}
	if err := s.Named("answer").Respond(ctx, long); err != nil {
		t.Fatal(err)
	}
	got := posts(f.slack, fakeslack.ResponseURLMethod)
	if len(got) != maxResponseURLPosts {
		t.Fatalf("%d response_url posts, want %d", len(got), maxResponseURLPosts)
	}
	if last := got[len(got)-1].Text; !strings.Contains(last, "cut here") {
		t.Errorf("the last message does not say the answer was cut: ...%q", last[max(0, len(last)-60):])
	}
	if err := s.Named("more").Respond(ctx, "one more"); err == nil {
		t.Error("a sixth response_url post was attempted")
	}
}

// Steps are named after what they send, not matched by call order: a handler that takes
// another branch on a retry does not inherit another effect's result.
func TestStepsAreNamedNotMatchedByOrder(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	// Attempt 1 shows an ephemeral note, then fails.
	if err := f.session().Ephemeral(ctx, "U0USER", "working on it"); err != nil {
		t.Fatal(err)
	}
	f.retry()
	// Attempt 2 takes another branch: a reply. It is posted; the note is not shown again.
	s := f.session()
	if _, err := s.Reply(ctx, "the answer"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ephemeral(ctx, "U0USER", "working on it"); err != nil {
		t.Fatal(err)
	}
	if got := len(posts(f.slack, "chat.postMessage")); got != 1 {
		t.Errorf("%d replies, want 1", got)
	}
	if got := len(posts(f.slack, "chat.postEphemeral")); got != 1 {
		t.Errorf("%d ephemeral messages, want 1", got)
	}
}

// Two effects of one kind to one place in one run need their own names; the same name twice
// is a permanent error on the first run, before anything is sent.
func TestOneStepNameTwiceIsAnError(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	s := f.session()
	if _, err := s.Reply(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Reply(ctx, "second")
	if c, _ := failure.Classify(err); !errors.Is(err, ErrStepTwice) || c != failure.Permanent || !strings.Contains(err.Error(), "Session.Named") {
		t.Fatalf("second Reply = %v (class %v), want a permanent ErrStepTwice naming the fix", err, c)
	}
	if _, err := s.Named("second").Reply(ctx, "second"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Named("second").Reply(ctx, "again"); !errors.Is(err, ErrStepTwice) {
		t.Errorf("a name given twice = %v, want ErrStepTwice", err)
	}
	if got := len(posts(f.slack, "chat.postMessage")); got != 2 {
		t.Errorf("%d messages, want 2", got)
	}
	// The next run finds both, by name, and posts nothing.
	f.retry()
	s = f.session()
	if _, err := s.Named("second").Reply(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reply(ctx, "y"); err != nil {
		t.Fatal(err)
	}
	if got := len(posts(f.slack, "chat.postMessage")); got != 2 {
		t.Errorf("after a retry: %d messages, want 2", got)
	}
}

// response_url and ephemeral messages cannot be read back: one handed over whose answer was
// lost is never sent again (at most once).
func TestUnreadablePostsAreAtMostOnce(t *testing.T) {
	t.Parallel()
	t.Run("response_url", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		ctx := context.Background()
		f.faults.at("r1", 2, "lose")
		if err := f.session().Respond(ctx, threeParts("first"), InChannel()); err == nil {
			t.Fatal("no error although part 2's answer was lost")
		}
		f.retry()
		if err := f.session().Respond(ctx, threeParts("second"), InChannel()); err != nil {
			t.Fatal(err)
		}
		got := posts(f.slack, fakeslack.ResponseURLMethod)
		wantParts(t, got, "first")
	})
	t.Run("ephemeral", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		ctx := context.Background()
		f.faults.at("chat.postEphemeral", 1, "lose")
		if err := f.session().Ephemeral(ctx, "U0USER", "thanks"); err == nil {
			t.Fatal("no error although the answer was lost")
		}
		f.crash()
		if err := f.session().Ephemeral(ctx, "U0USER", "thanks"); err != nil {
			t.Fatal(err)
		}
		if got := len(posts(f.slack, "chat.postEphemeral")); got != 1 {
			t.Errorf("%d ephemeral messages, want 1", got)
		}
	})
}

// views.open whose answer was lost: while the trigger is young the same attempt asks again
// (Slack accepts a trigger once, so exchanged_trigger_id means it opened); after a crash, the
// next attempt asks again too. The modal opens once, and no failure is reported when it may
// be open.
func TestOpenViewAfterALostAnswer(t *testing.T) {
	t.Parallel()
	view := slack.ModalViewRequest{Type: slack.VTModal, Title: slack.NewTextBlockObject(slack.PlainTextType, "Ask", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.PlainTextType, "q", false, false), nil, nil)}}}
	for _, tc := range []struct {
		name      string
		fault     string
		crash     bool
		firstErr  error
		wantViews int
	}{
		{"opened, answer lost", "lose", false, ErrViewMayBeOpen, 1},
		{"refused with 500", "fail", false, nil, 1},
		{"opened, answer lost, worker died", "lose", true, errors.New("any"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ctx := context.Background()
			trigger := f.slack.NewTrigger()
			s := f.session()
			s.run.about.triggerID = trigger
			if tc.crash {
				// The worker dies with the call: nothing more happens in that attempt.
				f.faults.at("views.open", 2, "fail")
			}
			f.faults.at("views.open", 1, tc.fault)
			id, err := s.OpenView(ctx, view)
			switch {
			case tc.firstErr == nil && (err != nil || id == ""):
				t.Fatalf("first attempt: id %q, err %v; want the modal opened", id, err)
			case tc.firstErr != nil && err == nil:
				t.Fatalf("first attempt: id %q, no error; want %v", id, tc.firstErr)
			case errors.Is(tc.firstErr, ErrViewMayBeOpen) && !errors.Is(err, ErrViewMayBeOpen):
				t.Fatalf("first attempt: %v, want ErrViewMayBeOpen", err)
			}
			if tc.crash {
				f.crash()
			} else {
				f.retry()
			}
			s2 := f.session()
			s2.run.about.triggerID = trigger
			if _, err := s2.OpenView(ctx, view); err != nil && !errors.Is(err, ErrViewMayBeOpen) {
				t.Fatalf("retry: %v, want the modal opened or ErrViewMayBeOpen", err)
			}
			if got := len(f.slack.Views()); got != tc.wantViews {
				t.Errorf("%d views opened, want %d", got, tc.wantViews)
			}
		})
	}
}

// Update records its text first: a retry after a crash sets the same text again, never a
// second, different answer.
func TestUpdateSetsTheSameTextAgain(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	client, _ := f.rt.Slack(ctx, core.Tenant{})
	_, ts, err := client.PostMessage(testChannel, slack.MsgOptionText("old", false), slack.MsgOptionTS(testTS))
	if err != nil {
		t.Fatal(err)
	}
	f.faults.at("chat.update", 1, "lose")
	if err := f.session().Update(ctx, testChannel, ts, "first answer"); err == nil {
		t.Fatal("no error although the update's answer was lost")
	}
	f.crash()
	if err := f.session().Update(ctx, testChannel, ts, "second answer"); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.slack.Rendered(testChannel, ts); r.Text != "first answer" {
		t.Errorf("message shows %q, want the first attempt's answer", r.Text)
	}
}

// A record of the earlier release (steps by call order) resumes: the post it began is
// finished with the parts it planned.
func TestPostRecordOfTheEarlierRelease(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.setLegacy(t, "post#1", `{"kind":"post","parts":["part one","part two"],"sent":["1515449522.000099"]}`)
	if _, err := f.session().Reply(ctx, "a different answer"); err != nil {
		t.Fatal(err)
	}
	got := posts(f.slack, "chat.postMessage")
	if len(got) != 1 || got[0].Text != "part two" {
		t.Errorf("posts %+v, want only the second planned part", got)
	}
}

// A multi-part reply costs one journal write per part.
func TestReplyWritesOncePerPart(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := f.session().Reply(context.Background(), threeParts("w"), WithBlocks(slack.NewDividerBlock())); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); w != 3 {
		t.Errorf("%d writes for 3 parts, want 3", w)
	}
}

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

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/infra/local/localslack"
	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/progress"
)

// memLease is an in-memory progress record for logic tests of the helpers; the DynamoDB
// store itself is tested in package progress. failSave, when set, decides per call whether a
// save fails (as a store outage would).
type memLease struct {
	mu       sync.Mutex
	key      string
	attempt  int
	steps    map[string]progress.Step
	saves    int
	failSave func(n int, id string, st progress.Step) bool
}

func newMemLease(key string) *memLease {
	return &memLease{key: key, attempt: 1, steps: map[string]progress.Step{}}
}

func (l *memLease) Key() string  { return l.key }
func (l *memLease) Attempt() int { l.mu.Lock(); defer l.mu.Unlock(); return l.attempt }
func (l *memLease) Step(id string) (progress.Step, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.steps[id]
	return st, ok
}
func (l *memLease) Save(_ context.Context, id string, st progress.Step) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.saves++
	if l.failSave != nil && l.failSave(l.saves, id, st) {
		return errors.New("store unavailable")
	}
	st.Parts = append([]string(nil), st.Parts...)
	st.Sent = append([]string(nil), st.Sent...)
	l.steps[id] = st
	return nil
}

// nextAttempt is what the next delivery sees: the same record, one more attempt.
func (l *memLease) nextAttempt() {
	l.mu.Lock()
	l.attempt++
	l.failSave = nil
	l.mu.Unlock()
}

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
	slack  *localslack.Server
	faults *faultTransport
	rt     *Runtime
	lease  *memLease
}

const (
	testChannel = "C0CHAN"
	testTS      = "1515449522.000016"
)

func setup(t *testing.T) *fixture {
	t.Helper()
	srv := localslack.New(localslack.Options{Token: testToken})
	if _, err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	faults := &faultTransport{calls: map[string]int{}, faults: map[string]map[int]string{}}
	client := slack.New(testToken, slack.OptionAPIURL(srv.APIURL()), slack.OptionHTTPClient(&http.Client{Transport: faults}))
	rt := &Runtime{
		Slack:               func(context.Context) (*slack.Client, error) { return client, nil },
		HTTP:                &http.Client{Transport: faults},
		ResponseURLPrefixes: []string{strings.TrimSuffix(srv.ResponseURL("x"), "x")},
	}
	return &fixture{slack: srv, faults: faults, rt: rt, lease: newMemLease("msg:T0001:" + testChannel + ":" + testTS)}
}

// session is one run of a handler: a fresh Session on the same record.
func (f *fixture) session() *Session {
	client, _ := f.rt.Slack(context.Background())
	return &Session{Slack: client, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), rt: f.rt, lease: f.lease,
		about: about{team: "T0001", channel: testChannel, ts: testTS, user: "U0USER", responseURL: f.slack.ResponseURL("r1")},
		seq:   map[string]int{}}
}

// threeParts is text that splits into exactly three messages, each starting with tag+n.
func threeParts(tag string) string {
	para := func(n int) string { return strings.Repeat(fmt.Sprintf("%s%d ", tag, n), MaxPartRunes/(len(tag)+3)) }
	return para(1) + "\n\n" + para(2) + "\n\n" + para(3)
}

func posts(s *localslack.Server, method string) []localslack.Post {
	var out []localslack.Post
	for _, p := range s.Posts() {
		if p.Method == method {
			out = append(out, p)
		}
	}
	return out
}

// wantParts checks that exactly the three parts of tag's text were posted, once each, in order.
func wantParts(t *testing.T, got []localslack.Post, tag string) {
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
			f.lease.nextAttempt()
			posted, err := f.session().Reply(ctx, threeParts("second"))
			if err != nil {
				t.Fatalf("second attempt: %v", err)
			}
			wantParts(t, posts(f.slack, "chat.postMessage"), "first")
			if len(posted.TS) != 3 {
				t.Errorf("Posted.TS = %v, want 3 entries", posted.TS)
			}
			// A third delivery (a DLQ replay, say) posts nothing.
			f.lease.nextAttempt()
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
	// Saves: 1 plan, 2 part 1 sent, 3 part 2 sent ← fails.
	f.lease.failSave = func(n int, _ string, _ progress.Step) bool { return n == 3 }
	if _, err := f.session().Reply(ctx, threeParts("a")); err == nil {
		t.Fatal("no error although the store failed")
	}
	if n := len(posts(f.slack, "chat.postMessage")); n != 2 {
		t.Fatalf("%d parts posted before the store failed, want 2", n)
	}
	f.lease.nextAttempt()
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
	f.lease.nextAttempt()
	f.slack.FailNext("conversations.replies", 1, "missing_scope")
	_, err := f.session().Reply(ctx, "short answer")
	if c, _ := failure.Classify(err); err == nil || c != failure.Transient {
		t.Fatalf("thread check answering missing_scope: err=%v class=%v, want a transient error (never a dead letter)", err, c)
	}
	// Once the check works, the lost post is found and not repeated.
	f.lease.nextAttempt()
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
	if _, err := f.slack.AddUserMessage(localslack.UserMessage{Channel: testChannel, User: "U0USER", Text: "question", TS: testTS}); err != nil {
		t.Fatal(err)
	}
	for i := range 450 {
		if _, err := f.slack.AddUserMessage(localslack.UserMessage{Channel: testChannel, User: "U0OTHER", Text: fmt.Sprint("chatter ", i), ThreadTS: testTS}); err != nil {
			t.Fatal(err)
		}
	}
	f.faults.at("chat.postMessage", 1, "lose")
	if _, err := f.session().Reply(ctx, "the answer"); err == nil {
		t.Fatal("no error although the answer was lost")
	}
	before := f.slack.Calls("conversations.replies")
	f.lease.nextAttempt()
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
	f.lease.nextAttempt()
	if err := f.session().Respond(ctx, threeParts("second"), InChannel()); err != nil {
		t.Fatal(err)
	}
	got := posts(f.slack, localslack.ResponseURLMethod)
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
	s.about.responseURL = "https://attacker.example/steal?token=secret-token"
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
	if err := s.Respond(ctx, "working on it"); err != nil {
		t.Fatal(err)
	}
	if err := s.Respond(ctx, long); err != nil {
		t.Fatal(err)
	}
	got := posts(f.slack, localslack.ResponseURLMethod)
	if len(got) != MaxResponseURLPosts {
		t.Fatalf("%d response_url posts, want %d", len(got), MaxResponseURLPosts)
	}
	if last := got[len(got)-1].Text; !strings.Contains(last, "cut here") {
		t.Errorf("the last message does not say the answer was cut: ...%q", last[max(0, len(last)-60):])
	}
	if err := s.Respond(ctx, "one more"); err == nil {
		t.Error("a sixth response_url post was attempted")
	}
}

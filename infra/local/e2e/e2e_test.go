package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/ddbfault"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/shared/slackverify"
)

var (
	binDir   string
	bins     devworld.Binaries
	stack    *devworld.World
	stackErr error
	logs     logbuf.Buffer
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	stackErr = start(ctx)
	if stackErr == nil {
		startLongAnswer(ctx)
	}
	cancel()
	code := m.Run()
	if stack != nil {
		stack.Stop()
	}
	if longAnswer.stack != nil {
		longAnswer.stack.Stop()
	}
	if streamStack != nil {
		streamStack.Stop()
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func start(ctx context.Context) error {
	if _, err := localaws.FindDir(); err != nil {
		return err
	}
	root, err := localaws.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "slackrelay-e2e-")
	if err != nil {
		return err
	}
	binDir = dir
	bins, err = devworld.Build(ctx, root, dir)
	if err != nil {
		return err
	}
	// The demo responder streams its answer (about 55 words) in about 50 ms after 300 ms of
	// pretend work: one chat.startStream and one chat.stopStream per answer, so these tests
	// are about the pipeline, not the pace (stream_test.go is about the pace).
	stack, err = devworld.Start(ctx, devworld.Options{
		Bins: bins, DemoDelay: demoDelay, DemoTokensPerSecond: 1000, HandlerTimeout: 4 * time.Second,
		MaxReceiveCount: 4, BackoffBase: time.Second, LogOut: &logs,
	})
	return err
}

// setup gives a test the shared stack with the Slack server's and the DynamoDB proxy's
// records and faults cleared.
func setup(t *testing.T) *devworld.World {
	t.Helper()
	localawstest.Require(t, stackErr)
	stack.Slack.Reset()
	stack.DynamoDBProxy.Reset()
	logsOnFailure(t, &logs, 20000)
	return stack
}

// logsOnFailure prints the last tail bytes of the binaries' logs when t fails.
func logsOnFailure(t *testing.T, logs *logbuf.Buffer, tail int) {
	t.Cleanup(func() {
		if t.Failed() {
			l := logs.String()
			t.Logf("last binary logs:\n%s", l[max(0, len(l)-tail):])
		}
	})
}

var seq atomic.Int64

// event returns a fresh event id and message ts.
func event() (id, ts string) {
	n := seq.Add(1)
	return fmt.Sprintf("Ev%d%06d", time.Now().Unix(), n), fmt.Sprintf("%d.%06d", time.Now().Unix(), n)
}

func mention(t *testing.T, s *devworld.World, body string, headers ...string) devworld.Reply {
	t.Helper()
	r, err := s.Send(context.Background(), "/slack/events", "application/json", body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// demoDelay is the reliability stack's DEMO_DELAY: the demo responder's pretend work, which
// its answers name.
const demoDelay = 300 * time.Millisecond

// answerTo is what the shipped bot shows on the reliability stack in the new thread of a
// mention of text: the demo responder's answer with Regenerate and feedback under it.
func answerTo(t *testing.T, text string) answercheck.Expect {
	t.Helper()
	a, err := answercheck.DemoStreamed(context.Background(), demoDelay, text)
	if err != nil {
		t.Fatal(err)
	}
	return answercheck.Answer(a)
}

// settle waits until the thread ts of channel shows want exactly once, as a Slack client
// renders it, then until the events queue is empty (every copy of the event handled, so a
// duplicate would show by then), and judges the thread again.
func settle(t *testing.T, s *devworld.World, channel, ts string, want answercheck.Expect, within time.Duration) answercheck.Verdict {
	t.Helper()
	th := answercheck.InProcess{Server: s.Slack}
	if _, err := answercheck.Await(context.Background(), th, channel, ts, want, within); err != nil {
		t.Fatal(err)
	}
	if err := devworld.WaitFor(within, func() bool { return depth(t, s, s.Local.QueueURL) == 0 }); err != nil {
		t.Fatalf("the events queue still holds %d messages %v after the answer", depth(t, s, s.Local.QueueURL), within)
	}
	v, err := answercheck.Check(context.Background(), th, channel, ts, want)
	if err == nil {
		err = v.Err()
	}
	if err != nil {
		t.Fatalf("once every copy of the event was handled: %v", err)
	}
	return v
}

// judge is the thread ts of channel as a client renders it, judged against want.
func judge(t *testing.T, s *devworld.World, channel, ts string, want answercheck.Expect) answercheck.Verdict {
	t.Helper()
	v, err := answercheck.Check(context.Background(), answercheck.InProcess{Server: s.Slack}, channel, ts, want)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func depth(t *testing.T, s *devworld.World, queueURL string) int {
	t.Helper()
	n, err := s.Local.Depth(context.Background(), queueURL)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// 1. SQS unavailable at the receiver → 5xx; Slack's retry after recovery → exactly one reply.
func TestSQSDownAtReceiver(t *testing.T) {
	s := setup(t)
	id, ts := event()
	body := fixture.AppMention(id, "C1", ts, "are you there?")
	want := answerTo(t, "are you there?")
	s.SQSProxy.SetDown(true)
	r := mention(t, s, body)
	s.SQSProxy.SetDown(false)
	if r.Status < 500 {
		t.Fatalf("with SQS down the receiver answered %d, want 5xx so Slack retries", r.Status)
	}
	if r.Latency > 3*time.Second {
		t.Fatalf("the 5xx took %v, beyond Slack's 3 s", r.Latency)
	}
	r = mention(t, s, body, "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_error")
	if r.Status != 202 {
		t.Fatalf("retry after recovery: %d", r.Status)
	}
	settle(t, s, "C1", ts, want, 10*time.Second)
}

// 2. A retry storm: the same event 4 times, two of them concurrent → exactly one reply.
func TestRetryStorm(t *testing.T) {
	s := setup(t)
	id, ts := event()
	body := fixture.AppMention(id, "C1", ts, "storm")
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); statuses[i] = mention(t, s, body).Status }()
	}
	wg.Wait()
	statuses[2] = mention(t, s, body, "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout").Status
	statuses[3] = mention(t, s, body, "X-Slack-Retry-Num", "2", "X-Slack-Retry-Reason", "http_timeout").Status
	for i, st := range statuses {
		if st != 202 {
			t.Fatalf("delivery %d answered %d", i, st)
		}
	}
	settle(t, s, "C1", ts, answerTo(t, "storm"), 10*time.Second)
}

// 3. The worker killed (SIGKILL) while a handler runs → redelivered → exactly one reply.
func TestWorkerKilledMidHandler(t *testing.T) {
	s := setup(t)
	id, ts := event()
	before := s.Slack.Calls("reactions.add")
	if r := mention(t, s, fixture.AppMention(id, "C1", ts, "survive a crash")); r.Status != 202 {
		t.Fatal(r.Status)
	}
	// The working reaction shows the handler has started; kill during the 300 ms of work.
	if err := devworld.WaitFor(5*time.Second, func() bool { return s.Slack.Calls("reactions.add") > before }); err != nil {
		t.Fatal("handler never started")
	}
	s.KillWorker()
	want := answerTo(t, "survive a crash")
	if v := judge(t, s, "C1", ts, want); v.OK() {
		t.Skip("the handler finished before the kill; nothing to test on this run")
	}
	if err := s.StartWorker(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Redelivery after the visibility timeout (handler timeout + 2 s), then the lease.
	settle(t, s, "C1", ts, want, 20*time.Second)
}

// 4. Slack answers 429 with Retry-After to the answer's first call → the answer waits at
// least that long, exactly one.
func TestSlackRateLimit(t *testing.T) {
	s := setup(t)
	s.Slack.RateLimitNext("chat.startStream", 1, 3*time.Second)
	id, ts := event()
	start := time.Now()
	mention(t, s, fixture.AppMention(id, "C1", ts, "rate limited"))
	a := settle(t, s, "C1", ts, answerTo(t, "rate limited"), 15*time.Second).Messages[0]
	st, ok := s.Slack.Stream("C1", a.TS)
	if !ok {
		t.Fatalf("the answer %+v is not a stream", a)
	}
	if waited := st.StartedAt.Sub(start); waited < 3*time.Second {
		t.Fatalf("the answer started %v after the request, before Retry-After (3 s) ran out", waited)
	}
	if c := s.Slack.Calls("chat.startStream"); c != 2 {
		t.Fatalf("chat.startStream calls = %d, want 2 (the one refused, the one accepted)", c)
	}
}

// 5. Slack fails transiently N times → retried with backoff → one reply.
func TestTransientFailures(t *testing.T) {
	s := setup(t)
	s.Slack.FailHTTPNext("chat.startStream", 2, 503)
	id, ts := event()
	mention(t, s, fixture.AppMention(id, "C1", ts, "flaky"))
	settle(t, s, "C1", ts, answerTo(t, "flaky"), 20*time.Second)
	if c := s.Slack.Calls("chat.startStream"); c != 3 {
		t.Fatalf("chat.startStream calls = %d, want 3", c)
	}
}

// 6. A permanent failure → DLQ with reason → fix → replay → exactly one reply.
func TestPermanentFailureReplay(t *testing.T) {
	s := setup(t)
	s.Slack.FailNext("chat.startStream", 1, "not_in_channel")
	id, ts := event()
	mention(t, s, fixture.AppMention(id, "C1", ts, "invite me"))
	if err := devworld.WaitFor(10*time.Second, func() bool { return depth(t, s, s.Local.DLQURL) == 1 }); err != nil {
		t.Fatal("the permanent failure did not reach the DLQ")
	}
	out, err := s.DLQ(context.Background(), "list")
	if err != nil || !strings.Contains(out, "not_in_channel") || !strings.Contains(out, "app_mention") {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	want := answerTo(t, "invite me")
	if v := judge(t, s, "C1", ts, want); v.Outcome != answercheck.Missing {
		t.Fatalf("before the replay the thread shows %v; want nothing of the bot", v.Err())
	}
	// The cause is fixed (the bot was invited): replay.
	out, err = s.DLQ(context.Background(), "replay", "--all", "--yes")
	if err != nil {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	settle(t, s, "C1", ts, want, 15*time.Second)
	if d := depth(t, s, s.Local.DLQURL); d != 0 {
		t.Fatalf("DLQ still holds %d messages", d)
	}
}

// 7. The idempotency store down → nothing posted, retried, one reply after it returns.
func TestStoreDown(t *testing.T) {
	s := setup(t)
	s.DynamoDBProxy.SetDown(true)
	id, ts := event()
	if r := mention(t, s, fixture.AppMention(id, "C1", ts, "store down")); r.Status != 202 {
		t.Fatal(r.Status)
	}
	time.Sleep(3 * time.Second)
	want := answerTo(t, "store down")
	if c, v := s.Slack.Calls("chat.startStream")+s.Slack.Calls("chat.postMessage"), judge(t, s, "C1", ts, want); c != 0 || v.Outcome != answercheck.Missing {
		s.DynamoDBProxy.SetDown(false)
		t.Fatalf("answered while the store was down: %d calls; %v", c, v.Err())
	}
	s.DynamoDBProxy.SetDown(false)
	settle(t, s, "C1", ts, want, 30*time.Second)
}

// 7b. The claim written but its answer lost (the DynamoDB proxy drops it): the SDK sends the
// conditional put again, which fails against the claim's own first attempt. The event is
// still answered, once.
func TestClaimAnswerLost(t *testing.T) {
	s := setup(t)
	id, ts := event()
	claimKey := func(pk string) bool { return strings.HasPrefix(pk, "msg:") && strings.HasSuffix(pk, ":C1:"+ts) }
	// The event's first write is its claim: applied, then its answer dropped.
	s.DynamoDBProxy.Arm(ddbfault.Rule{Match: ddbfault.Match{Ops: []string{"UpdateItem"}, PK: claimKey}, Action: ddbfault.Drop()})
	start, logged := time.Now(), len(logs.String())
	if r := mention(t, s, fixture.AppMention(id, "C1", ts, "claim answer lost")); r.Status != 202 {
		t.Fatal(r.Status)
	}
	settle(t, s, "C1", ts, answerTo(t, "claim answer lost"), 30*time.Second)
	var claims []ddbfault.Call
	for _, c := range s.DynamoDBProxy.Snapshot().Calls {
		if c.Op == "UpdateItem" && claimKey(c.PK) {
			claims = append(claims, c)
		}
	}
	if len(claims) < 2 || claims[0].Fault != ddbfault.KindDrop || claims[0].Status != 200 ||
		claims[1].InvocationID != claims[0].InvocationID || claims[1].ErrorType != "ConditionalCheckFailedException" {
		t.Fatalf("the claim's writes: %+v; want the dropped first attempt, then its retry failing its condition", claims)
	}
	// The worker recognised its own claim: it answered at once, without waiting for a lease.
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("answered after %v: the worker waited for its own lease", took)
	}
	if strings.Contains(logs.String()[logged:], "another delivery is handling this event") {
		t.Error("the worker took its own claim for another delivery's")
	}
}

// 8. Load: thousands of events at a fixed rate → all acknowledged, none lost, no duplicates.
func TestLoad(t *testing.T) {
	s := setup(t)
	n, rate := 2000, 250 // events, per second
	if testing.Short() {
		n = 300
	}
	tss := make([]string, n)
	lat := make([]time.Duration, n)
	var failures atomic.Int32
	var (
		whyMu   sync.Mutex
		whys    = map[string]int{} // what the requests not acknowledged got
		slowest time.Duration
	)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < n; i++ {
		<-tick.C
		id, ts := event()
		tss[i] = ts
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := time.Now()
			r, err := s.Send(context.Background(), "/slack/events", "application/json", fixture.AppMention(id, "CLOAD", ts, "load"))
			if err != nil || r.Status != 202 {
				failures.Add(1)
				why := fmt.Sprintf("HTTP %d", r.Status)
				if err != nil {
					why = err.Error()
				}
				whyMu.Lock()
				whys[why]++
				slowest = max(slowest, time.Since(sent))
				whyMu.Unlock()
				return
			}
			lat[i] = r.Latency
		}()
	}
	wg.Wait()
	sendTook := time.Since(start)
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests were not acknowledged with 202 (%v; the slowest of them took %v)", f, n, whys, slowest)
	}
	// Every delivery handled (the queue empty, in flight and delayed included), then each
	// thread as a client renders it: the answer, once.
	if err := devworld.WaitFor(120*time.Second, func() bool { return depth(t, s, s.Local.QueueURL) == 0 }); err != nil {
		t.Fatalf("the events queue still holds %d messages after 120 s", depth(t, s, s.Local.QueueURL))
	}
	drained := time.Since(start)
	want := answerTo(t, "load")
	for _, ts := range tss {
		if err := judge(t, s, "CLOAD", ts, want).Err(); err != nil {
			t.Fatal(err)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("load: %d events at %d/s sent in %v; ack latency p50 %v p99 %v max %v; all %d handled after %v, each answered exactly once",
		n, rate, sendTook.Round(time.Millisecond), lat[n/2], lat[n*99/100], lat[n-1], n, drained.Round(time.Millisecond))
}

// 9. Bad input: a bounded fuzz run of malformed, unsigned, stale, oversized and mis-typed
// requests → never a crash or a 5xx, nothing enqueued that was not verified.
func TestBadInput(t *testing.T) {
	s := setup(t)
	before := depth(t, s, s.Local.QueueURL)
	rng := rand.New(rand.NewPCG(1, 2))
	secret := []byte(devworld.LocalSigningSecret)
	paths := []string{"/slack/events", "/slack/commands", "/slack/interactivity", "/nope", "/"}
	sent := 0
	for i := 0; i < 400; i++ {
		body := make([]byte, rng.IntN(300))
		for j := range body {
			body[j] = byte(rng.IntN(256))
		}
		switch i % 8 {
		case 1:
			body = []byte(`{"type":"event_callback","event":` + strings.Repeat("[", rng.IntN(100)))
		case 2:
			body = []byte(strings.Repeat("a", 1<<20+rng.IntN(1000)))
		case 3:
			body = []byte(`payload=` + url.QueryEscape(string(body)))
		}
		h := http.Header{}
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		switch i % 5 {
		case 0: // unsigned
		case 1: // stale
			old := strconv.FormatInt(time.Now().Add(-10*time.Minute).Unix(), 10)
			h.Set(slackverify.HeaderTimestamp, old)
			h.Set(slackverify.HeaderSignature, slackverify.Sign(secret, old, body))
		case 2: // wrong secret
			h.Set(slackverify.HeaderTimestamp, ts)
			h.Set(slackverify.HeaderSignature, slackverify.Sign([]byte("nope"), ts, body))
		case 3: // garbage headers
			h.Set(slackverify.HeaderTimestamp, "yesterday")
			h.Set(slackverify.HeaderSignature, "v0=zz")
		case 4: // correctly signed garbage: verified, but must be refused as malformed
			h.Set(slackverify.HeaderTimestamp, ts)
			h.Set(slackverify.HeaderSignature, slackverify.Sign(secret, ts, body))
		}
		method := http.MethodPost
		if i%17 == 0 {
			method = http.MethodGet
		}
		r, err := s.SendRaw(context.Background(), method, paths[rng.IntN(len(paths))], h, body)
		if err != nil {
			t.Fatalf("request %d: %v (receiver crashed?)", i, err)
		}
		if r.Status >= 500 {
			t.Fatalf("request %d answered %d", i, r.Status)
		}
		if r.Status == 202 {
			sent++
		}
	}
	// Only correctly signed, well-formed requests may be enqueued; random bytes never are.
	if after := depth(t, s, s.Local.QueueURL); after != before || sent != 0 {
		t.Fatalf("bad input was enqueued: depth %d → %d, %d accepted", before, after, sent)
	}
	// The receiver still works.
	id, ts := event()
	if r := mention(t, s, fixture.AppMention(id, "C1", ts, "still alive")); r.Status != 202 {
		t.Fatalf("after the fuzz run: %d", r.Status)
	}
	settle(t, s, "C1", ts, answerTo(t, "still alive"), 10*time.Second)
}

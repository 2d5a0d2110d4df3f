package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/ddbfault"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// The soak's stack and load. The worker runs against the local LLM server (LLM_PREFILL=continue,
// so an answer longer than an invocation goes on from what was shown) with an invocation
// deadline of soakHandlerTimeout: it yields 3 s before its handlers' deadline (5.4 s), so an
// answer still streaming after about 2.4 s continues in a new delivery. Short answers stream
// for about a second, so kills land mid-stream; slow ones take longer than the invocation
// deadline; long ones hold more than 20,000 characters (two messages or more) and take five
// to eight invocations.
const (
	soakEvents         = 500
	soakRate           = 25 // events a second
	soakChannels       = 5
	soakRetryPct       = 25 // also delivered as a Slack retry
	soakTwinPct        = 10 // also delivered as their `message` twin
	soakSlowPct        = 5  // answers that take longer than the invocation deadline
	soakLongPct        = 5  // answers of more than 20,000 characters
	soakResetPct       = 8  // one write's connection reset before it reaches DynamoDB
	soakDropPct        = 8  // one write applied, its answer dropped
	soakReleasePct     = 8  // a write fails (every SDK attempt), then the Release too
	soakKillEvery      = 4 * time.Second
	soakHandlerTimeout = 6 * time.Second
	soakMaxReceive     = 2
	soakPollLoops      = 6
	soakLongChars      = 20_000
)

// The soak's three workspaces: the app is distributed (the worker reads each event's token
// from the installations table), and a channel belongs to one of them (CSOAK<n> to
// soakWorkspaces[n % 3]), so every answer must come with its own workspace's token.
var soakWorkspaces = []fakeslack.Workspace{
	{ID: "T0001", Token: devworld.LocalBotToken},
	{ID: "T0002", Token: "xoxb-soak-t0002", Channels: []string{"CSOAK1", "CSOAK4"}},
	{ID: "T0003", Token: "xoxb-soak-t0003", Channels: []string{"CSOAK2"}},
}

// soakTeam is the workspace of channel number n.
func soakTeam(n int) string { return soakWorkspaces[n%len(soakWorkspaces)].ID }

// soakPace is the local LLM's pace: 200 ms to the first token, then 300 words a second.
var soakPace = fakellm.Pace{FirstToken: 200 * time.Millisecond, TokensPerSecond: 300}

// soakShape is the kind of answer an event gets.
type soakShape string

const (
	shapeShort soakShape = "short"
	shapeSlow  soakShape = "slow"
	shapeLong  soakShape = "long"
)

// soakEvent is one event of the soak and what is done to it.
type soakEvent struct {
	i                   int
	id, channel, ts     string
	team                string
	prompt              string
	shape               soakShape
	answer              string // what the local LLM answers it
	retried, twinned    bool
	twinFirst           bool
	ddbFault            ddbfault.Kind // aimed at its own writes: reset, drop, fail (then its Release), or none
	ddbNth              int           // at its nth UpdateItem attempt (reset, drop)
	twinGap, retryDelay time.Duration
	retryConcurrent     bool
}

// key is the event's dedupe key (the journal item's partition key).
func (e *soakEvent) key(pk string) bool {
	return strings.HasPrefix(pk, "msg:") && strings.HasSuffix(pk, ":"+e.channel+":"+e.ts)
}

// soakWords fill the answers; a few are more than one byte a character, so that messages are
// split and continued by characters, not bytes.
var soakWords = strings.Fields(`the worker answers every event exactly once while the thread shows
each word as it arrives from the model a journal keeps what was shown so a retry continues
where the last attempt stopped naïve café déjà-vu — 日本語 ✓ and nothing is posted twice`)

// soakAnswer is the text the local LLM answers event i with: a head naming the event, then
// words, as long as its shape asks.
func soakAnswer(i int, prompt string, shape soakShape) string {
	rng := rand.New(rand.NewPCG(uint64(i), 0x50a4))
	var b strings.Builder
	fmt.Fprintf(&b, "Answer %d (%s) to %q: ", i, shape, prompt)
	words, chars := 0, 0
	switch shape {
	case shapeShort: // about a second at soakPace
		words = 200 + rng.IntN(100)
	case shapeSlow: // longer than the invocation deadline at soakPace
		words = int(soakPace.TokensPerSecond*(soakHandlerTimeout+time.Second).Seconds()) + rng.IntN(300)
	case shapeLong:
		chars = soakLongChars + 500 + rng.IntN(3000)
	}
	for n := 0; n < words || utf8.RuneCountInString(b.String()) < chars; n++ {
		if n > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(soakWords[rng.IntN(len(soakWords))])
	}
	b.WriteByte('.')
	return b.String()
}

// soakPlan chooses, seeded, what each event gets: its channel and prompt, its answer's shape,
// a Slack retry (about half at the same moment as the first delivery, the others 1-3 s
// later), a message twin (half of them before the mention, up to 0.4 s), a DynamoDB fault on
// its own writes.
func soakPlan() []*soakEvent {
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(pct int) map[int]bool { return pick(rng, soakEvents, soakEvents*pct/100) }
	retried, twinned := pick(soakRetryPct), pick(soakTwinPct)
	slow, long := pick(soakSlowPct), pick(soakLongPct)
	reset, drop, release := pick(soakResetPct), pick(soakDropPct), pick(soakReleasePct)
	base := time.Now().Unix()
	evs := make([]*soakEvent, soakEvents)
	for i := range evs {
		e := &soakEvent{i: i, id: fmt.Sprintf("EvSoak%d-%d", base, i), channel: fmt.Sprintf("CSOAK%d", i%soakChannels), team: soakTeam(i % soakChannels),
			ts: fmt.Sprintf("%d.%06d", base, 100000+i), shape: shapeShort, retried: retried[i], twinned: twinned[i]}
		switch {
		case long[i]:
			e.shape = shapeLong
		case slow[i]:
			e.shape = shapeSlow
		}
		e.prompt = fmt.Sprintf("soak %d, a %s answer please", i, e.shape)
		e.answer = soakAnswer(i, e.prompt, e.shape)
		switch {
		case release[i]: // a save fails, then the Release that follows it (see failSaveThenRelease)
			e.ddbFault = ddbfault.KindFail
		case drop[i]: // the claim, an intent or the completion applied, its answer lost
			e.ddbFault, e.ddbNth = ddbfault.KindDrop, 1+rng.IntN(4)
		case reset[i]: // the same writes, never reaching DynamoDB
			e.ddbFault, e.ddbNth = ddbfault.KindReset, 1+rng.IntN(4)
		}
		if e.twinned {
			e.twinGap = time.Duration(rng.IntN(400)) * time.Millisecond
			e.twinFirst = rng.IntN(2) == 0
		}
		if e.retried {
			e.retryConcurrent = rng.IntN(2) == 0
			if !e.retryConcurrent {
				e.retryDelay = time.Duration(1000+rng.IntN(2000)) * time.Millisecond
			}
		}
		evs[i] = e
	}
	return evs
}

// TestSoak runs Slack's rules and many faults at once against the real binaries and checks,
// by what a Slack client shows, that every event is answered exactly once:
//
//   - 500 mentions at 25 a second in 5 channels; a quarter also delivered as Slack retries, a
//     tenth with their `message` twin;
//   - answers from the local LLM: most stream for about a second, 5% take longer than the
//     worker's invocation deadline and 5% hold more than 20,000 characters, both continuing
//     in new deliveries from what was shown (LLM_PREFILL=continue);
//   - the worker SIGKILLed and restarted every 4 s; Slack answering 429 and 5xx in bursts;
//     DynamoDB unreachable for 3 s; writes of a fifth of the events hit by a connection
//     reset, an answer dropped after the write was applied, or a failed write followed by a
//     failed Release;
//   - Slack's bursts also lose the answers of calls that took effect (chat.startStream,
//     appendStream, stopStream, update);
//   - MAX_RECEIVE_COUNT 2, so copies are dead-lettered (exhausted, busy, or moved by SQS after
//     a kill on their last receive): once the queue is drained the DLQ is replayed with
//     `slackrelay-dlq replay --all --yes` and the queue drained again.
//
// Then every thread must show its event's answer exactly once: 0 lost, 0 shown twice, none
// left streaming, none wrong (see answercheck), and both queues must be empty. The figures are
// logged (and written to SLACKRELAY_SOAK_REPORT when set); SLACKRELAY_SOAK_LOG keeps the
// binaries' logs.
func TestSoak(t *testing.T) {
	localawstest.Require(t, stackErr)
	var logs logbuf.Buffer
	var logOut io.Writer = &logs
	if path := os.Getenv("SLACKRELAY_SOAK_LOG"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		logOut = io.MultiWriter(&logs, f)
	}
	evs := soakPlan()
	answers := make(map[string]string, len(evs))
	for _, e := range evs {
		answers[e.prompt] = e.answer
	}
	ctx := context.Background()
	s, err := devworld.Start(ctx, devworld.Options{
		Bins: bins, HandlerTimeout: soakHandlerTimeout, MaxReceiveCount: soakMaxReceive, BackoffBase: time.Second, LogOut: logOut,
		LocalLLM: &fakellm.Options{Pace: soakPace, Answer: func(msgs []fakellm.Message) string {
			if n := len(msgs); n > 0 {
				return answers[msgs[n-1].Content]
			}
			return ""
		}},
		WorkerEnv:  []string{assistant.EnvLLMPrefill + "=continue", fmt.Sprintf("%s=%d", workerconfig.EnvPollLoops, soakPollLoops)},
		Workspaces: soakWorkspaces[1:], ManyWorkspaces: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for _, w := range soakWorkspaces {
		if err := s.Install(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	logsOnFailure(t, &logs, 30000)

	var r soakReport
	r.start = time.Now()
	r.loseAnswers = true
	stop := make(chan struct{})
	faults := r.runFaults(s, stop)
	r.send(t, s, evs)
	time.Sleep(2 * time.Second) // the faults go on a little after the last event
	close(stop)
	faults.Wait()
	s.DynamoDBProxy.SetDown(false)

	// Drain, replay what was dead-lettered, drain again, until nothing is left.
	r.drain(t, s, "after the last event")
	for round := 1; depth(t, s, s.Local.DLQURL) > 0; round++ {
		if round > 5 {
			t.Fatalf("the DLQ still holds %d messages after 5 replays", depth(t, s, s.Local.DLQURL))
		}
		r.replay(t, s)
		r.drain(t, s, fmt.Sprintf("after replay %d", round))
	}
	r.total = time.Since(r.start)

	// Every thread as a client renders it.
	r.judge(t, s, evs)
	r.readLogs(logs.String(), evs)
	r.readDynamoDB(s)
	r.readLLM(s)
	summary := r.String()
	t.Log(summary)
	if path := os.Getenv("SLACKRELAY_SOAK_REPORT"); path != "" {
		_ = os.WriteFile(path, []byte(summary+"\n"), 0o644)
	}
	if n := r.notAcked.Load(); n != 0 {
		t.Errorf("%d deliveries were not acknowledged with 202", n)
	}
	if r.failed() {
		r.explain(t, evs, logs.String())
	}
}

// soakReport gathers what the soak did and found.
type soakReport struct {
	start, sendDone        time.Time
	total                  time.Duration
	drains                 []string
	acks, notAcked         atomic.Int32
	retries, twins, twinsF int
	shapes                 map[soakShape]int
	kills, bursts          atomic.Int32
	loseAnswers            bool         // Slack's bursts also lose the answers of calls that took effect
	lost                   atomic.Int32 // Slack answers armed to be lost
	armed                  map[ddbfault.Kind][]*ddbfault.Armed
	failedOps              atomic.Int32   // operations failed by failSaveThenRelease
	deadLetters            map[string]int // by failure class, over every replay
	replays                int

	// From the rendering.
	outcomes             map[answercheck.Outcome]int
	failures             []answercheck.Verdict
	over20k, maxChars    int
	multiMessage, maxMsg int
	tooLongMessages      int
	wrongWorkspace       int            // bot messages not posted by their channel's workspace's bot
	perWorkspace         map[string]int // events answered, by workspace
	// From the worker's logs, then the DynamoDB proxy's and the local LLM's records.
	continued                 map[string]bool
	continuations             int
	releaseFailed             map[string]bool
	releaseFailedLines        int
	adopted, setWhole         int
	busyDLQ, exhaustedDLQ     int
	faultCalls                map[ddbfault.Kind]int
	faultOps                  map[ddbfault.Kind]int
	snapshotUnkept            int
	llmRequests, llmContinued int
	llmNotPrefix              int
	startStreams, stopStreams int
	updates                   int
	eventsWithFault           map[ddbfault.Kind]int
	continuedShape            map[soakShape]int
}

// runFaults starts the faults that run while the events are sent, until stop: the worker
// killed every soakKillEvery, Slack's bursts of 429 and 5xx every 3 s, DynamoDB unreachable
// for 3 s after 8 s.
func (r *soakReport) runFaults(s *devworld.World, stop chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() { // the worker dies without warning and comes back
		for {
			select {
			case <-stop:
				return
			case <-time.After(soakKillEvery):
			}
			s.KillWorker()
			r.kills.Add(1)
			for s.StartWorker(context.Background()) != nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
	})
	wg.Go(func() { // Slack throttles and fails in bursts
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Second):
			}
			if r.loseAnswers {
				// Calls that take effect, their answers lost (see bugStaleDeferredStep).
				for _, m := range []string{"chat.startStream", "chat.appendStream", "chat.stopStream"} {
					s.Slack.LoseResponseNext(m, 2)
				}
				s.Slack.LoseResponseNext("chat.update", 1)
				r.lost.Add(7)
			}
			if i%2 == 0 {
				s.Slack.RateLimitNext("chat.startStream", 5, time.Second)
				s.Slack.RateLimitNext("chat.appendStream", 3, time.Second)
			} else {
				s.Slack.FailHTTPNext("chat.startStream", 3, 500)
				s.Slack.FailHTTPNext("chat.appendStream", 2, 502)
				s.Slack.FailHTTPNext("chat.stopStream", 2, 500)
				s.Slack.FailHTTPNext("reactions.add", 3, 503)
			}
			r.bursts.Add(1)
		}
	})
	wg.Go(func() { // the journal is unreachable for a few seconds
		select {
		case <-stop:
			return
		case <-time.After(8 * time.Second):
		}
		s.DynamoDBProxy.SetDown(true)
		time.Sleep(3 * time.Second)
		s.DynamoDBProxy.SetDown(false)
	})
	return &wg
}

// send arms each event's DynamoDB fault and sends the events at soakRate, with their retries
// and twins.
func (r *soakReport) send(t *testing.T, s *devworld.World, evs []*soakEvent) {
	t.Helper()
	r.armed, r.shapes, r.eventsWithFault = map[ddbfault.Kind][]*ddbfault.Armed{}, map[soakShape]int{}, map[ddbfault.Kind]int{}
	var wg sync.WaitGroup
	deliver := func(body string, headers ...string) {
		resp, err := s.Send(context.Background(), "/slack/events", "application/json", body, headers...)
		if err != nil || resp.Status != 202 {
			r.notAcked.Add(1)
			return
		}
		r.acks.Add(1)
	}
	tick := time.NewTicker(time.Second / soakRate)
	defer tick.Stop()
	for _, e := range evs {
		<-tick.C
		r.shapes[e.shape]++
		if e.ddbFault != "" {
			rule := ddbfault.Rule{Match: ddbfault.Match{Ops: []string{"UpdateItem"}, PK: e.key}, Nth: e.ddbNth}
			switch e.ddbFault {
			case ddbfault.KindReset:
				rule.Action = ddbfault.Reset()
			case ddbfault.KindDrop:
				rule.Action = ddbfault.Drop()
			case ddbfault.KindFail:
				rule.Times, rule.Action = ddbfault.Forever, failSaveThenRelease(&r.failedOps)
			}
			r.armed[e.ddbFault] = append(r.armed[e.ddbFault], s.DynamoDBProxy.Arm(rule))
			r.eventsWithFault[e.ddbFault]++
		}
		body := fixture.InTeam(fixture.AppMention(e.id, e.channel, e.ts, e.prompt), e.team, "", false)
		var mentionDelay time.Duration
		if e.twinned {
			r.twins++
			twin := fixture.InTeam(fixture.MessageTwin(e.id+"T", e.channel, e.ts, e.prompt), e.team, "", false)
			if e.twinFirst {
				r.twinsF++
				mentionDelay = e.twinGap
				wg.Go(func() { deliver(twin) })
			} else {
				wg.Go(func() { time.Sleep(e.twinGap); deliver(twin) })
			}
		}
		wg.Go(func() { time.Sleep(mentionDelay); deliver(body) })
		if e.retried {
			r.retries++
			delay := mentionDelay + e.retryDelay
			wg.Go(func() {
				time.Sleep(delay)
				deliver(body, "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout")
			})
		}
	}
	wg.Wait()
	r.sendDone = time.Now()
}

// drain waits until the events queue is empty (in flight and delayed included): every
// delivery handled, continued or dead-lettered.
func (r *soakReport) drain(t *testing.T, s *devworld.World, when string) {
	t.Helper()
	if err := devworld.WaitFor(3*time.Minute, func() bool { return depth(t, s, s.Local.QueueURL) == 0 }); err != nil {
		t.Fatalf("%s: the events queue still holds %d messages after 3 minutes", when, depth(t, s, s.Local.QueueURL))
	}
	r.drains = append(r.drains, fmt.Sprintf("%s %v (DLQ %d)", when, time.Since(r.start).Round(100*time.Millisecond), depth(t, s, s.Local.DLQURL)))
}

// replay counts the dead letters by class (slackrelay-dlq list --json) and replays them all
// (slackrelay-dlq replay --all --yes).
func (r *soakReport) replay(t *testing.T, s *devworld.World) {
	t.Helper()
	ctx := context.Background()
	out, err := s.DLQ(ctx, "list", "--json")
	if err != nil {
		t.Fatalf("slackrelay-dlq list: %v\n%s", err, out)
	}
	if r.deadLetters == nil {
		r.deadLetters = map[string]int{}
	}
	for _, line := range strings.Split(out, "\n") {
		var m struct {
			FailureClass string `json:"failure_class"`
		}
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		class := m.FailureClass
		if class == "" {
			class = "moved by SQS" // its last receive ended without an answer (a kill)
		}
		r.deadLetters[class]++
	}
	// At 100 a second rather than the tool's default 10: there are hundreds.
	if out, err := s.DLQ(ctx, "replay", "--all", "--yes", "--rate", "100"); err != nil {
		t.Fatalf("slackrelay-dlq replay --all --yes: %v\n%s", err, out)
	}
	r.replays++
}

// judge reads every event's thread as a client renders it and judges it against the event's
// answer.
func (r *soakReport) judge(t *testing.T, s *devworld.World, evs []*soakEvent) {
	t.Helper()
	r.outcomes, r.continuedShape, r.perWorkspace = map[answercheck.Outcome]int{}, map[soakShape]int{}, map[string]int{}
	botOf := map[string]string{}
	for _, w := range s.Slack.Workspaces() {
		botOf[w.ID] = w.BotUserID
	}
	for _, e := range evs {
		for _, m := range s.Slack.Messages(e.channel) {
			if m.Bot && m.ThreadTS == e.ts && m.User != botOf[e.team] {
				r.wrongWorkspace++
				t.Errorf("event %d of workspace %s: a message posted as %s, not its workspace's bot %s", e.i, e.team, m.User, botOf[e.team])
			}
		}
		want := s.LLM.AnswerText([]fakellm.Message{{Role: "user", Content: e.prompt}}, 0)
		if want != e.answer {
			t.Fatalf("the local LLM answers event %d with %q, not the planned %q", e.i, answercheck.Shorten(want, 40), answercheck.Shorten(e.answer, 40))
		}
		v := answercheck.Judge(e.channel, e.ts, s.Slack.RenderedThread(e.channel, e.ts), answercheck.Answer(want))
		r.outcomes[v.Outcome]++
		if !v.OK() {
			r.failures = append(r.failures, v)
			continue
		}
		r.perWorkspace[e.team]++
		n := utf8.RuneCountInString(v.Text)
		if n > soakLongChars {
			r.over20k++
		}
		r.maxChars = max(r.maxChars, n)
		if len(v.Messages) > 1 {
			r.multiMessage++
		}
		r.maxMsg = max(r.maxMsg, len(v.Messages))
		for _, m := range v.Messages {
			if utf8.RuneCountInString(m.Text) > relay.MaxAnswerMessageChars {
				r.tooLongMessages++
			}
		}
	}
	if r.tooLongMessages > 0 {
		t.Errorf("%d messages hold more than %d characters", r.tooLongMessages, relay.MaxAnswerMessageChars)
	}
	if d := depth(t, s, s.Local.DLQURL); d != 0 {
		t.Errorf("the DLQ holds %d messages at the end", d)
	}
	for _, v := range r.failures {
		t.Error(v.Err())
	}
	r.startStreams, r.stopStreams, r.updates = s.Slack.Calls("chat.startStream"), s.Slack.Calls("chat.stopStream"), s.Slack.Calls("chat.update")
}

// failed reports whether an event was not answered exactly once.
func (r *soakReport) failed() bool { return len(r.failures) > 0 }

// logLine is what the soak reads of a worker log line.
type logLine struct {
	Msg       string `json:"msg"`
	DedupeKey string `json:"dedupe_key"`
}

// readLogs counts, from the worker's logs, the answers that continued in new deliveries, the
// Releases that failed, the streams adopted or set whole by a later attempt, and the copies
// the worker dead-lettered.
func (r *soakReport) readLogs(logs string, evs []*soakEvent) {
	r.continued, r.releaseFailed = map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(logs, "\n") {
		rest, ok := strings.CutPrefix(line, "worker ")
		if !ok {
			continue
		}
		var l logLine
		if json.Unmarshal([]byte(strings.TrimSpace(rest)), &l) != nil {
			continue
		}
		switch {
		case l.Msg == "continues in a new delivery":
			r.continuations++
			r.continued[l.DedupeKey] = true
		case strings.HasPrefix(l.Msg, "could not release the claim"):
			r.releaseFailedLines++
			r.releaseFailed[l.DedupeKey] = true
		case strings.HasPrefix(l.Msg, "an earlier attempt started this message and lost Slack's answer"):
			r.adopted++
		case strings.HasPrefix(l.Msg, "an earlier attempt's last call on this message went unanswered"):
			r.setWhole++
		case strings.HasPrefix(l.Msg, "another delivery holds this event on this copy's last receive"):
			r.busyDLQ++
		case strings.HasPrefix(l.Msg, "out of retries; moving to the DLQ"):
			r.exhaustedDLQ++
		}
	}
	for _, e := range evs {
		for k := range r.continued {
			if e.key(k) {
				r.continuedShape[e.shape]++
			}
		}
	}
}

// readDynamoDB counts the DynamoDB faults that fired: by the proxy's record of each call
// (attempts and operations) and by the rules' own counts.
func (r *soakReport) readDynamoDB(s *devworld.World) {
	snap := s.DynamoDBProxy.Snapshot()
	r.snapshotUnkept = snap.Unkept
	r.faultCalls, r.faultOps = map[ddbfault.Kind]int{}, map[ddbfault.Kind]int{}
	ops := map[string]bool{}
	for _, c := range snap.Calls {
		if c.Fault == "" || c.Fault == ddbfault.KindHook {
			continue
		}
		r.faultCalls[c.Fault]++
		if id := string(c.Fault) + "/" + c.InvocationID; c.InvocationID == "" || !ops[id] {
			ops[id] = true
			r.faultOps[c.Fault]++
		}
	}
}

// readLLM counts the local LLM's requests and the continuations among them.
func (r *soakReport) readLLM(s *devworld.World) {
	for _, q := range s.LLM.Requests() {
		r.llmRequests++
		if q.Continued != nil {
			r.llmContinued++
			if q.Continued.NotAPrefix {
				r.llmNotPrefix++
			}
		}
	}
}

// fired sums the fired counts of the rules of kind k, and counts those that fired.
func (r *soakReport) fired(k ddbfault.Kind) (attempts, rules int) {
	for _, a := range r.armed[k] {
		if n := a.Fired(); n > 0 {
			attempts += n
			rules++
		}
	}
	return attempts, rules
}

func (r *soakReport) String() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("soak: %d events at %d/s in %d channels (+%d Slack retries, +%d message twins, %d of them first), sent in %v; %d deliveries acknowledged, %d not",
		soakEvents, soakRate, soakChannels, r.retries, r.twins, r.twinsF, r.sendDone.Sub(r.start).Round(100*time.Millisecond), r.acks.Load(), r.notAcked.Load())
	p("  %d workspaces, each answered with its own installation's token: %s answered; %d messages posted as another workspace's bot",
		len(soakWorkspaces), fmt.Sprint(r.perWorkspace), r.wrongWorkspace)
	p("  answers: %d short (~1 s), %d slow (> the %v invocation), %d long (> %d characters); local LLM %v to the first token, %g words/s, LLM_PREFILL=continue",
		r.shapes[shapeShort], r.shapes[shapeSlow], soakHandlerTimeout, r.shapes[shapeLong], soakLongChars, soakPace.FirstToken, soakPace.TokensPerSecond)
	p("  worker: HANDLER_TIMEOUT %v, MAX_RECEIVE_COUNT %d, %d poll loops; %d SIGKILLs (every %v); Slack: %d fault bursts (429, 5xx; %d answers lost); DynamoDB down 3 s",
		soakHandlerTimeout, soakMaxReceive, soakPollLoops, r.kills.Load(), soakKillEvery, r.bursts.Load(), r.lost.Load())
	for _, k := range []ddbfault.Kind{ddbfault.KindReset, ddbfault.KindDrop} {
		attempts, rules := r.fired(k)
		what := map[ddbfault.Kind]string{ddbfault.KindReset: "connection reset on a write", ddbfault.KindDrop: "write applied, its answer dropped"}[k]
		p("  DynamoDB %s: armed on %d events, fired on %d (%d attempts; proxy record: %d attempts of %d operations)",
			what, r.eventsWithFault[k], rules, attempts, r.faultCalls[k], r.faultOps[k])
	}
	p("  DynamoDB write failed on every SDK attempt after an event's first step, then the next write: armed on %d events, %d operations failed (proxy record: %d attempts of %d operations)",
		r.eventsWithFault[ddbfault.KindFail], r.failedOps.Load(), r.faultCalls[ddbfault.KindFail], r.faultOps[ddbfault.KindFail])
	p("  DynamoDB unreachable: %d attempts refused; Releases that failed: %d (%d events)%s",
		r.faultCalls[ddbfault.FaultDown], r.releaseFailedLines, len(r.releaseFailed), map[bool]string{true: fmt.Sprintf(" [proxy kept the first %d calls only]", 100_000)}[r.snapshotUnkept > 0])
	classes := make([]string, 0, len(r.deadLetters))
	total := 0
	for c, n := range r.deadLetters {
		classes = append(classes, fmt.Sprintf("%s %d", c, n))
		total += n
	}
	sort.Strings(classes)
	p("  dead letters replayed: %d in %d replays (%s); the worker dead-lettered %d busy copies and %d exhausted",
		total, r.replays, strings.Join(classes, ", "), r.busyDLQ, r.exhaustedDLQ)
	p("  continued in a new delivery: %d events (%d slow, %d long, %d short), %d continuations; local LLM: %d requests, %d of them continuing a shown answer (%d not from a beginning of the answer)",
		len(r.continued), r.continuedShape[shapeSlow], r.continuedShape[shapeLong], r.continuedShape[shapeShort], r.continuations, r.llmRequests, r.llmContinued, r.llmNotPrefix)
	p("  later attempts: %d streams adopted after a lost start, %d messages set whole after an unanswered call; Slack: %d chat.startStream, %d chat.stopStream, %d chat.update",
		r.adopted, r.setWhole, r.startStreams, r.stopStreams, r.updates)
	p("  rendered: %d answered exactly once, %d lost, %d shown twice, %d left streaming, %d wrong; %d answers over %d characters (longest %d), %d in more than one message (up to %d)",
		r.outcomes[answercheck.Answered], r.outcomes[answercheck.Missing], r.outcomes[answercheck.Doubled], r.outcomes[answercheck.Streaming], r.outcomes[answercheck.Wrong],
		r.over20k, soakLongChars, r.maxChars, r.multiMessage, r.maxMsg)
	p("  drained: %s; total %v", strings.Join(r.drains, "; "), r.total.Round(100*time.Millisecond))
	return strings.TrimRight(b.String(), "\n")
}

// explain logs, for the first events not answered exactly once, what was done to them and
// the worker's log lines about them.
func (r *soakReport) explain(t *testing.T, evs []*soakEvent, logs string) {
	t.Helper()
	for i, v := range r.failures {
		if i == 5 {
			t.Logf("… and %d more", len(r.failures)-5)
			break
		}
		var e *soakEvent
		for _, x := range evs {
			if x.channel == v.Channel && x.ts == v.Thread {
				e = x
			}
		}
		if e == nil {
			continue
		}
		var lines []string
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, ":"+e.channel+":"+e.ts) {
				lines = append(lines, line)
			}
		}
		t.Logf("event %d (%s, %d characters; retried %v, twin %v, DynamoDB fault %q at write %d): %v\nits worker log lines (%d):\n%s",
			e.i, e.shape, utf8.RuneCountInString(e.answer), e.retried, e.twinned, e.ddbFault, e.ddbNth, v.Err(), len(lines), strings.Join(lines[max(0, len(lines)-60):], "\n"))
	}
}

// failSaveThenRelease is the hook that fails an event's Release. Once a step of the event is
// written (an UpdateItem that DynamoDB answers without the item; a claim returns it), the
// next two operations on the event's item fail on every SDK attempt if each comes within
// failWindow of the write or the failed attempt before it: the step the handler writes next
// (its next flush comes within a second), which ends its attempt with an error, and the
// Release that follows at once (or the completion, when that step finished the answer). The
// window keeps the claims of later deliveries (after a kill, a retry) out of it, mostly.
// failed counts the operations failed.
func failSaveThenRelease(failed *atomic.Int32) ddbfault.Action {
	const failWindow = 1500 * time.Millisecond
	var mu sync.Mutex
	var until time.Time // the window's end, after a step was written
	left := 2
	failing := map[string]bool{} // the SDK invocation ids of the operations failed
	before := func(_ context.Context, c ddbfault.Call) ddbfault.Action {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case failing[c.InvocationID]:
		case left > 0 && time.Now().Before(until):
			left--
			failing[c.InvocationID] = true
			failed.Add(1)
		default:
			return ddbfault.Pass()
		}
		until = time.Now().Add(failWindow) // the Release follows the last attempt's failure
		return ddbfault.FailRetryable()
	}
	after := func(_ context.Context, c ddbfault.Call, a ddbfault.Answer) ddbfault.Action {
		if a.Status == 200 && !strings.Contains(string(a.Body), `"Attributes"`) {
			mu.Lock()
			if !failing[c.InvocationID] {
				until = time.Now().Add(failWindow)
			}
			mu.Unlock()
		}
		return ddbfault.Pass()
	}
	return ddbfault.Hook(before, after)
}

// pick returns n distinct indexes below total, chosen at random by rng.
func pick(rng *rand.Rand, total, n int) map[int]bool {
	out := make(map[int]bool, n)
	for _, i := range rng.Perm(total)[:n] {
		out[i] = true
	}
	return out
}

package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/devstack"
	"github.com/slackrelay/slackrelay/infra/local/fixture"
	"github.com/slackrelay/slackrelay/infra/local/localstack/localstacktest"
	"github.com/slackrelay/slackrelay/infra/local/logbuf"
)

// TestSoak runs Slack's rules and several faults at once against the real binaries:
// 500 mentions at a fixed rate, a quarter of them also delivered as Slack retries (about half
// at the same moment as the first delivery, the others 1-3 s later), a tenth with their
// `message` twin (about half of the twins reaching the receiver before the mention), while the worker is SIGKILLed and restarted every few seconds, Slack
// answers 429 and 500 in bursts and the progress store is down for a few seconds. Answers
// stream for about a second (the demo responder at 50 words a second after 200 ms: a start,
// an append or two and a stop), so kills land mid-stream too. Every event must be
// acknowledged and answered exactly once (one finished message in its thread, none left
// streaming), and both queues must end empty.
func TestSoak(t *testing.T) {
	localstacktest.Require(t, stackErr)
	const (
		events    = 500
		rate      = 25 // per second
		channels  = 5
		retryPct  = 25
		twinPct   = 10
		killEvery = 4 * time.Second
	)
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
	s, err := devstack.Start(context.Background(), devstack.Options{
		Bins: bins, DemoDelay: 200 * time.Millisecond, DemoTokensPerSecond: 50, HandlerTimeout: 4 * time.Second,
		MaxReceiveCount: 10, BackoffBase: time.Second, LogOut: logOut,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	logsOnFailure(t, &logs, 30000)

	rng := rand.New(rand.NewPCG(7, 11))
	type sent struct{ channel, ts string }
	all := make([]sent, events)
	// Exactly a quarter of the events get a Slack retry and a tenth a message twin, chosen at
	// random (seeded, so every run is the same).
	retried, twinned := pick(rng, events, events*retryPct/100), pick(rng, events, events*twinPct/100)
	var acks, notAcked, retries, twins, twinsFirst atomic.Int32
	var wg sync.WaitGroup
	send := func(body string, headers ...string) {
		defer wg.Done()
		r, err := s.Send(context.Background(), "/slack/events", "application/json", body, headers...)
		if err != nil || r.Status != 202 {
			notAcked.Add(1)
			return
		}
		acks.Add(1)
	}

	// Faults run while the events are sent and a little after; then the pipeline must drain.
	stop := make(chan struct{})
	var faults sync.WaitGroup
	var kills, bursts atomic.Int32
	faults.Add(3)
	go func() { // the worker dies without warning and comes back
		defer faults.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(killEvery):
			}
			s.KillWorker()
			kills.Add(1)
			for s.StartWorker(context.Background()) != nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	go func() { // Slack throttles and fails in bursts
		defer faults.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Second):
			}
			if i%2 == 0 {
				s.Slack.RateLimitNext("chat.startStream", 5, time.Second)
				s.Slack.RateLimitNext("chat.appendStream", 3, time.Second)
			} else {
				s.Slack.FailHTTPNext("chat.startStream", 3, 500)
				s.Slack.FailHTTPNext("chat.stopStream", 2, 500)
				s.Slack.FailHTTPNext("reactions.add", 3, 503)
			}
			bursts.Add(1)
		}
	}()
	go func() { // the progress store is unreachable for a few seconds
		defer faults.Done()
		select {
		case <-stop:
			return
		case <-time.After(8 * time.Second):
		}
		s.DynamoDBProxy.SetDown(true)
		time.Sleep(3 * time.Second)
		s.DynamoDBProxy.SetDown(false)
	}()

	start := time.Now()
	tick := time.NewTicker(time.Second / rate)
	for i := range events {
		<-tick.C
		id, ts := event()
		ch := fmt.Sprintf("CSOAK%d", i%channels)
		all[i] = sent{ch, ts}
		body := fixture.AppMention(id, ch, ts, "soak")
		var mentionDelay time.Duration // set when the twin goes first
		if twinned[i] {
			twins.Add(1)
			wg.Add(1)
			twin := fixture.MessageTwin(id+"T", ch, ts, "soak")
			gap := time.Duration(rng.IntN(400)) * time.Millisecond
			if rng.IntN(2) == 0 { // the twin reaches the receiver first
				twinsFirst.Add(1)
				mentionDelay = gap
				go send(twin)
			} else {
				go func() { time.Sleep(gap); send(twin) }()
			}
		}
		wg.Add(1)
		go func() { time.Sleep(mentionDelay); send(body) }()
		if retried[i] {
			retries.Add(1)
			wg.Add(1)
			delay := mentionDelay // concurrent with the first delivery
			if rng.IntN(2) == 0 {
				delay += time.Duration(1000+rng.IntN(2000)) * time.Millisecond
			}
			go func() {
				time.Sleep(delay)
				send(body, "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout")
			}()
		}
	}
	tick.Stop()
	wg.Wait()
	sendTook := time.Since(start)
	time.Sleep(2 * time.Second)
	close(stop)
	faults.Wait()
	s.DynamoDBProxy.SetDown(false)

	// Each thread's answers as a client reads them: the bot's finished messages and those
	// still streaming.
	replies := func() (done, streaming map[string]int) {
		done, streaming = map[string]int{}, map[string]int{}
		for _, m := range s.Slack.Messages("") {
			switch {
			case !m.Bot:
			case m.Streaming:
				streaming[m.Channel+"/"+m.ThreadTS]++
			default:
				done[m.Channel+"/"+m.ThreadTS]++
			}
		}
		return done, streaming
	}
	answered := func() int {
		done, _ := replies()
		n := 0
		for _, e := range all {
			if done[e.channel+"/"+e.ts] > 0 {
				n++
			}
		}
		return n
	}
	err = devstack.WaitFor(120*time.Second, func() bool {
		return answered() == events && depth(t, s, s.Local.QueueURL) == 0 && depth(t, s, s.Local.DLQURL) == 0
	})
	drain := time.Since(start)
	if err != nil {
		t.Fatalf("after %v: %d of %d events answered, queue depth %d, DLQ depth %d",
			drain.Round(time.Second), answered(), events, depth(t, s, s.Local.QueueURL), depth(t, s, s.Local.DLQURL))
	}
	time.Sleep(2 * time.Second) // room for a late duplicate to show up
	done, streaming := replies()
	doubled := 0
	for _, e := range all {
		key := e.channel + "/" + e.ts
		if done[key] != 1 || streaming[key] != 0 {
			doubled++
			t.Errorf("event in %s at %s got %d finished answers and %d left streaming, want 1 and 0", e.channel, e.ts, done[key], streaming[key])
		}
	}
	// A stream that a later attempt finished is stopped, then set to that attempt's whole
	// answer with chat.update (the only chat.update of this test).
	withAppends := 0
	for _, st := range s.Slack.Streams() {
		if st.Count("chat.appendStream") > 0 {
			withAppends++
		}
	}
	if n := notAcked.Load(); n != 0 {
		t.Errorf("%d deliveries were not acknowledged with 202", n)
	}
	if d := depth(t, s, s.Local.DLQURL); d != 0 {
		t.Errorf("the DLQ holds %d messages", d)
	}
	summary := fmt.Sprintf("soak: %d events at %d/s (+%d Slack retries, +%d message twins, %d of them first) sent in %v; %d deliveries acknowledged; "+
		"%d worker kills, %d Slack fault bursts, store down 3 s; %d answered exactly once, %d not; %d streams with appends, %d finished by a later attempt; "+
		"queue and DLQ empty after %v",
		events, rate, retries.Load(), twins.Load(), twinsFirst.Load(), sendTook.Round(time.Millisecond), acks.Load(),
		kills.Load(), bursts.Load(), events-doubled, doubled, withAppends, s.Slack.Calls("chat.update"), drain.Round(time.Millisecond))
	t.Log(summary)
	if path := os.Getenv("SLACKRELAY_SOAK_REPORT"); path != "" {
		_ = os.WriteFile(path, []byte(summary+"\n"), 0o644)
	}
}

// pick returns n distinct indexes below total, chosen at random by rng.
func pick(rng *rand.Rand, total, n int) map[int]bool {
	out := make(map[int]bool, n)
	for _, i := range rng.Perm(total)[:n] {
		out[i] = true
	}
	return out
}

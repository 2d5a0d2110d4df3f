package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// fairHeading opens the report's section on fair queues; `bench -fair-only -out FILE`
// replaces that section of FILE and leaves the rest as it is.
const fairHeading = "## Fair queues (one noisy tenant, nine quiet ones)"

// The noisy-tenant workload: the noisy tenant sends its events at fairNoisyRate from the
// start; each of fairQuietTenants quiet tenants sends its events evenly over fairQuietSpread,
// the tenants' events interleaved. Each event's handler works fairWork (the demo responder's
// pretend work: a model's answer is mostly waiting), so the worker's capacity is its slots,
// not the machine's CPU.
const (
	fairNoisyRate    = 250 // events per second
	fairQuietTenants = 9
	fairQuietSpread  = 20 * time.Second
	fairWork         = 500 * time.Millisecond
)

// fairCase is one configuration of the local world the workload runs on.
type fairCase struct {
	name  string
	noisy bool // the noisy tenant sends too (else the quiet tenants are alone: their solo figure)
	bound int  // TENANT_CONCURRENCY
	plain bool // the local SQS server without fair-queue delivery
	loops int  // POLL_LOOPS (0: the local world's default, 2)
}

// fairResult is one run of a case: the quiet tenants' end-to-end latencies, sorted, and
// when the queue was empty (every event of every tenant handled) after the first request.
type fairResult struct {
	quiet   []time.Duration
	drained time.Duration
}

// benchFair runs the noisy-tenant benchmark: for each of runs rounds, the quiet tenants
// alone, then with the noisy tenant on a fair queue with the per-tenant bound and without
// it, then on a plain queue, each on a fresh local world of the real binaries.
func benchFair(ctx context.Context, bins devworld.Binaries, runs, noisy, quiet int) (string, error) {
	cases := []fairCase{
		{name: "quiet tenants alone", bound: 5},
		{name: "with the noisy tenant, fair queue", noisy: true, bound: 5},
		{name: "with the noisy tenant, fair queue", noisy: true, bound: 0},
		{name: "with the noisy tenant, plain queue", noisy: true, bound: 5, plain: true},
		{name: "with the noisy tenant, fair queue, 4 poll loops", noisy: true, bound: 5, loops: 4},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n\nMeasured %s. The real binaries (receiver → SQS → worker poller with 2 loops of 10 → DynamoDB → local Slack server), each case on a fresh local world. One tenant (team TNOISY) sends %d app_mentions at %d a second while %d quiet tenants (TQUIET1…) send %d each, spread evenly over %v and interleaved; every event's handler works %v (the demo responder's pretend work), so the worker's 20 slots, not the CPU, bound its pace. The time runs from a quiet tenant's signed request to `chat.stopStream` of its answer as the local Slack server recorded it; each quiet thread is checked to show its answer once. \"fair queue\": the local SQS server delivers as SQS fair queues do (infra/local/fair-queues.mjs: a tenant with over 10%% of the consumers' recent processing time, or over 10%% and at least 30 of the messages in flight, is noisy, and a receive takes quiet tenants' messages first); \"plain queue\": in the order sent, as a queue without fair queues. Goal: the quiet tenants' p99 with the noisy tenant within 2x of their p99 alone (same round).\n\n| round | case | TENANT_CONCURRENCY | quiet p50 | quiet p99 | quiet max | p99 / alone | queue empty after |\n|---:|---|---:|---:|---:|---:|---:|---:|\n",
		fairHeading, time.Now().UTC().Format("2006-01-02"), noisy, fairNoisyRate, fairQuietTenants, quiet, fairQuietSpread, fairWork)
	for round := 1; round <= runs; round++ {
		var solo time.Duration
		for _, c := range cases {
			r, err := fairRun(ctx, bins, c, noisy, quiet)
			if err != nil {
				return "", fmt.Errorf("round %d, %s (TENANT_CONCURRENCY=%d): %w", round, c.name, c.bound, err)
			}
			p99 := pct(r.quiet, 99)
			if !c.noisy {
				solo = p99
			}
			ratio := "—"
			if c.noisy && solo > 0 {
				ratio = fmt.Sprintf("%.2fx", float64(p99)/float64(solo))
			}
			fmt.Fprintf(&b, "| %d | %s | %d | %s | %s | %s | %s | %.1f s |\n", round, c.name, c.bound,
				ms(pct(r.quiet, 50)), ms(p99), ms(r.quiet[len(r.quiet)-1]), ratio, r.drained.Seconds())
			say("round %d, %s, TENANT_CONCURRENCY=%d: quiet p50 %s p99 %s (%s of alone), queue empty after %.1f s",
				round, c.name, c.bound, ms(pct(r.quiet, 50)), ms(p99), ratio, r.drained.Seconds())
		}
	}
	b.WriteString(`
How to read it: on a plain queue a quiet tenant's event waits behind the noisy tenant's whole backlog (about a minute here); the receiver's ` + "`MessageGroupId`" + ` is what lets a fair queue hand it over first. What is left is the wait for a poll loop to come free: a loop takes a batch and receives again when its last message is done, so an event that arrives while both loops work on the noisy tenant's batches waits up to one batch (about the handler's 500 ms), and with four loops (Lambda's concurrent batches: the event source mapping's maximum concurrency) a loop frees twice as often: here the queue empties sooner (about 45 s against 70), but the quiet p99 is not lower, as the extra loops share the same two CPUs (on Lambda each batch has its own). The quiet tenants alone wait so too, less often (their own events keep the loops busy part of the time), which is why their p99 is about twice the handler's work. TENANT_CONCURRENCY acts only within a batch larger than BATCH_CONCURRENCY (default 10, the batch size), so with the defaults the rows with 5 and with 0 run the same code and differ by the noise of a shared 2-CPU machine; the bound's effect where slots are short is in worker/engine/tenant_test.go.
`)
	return b.String(), nil
}

// fairEvent is one sent event.
type fairEvent struct {
	channel, ts string
	sent        time.Time
}

// fairText is what every event of the workload says to the bot.
const fairText = "fair"

// fairWorkload sends the workload, each event an app_mention given to send (which signs and
// posts it): with noisy, the noisy tenant's noisyN events at rate a second from the start;
// and the quiet tenants' quietN events each, one every fairQuietSpread/(tenants × quietN),
// tenant after tenant. It returns the quiet tenants' events once every request is answered.
func fairWorkload(noisy bool, rate, noisyN, quietN int, send func(body string) error) ([]*fairEvent, error) {
	base := time.Now().Unix()
	var (
		mu      sync.Mutex
		sendErr error
		wg      sync.WaitGroup
	)
	post := func(team, channel string, n int) *fairEvent {
		ev := &fairEvent{channel: channel, ts: fmt.Sprintf("%d.%06d", base, n)}
		body := strings.ReplaceAll(fixture.AppMention(fmt.Sprintf("EvF%d-%s-%d", base, team, n), channel, ev.ts, fairText), `"T0001"`, `"`+team+`"`)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev.sent = time.Now()
			if err := send(body); err != nil {
				mu.Lock()
				sendErr = errors.Join(sendErr, fmt.Errorf("%s %s: %w", team, ev.ts, err))
				mu.Unlock()
			}
		}()
		return ev
	}
	start := time.Now()
	if noisy {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			for i := range noisyN {
				<-tick.C
				post("TNOISY", "CNOISY", i)
			}
		}()
	}
	var quiet []*fairEvent
	gap := fairQuietSpread / time.Duration(fairQuietTenants*quietN)
	for i := range fairQuietTenants * quietN {
		time.Sleep(time.Until(start.Add(time.Duration(i) * gap)))
		k := i%fairQuietTenants + 1
		quiet = append(quiet, post(fmt.Sprintf("TQUIET%d", k), fmt.Sprintf("CQUIET%d", k), 100000+i))
	}
	wg.Wait()
	return quiet, sendErr
}

// fairRun runs the workload once on a fresh local world.
func fairRun(ctx context.Context, bins devworld.Binaries, c fairCase, noisy, quiet int) (fairResult, error) {
	env := []string{fmt.Sprintf("%s=%d", workerconfig.EnvTenantConcurrency, c.bound)}
	if c.loops > 0 {
		env = append(env, fmt.Sprintf("%s=%d", workerconfig.EnvPollLoops, c.loops))
	}
	s, err := devworld.Start(ctx, devworld.Options{
		Bins: bins, DemoDelay: fairWork, DemoTokensPerSecond: 10000, HandlerTimeout: 10 * time.Second,
		PlainQueues: c.plain, WorkerEnv: env,
	})
	if err != nil {
		return fairResult{}, err
	}
	defer s.Stop()
	expect, err := answercheck.DemoStreamed(ctx, fairWork, fairText)
	if err != nil {
		return fairResult{}, err
	}
	want := answercheck.Answer(expect)
	start := time.Now()
	quietEv, err := fairWorkload(c.noisy, fairNoisyRate, noisy, quiet, func(body string) error {
		return sent(s.Send(ctx, "/slack/events", jsonType, body))
	})
	if err != nil {
		return fairResult{}, err
	}
	var r fairResult
	if err := devworld.WaitFor(5*time.Minute, func() bool { return depthZero(ctx, s) }); err != nil {
		return r, fmt.Errorf("the events queue is not empty after 5 minutes")
	}
	r.drained = time.Since(start)
	stopped := map[string]time.Time{}
	for _, st := range s.Slack.Streams() {
		if !st.StoppedAt.IsZero() {
			stopped[st.Channel+" "+st.ThreadTS] = st.StoppedAt
		}
	}
	for _, ev := range quietEv {
		if !answered(s, ev.channel, ev.ts, want) {
			return r, fmt.Errorf("quiet thread %s %s: %w", ev.channel, ev.ts, answercheck.Judge(ev.channel, ev.ts, s.Slack.RenderedThread(ev.channel, ev.ts), want).Err())
		}
		at, ok := stopped[ev.channel+" "+ev.ts]
		if !ok {
			return r, fmt.Errorf("quiet thread %s %s: no stopped stream", ev.channel, ev.ts)
		}
		r.quiet = append(r.quiet, at.Sub(ev.sent))
	}
	sort.Slice(r.quiet, func(i, j int) bool { return r.quiet[i] < r.quiet[j] })
	return r, nil
}

func fairOnly(ctx context.Context, out string, runs, noisy, quiet int) error {
	bins, err := build(ctx)
	if err != nil {
		return err
	}
	step("fair queues: one tenant sends %d events while nine send %d each (%d rounds)", noisy, quiet, runs)
	section, err := benchFair(ctx, bins, runs, noisy, quiet)
	if err != nil {
		return err
	}
	return writeSection(out, fairHeading, section)
}

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/devenv"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/fixture"
)

// benchDemoDelay is the demo responder's pretend work in the end-to-end measurement.
const benchDemoDelay = time.Millisecond

// bench measures what docs/benchmarks.md reports and writes it there.
func bench(args []string, settings devenv.Settings) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	out := fs.String("out", "", "write the report here (default: stdout)")
	acks := fs.Int("acks", 3000, "requests for the HTTP ack measurement")
	e2e := fs.Int("e2e", 300, "events for the end-to-end measurement")
	lambdaRuns := fs.Int("lambda-runs", 5, "cold starts per function for the Lambda-mode measurement")
	lambdaWarm := fs.Int("lambda-warm", 50, "warm invocations after each cold start")
	onlyLambda := fs.Bool("lambda-only", false, "measure only the Lambda-mode section and replace it in -out (the rest of the file is kept)")
	streamEvents := fs.Int("stream-events", 100, "events for the streamed-answers measurement")
	onlyStream := fs.Bool("stream-only", false, "measure only the streamed-answers section and replace it in -out (the rest of the file is kept)")
	onlyJournal := fs.Bool("journal-only", false, "measure only the journal's cost per event and replace that section in -out (the rest of the file is kept)")
	stopAnswers := fs.Int("stop-answers", 20, "answers stopped per provider for the Stop measurement")
	onlyStop := fs.Bool("stop-only", false, "measure only the Stop section and replace it in -out (the rest of the file is kept)")
	fairRuns := fs.Int("fair-runs", 2, "rounds of the noisy-tenant measurement (each: the quiet tenants alone, then with the noisy tenant in three settings)")
	fairNoisy := fs.Int("fair-noisy", 2000, "events the noisy tenant sends in the noisy-tenant measurement")
	fairQuiet := fs.Int("fair-quiet", 20, "events each of the nine quiet tenants sends in the noisy-tenant measurement")
	fairEvents := fs.String("fair-events-url", "", "with -fair-queue: send the noisy-tenant workload to this deployed receiver (the stack's EventsUrl; signed with SLACK_SIGNING_SECRET) and measure SQS's dwell times by consuming the queue (docs/deploy.md: disable the stack's event source mapping first)")
	fairQueue := fs.String("fair-queue", "", "with -fair-events-url: the deployed stack's events queue URL (EventsQueueUrl; AWS credentials and AWS_REGION from the environment)")
	fairConsumers := fs.Int("fair-consumers", 2, "with -fair-events-url: concurrent 10-message batches consuming the queue, each message held 500 ms (fewer than the noisy tenant's rate needs, so that a backlog builds)")
	fairRate := fs.Int("fair-rate", 80, "with -fair-events-url: the noisy tenant's events a second (the stack's HTTP API is throttled at 100 a second)")
	onlyFair := fs.Bool("fair-only", false, "measure only the fair-queues section (one noisy tenant, nine quiet ones) and replace it in -out (the rest of the file is kept)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *streamEvents < 1 {
		return errors.New("-stream-events must be at least 1")
	}
	ctx := context.Background()
	root, err := localaws.RepoRoot()
	if err != nil {
		return err
	}
	if *onlyLambda {
		return lambdaOnly(ctx, root, *out, *lambdaRuns, *lambdaWarm)
	}
	if *onlyStream {
		return streamOnly(ctx, *out, *streamEvents)
	}
	if *onlyJournal {
		return journalOnly(ctx, *out)
	}
	if *stopAnswers < 1 {
		return errors.New("-stop-answers must be at least 1")
	}
	if *onlyStop {
		return stopOnly(ctx, *out, *stopAnswers)
	}
	if *fairRuns < 1 || *fairNoisy < 1 || *fairQuiet < 1 {
		return errors.New("-fair-runs, -fair-noisy and -fair-quiet must be at least 1")
	}
	if (*fairEvents == "") != (*fairQueue == "") {
		return errors.New("-fair-events-url and -fair-queue go together")
	}
	if *fairEvents != "" {
		return fairDeployed(ctx, settings, *fairEvents, *fairQueue, *fairConsumers, *fairRate, *fairNoisy, *fairQuiet)
	}
	if *onlyFair {
		return fairOnly(ctx, *out, *fairRuns, *fairNoisy, *fairQuiet)
	}
	var r strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&r, "# slackrelay benchmarks\n\nMeasured by `make bench` on %s: %s, %d CPUs (%s/%s), %s, host %q.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), host)
	fmt.Fprintf(&r, "Numbers are as measured on that run; rerun `make bench` on your machine to compare.\n")

	step("in-process benchmarks (go test -bench)")
	fmt.Fprintf(&r, "\n## In-process (go test -bench, -benchtime 2s)\n\n| benchmark | ns/op | B/op | allocs/op |\n|---|---:|---:|---:|\n")
	nsPerOp := map[string]float64{}
	for _, b := range []struct{ module, pkg, pattern string }{
		{"receiver", "./intake", "."},
		{"shared", "./envelope", "."},
		{"shared", "./slackverify", "."},
	} {
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", b.pattern, "-benchtime", "2s", "-benchmem", b.pkg)
		cmd.Dir = filepath.Join(root, b.module)
		outp, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go test -bench in %s/%s: %w\n%s", b.module, b.pkg, err, outp)
		}
		for _, row := range parseBench(string(outp)) {
			fmt.Fprintf(&r, "| %s/%s | %s | %s | %s |\n", b.pkg[2:], row[0], row[1], row[2], row[3])
			say("%s %s ns/op %s allocs/op", row[0], row[1], row[3])
			var ns float64
			if _, err := fmt.Sscan(row[1], &ns); err == nil {
				nsPerOp[row[0]] = ns
			}
		}
	}
	if rcv, floor := nsPerOp["BenchmarkReceive"], nsPerOp["BenchmarkFloor"]; rcv > 0 && floor > 0 {
		fmt.Fprintf(&r, "\nReceiver against its floor (crypto/hmac + one encoding/json.Unmarshal of the same request, same run): **%.2fx**.\n", rcv/floor)
		say("receiver / floor = %.2fx", rcv/floor)
	}

	step("binary sizes (make build)")
	cmd := exec.Command("make", "build")
	cmd.Dir = root
	if outp, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make build: %w\n%s", err, outp)
	}
	fmt.Fprintf(&r, "\n## Lambda artifacts (make build: linux/arm64, static, stripped)\n\n| function | bootstrap | zip |\n|---|---:|---:|\n")
	for _, f := range []string{"receiver", "worker"} {
		bs, _ := os.Stat(filepath.Join(root, "build", f, "bootstrap"))
		zs, _ := os.Stat(filepath.Join(root, "build", f+".zip"))
		if bs == nil || zs == nil {
			return fmt.Errorf("build/%s missing after make build", f)
		}
		fmt.Fprintf(&r, "| %s | %.1f MiB | %.1f MiB |\n", f, float64(bs.Size())/(1<<20), float64(zs.Size())/(1<<20))
		say("%s: %.1f MiB (zip %.1f MiB)", f, float64(bs.Size())/(1<<20), float64(zs.Size())/(1<<20))
	}

	bins, err := build(ctx)
	if err != nil {
		return err
	}
	step("starting the local stack")
	// The demo responder's work is 1 ms and it streams its answer at once: the end-to-end
	// figure is the pipeline's, not the pretend work's (the streamed-answers section has a
	// model at a realistic pace).
	s, err := devworld.Start(ctx, devworld.Options{Bins: bins, DemoDelay: benchDemoDelay, DemoTokensPerSecond: 10000, HandlerTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer s.Stop()

	step("HTTP ack latency on loopback (%d signed app_mentions: 1 client, then 8 concurrent)", *acks)
	fmt.Fprintf(&r, "\n## Receiver over local HTTP (loopback, real SQS protocol server)\n\nSigned app_mention requests to the receiver binary in local mode, each enqueued to fauxqs (a Node.js process on the same 2 CPUs) before the 202. Sequential: one request at a time; concurrent: 8 clients.\n\n")
	fmt.Fprintf(&r, "| clients | requests | p50 | p99 | max | requests/s |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, conc := range []int{1, 8} {
		n := *acks
		if conc == 1 {
			n = *acks / 3
		}
		lat, took, err := ackRun(ctx, s, n, conc, "CBENCH")
		if err != nil {
			return err
		}
		fmt.Fprintf(&r, "| %d | %d | %s | %s | %s | %.0f |\n", conc, n, ms(pct(lat, 50)), ms(pct(lat, 99)), ms(lat[len(lat)-1]), float64(n)/took.Seconds())
		say("%d client(s): p50 %s p99 %s, %.0f req/s", conc, ms(pct(lat, 50)), ms(pct(lat, 99)), float64(n)/took.Seconds())
		_ = devworld.WaitFor(120*time.Second, func() bool { return depthZero(ctx, s) })
	}

	step("end to end: request → answer complete, zero-delay handler (%d events, 10 at a time)", *e2e)
	s.Slack.Reset()
	e2eLat, err := endToEnd(ctx, s, *e2e, 10)
	if err != nil {
		return err
	}
	fmt.Fprintf(&r, "\n## End to end (request → answer complete)\n\nReceiver → SQS → worker poller (1 s long poll) → DynamoDB claim → reaction, chat.startStream, chat.stopStream, reaction → local Slack server, until the answer is finished in the thread; the handler's own work (the demo responder) is 1 ms and streams its answer at once. %d events, 10 in flight.\n\n", *e2e)
	fmt.Fprintf(&r, "| p50 | p99 | max |\n|---:|---:|---:|\n| %s | %s | %s |\n", ms(pct(e2eLat, 50)), ms(pct(e2eLat, 99)), ms(e2eLat[len(e2eLat)-1]))
	say("p50 %s p99 %s", ms(pct(e2eLat, 50)), ms(pct(e2eLat, 99)))

	step("cold start: receiver process start → first 202 (5 runs)")
	var colds []time.Duration
	for i := 0; i < 5; i++ {
		d, err := coldStart(ctx, s, bins.Receiver)
		if err != nil {
			return err
		}
		colds = append(colds, d)
	}
	sort.Slice(colds, func(i, j int) bool { return colds[i] < colds[j] })
	fmt.Fprintf(&r, "\n## Cold start\n\nReceiver binary started fresh, first signed request answered 202 (includes connecting to SQS). 5 runs.\n\n| min | median | max |\n|---:|---:|---:|\n| %s | %s | %s |\n", ms(colds[0]), ms(colds[2]), ms(colds[4]))
	say("median %s", ms(colds[2]))

	step("worker: one batch of 10 messages whose external call takes 2 s")
	cmd = exec.Command("go", "test", "-run", "^$", "-bench", "BatchOfTenTwoSecondCalls", "-benchtime", "3x", "./pipeline")
	cmd.Dir = filepath.Join(root, "infra", "local")
	outp, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("worker batch benchmark: %w\n%s", err, outp)
	}
	m := regexp.MustCompile(`([0-9.]+) worst-s/batch`).FindStringSubmatch(string(outp))
	if m == nil {
		return fmt.Errorf("worker batch benchmark: no result in\n%s", outp)
	}
	fmt.Fprintf(&r, "\n## Worker batch\n\n`BenchmarkBatchOfTenTwoSecondCalls` (infra/local/pipeline): 10 messages, each handler waits 2 s on its external call, through the real engine, dynalite and the local Slack server. Slowest of 3 batches: **%s s** (the target is ≤ 2.5 s; run one by one it would be 20 s).\n", m[1])
	say("worst batch %s s", m[1])

	step("Lambda mode: %d cold starts of each function, %d warm invocations each", *lambdaRuns, *lambdaWarm)
	section, err := benchLambda(ctx, root, lambdaWorld{local: s.Local, slackAPI: s.Slack.APIURL(), botToken: devworld.LocalBotToken}, *lambdaRuns, *lambdaWarm)
	if err != nil {
		return err
	}
	r.WriteString(section)

	step("streamed answers: the worker against the local LLM at a fixed pace (%d events)", *streamEvents)
	section, err = benchStream(ctx, bins, *streamEvents, streamInFlight, benchPace)
	if err != nil {
		return err
	}
	r.WriteString(section)

	step("the Stop button: click → answer stopped (%d answers per provider)", *stopAnswers)
	section, err = benchStop(ctx, bins, *stopAnswers)
	if err != nil {
		return err
	}
	r.WriteString(section)

	step("fair queues: one tenant sends %d events while nine send %d each (%d rounds)", *fairNoisy, *fairQuiet, *fairRuns)
	section, err = benchFair(ctx, bins, *fairRuns, *fairNoisy, *fairQuiet)
	if err != nil {
		return err
	}
	r.WriteString(section)

	step("the journal's cost per event, path by path")
	section, err = benchJournal(ctx, bins)
	if err != nil {
		return err
	}
	r.WriteString("\n" + section)

	fmt.Fprintf(&r, "\n## How to read these\n\n- The receiver's work per request is tens of microseconds; its HTTP ack time is dominated by the SendMessage round trip to the queue server.\n- Lambda adds its own overhead (API Gateway, invocation); these numbers are the code's share.\n- The end-to-end time includes the poller's long-poll cycle, which Lambda's event source mapping replaces.\n")
	if *out == "" {
		fmt.Print(r.String())
		return nil
	}
	if err := writeGenerated(*out, r.String()); err != nil {
		return err
	}
	step("wrote %s", *out)
	return nil
}

// The part of docs/benchmarks.md that make bench writes; the rest of the file (figures from
// the e2e soak and from tests that make bench does not run) is kept as it is.
const (
	beginGenerated = "<!-- BEGIN GENERATED make-bench -->"
	endGenerated   = "<!-- END GENERATED make-bench -->"
)

// writeGenerated replaces the generated part of the file at path with report, or writes the
// file anew (with the markers) when it has none.
func writeGenerated(path, report string) error {
	block := beginGenerated + "\n" + report + endGenerated + "\n"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	i, j := strings.Index(text, beginGenerated), strings.Index(text, endGenerated)
	if i < 0 || j < i {
		return os.WriteFile(path, []byte(block), 0o644)
	}
	return os.WriteFile(path, []byte(text[:i]+block+text[j+len(endGenerated)+1:]), 0o644)
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op.*?\s([0-9.]+) B/op\s+([0-9.]+) allocs/op`)

func parseBench(out string) [][4]string {
	var rows [][4]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
			rows = append(rows, [4]string{m[1], m[2], m[3], m[4]})
		}
	}
	return rows
}

func ackRun(ctx context.Context, s *devworld.World, n, conc int, channel string) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var mu sync.Mutex
	var firstErr error
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	base := time.Now().UnixNano() / 1000
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ts := fmt.Sprintf("%d.%06d", base/1e6+int64(i), i)
				r, err := s.Send(ctx, "/slack/events", "application/json", fixture.AppMention(fmt.Sprintf("EvB%d-%d", base, i), channel, ts, "bench"))
				if err == nil && r.Status != 202 {
					err = fmt.Errorf("status %d", r.Status)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				lat[i] = r.Latency
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	took := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, took, firstErr
}

// endToEnd measures n events, inflight at a time, from the signed request until the thread
// shows the answer exactly once as a Slack client renders it (answercheck): the demo
// responder's answer to "e2e", its buttons under it.
func endToEnd(ctx context.Context, s *devworld.World, n, inflight int) ([]time.Duration, error) {
	text, err := answercheck.DemoStreamed(ctx, benchDemoDelay, "e2e")
	if err != nil {
		return nil, err
	}
	want := answercheck.Answer(text)
	var out []time.Duration
	var mu sync.Mutex
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	errc := make(chan error, n)
	base := time.Now().Unix()
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			ts := fmt.Sprintf("%d.%06d", base, 500000+i)
			start := time.Now()
			if _, err := s.Send(ctx, "/slack/events", "application/json", fixture.AppMention(fmt.Sprintf("EvE%d-%d", base, i), "CE2E", ts, "e2e")); err != nil {
				errc <- err
				return
			}
			if err := devworld.WaitFor(30*time.Second, func() bool { return answered(s, "CE2E", ts, want) }); err != nil {
				errc <- fmt.Errorf("not answered once within 30 s: %w", answercheck.Judge("CE2E", ts, s.Slack.RenderedThread("CE2E", ts), want).Err())
				return
			}
			mu.Lock()
			out = append(out, time.Since(start))
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// answered reports whether the thread ts of channel shows want exactly once, as a Slack
// client renders it.
func answered(s *devworld.World, channel, ts string, want answercheck.Expect) bool {
	return answercheck.Judge(channel, ts, s.Slack.RenderedThread(channel, ts), want).OK()
}

func coldStart(ctx context.Context, s *devworld.World, bin string) (time.Duration, error) {
	// The receiver as StartReceiver runs it, but quiet and with SQS direct (no fault proxy).
	env := append(s.ReceiverEnv("127.0.0.1:39871"), receiverconfig.EnvLogLevel+"=error", awsclient.EndpointVar("SQS")+"="+s.Local.SQSEndpoint)
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	for time.Since(start) < 10*time.Second {
		r, err := s.SendTo(ctx, "http://127.0.0.1:39871", "/slack/events", "application/json", fixture.AppMention(fmt.Sprintf("EvCold%d", time.Now().UnixNano()), "CCOLD", fmt.Sprintf("%d.000001", time.Now().UnixNano()), "cold"))
		if err == nil && r.Status == 202 {
			return time.Since(start), nil
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("receiver did not answer within 10s")
}

// depthZero reports whether the worker has drained the events queue.
func depthZero(ctx context.Context, s *devworld.World) bool {
	n, err := s.Local.Depth(ctx, s.Local.QueueURL)
	return err == nil && n == 0
}

func pct(d []time.Duration, p int) time.Duration { return d[(len(d)-1)*p/100] }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if i := strings.Index(l, ":"); i > 0 {
				return strings.TrimSpace(l[i+1:])
			}
		}
	}
	return "unknown CPU"
}

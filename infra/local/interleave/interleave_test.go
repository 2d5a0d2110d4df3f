package interleave

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/awstest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
)

var (
	flagSeed      = flag.Uint64("seed", 0, "run only the schedule of this seed and print its trace")
	flagSchedules = flag.Int("schedules", 2000, "how many schedules TestInterleavings runs (seeds first … first+schedules-1)")
	flagFirst     = flag.Uint64("first", 1, "the first seed TestInterleavings runs (0: one drawn from the clock, printed)")
	flagWorkers   = flag.Int("workers", 0, "schedules run at once (0: 4 × GOMAXPROCS); each runs alone between its scheduling points")
	flagDynalites = flag.Int("dynalites", 0, "local DynamoDB servers the schedules share (0: GOMAXPROCS): dynalite runs on one core")
)

func TestMain(m *testing.M) { os.Exit(localawstest.Run(m)) }

// harness is what the schedules of a worker share: the bot, the journal's table on a local
// dynalite, the worker's DynamoDB client (every request through the scheduler) and an
// ungated one for the checks.
type harness struct {
	bot   *relay.Router
	ddb   *dynamodb.Client
	raw   *dynamodb.Client
	table string
}

// tables numbers the tables the tests create on a shared dynalite.
var tables atomic.Int64

// newHarness makes a harness on stack's dynalite, with a fresh table.
func newHarness(t *testing.T, stack *localaws.Servers) *harness {
	t.Helper()
	h := &harness{bot: relay.NewRouter(), raw: stack.DynamoDB(), table: fmt.Sprintf("interleave-%d", tables.Add(1))}
	register(h.bot)
	if err := h.bot.Err(); err != nil {
		t.Fatal(err)
	}
	if err := awstest.CreateTable(context.Background(), h.raw, h.table); err != nil {
		t.Fatal(err)
	}
	// The worker's client as awsclient builds it (three attempts), with the SDK's backoff and
	// retry quota off: a retry is another scheduling point, not a wait, and the quota would
	// make one schedule's retries depend on the ones before it.
	forward := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	h.ddb = dynamodb.NewFromConfig(awsclient.Local(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(stack.DynamoDBEndpoint)
		o.HTTPClient = &gate{service: "ddb", next: forward}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 3
			so.Backoff = noBackoff{}
			so.RateLimiter = ratelimit.None
		})
	})
	return h
}

// noBackoff retries at once.
type noBackoff struct{}

// BackoffDelay is zero.
func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

// envelope is the queue message of a mention in channel's thread, as the receiver writes it,
// and the dedupe key the worker gives it (the router's own decision, asked without a
// runtime: only the key is wanted).
func (h *harness) envelope(ctx context.Context, channel, thread string, seed uint64) (string, string, error) {
	env := envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindEvent, EventType: "app_mention",
		DedupeKey: "unused", ReceivedAt: time.Now().UTC(), ContentType: envelope.ContentTypeJSON,
		Body: fixture.AppMention(fmt.Sprintf("EvIL%d", seed), channel, thread, "answer me")}
	raw, err := json.Marshal(env)
	if err != nil {
		return "", "", err
	}
	d, err := h.bot.Dispatch(ctx, nil, &env)
	if err != nil || d.Route == "" || d.Skip != "" {
		return "", "", fmt.Errorf("%w: the mention is not routed to the test handler: %v %+v", errHarness, err, d)
	}
	return string(raw), d.Key, nil
}

// userMessage is the mention that starts the thread: U0USER's message at ts in channel.
func userMessage(channel, ts string) fakeslack.UserMessage {
	return fakeslack.UserMessage{Channel: channel, User: "U0USER", Text: "<@UBOT> answer me", TS: ts}
}

// worker runs schedules one after the other, with a local Slack of its own whose clock is
// the current schedule's.
type worker struct {
	h     *harness
	slack *fakeslack.Server
	// client is the engine's Slack client: every request through the scheduler.
	client *slack.Client
	cur    atomic.Pointer[schedule]
}

// newWorker starts the worker's local Slack (stopped when t ends) and its Slack client.
func newWorker(t *testing.T, h *harness) *worker {
	t.Helper()
	w := &worker{h: h}
	w.slack = fakeslack.New(fakeslack.Options{Now: func() time.Time {
		if s := w.cur.Load(); s != nil {
			return s.now()
		}
		return time.Now()
	}})
	if _, err := w.slack.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.slack.Close() })
	w.client = slack.New("xoxb-interleave", slack.OptionAPIURL(w.slack.APIURL()),
		slack.OptionHTTPClient(&gate{service: "slack", next: &http.Client{}}))
	return w
}

// play runs schedule seed on w.
func (w *worker) play(seed uint64) (*schedule, error) {
	s := newSchedule(w, seed)
	w.cur.Store(s)
	defer w.cur.Store(nil)
	s.n.schedules = 1
	err := s.run(context.Background())
	s.n.metrics = s.metrics.counts()
	return s, err
}

// TestSchedulesAreReproducible plays the same seeds on two workers (each with its own table
// and local Slack, after different histories) and wants the same trace: every decision comes
// from the seed, none from goroutine timing or from what ran before.
func TestSchedulesAreReproducible(t *testing.T) {
	t.Parallel()
	stack := localawstest.Stack(t)
	a, b := newWorker(t, newHarness(t, stack)), newWorker(t, newHarness(t, stack))
	if _, err := b.play(999_999); err != nil { // b's Slack has a history a's has not
		t.Fatal(err)
	}
	const first, n = 5000, 25
	for seed := uint64(first); seed < first+n; seed++ {
		s1, err1 := a.play(seed)
		s2, err2 := b.play(seed)
		if err1 != nil || err2 != nil {
			t.Fatalf("seed %d: %v / %v", seed, err1, err2)
		}
		if diff := cmp.Diff(s1.trace, s2.trace); diff != "" {
			t.Errorf("seed %d played twice gave two traces (-first +second):\n%s", seed, diff)
		}
	}
}

// TestInterleavings runs -schedules schedules from seed -first (or only -seed) and checks
// the property in each; a failure prints the seed and the schedule's trace.
func TestInterleavings(t *testing.T) {
	t.Parallel()
	hs := []*harness{newHarness(t, localawstest.Stack(t))}
	h := hs[0]
	if *flagSeed != 0 {
		w := newWorker(t, h)
		s, err := w.play(*flagSeed)
		if err != nil || len(s.violations) > 0 {
			t.Fatal(s.report(err) + "worker log:\n" + s.log.String())
		}
		t.Logf("schedule %d holds:\n%s", s.seed, strings.Join(s.trace, "\n"))
		return
	}
	first, n := *flagFirst, *flagSchedules
	if first == 0 {
		first = uint64(time.Now().UnixNano()%1_000_000_000) + 1
	}
	if testing.Short() {
		n = min(n, 200)
	}
	workers := *flagWorkers
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	dynalites := *flagDynalites
	if dynalites <= 0 {
		dynalites = runtime.GOMAXPROCS(0)
	}
	for range dynalites - 1 {
		hs = append(hs, newHarness(t, localawstest.Start(t, localaws.Options{})))
	}
	t.Logf("seeds %d … %d, %d at a time on %d dynalites", first, first+uint64(n)-1, workers, len(hs))

	start := time.Now()
	seeds := make(chan uint64)
	var mu sync.Mutex
	var total counts
	var failed []uint64
	var wg sync.WaitGroup
	for i := range workers {
		w := newWorker(t, hs[i%len(hs)])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				s, err := w.play(seed)
				mu.Lock()
				total.add(s.n)
				if err != nil || len(s.violations) > 0 {
					failed = append(failed, seed)
					if len(failed) <= 3 {
						t.Error(s.report(err))
					}
				}
				mu.Unlock()
			}
		}()
	}
	for seed := first; seed < first+uint64(n); seed++ {
		mu.Lock()
		stop := len(failed) >= 20
		mu.Unlock()
		if stop {
			break
		}
		seeds <- seed
	}
	close(seeds)
	wg.Wait()
	took := time.Since(start)
	slices.Sort(failed)
	if len(failed) > 0 {
		t.Errorf("%d of %d schedules failed, seeds %v", len(failed), total.schedules, failed)
	}
	t.Logf("%d schedules in %s (%.1f ms each, %d at a time):\n"+
		"  answered when the copies settled: %d; with a dead letter: %d (replayed: %d; DLQ classes: %s)\n"+
		"  invocations %d, calls scheduled %d, redeliveries %d, times time passed %d\n"+
		"  crashes: %d before a call, %d after it, %d past the deadline, %d deletes lost (calls refused at once after: %d)\n"+
		"  answers lost: %d (%s); calls refused: %d (%s)\n"+
		"  takeovers: %d of the message's own claim, %d of another copy's after its lease; continuations asked: %d\n"+
		"  calls that reached a server: %s\n"+
		"  engine: %s",
		total.schedules, took.Round(time.Millisecond), float64(took.Milliseconds())/float64(max(total.schedules, 1)), workers,
		total.answered, total.deadLettered, total.replayed, format(total.dlqClasses),
		total.invocations, total.calls, total.redeliveries, total.timePasses,
		total.crashBefore, total.crashAfter, total.killed, total.ackLost, total.deadCalls,
		sum(total.lost), format(total.lost), sum(total.failed), format(total.failed),
		total.takeoverOwn, total.takeoverOther, total.yields,
		format(total.ops), format(total.metrics))
}

package cli

import (
	"cmp"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// A large DLQ, receives slowed as over a network, a short peek visibility: export sees it
// all; replay --all at a rate outlives the visibility while another reader polls the DLQ
// and gets nothing, a send fails half way, and nothing is lost or sent twice, before or
// after a second replay finishes the job.
func TestLargeQueueExportAndReplayWithAFailureHalfWay(t *testing.T) {
	t.Parallel()
	const n, vis, receiveLatency, rate = 2000, 2 * time.Second, 8 * time.Millisecond, "800"
	e := newEnv(t)
	bodies := e.seedMany(t, "replay", n)
	slow := e.SlowReceives(receiveLatency)
	deps := e.deps()
	deps.SQS, deps.PeekVisibility = slow, vis

	file := filepath.Join(t.TempDir(), "dlq.jsonl")
	start := time.Now()
	_, errs, err := e.run(t, deps, "export", "--out", file)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("export of %d messages: %.2f s", n, time.Since(start).Seconds())
	mustContain(t, errs, "exported 2000 message(s)", "the DLQ counts 2000: all seen")
	if ids := fileIDs(t, file); len(ids) != n {
		t.Errorf("export file holds %d distinct messages, want %d", len(ids), n)
	}

	other := &otherReader{SQSAPI: &failingSQS{SQSAPI: slow, failFrom: n / 2}, c: e.c, dlq: e.dlq}
	deps.SQS = other
	start = time.Now()
	out, _, err := e.run(t, deps, "replay", "--all", "--yes", "--rate", rate)
	took := time.Since(start)
	other.check(t)
	t.Logf("replay --rate %s with the send #%d failing: %.2f s", rate, n/2, took.Seconds())
	if ExitCode(err) != ExitPartial {
		t.Fatalf("replay with a failing send: got %v (exit %d), want exit 3", err, ExitCode(err))
	}
	mustContain(t, out, "replayed 999, skipped stale 0, failed 1, not attempted 1000")
	mustContain(t, err.Error(), "injected: service unavailable", "still in the DLQ")
	if took <= vis {
		t.Errorf("the replay took %v, not longer than the peek visibility %v: the test does not test the hold", took, vis)
	}
	if v, nv := counts(t, e.c, e.dlq); v != n/2+1 || nv != 0 {
		t.Errorf("DLQ after the failed replay: visible %d, in flight %d; want %d visible at once", v, nv, n/2+1)
	}
	if v, _ := counts(t, e.c, e.queue); v != n/2-1 {
		t.Errorf("events queue after the failed replay: %d, want %d", v, n/2-1)
	}

	other = &otherReader{SQSAPI: slow, c: e.c, dlq: e.dlq}
	deps.SQS = other
	start = time.Now()
	out, _, err = e.run(t, deps, "replay", "--all", "--yes", "--rate", rate)
	other.check(t)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second replay of %d: %.2f s", n/2+1, time.Since(start).Seconds())
	mustContain(t, out, "replayed 1001, skipped stale 0, failed 0")
	if v, nv := counts(t, e.c, e.dlq); v != 0 || nv != 0 {
		t.Errorf("DLQ after both replays: visible %d, in flight %d; want empty", v, nv)
	}
	seen := map[string]int{}
	for _, m := range drain(t, e.c, e.queue) {
		seen[aws.ToString(m.Body)]++
	}
	if len(seen) != n {
		t.Errorf("events queue holds %d distinct bodies, want %d", len(seen), n)
	}
	for b, k := range seen {
		if !bodies[b] || k != 1 {
			t.Errorf("body %q on the events queue %d time(s) (seeded: %v), want once", b, k, bodies[b])
		}
	}
}

// otherReader is the tool's SQS client with another reader of the DLQ beside it: from the
// replay's first send until the tool first makes messages visible again (a visibility
// timeout of 0), it receives from the DLQ every 50 ms, and must get nothing, as the replay
// holds every message. (fauxqs ends a visibility timeout only when the queue is received
// from: without this reader, a hold that stopped would go unnoticed.)
type otherReader struct {
	SQSAPI
	c   *sqs.Client
	dlq string

	mu              sync.Mutex
	started, halted bool
	stop, stopped   chan struct{}
	polls, received int
	firstErr        error
}

func (o *otherReader) SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	o.mu.Lock()
	if !o.started {
		o.started = true
		o.stop, o.stopped = make(chan struct{}), make(chan struct{})
		go o.poll()
	}
	o.mu.Unlock()
	return o.SQSAPI.SendMessage(ctx, in, opts...)
}

func (o *otherReader) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	if len(in.Entries) > 0 && in.Entries[0].VisibilityTimeout == 0 {
		o.halt()
	}
	return o.SQSAPI.ChangeMessageVisibilityBatch(ctx, in, opts...)
}

// halt stops the reader and waits for its last receive.
func (o *otherReader) halt() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.started && !o.halted {
		o.halted = true
		close(o.stop)
		<-o.stopped
	}
}

func (o *otherReader) poll() {
	defer close(o.stopped)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-tick.C:
		}
		out, err := o.c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(o.dlq), MaxNumberOfMessages: 10, VisibilityTimeout: 0})
		if err != nil {
			o.firstErr = cmp.Or(o.firstErr, err)
			continue
		}
		o.polls++
		o.received += len(out.Messages)
	}
}

// check halts the reader and fails t unless it polled and received nothing.
func (o *otherReader) check(t *testing.T) {
	t.Helper()
	o.halt()
	switch {
	case o.received > 0:
		t.Errorf("another reader received %d DLQ message(s) while the replay held them all, want none", o.received)
	case o.polls == 0:
		t.Errorf("the other reader never received from the DLQ (error: %v): the test does not test the hold", o.firstErr)
	default:
		t.Logf("another reader polled the DLQ %d times during the replay, got nothing", o.polls)
	}
}

package cli

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// A large DLQ, receives slowed as over a network, a short peek visibility: export sees it
// all; replay --all at a rate outlives the visibility, a send fails half way, and nothing
// is lost or sent twice, before or after a second replay finishes the job.
func TestLargeQueueExportAndReplayWithAFailureHalfWay(t *testing.T) {
	t.Parallel()
	const n, vis, receiveLatency, rate = 2000, 2 * time.Second, 8 * time.Millisecond, "800"
	e := newEnv(t)
	bodies := e.seedMany(t, "replay", n)
	slow := e.slowReceives(receiveLatency)
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

	deps.SQS = &failingSQS{SQSAPI: slow, failFrom: n / 2}
	start = time.Now()
	out, _, err := e.run(t, deps, "replay", "--all", "--yes", "--rate", rate)
	took := time.Since(start)
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

	deps.SQS = slow
	start = time.Now()
	out, _, err = e.run(t, deps, "replay", "--all", "--yes", "--rate", rate)
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

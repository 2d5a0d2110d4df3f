package crashsweep

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
)

func TestMain(m *testing.M) { os.Exit(localawstest.Run(m)) }

// summary collects every path's figures, printed at the end of the sweep.
var summary struct {
	mu    sync.Mutex
	lines []string
}

// TestSweep runs, for every path, a clean run that lists the path's points, then one run per
// point and fault mode; each must settle as one answer (or, on paths Slack makes at most
// once, no more than one).
func TestSweep(t *testing.T) {
	stack := localawstest.Stack(t)
	start := time.Now()
	t.Run("paths", func(t *testing.T) {
		for _, p := range paths() {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				sweep(t, newWorld(t, stack), p)
			})
		}
	})
	summary.mu.Lock()
	defer summary.mu.Unlock()
	sort.Strings(summary.lines)
	points, total := 0, 0
	for _, l := range summary.lines {
		var p, r int
		fmt.Sscanf(l[strings.LastIndex(l, "|")+1:], " %d points, %d runs", &p, &r)
		points, total = points+p, total+r
	}
	t.Logf("crash-point sweep: %d paths, %d points, %d runs (4 faults a point, a fifth mid-stream at a model's turn, plus a clean run a path) in %s\n%s",
		len(summary.lines), points, total, time.Since(start).Round(time.Second), strings.Join(summary.lines, "\n"))
}

func sweep(t *testing.T, w *world, p *path) {
	start := time.Now()
	clean := w.newRun(t, p)
	clean.deliver(p.setup(clean), nil)
	if got, err := p.judge(clean); err != nil || got != answered || len(clean.deadLetters) != 0 {
		t.Fatalf("clean run: %v %v, dead letters %v\n%s", got, err, clean.deadLetters, clean.logs.String())
	}
	if p.continues && clean.continuations == 0 {
		t.Fatalf("clean run: the answer did not continue across invocations\n%s", clean.logs.String())
	}
	points := clean.points
	var mu sync.Mutex
	outcomes := map[outcome]int{}
	invocations, notReached, runs := 0, 0, 1
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4) // runs are independent: each its own Slack, its own key
	for i, label := range points {
		for _, m := range modesAt(label) {
			runs++
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				inj := &injection{at: i + 1, mode: m}
				r := w.newRun(t, p)
				r.deliver(p.setup(r), inj)
				where := fmt.Sprintf("point %d/%d %s, %s", i+1, len(points), label, m)
				got, err := p.judge(r)
				if err == nil && len(r.deadLetters) > 0 {
					err = fmt.Errorf("dead letters %v", r.deadLetters)
				}
				if err == nil && got != answered && !slices.Contains(p.allowed, got) {
					err = fmt.Errorf("outcome %q is not allowed on this path", got)
				}
				mu.Lock()
				defer mu.Unlock()
				invocations += r.invocations
				if !inj.fired || inj.label != label {
					notReached++
					t.Logf("%s: the run took another way (fault at %q)", where, inj.label)
				}
				if err != nil {
					t.Errorf("%s: %v\nworker logs:\n%s", where, err, r.logs.String())
					return
				}
				outcomes[got]++
				if got != answered {
					t.Logf("%s: %s", where, got)
				}
			}()
		}
	}
	wg.Wait()
	var seen []string
	for o, n := range outcomes {
		seen = append(seen, fmt.Sprintf("%s %d", o, n))
	}
	sort.Strings(seen)
	line := fmt.Sprintf("%-38s | %s; %d invocations | %d points, %d runs in %s", p.name, strings.Join(seen, ", "), invocations, len(points), runs,
		time.Since(start).Round(100*time.Millisecond))
	if notReached > 0 {
		line += fmt.Sprintf(" (%d runs took another way)", notReached)
	}
	summary.mu.Lock()
	summary.lines = append(summary.lines, line)
	summary.mu.Unlock()
	t.Logf("points: %s", strings.Join(points, " → "))
}

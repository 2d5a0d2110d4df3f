package deadletter

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkScan scans and releases a queue of n messages on the local server, receives
// slowed by latency as over a network. It reports the scan's seconds, messages per second
// and how many of the n it held. The 10,000 × 40 ms case is the one that outlives the
// default 30 s peek visibility (about a minute per iteration: run it with -benchtime=1x).
func BenchmarkScan(b *testing.B) {
	for _, bc := range []struct {
		n       int
		latency time.Duration
		vis     time.Duration
	}{
		{5000, 0, DefaultVisibility},
		{3000, 8 * time.Millisecond, 2 * time.Second},
		{10000, 40 * time.Millisecond, DefaultVisibility},
	} {
		b.Run(fmt.Sprintf("n=%d/latency=%v/visibility=%v", bc.n, bc.latency, bc.vis), func(b *testing.B) {
			q := newQueue(b)
			q.seed(b, "bench", bc.n)
			c := q.SlowReceives(bc.latency)
			b.ReportAllocs()
			b.ResetTimer()
			var res Result
			for b.Loop() {
				h, r, err := Scan(context.Background(), c, q.url, ScanOptions{Visibility: bc.vis})
				if err != nil {
					b.Fatal(err)
				}
				res = r
				if err := h.Release(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.Elapsed.Seconds(), "scan-s")
			b.ReportMetric(float64(res.Held)/res.Elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(res.Held), "held")
			if !res.Complete() || res.Held != bc.n {
				b.Errorf("scan: got %+v, want all %d held", res, bc.n)
			}
		})
	}
}

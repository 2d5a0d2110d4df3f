package interleave

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
)

// counts are what one schedule injected and saw.
type counts struct {
	schedules, answered, deadLettered, replayed int
	invocations                                 int
	crashBefore, crashAfter, killed, ackLost    int
	lost, failed                                map[string]int
	deadCalls                                   int
	takeoverOwn, takeoverOther                  int
	yields, timePasses, redeliveries            int
	calls                                       int
	ops                                         map[string]int // calls that reached a server, by service and operation
	metrics                                     map[string]int
	dlqClasses                                  map[string]int
}

// add adds o's counts to c's.
func (c *counts) add(o counts) {
	c.schedules += o.schedules
	c.answered += o.answered
	c.deadLettered += o.deadLettered
	c.replayed += o.replayed
	c.invocations += o.invocations
	c.crashBefore += o.crashBefore
	c.crashAfter += o.crashAfter
	c.killed += o.killed
	c.ackLost += o.ackLost
	c.deadCalls += o.deadCalls
	c.takeoverOwn += o.takeoverOwn
	c.takeoverOther += o.takeoverOther
	c.yields += o.yields
	c.timePasses += o.timePasses
	c.redeliveries += o.redeliveries
	c.calls += o.calls
	c.ops = addMap(c.ops, o.ops)
	c.lost = addMap(c.lost, o.lost)
	c.failed = addMap(c.failed, o.failed)
	c.metrics = addMap(c.metrics, o.metrics)
	c.dlqClasses = addMap(c.dlqClasses, o.dlqClasses)
}

// addMap adds src's counts to dst (made when nil) and returns it.
func addMap(dst, src map[string]int) map[string]int {
	if dst == nil {
		dst = map[string]int{}
	}
	for k, v := range src {
		dst[k] += v
	}
	return dst
}

// sum is the total of m's counts.
func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// format lists a map's counts in key order: "ddb 12, slack 3".
func format(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// metricCounter counts the engine's metrics by name (it reads the EMF lines the
// engine's metrics.Emitter writes, one per metric).
type metricCounter struct {
	mu sync.Mutex
	n  map[string]int
}

// Write counts the metric of one EMF line.
func (m *metricCounter) Write(p []byte) (int, error) {
	var line struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Metrics []struct{ Name string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal(p, &line); err == nil && len(line.AWS.CloudWatchMetrics) > 0 && len(line.AWS.CloudWatchMetrics[0].Metrics) > 0 {
		name := line.AWS.CloudWatchMetrics[0].Metrics[0].Name
		m.mu.Lock()
		if m.n == nil {
			m.n = map[string]int{}
		}
		m.n[name]++
		m.mu.Unlock()
	}
	return len(p), nil
}

// counts is a copy of the counts so far.
func (m *metricCounter) counts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.n)
}

// report is a failed schedule as the test prints it: what broke, how to replay it and its
// trace.
func (s *schedule) report(err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "schedule %d (profile %s, handler %s) failed; replay it alone with:\n", s.seed, s.prof.name, s.variant.name)
	fmt.Fprintf(&b, "  go test ./interleave -run TestInterleavings -seed %d -v\n", s.seed)
	if err != nil {
		fmt.Fprintf(&b, "  error: %v\n", err)
	}
	for _, v := range s.violations {
		fmt.Fprintf(&b, "  property: %s\n", v)
	}
	b.WriteString("trace (step, virtual time, message#receive, call, decision):\n")
	for _, l := range s.trace {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

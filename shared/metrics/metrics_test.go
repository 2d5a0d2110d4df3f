package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEmitLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	e := New(&buf, "slackrelay")
	e.now = func() time.Time { return time.UnixMilli(1700000000123) }
	e.Count("Requests", 1, Dim{"kind", "event"})
	e.Milliseconds("EnqueueLatency", 1500*time.Microsecond)
	e.Count("Rejections", 2, Dim{"reason", `bad "sig"`}, Dim{"kind", "event"})

	var lines []map[string]any
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3", len(lines))
	}
	want := map[string]any{
		"_aws": map[string]any{"Timestamp": 1700000000123.0, "CloudWatchMetrics": []any{map[string]any{
			"Namespace": "slackrelay", "Dimensions": []any{[]any{"kind"}},
			"Metrics": []any{map[string]any{"Name": "Requests", "Unit": "Count"}},
		}}},
		"kind": "event", "Requests": 1.0,
	}
	if diff := cmp.Diff(want, lines[0]); diff != "" {
		t.Errorf("first line (-want +got):\n%s", diff)
	}
	if got := lines[1]["EnqueueLatency"]; got != 1.5 {
		t.Errorf("EnqueueLatency = %v, want 1.5", got)
	}
	if dims := lines[1]["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Dimensions"]; !cmp.Equal(dims, []any{[]any{}}) {
		t.Errorf("no-dimension metric Dimensions = %v, want [[]]", dims)
	}
	if lines[2]["reason"] != `bad "sig"` || lines[2]["Rejections"] != 2.0 {
		t.Errorf("third line = %v", lines[2])
	}
}

// TestEmitEscapes: whatever the names and values hold, each line is valid JSON that reads
// back to them, also once more distinct strings than the Emitter keeps have been seen.
func TestEmitEscapes(t *testing.T) {
	t.Parallel()
	tricky := []string{`quote " and \ backslash`, "control \x00\x01\n\t", "<html> & 'amp'", "line\u2028sep", "ünïcödé 🎉"}
	for i := range maxQuoted + 10 {
		tricky = append(tricky, fmt.Sprintf("value-%d-\"", i))
	}
	var buf bytes.Buffer
	e := New(&buf, `ns "x"`)
	for _, v := range tricky {
		e.Count("Metric "+v, 3, Dim{"dim " + v, v})
	}
	sc := bufio.NewScanner(&buf)
	i := 0
	for ; sc.Scan(); i++ {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d %q is not JSON: %v", i, sc.Text(), err)
		}
		v := tricky[i]
		if got := m["dim "+v]; got != v {
			t.Errorf("line %d: dimension value = %q, want %q", i, got, v)
		}
		if got := m["Metric "+v]; got != 3.0 {
			t.Errorf("line %d: metric value = %v, want 3", i, got)
		}
		if got := m["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Namespace"]; got != `ns "x"` {
			t.Errorf("line %d: namespace = %q, want %q", i, got, `ns "x"`)
		}
	}
	if i != len(tricky) {
		t.Fatalf("got %d lines, want %d", i, len(tricky))
	}
}

func TestEmitSkipsNonNumbers(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	e := New(&buf, "ns")
	e.Count("Nan", math.NaN())
	e.Count("Inf", math.Inf(1))
	if buf.Len() != 0 {
		t.Fatalf("wrote %q for NaN and Inf, want nothing (JSON has no such numbers)", buf.String())
	}
}

func TestEmitConcurrentWholeLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	e := New(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) }), "ns")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				e.Count("Requests", 1, Dim{"kind", "event"})
			}
		})
	}
	wg.Wait()
	sc := bufio.NewScanner(&buf)
	n := 0
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("torn line %q", sc.Text())
		}
		n++
	}
	if n != 400 {
		t.Errorf("got %d lines, want 400", n)
	}
}

func TestNilEmitterIsSafe(t *testing.T) {
	t.Parallel()
	var e *Emitter
	e.Count("x", 1) // must not panic: metrics are optional in tests and tools
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func BenchmarkCount(b *testing.B) {
	e := New(io.Discard, "slackrelay")
	b.ReportAllocs()
	for b.Loop() {
		e.Count("Requests", 1, Dim{"kind", "event"})
	}
}

// Emit writes several metrics in one line, under the full dimension set and each rollup,
// leaving out values JSON cannot hold.
func TestEmitSeveral(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	e := New(&buf, "slackrelay")
	e.now = func() time.Time { return time.UnixMilli(1700000000123) }
	e.Emit([]Dim{{"Model", "anthropic.claude-x"}, {"Team", "T1"}}, [][]string{{"Model"}},
		Metric{"InputTokens", UnitCount, 1200}, Metric{"ModelTime", UnitMilliseconds, 850.5},
		Metric{"Broken", UnitNone, math.NaN()}, Metric{"EstimatedCostUSD", UnitNone, 0.0123})
	e.Emit(nil, nil, Metric{"Nothing", UnitNone, math.Inf(1)}) // no line
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatalf("want one JSON line, got %q: %v", buf.String(), err)
	}
	want := map[string]any{
		"_aws": map[string]any{"Timestamp": 1700000000123.0, "CloudWatchMetrics": []any{map[string]any{
			"Namespace": "slackrelay", "Dimensions": []any{[]any{"Model", "Team"}, []any{"Model"}},
			"Metrics": []any{
				map[string]any{"Name": "InputTokens", "Unit": "Count"},
				map[string]any{"Name": "ModelTime", "Unit": "Milliseconds"},
				map[string]any{"Name": "EstimatedCostUSD", "Unit": "None"},
			},
		}}},
		"Model": "anthropic.claude-x", "Team": "T1", "InputTokens": 1200.0, "ModelTime": 850.5, "EstimatedCostUSD": 0.0123,
	}
	if diff := cmp.Diff(want, line); diff != "" {
		t.Errorf("line (-want +got):\n%s", diff)
	}
	var nilEmitter *Emitter
	nilEmitter.Emit(nil, nil, Metric{"X", UnitCount, 1}) // a nil Emitter writes nothing, and does not panic
}

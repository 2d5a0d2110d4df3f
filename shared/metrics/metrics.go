// Package metrics writes CloudWatch Embedded Metric Format lines: CloudWatch Logs turns each
// JSON line into metrics, so no extra client, call or dependency is needed.
package metrics

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

// Dim is one metric dimension.
type Dim struct{ Name, Value string }

// Emitter writes one EMF line per metric. It is safe for concurrent use.
type Emitter struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	now       func() time.Time
	buf       []byte
	quotes    map[string][]byte
	one       [1]Metric // the one metric of Count and Milliseconds, without an allocation
}

// maxQuoted bounds the strings an Emitter keeps encoded: a process uses a few dozen metric
// names, units and dimension values.
const maxQuoted = 256

// New returns an Emitter writing to w under the namespace (slackrelay's is "slackrelay").
func New(w io.Writer, namespace string) *Emitter {
	return &Emitter{w: w, namespace: namespace, now: time.Now, buf: make([]byte, 0, 512), quotes: make(map[string][]byte)}
}

// Count records n of something (requests, rejections, failures).
func (e *Emitter) Count(name string, n float64, dims ...Dim) { e.emit(name, "Count", n, dims) }

// Milliseconds records a duration.
func (e *Emitter) Milliseconds(name string, d time.Duration, dims ...Dim) {
	e.emit(name, "Milliseconds", float64(d)/float64(time.Millisecond), dims)
}

// Units of a Metric (CloudWatch's names).
const (
	UnitCount        = "Count"
	UnitMilliseconds = "Milliseconds"
	UnitNone         = "None"
)

// Metric is one value of a line of several (Emitter.Emit).
type Metric struct {
	Name  string
	Unit  string // UnitCount, UnitMilliseconds, UnitNone, or another CloudWatch unit
	Value float64
}

// Emit writes ms in one EMF line, under the dimensions dims and, for each of rollups (a list
// of names of dims), under those dimensions alone as well: CloudWatch keeps a metric per
// dimension set and does not add them up across sets, so the same values per model and team
// and per model alone take the rollup {"Model"}. A value that JSON cannot hold (NaN, ±Inf)
// is left out; a line with none is not written. CloudWatch takes at most 100 metrics and 30
// dimensions a set.
func (e *Emitter) Emit(dims []Dim, rollups [][]string, ms ...Metric) {
	if e == nil || e.w == nil {
		return
	}
	ok := ms[:0:0]
	for _, m := range ms {
		if !math.IsNaN(m.Value) && !math.IsInf(m.Value, 0) {
			ok = append(ok, m)
		}
	}
	if len(ok) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.writeLocked(dims, rollups, ok)
}

// quoted returns s encoded as a JSON string by encoding/json, keeping the encoding for the
// next line. The caller holds e.mu.
func (e *Emitter) quoted(s string) []byte {
	if q, ok := e.quotes[s]; ok {
		return q
	}
	q, _ := json.Marshal(s) // a string always encodes (invalid UTF-8 becomes U+FFFD)
	if len(e.quotes) < maxQuoted {
		e.quotes[s] = q
	}
	return q
}

// emit writes one line:
//
//	{"_aws":{"Timestamp":…,"CloudWatchMetrics":[{"Namespace":…,"Dimensions":[[dim names]],
//	"Metrics":[{"Name":…,"Unit":…}]}]},"dim name":"dim value",…,"metric name":value}
//
// The frame is fixed; every string in it is encoded by encoding/json (quoted), which keeps a
// line at a fraction of the cost of encoding a map per metric on the request path.
func (e *Emitter) emit(name, unit string, value float64, dims []Dim) {
	if e == nil || e.w == nil || math.IsNaN(value) || math.IsInf(value, 0) {
		return // JSON has no NaN or infinity
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.one[0] = Metric{Name: name, Unit: unit, Value: value}
	e.writeLocked(dims, nil, e.one[:])
}

// writeLocked writes one line of ms (values JSON can hold) under dims and its rollups. The
// caller holds e.mu.
func (e *Emitter) writeLocked(dims []Dim, rollups [][]string, ms []Metric) {
	b := append(e.buf[:0], `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, e.now().UnixMilli(), 10)
	b = append(b, `,"CloudWatchMetrics":[{"Namespace":`...)
	b = append(b, e.quoted(e.namespace)...)
	b = append(b, `,"Dimensions":[`...)
	b = e.appendNames(b, dims, nil)
	for _, set := range rollups {
		b = append(b, ',')
		b = e.appendNames(b, nil, set)
	}
	b = append(b, `],"Metrics":[`...)
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Name":`...)
		b = append(b, e.quoted(m.Name)...)
		b = append(b, `,"Unit":`...)
		b = append(b, e.quoted(m.Unit)...)
		b = append(b, '}')
	}
	b = append(b, `]}]}`...)
	for _, d := range dims {
		b = append(b, ',')
		b = append(b, e.quoted(d.Name)...)
		b = append(b, ':')
		b = append(b, e.quoted(d.Value)...)
	}
	for _, m := range ms {
		b = append(b, ',')
		b = append(b, e.quoted(m.Name)...)
		b = append(b, ':')
		b = strconv.AppendFloat(b, m.Value, 'f', -1, 64)
	}
	b = append(b, '}', '\n')
	_, _ = e.w.Write(b) // metrics are best effort: a failed write must not fail the request
	e.buf = b
}

// appendNames appends a dimension set: dims' names, or names.
func (e *Emitter) appendNames(b []byte, dims []Dim, names []string) []byte {
	b = append(b, '[')
	for i, d := range dims {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.quoted(d.Name)...)
	}
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.quoted(n)...)
	}
	return append(b, ']')
}

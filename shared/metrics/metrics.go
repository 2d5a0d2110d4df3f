// Package metrics writes CloudWatch Embedded Metric Format lines: CloudWatch Logs turns each
// JSON line into metrics, so no extra client, call or dependency is needed.
package metrics

import (
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/slackrelay/slackrelay/shared/envelope"
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
}

// New returns an Emitter writing to w under the namespace (slackrelay's is "slackrelay").
func New(w io.Writer, namespace string) *Emitter {
	return &Emitter{w: w, namespace: namespace, now: time.Now, buf: make([]byte, 0, 512)}
}

// Count records n of something (requests, rejections, failures).
func (e *Emitter) Count(name string, n float64, dims ...Dim) { e.emit(name, "Count", n, dims) }

// Milliseconds records a duration.
func (e *Emitter) Milliseconds(name string, d time.Duration, dims ...Dim) {
	e.emit(name, "Milliseconds", float64(d)/float64(time.Millisecond), dims)
}

func (e *Emitter) emit(name, unit string, value float64, dims []Dim) {
	if e == nil || e.w == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	b := append(e.buf[:0], `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, e.now().UnixMilli(), 10)
	b = append(b, `,"CloudWatchMetrics":[{"Namespace":`...)
	b = envelope.AppendString(b, e.namespace)
	b = append(b, `,"Dimensions":[[`...)
	for i, d := range dims {
		if i > 0 {
			b = append(b, ',')
		}
		b = envelope.AppendString(b, d.Name)
	}
	b = append(b, `]],"Metrics":[{"Name":`...)
	b = envelope.AppendString(b, name)
	b = append(b, `,"Unit":`...)
	b = envelope.AppendString(b, unit)
	b = append(b, `}]}]}`...)
	for _, d := range dims {
		b = append(b, ',')
		b = envelope.AppendString(b, d.Name)
		b = append(b, ':')
		b = envelope.AppendString(b, d.Value)
	}
	b = append(b, ',')
	b = envelope.AppendString(b, name)
	b = append(b, ':')
	b = strconv.AppendFloat(b, value, 'f', -1, 64)
	b = append(b, '}', '\n')
	_, _ = e.w.Write(b) // metrics are best effort: a failed write must not fail the request
	e.buf = b
}

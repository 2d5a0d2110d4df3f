package llm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/shared/logbuf"

	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

const testKey = "sk-test-7f3a9c-secret"

// setup starts a local chat-completions server that checks testKey and returns it with a
// client pointed at it, emitting metrics into the returned buffer. The test's cleanup stops
// the server.
func setup(t testing.TB, opts fakellm.Options) (*fakellm.Server, *Chat, *logbuf.Buffer) {
	t.Helper()
	opts.APIKey = testKey
	srv := fakellm.New(opts)
	if _, err := srv.Start(""); err != nil {
		t.Fatalf("start local llm: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	var out logbuf.Buffer
	c := &Chat{
		BaseURL: srv.APIURL(), Model: "test-model",
		APIKey:  func(context.Context) (string, error) { return testKey, nil },
		Metrics: metrics.New(&out, "slackrelay/worker"),
	}
	return srv, c, &out
}

// metricValues returns the values of the EMF metric name whose dimensions include dims.
func metricValues(t testing.TB, out *logbuf.Buffer, name string, dims map[string]string) []float64 {
	t.Helper()
	var vals []float64
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		v, ok := line[name].(float64)
		if !ok {
			continue
		}
		match := true
		for k, want := range dims {
			if line[k] != want {
				match = false
			}
		}
		if match {
			vals = append(vals, v)
		}
	}
	return vals
}

// toLocal converts messages for comparison with what the local server recorded.
func toLocal(msgs []Message) []fakellm.Message {
	out := make([]fakellm.Message, len(msgs))
	for i, m := range msgs {
		out[i] = fakellm.Message{Role: m.Role, Content: m.Content}
	}
	return out
}

// noKey fails the test when text holds the API key.
func noKey(t testing.TB, what, text string) {
	t.Helper()
	if strings.Contains(text, testKey) {
		t.Errorf("%s holds the API key: %s", what, text)
	}
}

// failedStream is what a table of Stream failures expects of one case.
type failedStream struct {
	model    string
	is       []error // a *StreamError wrapping these (none: a refused request, no StreamError)
	class    failure.Class
	after    time.Duration
	received int    // tokens that arrive before the failure (-1: some, at the model's pace)
	reason   string // the LLMErrors metric's Reason
}

// checkFailedStream checks a failed Stream against want, for both clients: the error's class
// and the LLMErrors metric, Result.Text being what onDelta got, and a StreamError that counts
// the characters received. first gives the first n tokens of the stand-in's answer.
func checkFailedStream(t *testing.T, want failedStream, err error, res Result, pieces []string, metricsOut *logbuf.Buffer, first func(n int) string) {
	t.Helper()
	for _, target := range want.is {
		if !errors.Is(err, target) {
			t.Errorf("error %q is not %q", err, target)
		}
	}
	if class, after := failure.Classify(err); class != want.class || after != want.after {
		t.Errorf("error %q classified %v (after %v), want %v (after %v)", err, class, after, want.class, want.after)
	}
	if v := metricValues(t, metricsOut, "LLMErrors", map[string]string{"Model": want.model, "Reason": want.reason}); !cmp.Equal(v, []float64{1}) {
		t.Errorf("LLMErrors{Reason=%s} = %v, want [1]; metrics:\n%s", want.reason, v, metricsOut)
	}
	if strings.Join(pieces, "") != res.Text {
		t.Errorf("Result.Text %q is not what onDelta got, %q", res.Text, strings.Join(pieces, ""))
	}
	var se *StreamError
	if len(want.is) == 0 {
		if errors.As(err, &se) {
			t.Errorf("a refused request gave a StreamError: %v", err)
		}
		return
	}
	if !errors.As(err, &se) {
		t.Fatalf("error %q is not a *StreamError", err)
	}
	switch {
	case want.received >= 0:
		if w := first(want.received); want.received == 0 && res.Text != "" || want.received > 0 && res.Text != w {
			t.Errorf("partial text %q, want the first %d tokens %q", res.Text, want.received, w)
		}
	case res.Text == "":
		t.Errorf("no text arrived before the deadline, want some (the answer streams at 20 tokens/s)")
	}
	if se.Received != len([]rune(res.Text)) || !strings.Contains(err.Error(), "characters received") {
		t.Errorf("StreamError.Received = %d, error %q; want %d characters named", se.Received, err, len([]rune(res.Text)))
	}
}

package llm

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/slackrelay/slackrelay/shared/logbuf"

	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
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

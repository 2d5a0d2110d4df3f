package lambdainit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type posted struct {
	path, errorType, contentType string
	body                         Body
}

func TestReport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		err      error
		wantType string
	}{
		{"configuration", Config(errors.New("config: EVENTS_QUEUE_URL is required")), TypeConfig},
		{"other", errors.New("listen: address in use"), TypeInit},
		{"wrapped configuration", errors.Join(errors.New("starting"), Config(errors.New("bad"))), TypeConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan posted, 1)
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var p posted
				p.path, p.errorType, p.contentType = r.URL.Path, r.Header.Get(HeaderErrorType), r.Header.Get("Content-Type")
				raw, _ := io.ReadAll(r.Body)
				if err := json.Unmarshal(raw, &p.body); err != nil {
					t.Errorf("body %s: %v", raw, err)
				}
				got <- p
				w.WriteHeader(http.StatusAccepted)
			}))
			defer api.Close()
			var logs bytes.Buffer
			getenv := func(k string) string {
				if k == "AWS_LAMBDA_RUNTIME_API" {
					return strings.TrimPrefix(api.URL, "http://")
				}
				return ""
			}
			if err := Report(context.Background(), getenv, &logs, "receiver", tc.err); err != nil {
				t.Fatalf("Report = %v", err)
			}
			p := <-got
			want := posted{path: Path, errorType: tc.wantType, contentType: "application/json", body: Body{ErrorMessage: tc.err.Error(), ErrorType: tc.wantType}}
			if p != want {
				t.Errorf("posted %+v, want %+v", p, want)
			}
			lines := bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n"))
			var line struct {
				Level     string `json:"level"`
				Msg       string `json:"msg"`
				Binary    string `json:"binary"`
				ErrorType string `json:"error_type"`
				Error     string `json:"error"`
			}
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1: %s", len(lines), logs.String())
			}
			if err := json.Unmarshal(lines[0], &line); err != nil {
				t.Fatal(err)
			}
			if line.Level != "ERROR" || line.Msg != "init failed" || line.Binary != "receiver" || line.ErrorType != tc.wantType || line.Error != tc.err.Error() {
				t.Errorf("log line %s", lines[0])
			}
		})
	}
}

func TestReportOutsideLambdaOnlyLogs(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	if err := Report(context.Background(), func(string) string { return "" }, &logs, "worker", errors.New("boom")); err != nil {
		t.Fatalf("Report = %v", err)
	}
	if !strings.Contains(logs.String(), `"error":"boom"`) {
		t.Fatalf("log %q lacks the error", logs.String())
	}
}

func TestReportSaysWhenTheRuntimeAPIRefuses(t *testing.T) {
	t.Parallel()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	defer api.Close()
	getenv := func(string) string { return strings.TrimPrefix(api.URL, "http://") }
	if err := Report(context.Background(), getenv, io.Discard, "worker", errors.New("boom")); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Report = %v, want the 403", err)
	}
}

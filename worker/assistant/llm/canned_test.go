package llm

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// Streams the local server does not write (error events, broken chunks, other providers'
// comments), served as they are from testdata/ or inline.
func TestStreamCannedBodies(t *testing.T) {
	t.Parallel()
	errorStream, err := os.ReadFile("testdata/stream_error.txt")
	if err != nil {
		t.Fatal(err)
	}
	openai, err := os.ReadFile("testdata/stream_openai.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		body     string
		wantText string
		wantErr  error
		wantIn   string
	}{
		{"openai format", string(openai), "The queue keeps it. ✓", nil, ""},
		{"done without the closing blank line", strings.TrimSuffix(string(openai), "\n"), "The queue keeps it. ✓", nil, ""},
		{"error event", string(errorStream), "Partial answer", ErrStreamFailed, "upstream_overloaded"},
		{"undecodable chunk", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {nope\n\n", "a", ErrStreamFailed, "undecodable chunk"},
		{"cut inside a chunk", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"cho", "a", ErrStreamCut, "inside an event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := &Chat{BaseURL: srv.URL, Model: "m", APIKey: func(context.Context) (string, error) { return testKey, nil }}
			var got strings.Builder
			res, err := c.Stream(context.Background(), Request{Messages: []Message{{RoleUser, "q"}}}, func(s string) error { got.WriteString(s); return nil })
			if res.Text != tt.wantText || got.String() != tt.wantText {
				t.Errorf("text %q (onDelta %q), want %q", res.Text, got.String(), tt.wantText)
			}
			if tt.wantErr == nil {
				if err != nil || res.Usage.TotalTokens != 26 || res.FinishReason != "stop" {
					t.Errorf("got %+v, %v; want the whole answer with usage 26 and finish stop", res, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %v, want %v naming %q", err, tt.wantErr, tt.wantIn)
			}
			if class, _ := failure.Classify(err); class != failure.Transient {
				t.Errorf("classified %v, want transient", class)
			}
			if strings.Contains(err.Error(), "sk-abc") || strings.Contains(err.Error(), "overloaded;") {
				t.Errorf("error %q quotes the server's message", err)
			}
		})
	}
}

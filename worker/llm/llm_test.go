package llm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/worker/failure"
)

func TestDemoWaitsAndAnswers(t *testing.T) {
	start := time.Now()
	out, err := Demo{Delay: 50 * time.Millisecond}.Respond(context.Background(), "hello")
	if err != nil || !strings.Contains(out, "hello") || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("%q %v after %v", out, err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := (Demo{Delay: time.Second}).Respond(ctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestChat(t *testing.T) {
	var status int
	var gotAuth string
	var gotReq chatRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		_ = json.NewDecoder(r.Body).Decode(&gotReq)
		if status == 429 {
			w.Header().Set("Retry-After", "12")
		}
		if status != 200 {
			w.WriteHeader(status)
			return
		}
		_, _ = w.Write([]byte(`{"choices":[{"message":{"role":"assistant","content":"42"}}]}`))
	}))
	defer srv.Close()
	c := &Chat{BaseURL: srv.URL + "/v1/", Model: "m", APIKey: func(context.Context) (string, error) { return "sk-secret", nil }}
	status = 200
	out, err := c.Respond(context.Background(), "q")
	if err != nil || out != "42" || gotAuth != "Bearer sk-secret" || gotReq.Model != "m" || gotReq.Messages[0].Content != "q" {
		t.Fatalf("%q %v %q %+v", out, err, gotAuth, gotReq)
	}
	for code, want := range map[int]failure.Class{429: failure.RateLimited, 500: failure.Transient, 401: failure.Permanent} {
		status = code
		_, err := c.Respond(context.Background(), "q")
		if cl, _ := failure.Classify(err); cl != want {
			t.Errorf("HTTP %d classified %v, want %v", code, cl, want)
		}
		if strings.Contains(err.Error(), "sk-secret") {
			t.Error("error contains the api key")
		}
	}
	status = 429
	_, err = c.Respond(context.Background(), "q")
	if _, after := failure.Classify(err); after != 12*time.Second {
		t.Fatalf("retry after %v", after)
	}
}

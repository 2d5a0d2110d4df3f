package failure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/secrets"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		err   error
		class Class
		after time.Duration
	}{
		{"slack channel_not_found", slack.SlackErrorResponse{Err: "channel_not_found"}, Permanent, 0},
		{"wrapped invalid_auth", fmt.Errorf("post reply: %w", slack.SlackErrorResponse{Err: "invalid_auth"}), Permanent, 0},
		{"slack internal_error", slack.SlackErrorResponse{Err: "internal_error"}, Transient, 0},
		{"slack 429", fmt.Errorf("x: %w", &slack.RateLimitedError{RetryAfter: 7 * time.Second}), RateLimited, 7 * time.Second},
		{"slack 503", slack.StatusCodeError{Code: 503, Status: "503"}, Transient, 0},
		{"slack 404", slack.StatusCodeError{Code: 404, Status: "404"}, Permanent, 0},
		{"own rate limit", &RateLimitError{Service: "llm", RetryAfter: time.Second}, RateLimited, time.Second},
		{"llm 500", &HTTPStatusError{Service: "llm", Status: 500}, Transient, 0},
		{"llm 401", &HTTPStatusError{Service: "llm", Status: 401}, Permanent, 0},
		{"response_url 410", fmt.Errorf("reply: %w", &HTTPStatusError{Service: "response_url", Status: 410}), Permanent, 0},
		{"marked permanent", Permanentf("bad envelope: %w", errors.New("x")), Permanent, 0},
		{"timeout", context.DeadlineExceeded, Transient, 0},
		{"missing secret", fmt.Errorf("bot token: %w", &secrets.NotFoundError{Params: []string{"/slackrelay/prod/bot-token"}}), Config, 0},
		{"retry after", fmt.Errorf("h: %w", &RetryAfterError{After: time.Minute, Err: errors.New("busy")}), RateLimited, time.Minute},
		{"retryable missing_scope", Retryable(fmt.Errorf("check thread: %w", slack.SlackErrorResponse{Err: "missing_scope"})), Transient, 0},
		{"permanent inside retryable", Retryable(Permanentf("x")), Transient, 0},
		{"unknown", errors.New("connection reset"), Transient, 0},
	}
	for _, tc := range cases {
		c, after := Classify(tc.err)
		if c != tc.class || after != tc.after {
			t.Errorf("%s: Classify = %v %v, want %v %v", tc.name, c, after, tc.class, tc.after)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, max := 10*time.Second, 15*time.Minute
	want := []time.Duration{10 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}
	for n, w := range want {
		if got := Backoff(n, base, max); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, w)
		}
	}
	if got := Backoff(100, base, max); got != max {
		t.Errorf("Backoff(100) = %v, want cap %v", got, max)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"12", 12 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"", DefaultRetryAfter},
		{"soon", DefaultRetryAfter},
		{"-3", DefaultRetryAfter},
		{now.Add(-time.Minute).Format(http.TimeFormat), DefaultRetryAfter},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.header, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

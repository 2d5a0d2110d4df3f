package fakellm

import (
	"context"
	"net/http"
	"time"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// Client drives a Server in another process through its control API (control.go).
type Client struct {
	// BaseURL is the server's base URL, as returned by Start (trailing slash optional).
	BaseURL string
	// HTTP is the client to use (http.DefaultClient when nil).
	HTTP *http.Client
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	return loopback.Control{Name: "localllm control", BaseURL: c.BaseURL, HTTP: c.HTTP}.Call(ctx, method, path, in, out)
}

// Requests is Server.Requests over HTTP.
func (c *Client) Requests(ctx context.Context) ([]Request, error) {
	var out []Request
	err := c.call(ctx, http.MethodGet, "/_control/requests", nil, &out)
	return out, err
}

// SetPace is Server.SetPace over HTTP.
func (c *Client) SetPace(ctx context.Context, p Pace) error {
	return c.call(ctx, http.MethodPost, "/_control/pace", p.JSON(), nil)
}

// Pace is Server.Pace over HTTP.
func (c *Client) Pace(ctx context.Context) (Pace, error) {
	var in fakemodel.PaceJSON
	if err := c.call(ctx, http.MethodGet, "/_control/pace", nil, &in); err != nil {
		return Pace{}, err
	}
	var p Pace
	err := in.Apply(&p)
	return p, err
}

func (c *Client) fault(ctx context.Context, kind string, n int, f faultJSON) error {
	f.N = &n
	return c.call(ctx, http.MethodPost, "/_control/"+kind, f, nil)
}

// DisconnectNext is Server.DisconnectNext over HTTP.
func (c *Client) DisconnectNext(ctx context.Context, n, afterTokens int) error {
	return c.fault(ctx, FaultDisconnect, n, faultJSON{AfterTokens: afterTokens})
}

// TruncateNext is Server.TruncateNext over HTTP.
func (c *Client) TruncateNext(ctx context.Context, n, afterTokens int) error {
	return c.fault(ctx, FaultTruncate, n, faultJSON{AfterTokens: afterTokens})
}

// StallNext is Server.StallNext over HTTP.
func (c *Client) StallNext(ctx context.Context, n, afterTokens int, pause time.Duration) error {
	return c.fault(ctx, FaultStall, n, faultJSON{AfterTokens: afterTokens, Seconds: pause.Seconds()})
}

// RateLimitNext is Server.RateLimitNext over HTTP.
func (c *Client) RateLimitNext(ctx context.Context, n int, retryAfter time.Duration) error {
	return c.fault(ctx, FaultRateLimit, n, faultJSON{RetryAfterSeconds: retryAfter.Seconds()})
}

// FailHTTPNext is Server.FailHTTPNext over HTTP.
func (c *Client) FailHTTPNext(ctx context.Context, n, status int) error {
	return c.fault(ctx, "failhttp", n, faultJSON{Status: status})
}

// SetScript is Server.SetScript over HTTP.
func (c *Client) SetScript(ctx context.Context, text string) error {
	return c.call(ctx, http.MethodPost, "/_control/script", scriptJSON{Text: text}, nil)
}

// Script is Server.Script over HTTP.
func (c *Client) Script(ctx context.Context) (string, error) {
	var out scriptJSON
	err := c.call(ctx, http.MethodGet, "/_control/script", nil, &out)
	return out.Text, err
}

// AnswerText is Server.AnswerText over HTTP: what the server answers to messages (the
// continuation when they end with an assistant's message), cut to maxTokens when positive.
func (c *Client) AnswerText(ctx context.Context, messages []Message, maxTokens int) (string, error) {
	var out scriptJSON
	err := c.call(ctx, http.MethodPost, "/_control/answer", answerJSON{Messages: messages, MaxTokens: maxTokens}, &out)
	return out.Text, err
}

// Reset is Server.Reset over HTTP.
func (c *Client) Reset(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/_control/reset", struct{}{}, nil)
}

// SetCachedTokens is Server.SetCachedTokens over HTTP.
func (c *Client) SetCachedTokens(ctx context.Context, n int) error {
	return c.call(ctx, http.MethodPost, "/_control/cache", cacheJSON{CachedTokens: n}, nil)
}

package fakebedrock

import (
	"context"
	"net/http"
	"time"

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
	return loopback.Control{Name: "fakebedrock control", BaseURL: c.BaseURL, HTTP: c.HTTP}.Call(ctx, method, path, in, out)
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

func (c *Client) fault(ctx context.Context, path string, n int, f faultJSON) error {
	f.N = &n
	return c.call(ctx, http.MethodPost, "/_control/"+path, f, nil)
}

// ThrottleNext is Server.ThrottleNext over HTTP.
func (c *Client) ThrottleNext(ctx context.Context, n int, retryAfter time.Duration) error {
	return c.fault(ctx, "throttle", n, faultJSON{RetryAfterSeconds: retryAfter.Seconds()})
}

// FailNext is Server.FailNext over HTTP.
func (c *Client) FailNext(ctx context.Context, n, status int, exception string) error {
	return c.fault(ctx, "fail", n, faultJSON{Status: status, Exception: exception})
}

// StreamExceptionNext is Server.StreamExceptionNext over HTTP.
func (c *Client) StreamExceptionNext(ctx context.Context, n, afterChunks int, exception string) error {
	return c.fault(ctx, "streamexception", n, faultJSON{AfterChunks: afterChunks, Exception: exception})
}

// CutNext is Server.CutNext over HTTP.
func (c *Client) CutNext(ctx context.Context, n, afterChunks int) error {
	return c.fault(ctx, "cut", n, faultJSON{AfterChunks: afterChunks})
}

// StallNext is Server.StallNext over HTTP.
func (c *Client) StallNext(ctx context.Context, n, afterChunks int, pause time.Duration) error {
	return c.fault(ctx, "stall", n, faultJSON{AfterChunks: afterChunks, Seconds: pause.Seconds()})
}

// ToolUseNext is Server.ToolUseNext over HTTP.
func (c *Client) ToolUseNext(ctx context.Context, n int, calls ...ToolCall) error {
	return c.fault(ctx, "tooluse", n, faultJSON{Tools: calls})
}

// SetScript is Server.SetScript over HTTP.
func (c *Client) SetScript(ctx context.Context, text string) error {
	return c.call(ctx, http.MethodPost, "/_control/script", scriptJSON{Text: text}, nil)
}

// SetTurns is Server.SetTurns over HTTP.
func (c *Client) SetTurns(ctx context.Context, turns ...Turn) error {
	return c.call(ctx, http.MethodPost, "/_control/turns", turnsJSON{Turns: turns}, nil)
}

// SetAllowedModels is Server.SetAllowedModels over HTTP.
func (c *Client) SetAllowedModels(ctx context.Context, ids ...string) error {
	return c.call(ctx, http.MethodPost, "/_control/allowed", allowedJSON{Models: ids}, nil)
}

// SetCacheTokens is Server.SetCacheTokens over HTTP.
func (c *Client) SetCacheTokens(ctx context.Context, read, write int) error {
	return c.call(ctx, http.MethodPost, "/_control/cache", cacheJSON{ReadTokens: read, WriteTokens: write}, nil)
}

// Reset is Server.Reset over HTTP.
func (c *Client) Reset(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/_control/reset", struct{}{}, nil)
}

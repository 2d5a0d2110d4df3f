package fakeslack

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// Client drives a Server in another process through its control API, the /_control/
// endpoints (listed in control.go).
type Client struct {
	// BaseURL is the server's base URL, as returned by Start (trailing slash optional).
	BaseURL string
	// HTTP is the client to use (http.DefaultClient when nil).
	HTTP *http.Client
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return loopback.Control{Name: "localslack control", BaseURL: c.BaseURL, HTTP: c.HTTP}.Call(ctx, method, path, in, out)
}

// Posts returns the server's recorded posts.
func (c *Client) Posts(ctx context.Context) ([]Post, error) {
	var posts []Post
	err := c.do(ctx, http.MethodGet, "/_control/posts", nil, &posts)
	return posts, err
}

// Reactions returns the server's current reactions.
func (c *Client) Reactions(ctx context.Context) ([]Reaction, error) {
	var rs []Reaction
	err := c.do(ctx, http.MethodGet, "/_control/reactions", nil, &rs)
	return rs, err
}

// Calls is Server.Calls over HTTP.
func (c *Client) Calls(ctx context.Context, method string) (int, error) {
	var out struct {
		Calls int `json:"calls"`
	}
	err := c.do(ctx, http.MethodGet, "/_control/calls?method="+url.QueryEscape(method), nil, &out)
	return out.Calls, err
}

// Fail is FailNext over HTTP.
func (c *Client) Fail(ctx context.Context, method string, n int, slackError string) error {
	return c.do(ctx, http.MethodPost, "/_control/fail", obj{"method": method, "n": n, "error": slackError}, nil)
}

// RateLimit is RateLimitNext over HTTP (retryAfter rounded up to whole seconds, at least 1).
func (c *Client) RateLimit(ctx context.Context, method string, n int, retryAfter time.Duration) error {
	return c.do(ctx, http.MethodPost, "/_control/ratelimit",
		obj{"method": method, "n": n, "retry_after_seconds": loopback.RetryAfterSeconds(retryAfter)}, nil)
}

// FailHTTP is FailHTTPNext over HTTP.
func (c *Client) FailHTTP(ctx context.Context, method string, n int, status int) error {
	return c.do(ctx, http.MethodPost, "/_control/failhttp", obj{"method": method, "n": n, "status": status}, nil)
}

// LoseResponse is LoseResponseNext over HTTP.
func (c *Client) LoseResponse(ctx context.Context, method string, n int) error {
	return c.do(ctx, http.MethodPost, "/_control/loseresponse", obj{"method": method, "n": n}, nil)
}

// AddUserMessage is Server.AddUserMessage over HTTP; it returns the message's timestamp.
func (c *Client) AddUserMessage(ctx context.Context, m UserMessage) (string, error) {
	var out struct {
		TS string `json:"ts"`
	}
	err := c.do(ctx, http.MethodPost, "/_control/messages", m, &out)
	return out.TS, err
}

// Reset is Server.Reset over HTTP.
func (c *Client) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/_control/reset", obj{}, nil)
}

// NewTrigger is Server.NewTrigger over HTTP: a trigger_id issued now.
func (c *Client) NewTrigger(ctx context.Context) (string, error) {
	return c.NewViewTrigger(ctx, "")
}

// NewViewTrigger is Server.NewViewTrigger over HTTP: a trigger_id issued now for an
// interaction inside view viewID (an empty viewID is NewTrigger).
func (c *Client) NewViewTrigger(ctx context.Context, viewID string) (string, error) {
	var out struct {
		TriggerID string `json:"trigger_id"`
	}
	err := c.do(ctx, http.MethodPost, "/_control/triggers", obj{"view_id": viewID}, &out)
	return out.TriggerID, err
}

// Views is Server.Views over HTTP.
func (c *Client) Views(ctx context.Context) ([]View, error) {
	var vs []View
	err := c.do(ctx, http.MethodGet, "/_control/views", nil, &vs)
	return vs, err
}

// View is Server.View over HTTP; a view the server does not have is an error.
func (c *Client) View(ctx context.Context, id string) (View, error) {
	var v View
	err := c.do(ctx, http.MethodGet, "/_control/views/"+url.PathEscape(id), nil, &v)
	return v, err
}

// Streams is Server.Streams over HTTP.
func (c *Client) Streams(ctx context.Context) ([]Stream, error) {
	var ss []Stream
	err := c.do(ctx, http.MethodGet, "/_control/streams", nil, &ss)
	return ss, err
}

// Rendered is Server.Rendered over HTTP; a message the server does not have is an error.
func (c *Client) Rendered(ctx context.Context, channel, ts string) (Rendered, error) {
	var m Rendered
	q := url.Values{"channel": {channel}, "ts": {ts}}
	err := c.do(ctx, http.MethodGet, "/_control/rendered?"+q.Encode(), nil, &m)
	return m, err
}

// RenderedThread is Server.RenderedThread over HTTP.
func (c *Client) RenderedThread(ctx context.Context, channel, threadTS string) ([]Rendered, error) {
	var ms []Rendered
	q := url.Values{"channel": {channel}, "thread_ts": {threadTS}}
	err := c.do(ctx, http.MethodGet, "/_control/rendered/thread?"+q.Encode(), nil, &ms)
	return ms, err
}

// RenderedChannel is Server.RenderedChannel over HTTP.
func (c *Client) RenderedChannel(ctx context.Context, channel, user string) ([]Rendered, error) {
	var ms []Rendered
	q := url.Values{"channel": {channel}, "user": {user}}
	err := c.do(ctx, http.MethodGet, "/_control/rendered/channel?"+q.Encode(), nil, &ms)
	return ms, err
}

// Ephemerals is Server.Ephemerals over HTTP.
func (c *Client) Ephemerals(ctx context.Context, channel, user string) ([]Rendered, error) {
	var ms []Rendered
	q := url.Values{"channel": {channel}, "user": {user}}
	err := c.do(ctx, http.MethodGet, "/_control/ephemerals?"+q.Encode(), nil, &ms)
	return ms, err
}

// ResponseURLFrom is Server.ResponseURLFrom over HTTP (Server.ResponseURL when o has no
// channel): it returns the response_url.
func (c *Client) ResponseURLFrom(ctx context.Context, id string, o Origin) (string, error) {
	var out struct {
		URL string `json:"response_url"`
	}
	err := c.do(ctx, http.MethodPost, "/_control/responseurls", obj{"id": id, "channel": o.Channel, "user": o.User,
		"message_ts": o.MessageTS, "is_ephemeral": o.Ephemeral}, &out)
	return out.URL, err
}

// AssistantThreads is Server.AssistantThreads over HTTP.
func (c *Client) AssistantThreads(ctx context.Context) ([]AssistantThread, error) {
	var ts []AssistantThread
	err := c.do(ctx, http.MethodGet, "/_control/assistant", nil, &ts)
	return ts, err
}

// SetStreamLifetime is Server.SetStreamLifetime over HTTP (d <= 0 restores the default).
func (c *Client) SetStreamLifetime(ctx context.Context, d time.Duration) error {
	return c.do(ctx, http.MethodPost, "/_control/streamlifetime", obj{"seconds": max(d, 0).Seconds()}, nil)
}

// Workspaces is Server.Workspaces over HTTP.
func (c *Client) Workspaces(ctx context.Context) ([]Workspace, error) {
	var out []Workspace
	err := c.do(ctx, http.MethodGet, "/_control/workspaces", nil, &out)
	return out, err
}

// AddWorkspace is Server.AddWorkspace over HTTP.
func (c *Client) AddWorkspace(ctx context.Context, w Workspace) error {
	return c.do(ctx, http.MethodPost, "/_control/workspaces", w, nil)
}

// Advance is Server.Advance over HTTP.
func (c *Client) Advance(ctx context.Context, d time.Duration) error {
	return c.do(ctx, http.MethodPost, "/_control/clock", obj{"advance_seconds": d.Seconds()}, nil)
}

// Refreshes is Server.Refreshes over HTTP.
func (c *Client) Refreshes(ctx context.Context, install string) (int, error) {
	var out struct {
		Refreshes int `json:"refreshes"`
	}
	err := c.do(ctx, http.MethodGet, "/_control/refreshes?install="+url.QueryEscape(install), nil, &out)
	return out.Refreshes, err
}

// Uninstall is Server.Uninstall over HTTP.
func (c *Client) Uninstall(ctx context.Context, install string) error {
	return c.do(ctx, http.MethodPost, "/_control/uninstall", obj{"install": install}, nil)
}

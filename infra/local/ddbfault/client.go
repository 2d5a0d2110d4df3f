package ddbfault

import (
	"context"
	"fmt"
	"net/http"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// Client drives a Proxy in another process through its control API (control.go).
type Client struct {
	// BaseURL is the proxy's URL (Proxy.URL; trailing slash optional).
	BaseURL string
	// HTTP is the client to use (http.DefaultClient when nil).
	HTTP *http.Client
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	return loopback.Control{Name: "ddbfault control", BaseURL: c.BaseURL, HTTP: c.HTTP}.Call(ctx, method, path, in, out)
}

// Arm is Proxy.Arm over HTTP; it returns the rule's id. A rule with a PK func or a hook
// cannot cross processes and is refused.
func (c *Client) Arm(ctx context.Context, r Rule) (int, error) {
	j, err := toJSON(r)
	if err != nil {
		return 0, fmt.Errorf("ddbfault control: %w", err)
	}
	var out struct {
		ID int `json:"id"`
	}
	err = c.call(ctx, http.MethodPost, "/_control/rules", j, &out)
	return out.ID, err
}

// Disarm is Proxy.Disarm over HTTP; a rule that is not armed is an error.
func (c *Client) Disarm(ctx context.Context, id int) error {
	return c.call(ctx, http.MethodDelete, fmt.Sprintf("/_control/rules/%d", id), nil, nil)
}

// Rules is Proxy.Rules over HTTP.
func (c *Client) Rules(ctx context.Context) ([]RuleStatus, error) {
	var out []RuleStatus
	err := c.call(ctx, http.MethodGet, "/_control/rules", nil, &out)
	return out, err
}

// Snapshot is Proxy.Snapshot over HTTP.
func (c *Client) Snapshot(ctx context.Context) (Snapshot, error) {
	var out Snapshot
	err := c.call(ctx, http.MethodGet, "/_control/snapshot", nil, &out)
	return out, err
}

// Reset is Proxy.Reset over HTTP.
func (c *Client) Reset(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/_control/reset", struct{}{}, nil)
}

// SetDown is Proxy.SetDown over HTTP.
func (c *Client) SetDown(ctx context.Context, down bool) error {
	return c.call(ctx, http.MethodPost, "/_control/down", downJSON{Down: down}, nil)
}

// Down is Proxy.Down over HTTP.
func (c *Client) Down(ctx context.Context) (bool, error) {
	var out downJSON
	err := c.call(ctx, http.MethodGet, "/_control/down", nil, &out)
	return out.Down, err
}

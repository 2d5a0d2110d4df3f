package devworld

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"time"
)

// InstallPage is one page a person sees on the way through the install flow.
type InstallPage struct {
	Status int
	Body   string
	URL    *url.URL // where the browser ended up
}

// InstallThroughPages goes through the install flow as a person in a browser does (cookies
// kept, redirects followed), with Options.ManyWorkspaces: the receiver's /slack/install (for
// target: a team id, or an org's enterprise id for an org-wide install), its Add to Slack
// link, the local Slack's consent page, Allow (or Cancel), and back to the receiver's
// /slack/oauth_redirect. It returns the last page (the success or failure page) and the
// client, whose cookies a caller may reuse.
func (s *World) InstallThroughPages(ctx context.Context, target string, allow bool) (InstallPage, *http.Client, error) {
	if s.InstallationsTable == "" {
		return InstallPage{}, nil, errors.New("devworld: InstallThroughPages without Options.ManyWorkspaces")
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return InstallPage{}, nil, err
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	start, err := OpenPage(ctx, c, s.ReceiverURL+"/slack/install?team="+url.QueryEscape(target))
	if err != nil {
		return start, c, err
	}
	add, err := start.Link("add-to-slack")
	if err != nil {
		return start, c, err
	}
	consent, err := OpenPage(ctx, c, add)
	if err != nil {
		return consent, c, err
	}
	button := "allow"
	if !allow {
		button = "cancel"
	}
	next, err := consent.Link(button)
	if err != nil {
		return consent, c, err
	}
	last, err := OpenPage(ctx, c, next)
	return last, c, err
}

// OpenPage GETs u with c (following redirects) and returns the page it ends on.
func OpenPage(ctx context.Context, c *http.Client, u string) (InstallPage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return InstallPage{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return InstallPage{}, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return InstallPage{}, err
	}
	return InstallPage{Status: resp.StatusCode, Body: string(b), URL: resp.Request.URL}, nil
}

// Link is the href of the element with id on the page, resolved against its address.
func (p InstallPage) Link(id string) (string, error) {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*href="([^"]*)"|href="([^"]*)"[^>]*id="` + regexp.QuoteMeta(id) + `"`).FindStringSubmatch(p.Body)
	if m == nil {
		return "", fmt.Errorf("devworld: no link #%s on %s (status %d)", id, p.URL, p.Status)
	}
	u, err := p.URL.Parse(html.UnescapeString(m[1] + m[2]))
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

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
	"strings"
	"time"
)

// InstallPage is one page a person sees on the way through the install flow.
type InstallPage struct {
	Status int
	Body   string
	URL    *url.URL // where the browser ended up
	// Location is the redirect's target when the client did not follow it.
	Location string
}

// InstallThroughPages goes through the install flow as a person in a browser does (cookies
// kept, redirects followed), with Options.ManyWorkspaces, for target: a team id, or an org's
// enterprise id for an org-wide install (see ClickThroughInstall). It returns the last page
// and the client, whose cookies a caller may reuse.
func (s *World) InstallThroughPages(ctx context.Context, target string, allow bool) (InstallPage, *http.Client, error) {
	if s.InstallationsTable == "" {
		return InstallPage{}, nil, errors.New("devworld: InstallThroughPages without Options.ManyWorkspaces")
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return InstallPage{}, nil, err
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	last, err := ClickThroughInstall(ctx, c, s.ReceiverURL+"/slack/install?team="+url.QueryEscape(target), allow)
	return last, c, err
}

// ClickThroughInstall goes through the install pages with c from installURL (a receiver's
// /slack/install, with its query): the page's Add to Slack link, the local Slack's consent
// page, Allow (or Cancel), and back to the receiver's /slack/oauth_redirect. It returns the
// last page (the success or failure page); a page on the way that is not what a person
// would see is an error.
func ClickThroughInstall(ctx context.Context, c *http.Client, installURL string, allow bool) (InstallPage, error) {
	start, err := OpenPage(ctx, c, installURL)
	if err != nil {
		return start, err
	}
	if start.Status != http.StatusOK {
		return start, fmt.Errorf("install page: status %d\n%s", start.Status, start.Body)
	}
	add, err := start.Link("add-to-slack")
	if err != nil {
		return start, err
	}
	consent, err := OpenPage(ctx, c, add)
	if err != nil {
		return consent, err
	}
	if consent.Status != http.StatusOK || !strings.Contains(consent.Body, "is requesting permission") {
		return consent, fmt.Errorf("Slack's consent page: status %d\n%s", consent.Status, consent.Body)
	}
	button := "allow"
	if !allow {
		button = "cancel"
	}
	next, err := consent.Link(button)
	if err != nil {
		return consent, err
	}
	return OpenPage(ctx, c, next)
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
	return InstallPage{Status: resp.StatusCode, Body: string(b), URL: resp.Request.URL, Location: resp.Header.Get("Location")}, nil
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

package fakeslack

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

const redirectURI = "https://app.example/slack/oauth_redirect"

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

var hrefRE = regexp.MustCompile(`id="(allow|cancel)" href="([^"]+)"`)

// consent opens the consent page for query q and returns the page and its Allow and Cancel
// links.
func consent(t *testing.T, base string, q url.Values) (page, allow, cancel string) {
	t.Helper()
	resp, err := noRedirects.Get(strings.TrimRight(base, "/") + "/oauth/v2/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("consent page: HTTP %d %s", resp.StatusCode, raw)
	}
	page = string(raw)
	for _, m := range hrefRE.FindAllStringSubmatch(page, -1) {
		link := strings.TrimRight(base, "/") + strings.ReplaceAll(m[2], "&amp;", "&")
		if m[1] == "allow" {
			allow = link
		} else {
			cancel = link
		}
	}
	if allow == "" || cancel == "" {
		t.Fatalf("consent page without Allow and Cancel: %s", page)
	}
	return page, allow, cancel
}

// follow opens link and returns the query of the redirect it answers.
func follow(t *testing.T, link string) url.Values {
	t.Helper()
	resp, err := noRedirects.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("%s: HTTP %d, want a redirect", link, resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirectURI+"?") {
		t.Fatalf("redirect to %q, want %s?…", resp.Header.Get("Location"), redirectURI)
	}
	return loc.Query()
}

func authorizeQuery(team, state string) url.Values {
	q := url.Values{"client_id": {DefaultClientID}, "scope": {"chat:write,app_mentions:read"},
		"redirect_uri": {redirectURI}, "state": {state}}
	if team != "" {
		q.Set("team", team)
	}
	return q
}

// install runs the flow for team and returns the code.
func install(t *testing.T, base, team string) string {
	t.Helper()
	_, allow, _ := consent(t, base, authorizeQuery(team, "st-"+team))
	q := follow(t, allow)
	if q.Get("state") != "st-"+team || q.Get("code") == "" {
		t.Fatalf("Allow redirected with %v", q)
	}
	return q.Get("code")
}

func exchange(s *Server, code string) (*slack.OAuthV2Response, error) {
	return slack.GetOAuthV2ResponseContext(context.Background(), http.DefaultClient, DefaultClientID, DefaultClientSecret,
		code, redirectURI, slack.OAuthOptionAPIURL(s.APIURL()))
}

func refresh(s *Server, rt string) (*slack.OAuthV2Response, error) {
	return slack.RefreshOAuthV2TokenContext(context.Background(), http.DefaultClient, DefaultClientID, DefaultClientSecret,
		rt, slack.OAuthOptionAPIURL(s.APIURL()))
}

func authTeam(t *testing.T, s *Server, tok string) (*slack.AuthTestResponse, string) {
	t.Helper()
	r, err := slack.New(tok, slack.OptionAPIURL(s.APIURL())).AuthTestContext(context.Background())
	return r, errCode(err)
}

func TestOAuthInstallWorkspace(t *testing.T) {
	s, base := newTeams(t, Options{})
	page, _, _ := consent(t, base, authorizeQuery("T0004", "s1"))
	for _, want := range []string{"slackrelay", "delta", "chat:write", "app_mentions:read"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page does not name %q: %s", want, page)
		}
	}
	code := install(t, base, "T0004")
	resp, err := exchange(s, code)
	if err != nil {
		t.Fatalf("oauth.v2.access: %v", err)
	}
	if !strings.HasPrefix(resp.AccessToken, "xoxb-") || resp.TokenType != "bot" || resp.Team.ID != "T0004" ||
		resp.Team.Name != "delta" || resp.Enterprise.ID != "E0001" || resp.IsEnterpriseInstall ||
		resp.BotUserID != "UB0004" || resp.AppID != DefaultAppID || resp.AuthedUser.ID != defaultInstaller ||
		resp.Scope != "chat:write,app_mentions:read" || resp.RefreshToken != "" || resp.ExpiresIn != 0 {
		t.Errorf("oauth.v2.access answered %+v", resp)
	}
	if r, code := authTeam(t, s, resp.AccessToken); code != "" || r.TeamID != "T0004" || r.UserID != "UB0004" {
		t.Errorf("auth.test with the new token: %+v %s", r, code)
	}
	// The token works in its workspace's channel and nowhere else.
	api := slack.New(resp.AccessToken, slack.OptionAPIURL(s.APIURL()))
	if _, _, err := api.PostMessageContext(context.Background(), "CD", slack.MsgOptionText("hello delta", false)); err != nil {
		t.Errorf("posting in CD: %v", err)
	}
	if _, _, err := api.PostMessageContext(context.Background(), "CC", slack.MsgOptionText("x", false)); errCode(err) != "channel_not_found" {
		t.Errorf("posting in T0003's CC: %v, want channel_not_found", err)
	}
	if _, err := exchange(s, code); errCode(err) != "invalid_code" {
		t.Errorf("second use of the code: %v, want invalid_code", err)
	}
}

func TestOAuthRefusals(t *testing.T) {
	s, base := newTeams(t, Options{})
	api := s.APIURL()
	ctx := context.Background()
	code := install(t, base, "T0002")
	if _, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, "nope", DefaultClientSecret, code, redirectURI,
		slack.OAuthOptionAPIURL(api)); errCode(err) != "invalid_client_id" {
		t.Errorf("wrong client id: %v", err)
	}
	if _, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, DefaultClientID, "nope", code, redirectURI,
		slack.OAuthOptionAPIURL(api)); errCode(err) != "bad_client_secret" {
		t.Errorf("wrong client secret: %v", err)
	}
	if _, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, DefaultClientID, DefaultClientSecret, code,
		"https://evil.example/cb", slack.OAuthOptionAPIURL(api)); errCode(err) != "bad_redirect_uri" {
		t.Errorf("another redirect_uri: %v", err)
	}
	if _, err := exchange(s, "made-up"); errCode(err) != "invalid_code" {
		t.Errorf("made-up code: %v", err)
	}
	// The refusals did not use the code up; client id and secret by HTTP basic auth work.
	req, _ := http.NewRequest(http.MethodPost, api+"oauth.v2.access",
		strings.NewReader(url.Values{"code": {code}, "redirect_uri": {redirectURI}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(DefaultClientID, DefaultClientSecret)
	if r := doReq(t, req); !r.ok() || !strings.HasPrefix(r.str("access_token"), "xoxb-") {
		t.Errorf("exchange with basic auth: %s", r.raw)
	}
	// A code expires after CodeLifetime on the server's clock.
	late := install(t, base, "T0002")
	s.Advance(CodeLifetime + time.Second)
	if _, err := exchange(s, late); errCode(err) != "invalid_code" {
		t.Errorf("code used after %v: %v, want invalid_code", CodeLifetime, err)
	}
	// Cancel sends the browser back with access_denied and the state; its page is spent.
	_, allow, cancel := consent(t, base, authorizeQuery("T0002", "s-cancel"))
	if q := follow(t, cancel); q.Get("error") != "access_denied" || q.Get("state") != "s-cancel" || q.Get("code") != "" {
		t.Errorf("Cancel redirected with %v", q)
	}
	if resp, err := noRedirects.Get(allow); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("Allow after Cancel: %v %v, want HTTP 400", resp, err)
	}
	for name, q := range map[string]url.Values{
		"wrong client_id": {"client_id": {"x"}, "redirect_uri": {redirectURI}},
		"no redirect_uri": {"client_id": {DefaultClientID}},
		"unknown team":    {"client_id": {DefaultClientID}, "redirect_uri": {redirectURI}, "team": {"T9999"}},
	} {
		resp, err := noRedirects.Get(base + "oauth/v2/authorize?" + q.Encode())
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("authorize with %s: %v %v, want HTTP 400", name, resp, err)
		}
	}
}

func TestOAuthTokenRotation(t *testing.T) {
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	s, base := newTeams(t, Options{TokenRotation: true, Now: func() time.Time { return start }})
	first, err := exchange(s, install(t, base, "T0004"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.AccessToken, "xoxe.xoxb-") || !strings.HasPrefix(first.RefreshToken, "xoxe-") || first.ExpiresIn != 43200 {
		t.Fatalf("rotating install answered token %q refresh %q expires_in %d", first.AccessToken, first.RefreshToken, first.ExpiresIn)
	}
	s.Advance(11 * time.Hour)
	if _, code := authTeam(t, s, first.AccessToken); code != "" {
		t.Fatalf("token at 11h: %s", code)
	}
	second, err := refresh(s, first.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken || second.ExpiresIn != 43200 ||
		second.Team.ID != "T0004" || second.BotUserID != "UB0004" {
		t.Errorf("refresh answered %+v", second)
	}
	if _, err := refresh(s, first.RefreshToken); errCode(err) != "invalid_refresh_token" {
		t.Errorf("second use of a refresh token: %v, want invalid_refresh_token", err)
	}
	if _, code := authTeam(t, s, first.AccessToken); code != "" {
		t.Errorf("old token before its expiry, after a refresh: %s", code)
	}
	s.Advance(time.Hour)
	if _, code := authTeam(t, s, first.AccessToken); code != "token_expired" {
		t.Errorf("old token at 12h: %q, want token_expired", code)
	}
	if _, code := authTeam(t, s, second.AccessToken); code != "" {
		t.Errorf("new token at 12h: %s", code)
	}
	if n := s.Refreshes("T0004"); n != 1 {
		t.Errorf("Refreshes(T0004) = %d, want 1", n)
	}
}

func TestOAuthConcurrentRefreshesOneWins(t *testing.T) {
	s, base := newTeams(t, Options{TokenRotation: true})
	first, err := exchange(s, install(t, base, "T0002"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for range 20 {
		wg.Go(func() {
			_, err := refresh(s, first.RefreshToken)
			mu.Lock()
			codes[errCode(err)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[""] != 1 || codes["invalid_refresh_token"] != 19 {
		t.Errorf("20 refreshes of one token answered %v, want 1 ok and 19 invalid_refresh_token", codes)
	}
	if n := s.Refreshes("T0002"); n != 1 {
		t.Errorf("Refreshes = %d, want 1", n)
	}
}

func TestOAuthOrgInstall(t *testing.T) {
	s, base := newTeams(t, Options{})
	page, _, _ := consent(t, base, authorizeQuery("E0001", "org"))
	if !strings.Contains(page, "acme") || !strings.Contains(page, "organization") {
		t.Errorf("org consent page: %s", page)
	}
	resp, err := exchange(s, install(t, base, "E0001"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Team.ID != "" || resp.Enterprise.ID != "E0001" || resp.Enterprise.Name != "acme" || !resp.IsEnterpriseInstall {
		t.Errorf("org install answered team %+v enterprise %+v is_enterprise_install %v", resp.Team, resp.Enterprise, resp.IsEnterpriseInstall)
	}
	r, code := authTeam(t, s, resp.AccessToken)
	if code != "" || r.EnterpriseID != "E0001" || r.TeamID != "" {
		t.Errorf("auth.test with the org token: %+v %s", r, code)
	}
	api := slack.New(resp.AccessToken, slack.OptionAPIURL(s.APIURL()))
	ctx := context.Background()
	for _, ch := range []string{"CC", "CD"} { // T0003's and T0004's, both in the org
		if _, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("org-wide", false)); err != nil {
			t.Errorf("org token posting in %s: %v", ch, err)
		}
	}
	if _, _, err := api.PostMessageContext(ctx, "CB", slack.MsgOptionText("x", false)); errCode(err) != "channel_not_found" {
		t.Errorf("org token posting in T0002's CB (outside the org): %v", err)
	}
}

func TestRevokeAndUninstall(t *testing.T) {
	s, base := newTeams(t, Options{TokenRotation: true})
	ctx := context.Background()
	api := slack.New(tokB, slack.OptionAPIURL(s.APIURL()))
	if r, err := api.SendAuthRevokeContext(ctx, ""); err != nil || !r.Revoked {
		t.Fatalf("auth.revoke: %+v %v", r, err)
	}
	if _, code := authTeam(t, s, tokB); code != "token_revoked" {
		t.Errorf("token after auth.revoke: %q, want token_revoked", code)
	}
	resp, err := exchange(s, install(t, base, "T0004"))
	if err != nil {
		t.Fatal(err)
	}
	r := form(t, base, "apps.uninstall", vals("token", resp.AccessToken, "client_id", DefaultClientID, "client_secret", DefaultClientSecret))
	if !r.ok() {
		t.Fatalf("apps.uninstall: %s", r.raw)
	}
	if _, code := authTeam(t, s, resp.AccessToken); code != "token_revoked" {
		t.Errorf("token after apps.uninstall: %q, want token_revoked", code)
	}
	if _, err := refresh(s, resp.RefreshToken); errCode(err) != "invalid_refresh_token" {
		t.Errorf("refresh after apps.uninstall: %v", err)
	}
	if _, code := authTeam(t, s, tokC); code != "" {
		t.Errorf("another workspace's token after the uninstall: %s", code)
	}
}

// An OAuth install's token holds exactly the scopes the install asked for, as Slack grants
// them, and keeps them across a refresh: a method needing another answers missing_scope,
// naming what the token was granted.
func TestOAuthTokenHoldsTheScopesItWasGranted(t *testing.T) {
	s, base := newTeams(t, Options{TokenRotation: true})
	got, err := exchange(s, install(t, base, "T0002")) // chat:write,app_mentions:read
	if err != nil {
		t.Fatal(err)
	}
	refreshed, err := refresh(s, got.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{got.AccessToken, refreshed.AccessToken} {
		api := slack.New(tok, slack.OptionAPIURL(s.APIURL()))
		if _, _, err := api.PostMessageContext(context.Background(), "CB", slack.MsgOptionText("hi", false)); err != nil {
			t.Fatalf("chat.postMessage with chat:write: %v", err)
		}
		err := api.AddReactionContext(context.Background(), "eyes", slack.NewRefToMessage("CB", "1.000001"))
		if errCode(err) != "missing_scope" {
			t.Fatalf("reactions.add without reactions:write: %v, want missing_scope", err)
		}
	}
	if got := s.missingScopeResponse(got.AccessToken, "reactions:write")["provided"]; got != "chat:write,app_mentions:read" {
		t.Errorf("missing_scope names provided %q, want the install's chat:write,app_mentions:read", got)
	}
}

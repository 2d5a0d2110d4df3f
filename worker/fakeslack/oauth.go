package fakeslack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// OAuth, as Slack serves it to an app distributed to many workspaces:
//
//	GET /oauth/v2/authorize?client_id&scope&redirect_uri&state[&team][&user]
//	    the consent page (what the browser is sent to by an Add to Slack button). It names
//	    the app, the workspace and the scopes; Allow redirects to redirect_uri with a code
//	    and the state, Cancel with error=access_denied and the state. team picks the
//	    workspace (default: the default workspace), or an org by its enterprise id for an
//	    org-wide install; user is the installing user (default UINSTALLER).
//	POST /api/oauth.v2.access
//	    client_id and client_secret in the form or by HTTP basic auth. grant_type
//	    authorization_code (the default when a code is given) exchanges a code: single-use,
//	    valid CodeLifetime on the server's clock, redirect_uri as on the authorize request.
//	    With Options.TokenRotation the answer carries a refresh_token and expires_in
//	    (TokenLifetime); grant_type refresh_token answers a new access token and a new
//	    refresh token and revokes the one it was given (a second use: invalid_refresh_token),
//	    while earlier access tokens keep working until they expire.
//
// auth.revoke revokes the calling token; apps.uninstall (client id and secret, and the
// token) removes the app from the token's workspace or org: all its tokens and refresh
// tokens are revoked.

// CodeLifetime is how long an OAuth code can be exchanged, and TokenLifetime how long a
// rotating access token lives (Slack: 12 hours).
const (
	CodeLifetime  = 10 * time.Minute
	TokenLifetime = 12 * time.Hour
)

// Defaults for the OAuth options.
const (
	DefaultClientID     = "1000000000.2000000000"
	DefaultClientSecret = "fakeslack-client-secret"
	DefaultAppID        = "A0FAKESLACK"
	DefaultAppName      = "slackrelay"
	defaultInstaller    = "UINSTALLER"
)

type oauthRequest struct {
	caller      Caller
	redirectURI string
	state       string
	scope       string
	user        string
}

type oauthCode struct {
	req    oauthRequest
	issued time.Time
	used   bool
}

type refreshToken struct {
	caller  Caller
	scope   string
	user    string
	revoked bool
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Install {{.App}} — fakeslack</title></head>
<body>
<h1>{{.App}} is requesting permission to access the {{.Team}} Slack {{.Where}}</h1>
<p>It will be able to:</p>
<ul id="scopes">{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<p><a id="allow" href="{{.Allow}}">Allow</a> <a id="cancel" href="{{.Cancel}}">Cancel</a></p>
</body></html>
`))

func (s *Server) routeOAuth() {
	s.mux.HandleFunc("GET /oauth/v2/authorize", s.authorize)
	s.mux.HandleFunc("GET /oauth/v2/decide/{id}", s.decide)
}

func oauthPageError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = fmt.Fprintf(w, "fakeslack: oauth/v2/authorize: %s\n", code)
}

// authorize serves the consent page.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.opts.ClientID {
		oauthPageError(w, "invalid_client_id")
		return
	}
	redirect := q.Get("redirect_uri")
	if u, err := url.Parse(redirect); redirect == "" || err != nil || !u.IsAbs() {
		oauthPageError(w, "bad_redirect_uri")
		return
	}
	req := oauthRequest{redirectURI: redirect, state: q.Get("state"), scope: q.Get("scope"), user: q.Get("user")}
	if req.user == "" {
		req.user = defaultInstaller
	}
	target := q.Get("team")
	if target == "" {
		target = s.opts.TeamID
	}
	var where, name string
	s.mu.Lock()
	if w := s.teams[target]; w != nil {
		req.caller, where, name = w.caller(), "workspace", w.Name
	} else if ent := s.enterpriseLocked(target); ent != nil {
		req.caller = Caller{EnterpriseID: ent.EnterpriseID, OrgWide: true,
			BotUserID: "UB" + ent.EnterpriseID[1:], BotID: "BB" + ent.EnterpriseID[1:]}
		where, name = "organization", ent.EnterpriseName
	}
	s.seq++
	id := fmt.Sprintf("%d-%s", s.seq, randomHex(8))
	if req.caller.installKey() != "" {
		s.pending[id] = req
	}
	s.mu.Unlock()
	if req.caller.installKey() == "" {
		oauthPageError(w, "unknown team "+target)
		return
	}
	scopes := strings.Split(req.scope, ",")
	if req.scope == "" {
		scopes = nil
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = consentPage.Execute(w, map[string]any{
		"App": s.opts.AppName, "Team": name, "Where": where, "Scopes": scopes,
		"Allow":  "/oauth/v2/decide/" + id + "?allow=1",
		"Cancel": "/oauth/v2/decide/" + id + "?allow=0",
	})
}

// enterpriseLocked is a workspace of org id, or nil.
func (s *Server) enterpriseLocked(id string) *Workspace {
	if id == "" {
		return nil
	}
	// The org's name is the one a workspace of it was given (a name made up for a workspace
	// given none is the last choice), whatever the map's order.
	var found *Workspace
	for _, w := range s.teams {
		if w.EnterpriseID != id {
			continue
		}
		named := w.EnterpriseName != strings.ToLower(w.EnterpriseID)
		if found == nil || named && found.EnterpriseName == strings.ToLower(found.EnterpriseID) || named == (found.EnterpriseName != strings.ToLower(found.EnterpriseID)) && w.ID < found.ID {
			found = w
		}
	}
	return found
}

// decide is the consent page's Allow or Cancel: a redirect to the app with a code or an
// error, and the state.
func (s *Server) decide(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	req, ok := s.pending[id]
	delete(s.pending, id)
	q := url.Values{}
	if ok && r.URL.Query().Get("allow") == "1" {
		code := fmt.Sprintf("%s.%s", req.caller.installKey(), randomHex(16))
		s.codes[code] = &oauthCode{req: req, issued: s.opts.Now()}
		q.Set("code", code)
	} else {
		q.Set("error", "access_denied")
	}
	s.mu.Unlock()
	if !ok {
		oauthPageError(w, "this consent page was already answered or never shown")
		return
	}
	if req.state != "" {
		q.Set("state", req.state)
	}
	u, _ := url.Parse(req.redirectURI)
	v := u.Query()
	for k, vs := range q {
		v[k] = vs
	}
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// oauthAccess is oauth.v2.access.
func (s *Server) oauthAccess(r *http.Request, p params) obj {
	id, secret := p.get("client_id"), p.get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok {
		id, secret = bid, bsecret
	}
	if code := s.checkClient(id, secret); code != "" {
		return slackErr(code)
	}
	switch p.get("grant_type") {
	case "", "authorization_code":
		return s.exchangeCode(p.get("code"), p.get("redirect_uri"))
	case "refresh_token":
		return s.refresh(p.get("refresh_token"))
	default:
		return slackErr("invalid_grant_type")
	}
}

func (s *Server) checkClient(id, secret string) string {
	switch {
	case id != s.opts.ClientID:
		return "invalid_client_id"
	case secret != s.opts.ClientSecret:
		return "bad_client_secret"
	}
	return ""
}

func (s *Server) exchangeCode(code, redirectURI string) obj {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.codes[code]
	switch {
	case code == "" || c == nil || c.used || s.opts.Now().Sub(c.issued) > CodeLifetime:
		return slackErr("invalid_code")
	case redirectURI != c.req.redirectURI:
		return slackErr("bad_redirect_uri")
	}
	c.used = true
	scope := c.req.scope
	if scope == "" {
		scope = strings.Join(s.scopes, ",")
	}
	return s.issueLocked(c.req.caller, scope, c.req.user)
}

// issueLocked makes a new access token (and, with rotation, refresh token) for caller and
// answers them as oauth.v2.access does.
func (s *Server) issueLocked(c Caller, scope, user string) obj {
	s.seq++
	key := c.installKey()
	out := obj{"ok": true, "app_id": s.opts.AppID, "token_type": "bot", "scope": scope,
		"bot_user_id": c.BotUserID, "is_enterprise_install": c.OrgWide,
		"authed_user": obj{"id": user}, "team": nil, "enterprise": nil}
	if !c.OrgWide {
		out["team"] = obj{"id": c.Team, "name": c.TeamName}
	}
	if ent := s.enterpriseLocked(c.EnterpriseID); ent != nil {
		out["enterprise"] = obj{"id": ent.EnterpriseID, "name": ent.EnterpriseName}
	}
	t := &token{caller: c, granted: map[string]bool{}}
	for _, sc := range strings.Split(scope, ",") {
		if sc = strings.TrimSpace(sc); sc != "" && !t.granted[sc] {
			t.granted[sc] = true
			t.scopes = append(t.scopes, sc)
		}
	}
	value := fmt.Sprintf("xoxb-%s-%d-%s", key, s.seq, randomHex(12))
	if s.opts.TokenRotation {
		// Rotating tokens look like Slack's: xoxe.xoxb- access tokens, xoxe- refresh tokens.
		value = "xoxe." + value
		t.expires = s.opts.Now().Add(TokenLifetime)
		rt := fmt.Sprintf("xoxe-1-%s-%d-%s", key, s.seq, randomHex(16))
		s.refreshTokens[rt] = &refreshToken{caller: c, scope: scope, user: user}
		out["refresh_token"] = rt
		out["expires_in"] = int(TokenLifetime / time.Second)
	}
	s.tokens[value] = t
	out["access_token"] = value
	return out
}

func (s *Server) refresh(rt string) obj {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.refreshTokens[rt]
	if rt == "" || r == nil || r.revoked {
		return slackErr("invalid_refresh_token")
	}
	r.revoked = true
	s.refreshes[r.caller.installKey()]++
	return s.issueLocked(r.caller, r.scope, r.user)
}

// Refreshes is how many refresh_token grants succeeded for an installation: a team id, or
// the enterprise id of an org-wide install.
func (s *Server) Refreshes(install string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes[install]
}

// authRevoke is auth.revoke: the calling token stops working.
func (s *Server) authRevoke(p params) obj {
	if p.bool("test") {
		return obj{"ok": true, "revoked": false}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tokens[p.token]; t != nil {
		t.revoked = true
	}
	return obj{"ok": true, "revoked": true}
}

// appsUninstall is apps.uninstall: the app leaves the token's workspace (or org).
func (s *Server) appsUninstall(p params) obj {
	if code := s.checkClient(p.get("client_id"), p.get("client_secret")); code != "" {
		return slackErr(code)
	}
	s.Uninstall(p.caller.installKey())
	return obj{"ok": true}
}

// Uninstall removes the app from a workspace (team id) or, for an org-wide install, an org
// (enterprise id): every token and refresh token of that installation is revoked.
func (s *Server) Uninstall(install string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.caller.installKey() == install {
			t.revoked = true
		}
	}
	for _, r := range s.refreshTokens {
		if r.caller.installKey() == install {
			r.revoked = true
		}
	}
}

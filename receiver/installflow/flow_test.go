package installflow

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/slackrelay/slackrelay/receiver/intake"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/fakessm"
	"github.com/slackrelay/slackrelay/shared/install"
	"github.com/slackrelay/slackrelay/shared/secrets"
)

const (
	testSecret = "client-secret-for-tests"
	testBase   = "https://install.example"
)

// setup is a Flow with a static client secret, stores in memory and a clock the test moves.
func setup(t *testing.T) (*Flow, *time.Time) {
	t.Helper()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f := &Flow{
		ClientID:     "1.2",
		Scopes:       "chat:write,commands",
		AuthorizeURL: "https://slack.example/oauth/v2/authorize",
		APIURL:       "http://127.0.0.1:9/api/", // nothing listens: these tests never reach Slack
		Secrets:      secrets.NewStatic(map[string]string{SecretKey: testSecret}),
		Store:        install.NewMemoryStore(nil),
		States:       &MemoryStates{},
		Now:          func() time.Time { return now },
	}
	return f, &now
}

func get(path, query string, cookies ...string) *intake.Request {
	return &intake.Request{Method: "GET", Path: path, RawQuery: query, Cookies: cookies, BaseURL: testBase, RequestID: "r1",
		Header: func(string) string { return "" }}
}

// startInstall opens the install page and returns the state of its Add to Slack link and the
// cookie it set (as name=value).
func startInstall(t *testing.T, f *Flow) (state, cookie string) {
	t.Helper()
	resp := f.ServePage(context.Background(), get(intake.PathInstall, ""))
	if resp.Status != 200 || len(resp.SetCookies) != 1 {
		t.Fatalf("install page: status %d, cookies %q; want 200 and one cookie\n%s", resp.Status, resp.SetCookies, resp.Body)
	}
	c, err := http.ParseSetCookie(resp.SetCookies[0])
	if err != nil {
		t.Fatal(err)
	}
	body := string(resp.Body)
	i := strings.Index(body, `href="https://slack.example/oauth/v2/authorize?`)
	if i < 0 {
		t.Fatalf("no Add to Slack link on the page:\n%s", body)
	}
	link := body[i+len(`href="`):]
	link = strings.ReplaceAll(link[:strings.Index(link, `"`)], "&amp;", "&")
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("state"), c.Name + "=" + c.Value
}

func TestInstallPage(t *testing.T) {
	t.Parallel()
	f, _ := setup(t)
	resp := f.ServePage(context.Background(), get(intake.PathInstall, "team=T0042"))
	if resp.Status != 200 || resp.ContentType != "text/html; charset=utf-8" || resp.Headers["Cache-Control"] != "no-store" {
		t.Fatalf("status %d, type %q, headers %v", resp.Status, resp.ContentType, resp.Headers)
	}
	c, err := http.ParseSetCookie(resp.SetCookies[0])
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != CookieName || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != intake.PathOAuthRedirect || c.MaxAge != 600 {
		t.Errorf("cookie %+v: want HttpOnly, Secure, SameSite=Lax, Path=%s, Max-Age=600", c, intake.PathOAuthRedirect)
	}
	body := strings.ReplaceAll(string(resp.Body), "&amp;", "&")
	for _, want := range []string{"client_id=1.2", "scope=chat%3Awrite%2Ccommands", "redirect_uri=" + url.QueryEscape(testBase+intake.PathOAuthRedirect), "team=T0042", "state="} {
		if !strings.Contains(body, want) {
			t.Errorf("the Add to Slack link lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(string(resp.Body), testSecret) || strings.Contains(resp.SetCookies[0], testSecret) {
		t.Error("the page or its cookie shows the client secret")
	}
	s1, _ := startInstall(t, f)
	s2, _ := startInstall(t, f)
	if s1 == s2 || len(s1) < 40 {
		t.Errorf("two install pages drew states %q and %q: want distinct random states", s1, s2)
	}

	// Plain http (a local run on 127.0.0.1): the cookie cannot be Secure.
	local := get(intake.PathInstall, "")
	local.BaseURL = "http://127.0.0.1:3000"
	resp = f.ServePage(context.Background(), local)
	if c, _ := http.ParseSetCookie(resp.SetCookies[0]); c == nil || c.Secure {
		t.Errorf("local cookie %q: want one without Secure", resp.SetCookies)
	}
	// A team that is not an id is refused, not passed to Slack.
	if resp := f.ServePage(context.Background(), get(intake.PathInstall, "team=%22%3E%3Cscript%3E")); resp.Status != 400 || strings.Contains(string(resp.Body), "<script>") {
		t.Errorf("bad team: status %d\n%s", resp.Status, resp.Body)
	}
	if resp := f.ServePage(context.Background(), &intake.Request{Method: "POST", Path: intake.PathInstall}); resp.Status != 405 {
		t.Errorf("POST: status %d, want 405", resp.Status)
	}
}

// The redirect refuses every state that is not the one this browser's cookie holds, signed by
// this app, younger than ten minutes and used for the first time; each refusal is a 403 page
// that says why and clears the cookie.
func TestRedirectRefusesBadStates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mangle func(t *testing.T, f *Flow, now *time.Time, state, cookie string) *intake.Request
		status int
		reason string
	}{
		{"no cookie", func(t *testing.T, f *Flow, now *time.Time, state, cookie string) *intake.Request {
			return get(intake.PathOAuthRedirect, "code=c1&state="+state)
		}, 403, "did not send back the cookie"},
		{"forged signature", func(t *testing.T, f *Flow, now *time.Time, state, cookie string) *intake.Request {
			// The attacker's own state in a cookie signed with a key that is not the app's.
			forged := cookieValue(stateKey("not the client secret"), "attacker-state", *now)
			return get(intake.PathOAuthRedirect, "code=c1&state=attacker-state", CookieName+"="+forged)
		}, 403, "another browser"},
		{"signature of another state", func(t *testing.T, f *Flow, now *time.Time, state, cookie string) *intake.Request {
			_, issued, sig := splitCookie(t, cookie)
			return get(intake.PathOAuthRedirect, "code=c1&state=other", CookieName+"=other."+issued+"."+sig)
		}, 403, "another browser"},
		{"time moved back in the cookie", func(t *testing.T, f *Flow, now *time.Time, state, cookie string) *intake.Request {
			st, _, sig := splitCookie(t, cookie)
			return get(intake.PathOAuthRedirect, "code=c1&state="+st, CookieName+"="+st+".1."+sig)
		}, 403, "another browser"},
		{"expired", func(t *testing.T, f *Flow, now *time.Time, state, cookie string) *intake.Request {
			*now = now.Add(StateLifetime + time.Second)
			return get(intake.PathOAuthRedirect, "code=c1&state="+state, cookie)
		}, 403, "More than 10 minutes"},
		{"state mismatch", func(t *testing.T, f *Flow, now *time.Time, state, cookie string) *intake.Request {
			// A good cookie, but the redirect carries the state of another browser's install.
			other, _ := startInstall(t, f)
			return get(intake.PathOAuthRedirect, "code=c1&state="+other, cookie)
		}, 403, "another browser"},
		{"replayed", func(t *testing.T, f *Flow, now *time.Time, state, cookie string) *intake.Request {
			first := f.ServePage(context.Background(), get(intake.PathOAuthRedirect, "error=access_denied&state="+state, cookie))
			if first.Status != 403 || !strings.Contains(string(first.Body), "You chose Cancel") {
				t.Fatalf("first use: status %d\n%s", first.Status, first.Body)
			}
			return get(intake.PathOAuthRedirect, "code=c1&state="+state, cookie)
		}, 403, "already used"},
		{"access denied", func(t *testing.T, f *Flow, now *time.Time, state, cookie string) *intake.Request {
			return get(intake.PathOAuthRedirect, "error=access_denied&state="+state, cookie)
		}, 403, "You chose Cancel on Slack"},
		{"no state", func(t *testing.T, f *Flow, now *time.Time, state, cookie string) *intake.Request {
			return get(intake.PathOAuthRedirect, "code=c1", cookie)
		}, 400, "without the state and code"},
		{"another error from Slack", func(t *testing.T, f *Flow, now *time.Time, state, cookie string) *intake.Request {
			return get(intake.PathOAuthRedirect, "error=%3Cb%3Ehi&state="+state, cookie)
		}, 400, "Slack answered unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, now := setup(t)
			state, cookie := startInstall(t, f)
			resp := f.ServePage(context.Background(), tc.mangle(t, f, now, state, cookie))
			body := string(resp.Body)
			if resp.Status != tc.status || !strings.Contains(body, tc.reason) {
				t.Errorf("status %d, want %d with %q:\n%s", resp.Status, tc.status, tc.reason, body)
			}
			if len(resp.SetCookies) != 1 || !strings.Contains(resp.SetCookies[0], "Max-Age=0") {
				t.Errorf("Set-Cookie %q: want the cookie cleared", resp.SetCookies)
			}
			if strings.Contains(body, testSecret) || strings.Contains(body, "<b>") {
				t.Errorf("the page shows the secret or unescaped input:\n%s", body)
			}
			if _, err := f.Store.Get(context.Background(), install.TeamKey("T0001")); err == nil {
				t.Error("an installation was stored")
			}
		})
	}
}

func splitCookie(t *testing.T, cookie string) (state, issued, sig string) {
	t.Helper()
	_, v, _ := strings.Cut(cookie, "=")
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		t.Fatalf("cookie %q: want state.issued.signature", cookie)
	}
	return parts[0], parts[1], parts[2]
}

func TestCheckState(t *testing.T) {
	t.Parallel()
	key := stateKey(testSecret)
	now := time.Unix(1_800_000_000, 0)
	good := cookieValue(key, "s1", now)
	for _, tc := range []struct {
		name, value, state string
		at                 time.Time
		want               error
	}{
		{"good", good, "s1", now.Add(StateLifetime), nil},
		{"missing", "", "s1", now, ErrNoCookie},
		{"malformed", "s1", "s1", now, ErrBadSignature},
		{"truncated signature", good[:len(good)-1], "s1", now, ErrBadSignature},
		{"other key", cookieValue(stateKey("other"), "s1", now), "s1", now, ErrBadSignature},
		{"expired", good, "s1", now.Add(StateLifetime + time.Second), ErrExpired},
		{"from the future", good, "s1", now.Add(-2 * clockSkew), ErrExpired},
		{"mismatch", good, "s2", now, ErrStateMismatch},
		{"empty state", good, "", now, ErrStateMismatch},
	} {
		if err := checkState(key, tc.value, tc.state, tc.at); err != tc.want {
			t.Errorf("%s: checkState = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// With one workspace (no Pages) the install paths stay what they were: 404.
func TestOneWorkspaceHasNoInstallPages(t *testing.T) {
	t.Parallel()
	h := &intake.Handler{MaxBodyBytes: 1024, Log: discard(), Secrets: secrets.NewStatic(map[string]string{intake.SecretKey: "s"})}
	for _, p := range []string{intake.PathInstall, intake.PathOAuthRedirect} {
		if resp := h.Handle(context.Background(), &intake.Request{Method: "GET", Path: p, Header: func(string) string { return "" }}); resp.Status != 404 {
			t.Errorf("GET %s: status %d, want 404", p, resp.Status)
		}
	}
}

// SSM that never answers: the install page still answers, a 503 page, inside the Lambda's
// deadline (and, without a deadline, within the secret store's own bound), through the Lambda
// adapter and the real SSM client.
func TestSlowSSMGivesATimely503Page(t *testing.T) {
	t.Parallel()
	srv, err := fakessm.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	srv.Put("/app/client-secret", testSecret)
	srv.SetMode(fakessm.Hang)
	client := ssm.NewFromConfig(awsclient.Local(), func(o *ssm.Options) { o.BaseEndpoint = &[]string{srv.URL()}[0] }, intake.SSMOptions)
	f, _ := setup(t)
	f.Secrets = secrets.NewSSM(client, map[string]string{SecretKey: "/app/client-secret"}, intake.SecretsOptions(time.Minute, discard(), nil))
	h := &intake.Handler{MaxBodyBytes: 1024, Log: discard(), Pages: f}

	const timeout = 2 * time.Second // the receiver function's timeout
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	out, err := h.HandleLambda(ctx, events.APIGatewayV2HTTPRequest{RawPath: intake.PathInstall,
		RequestContext: events.APIGatewayV2HTTPRequestContext{DomainName: "install.example", Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET"}}})
	took := time.Since(start)
	if err != nil || out.StatusCode != 503 || !strings.Contains(out.Body, "could not load its Slack credentials in time") || out.Headers["retry-after"] == "" {
		t.Fatalf("status %d, err %v, headers %v:\n%s", out.StatusCode, err, out.Headers, out.Body)
	}
	if took > timeout-intake.AnswerReserve {
		t.Errorf("the 503 page took %v; the invocation has %v and must keep %v to answer", took, timeout, intake.AnswerReserve)
	}
	t.Logf("503 page after %v with SSM hanging (Lambda deadline %v)", took.Round(time.Millisecond), timeout)

	// The redirect, without a deadline (local mode), still ends: the store bounds SSM.
	f.Secrets = secrets.NewSSM(client, map[string]string{SecretKey: "/app/client-secret"}, intake.SecretsOptions(time.Minute, discard(), nil))
	start = time.Now()
	resp := f.ServePage(context.Background(), get(intake.PathOAuthRedirect, "code=c&state=s"))
	if took := time.Since(start); resp.Status != 503 || took > intake.SecretsTimeout+500*time.Millisecond {
		t.Errorf("redirect with SSM hanging: status %d after %v; want 503 within %v", resp.Status, took, intake.SecretsTimeout)
	}

	// SSM back: the page works.
	srv.SetMode(fakessm.Answer)
	f.Secrets = secrets.NewSSM(client, map[string]string{SecretKey: "/app/client-secret"}, intake.SecretsOptions(time.Minute, discard(), nil))
	if resp := f.ServePage(context.Background(), get(intake.PathInstall, "")); resp.Status != 200 {
		t.Errorf("SSM answering: status %d\n%s", resp.Status, resp.Body)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

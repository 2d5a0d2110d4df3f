package installpages

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/receiver/installflow"
	"github.com/slackrelay/slackrelay/receiver/intake"
	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/shared/install"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/shared/secrets"
	"github.com/slackrelay/slackrelay/worker/fakeslack"

	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
)

func TestMain(m *testing.M) { os.Exit(localawstest.Run(m)) }

// The workspaces of the local Slack: acme, where the app is not installed yet, and the
// Enterprise Grid org Globex (E0100) with one workspace.
var workspaces = []fakeslack.Workspace{
	{ID: "T0002", Name: "acme"},
	{ID: "T0101", Name: "globex-sales", EnterpriseID: "E0100", EnterpriseName: "Globex"},
}

// world is the receiver's install pages on 127.0.0.1 in front of the local Slack and a fresh
// installations table on the local DynamoDB.
type world struct {
	slack    *fakeslack.Server
	endpoint string // DynamoDB's
	table    string
	store    *install.DynamoStore
	receiver string // base URL of the receiver
	logs     *logbuf.Buffer
}

func setup(t *testing.T, opts fakeslack.Options) *world {
	t.Helper()
	stack := localawstest.Stack(t)
	w := &world{logs: &logbuf.Buffer{}, endpoint: stack.DynamoDBEndpoint, table: "installations-" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))}
	if err := awstest.CreateTable(context.Background(), stack.DynamoDB(), w.table); err != nil {
		t.Fatal(err)
	}
	w.store = install.NewDynamoStore(awstest.DynamoDBAt(w.endpoint), w.table, nil)
	opts.Workspaces = workspaces
	w.slack = fakeslack.New(opts)
	if _, err := w.slack.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.slack.Close() })
	srv := httptest.NewServer(w.handler(awstest.DynamoDBAt(w.endpoint)))
	t.Cleanup(srv.Close)
	w.receiver = srv.URL
	return w
}

// handler is one receiver instance: the real handler with the install pages, as
// receiver/cmd/receiver builds it in many-workspace mode, on its own DynamoDB client.
func (w *world) handler(db *dynamodb.Client) *intake.Handler {
	log := slog.New(slog.NewJSONHandler(w.logs, nil))
	slackURL := strings.TrimSuffix(w.slack.APIURL(), "api/")
	return &intake.Handler{
		MaxBodyBytes: 1 << 16,
		Secrets:      secrets.NewStatic(map[string]string{intake.SecretKey: "signing-secret"}),
		Log:          log,
		Pages: &installflow.Flow{
			ClientID:     fakeslack.DefaultClientID,
			Scopes:       receiverconfig.DefaultOAuthScopes,
			AuthorizeURL: slackURL + "oauth/v2/authorize",
			APIURL:       w.slack.APIURL(),
			Secrets:      secrets.NewStatic(map[string]string{installflow.SecretKey: fakeslack.DefaultClientSecret}),
			Store:        install.NewDynamoStore(db, w.table, nil),
			States:       installflow.DynamoStates{DB: db, Table: w.table},
			Log:          log,
		},
	}
}

// browser is an HTTP client that keeps cookies and follows redirects, as a browser does.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

// page is a page the browser ended on.
type page = devworld.InstallPage

func open(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	p, err := devworld.OpenPage(context.Background(), c, u)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// link is the href of the element with id on p, resolved against p's address.
func link(t *testing.T, p page, id string) string {
	t.Helper()
	u, err := p.Link(id)
	if err != nil {
		t.Fatalf("%v:\n%s", err, p.Body)
	}
	return u
}

// install goes through the pages as a person does: the install page, Add to Slack, Slack's
// consent page, Allow (or Cancel), back to the receiver. It returns the last page.
func (w *world) install(t *testing.T, c *http.Client, query string, allow bool) page {
	t.Helper()
	p, err := devworld.ClickThroughInstall(context.Background(), c, w.receiver+intake.PathInstall+query, allow)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWorkspaceInstallWithTokenRotation(t *testing.T) {
	t.Parallel()
	w := setup(t, fakeslack.Options{TokenRotation: true})
	before := time.Now()
	done := w.install(t, browser(t), "?team=T0002", true)
	if done.Status != 200 || done.URL.Path != intake.PathOAuthRedirect || !strings.Contains(done.Body, "slackrelay is installed in acme") ||
		!strings.Contains(done.Body, `href="https://acme.slack.local/"`) {
		t.Fatalf("success page: status %d at %s\n%s", done.Status, done.URL, done.Body)
	}
	got, err := w.store.Get(context.Background(), install.TeamKey("T0002"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.BotToken, "xoxe.xoxb-") || !strings.HasPrefix(got.RefreshToken, "xoxe-1-") {
		t.Errorf("tokens: bot %t refresh %t; want a rotating bot token and its refresh token", strings.HasPrefix(got.BotToken, "xoxe.xoxb-"), strings.HasPrefix(got.RefreshToken, "xoxe-1-"))
	}
	if exp := got.ExpiresAt.Sub(before); exp < fakeslack.TokenLifetime-time.Minute || exp > fakeslack.TokenLifetime+time.Minute {
		t.Errorf("expires at %v, %v after the install; want about %v", got.ExpiresAt, exp, fakeslack.TokenLifetime)
	}
	want := install.Installation{TeamID: "T0002", BotUserID: "UB0002", BotID: "BB0002", AppID: fakeslack.DefaultAppID,
		Scopes: strings.Split(receiverconfig.DefaultOAuthScopes, ","), Status: install.StatusActive, Version: 1}
	got.BotToken, got.RefreshToken, got.ExpiresAt, got.InstalledAt, got.UpdatedAt = "", "", time.Time{}, time.Time{}, time.Time{}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stored installation (-want +got):\n%s", d)
	}
	// The stored token is acme's: Slack answers it as the acme workspace's bot.
	stored, _ := w.store.Get(context.Background(), install.TeamKey("T0002"))
	who, err := slack.New(stored.BotToken, slack.OptionAPIURL(w.slack.APIURL())).AuthTest()
	if err != nil || who.TeamID != "T0002" || who.BotID != "BB0002" {
		t.Errorf("auth.test with the stored token: %+v, %v; want team T0002, bot BB0002", who, err)
	}
	if _, err := w.store.Get(context.Background(), install.TeamKey("T0001")); err == nil {
		t.Error("the default workspace was installed too")
	}
	// The log says what was installed and never shows a token, the code or the client secret.
	logs := w.logs.String()
	code := done.URL.Query().Get("code")
	for what, secret := range map[string]string{"bot token": stored.BotToken, "refresh token": stored.RefreshToken, "code": code, "client secret": fakeslack.DefaultClientSecret} {
		if secret == "" || strings.Contains(logs, secret) {
			t.Errorf("the %s (%q) is empty or in the receiver's log:\n%s", what, secret, logs)
		}
	}
	if !strings.Contains(logs, `"msg":"installed"`) || !strings.Contains(logs, `"key":"T#T0002"`) {
		t.Errorf("no installed line naming T#T0002 in the log:\n%s", logs)
	}
}

func TestOrgWideInstall(t *testing.T) {
	t.Parallel()
	w := setup(t, fakeslack.Options{})
	done := w.install(t, browser(t), "?team=E0100", true)
	if done.Status != 200 || !strings.Contains(done.Body, "slackrelay is installed in Globex") {
		t.Fatalf("success page: status %d\n%s", done.Status, done.Body)
	}
	got, err := w.store.Get(context.Background(), install.EnterpriseKey("E0100"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsEnterpriseInstall || got.EnterpriseID != "E0100" || got.TeamID != "" || got.BotToken == "" || got.RefreshToken != "" || !got.ExpiresAt.IsZero() || got.BotID != "BB0100" {
		t.Errorf("org install stored as %v (enterprise install %t, team %q, bot %q, refresh token set %t, expiry %v); want E#E0100 org-wide, no rotation",
			got, got.IsEnterpriseInstall, got.TeamID, got.BotID, got.RefreshToken != "", got.ExpiresAt)
	}
	// Resolution for an event of a workspace of the org finds the org install.
	found, err := install.Find(context.Background(), w.store, "T0101", "E0100", false)
	if err != nil || found.Key() != install.EnterpriseKey("E0100") {
		t.Errorf("Find for T0101 in E0100: %v, %v; want the org install", found, err)
	}
}

// Cancel on Slack's page: a page that says so, nothing stored.
func TestCancelledInstall(t *testing.T) {
	t.Parallel()
	w := setup(t, fakeslack.Options{})
	done := w.install(t, browser(t), "?team=T0002", false)
	if done.Status != 403 || !strings.Contains(done.Body, "The installation was cancelled") {
		t.Fatalf("cancel: status %d\n%s", done.Status, done.Body)
	}
	if _, err := w.store.Get(context.Background(), install.TeamKey("T0002")); err == nil {
		t.Error("a cancelled install was stored")
	}
}

// A redirect replayed (its URL and the cookie captured), even on another receiver instance, is
// refused: the state was used, whatever Slack would say of the code. Another browser's
// redirect (no cookie) is refused as well.
func TestReplayedAndForeignRedirectsAreRefused(t *testing.T) {
	t.Parallel()
	w := setup(t, fakeslack.Options{})
	c := browser(t)
	start := open(t, c, w.receiver+intake.PathInstall+"?team=T0002")
	consent := open(t, c, link(t, start, "add-to-slack"))
	recv, _ := url.Parse(w.receiver)
	cookies := c.Jar.Cookies(&url.URL{Scheme: "http", Host: recv.Host, Path: intake.PathOAuthRedirect})
	if len(cookies) != 1 {
		t.Fatalf("the browser holds %d install cookies, want 1", len(cookies))
	}
	captured := cookies[0]
	done := open(t, c, link(t, consent, "allow"))
	if done.Status != 200 {
		t.Fatalf("install: status %d\n%s", done.Status, done.Body)
	}
	if left := c.Jar.Cookies(&url.URL{Scheme: "http", Host: recv.Host, Path: intake.PathOAuthRedirect}); len(left) != 0 {
		t.Errorf("the install cookie was not cleared: %v", left)
	}

	other := httptest.NewServer(w.handler(awstest.DynamoDBAt(w.endpoint)))
	defer other.Close()
	replay := func(base string, cookie *http.Cookie) page {
		req, _ := http.NewRequest("GET", base+intake.PathOAuthRedirect+"?"+done.URL.RawQuery, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return page{Status: resp.StatusCode, Body: string(b)}
	}
	for name, p := range map[string]page{
		"same instance":    replay(w.receiver, captured),
		"another instance": replay(other.URL, captured),
	} {
		if p.Status != 403 || !strings.Contains(p.Body, "already used") {
			t.Errorf("replay on %s: status %d\n%s", name, p.Status, p.Body)
		}
	}
	if p := replay(w.receiver, nil); p.Status != 403 || !strings.Contains(p.Body, "did not send back the cookie") {
		t.Errorf("redirect without the cookie: status %d\n%s", p.Status, p.Body)
	}
	got, err := w.store.Get(context.Background(), install.TeamKey("T0002"))
	if err != nil || got.Version != 1 {
		t.Errorf("installation after the replays: %v, %v; want version 1 (saved once)", got, err)
	}
}

// The install page asks for the bot scopes of the app manifest.
func TestDefaultScopesAreTheManifests(t *testing.T) {
	t.Parallel()
	path, err := fakeslack.FindManifest()
	if err != nil {
		t.Fatal(err)
	}
	want, err := fakeslack.ManifestScopes(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, strings.Split(receiverconfig.DefaultOAuthScopes, ",")); d != "" {
		t.Errorf("receiverconfig.DefaultOAuthScopes differs from the bot scopes of %s (-manifest +default):\n%s", path, d)
	}
}

// Package installflow serves the install pages of a Slack app distributed to many workspaces,
// on the receiver's API:
//
//   - GET /slack/install shows the Add to Slack page. Its button opens Slack's consent page
//     (oauth/v2/authorize) with the app's client id, bot scopes, redirect URL and a fresh
//     state, which a signed, short-lived, HttpOnly cookie binds to this browser (state.go).
//     ?team=T… is passed on to Slack to pick the workspace.
//   - GET /slack/oauth_redirect is where Slack sends the browser back. The state must match
//     the cookie (signature, age) and be used for the first time (States, across instances);
//     then the code is exchanged with oauth.v2.access, auth.test names the bot, and the
//     installation (a workspace's T#team, or an org's E#enterprise) is saved in the
//     installation store (shared/install). The answer is a success page naming the workspace
//     with a link into Slack, or a failure page saying what went wrong and what to do, never
//     a secret. The cookie is cleared either way.
//
// Every call the pages make is bounded by the invocation's deadline, so a slow SSM, DynamoDB or
// Slack gives a 503 or 502 page in time, never a hang.
package installflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/receiver/intake"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/install"
	"github.com/slackrelay/slackrelay/shared/logging"
	"github.com/slackrelay/slackrelay/shared/metrics"
)

// SecretKey is the key of the client secret in the secret source.
const SecretKey = "client_secret"

// SlackTimeout bounds each Slack call (oauth.v2.access, auth.test) when the invocation's
// deadline does not bound it sooner.
const SlackTimeout = 1500 * time.Millisecond

// Secrets yields the client secret; *secrets.Store satisfies it.
type Secrets interface {
	Get(ctx context.Context, key string) (string, error)
}

// Flow serves the install pages; it implements intake.Pages.
type Flow struct {
	// AppName names the app on the pages (default "slackrelay").
	AppName  string
	ClientID string
	// Scopes are the bot scopes asked for, comma-separated as Slack wants them.
	Scopes string
	// RedirectURL is the redirect Slack sends the browser back to; empty: the request's
	// BaseURL + /slack/oauth_redirect. It must be on the install page's host (the cookie is
	// that host's).
	RedirectURL string
	// AuthorizeURL is Slack's consent page; APIURL its Web API base (ending in a slash).
	AuthorizeURL string
	APIURL       string
	Secrets      Secrets
	Store        install.Store
	States       States
	// HTTP makes the Slack calls (nil: http.DefaultClient; the calls are bounded by their
	// context).
	HTTP    *http.Client
	Log     *slog.Logger
	Metrics *metrics.Emitter
	Now     func() time.Time
}

var _ intake.Pages = (*Flow)(nil)

// The outcomes, for the log and the metric's Outcome dimension.
const (
	outcomeInstalled     = "installed"
	outcomeCancelled     = "cancelled"
	outcomeBadState      = "bad_state"
	outcomeReplayed      = "replayed"
	outcomeBadRequest    = "bad_request"
	outcomeSlackRefused  = "slack_refused"
	outcomeSlackDown     = "slack_unavailable"
	outcomeSecretMissing = "secret_unavailable"
	outcomeStoreDown     = "store_unavailable"
	outcomeConfig        = "misconfigured"
)

// ServePage implements intake.Pages.
func (f *Flow) ServePage(ctx context.Context, r *intake.Request) intake.Response {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return intake.Response{Status: 405, ContentType: "text/plain; charset=utf-8", Body: []byte("method not allowed: use GET\n"),
			Headers: map[string]string{"Allow": "GET, HEAD"}}
	}
	if r.Path == intake.PathInstall {
		return f.installPage(ctx, r)
	}
	return f.redirect(ctx, r)
}

func (f *Flow) app() string {
	if f.AppName != "" {
		return f.AppName
	}
	return "slackrelay"
}

func (f *Flow) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (f *Flow) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// redirectURL is where Slack sends the browser back, and whether the cookie needs Secure.
func (f *Flow) redirectURL(r *intake.Request) (*url.URL, error) {
	raw := f.RedirectURL
	if raw == "" {
		if r.BaseURL == "" {
			return nil, errors.New("no redirect URL: OAUTH_REDIRECT_URL is empty and the request does not say its host")
		}
		raw = r.BaseURL + intake.PathOAuthRedirect
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("redirect URL %q is not an absolute URL", raw)
	}
	return u, nil
}

// teamPattern is what ?team= may hold: a team or enterprise id.
var teamPattern = regexp.MustCompile(`^[TE][A-Z0-9]{1,31}$`)

func (f *Flow) installPage(ctx context.Context, r *intake.Request) intake.Response {
	q, _ := url.ParseQuery(r.RawQuery)
	team := q.Get("team")
	if team != "" && !teamPattern.MatchString(team) {
		return f.fail(r, 400, outcomeBadRequest, nil, "This install link is not valid",
			"The team in the link is not a Slack workspace or organization id. Open the install page without it.", intake.PathInstall)
	}
	redirect, err := f.redirectURL(r)
	if err != nil {
		return f.fail(r, 500, outcomeConfig, err, "The install page is not set up",
			"The app's redirect URL is not configured. The app's operator needs to set OAUTH_REDIRECT_URL.", "")
	}
	secret, err := f.Secrets.Get(ctx, SecretKey)
	if err != nil {
		return f.secretUnavailable(r, err)
	}
	state, err := newState()
	if err != nil {
		return f.fail(r, 500, outcomeConfig, err, "The install page could not be shown", "Please try again.", intake.PathInstall)
	}
	v := url.Values{}
	v.Set("client_id", f.ClientID)
	v.Set("scope", f.Scopes)
	v.Set("redirect_uri", redirect.String())
	v.Set("state", state)
	if team != "" {
		v.Set("team", team)
	}
	authorize := f.AuthorizeURL + "?" + v.Encode()
	cookie := stateCookie(cookieValue(stateKey(secret), state, f.now()), redirect.Path, redirect.Scheme == "https", StateLifetime)
	return render(200, installPage, map[string]any{"App": f.app(), "Title": "Add " + f.app() + " to Slack", "AuthorizeURL": authorize, "Team": team}, cookie)
}

// slackErrorPattern is what a Slack error code in the redirect may look like to be shown.
var slackErrorPattern = regexp.MustCompile(`^[a-z_]{1,64}$`)

func (f *Flow) redirect(ctx context.Context, r *intake.Request) intake.Response {
	q, _ := url.ParseQuery(r.RawQuery)
	redirect, err := f.redirectURL(r)
	if err != nil {
		return f.fail(r, 500, outcomeConfig, err, "The install page is not set up",
			"The app's redirect URL is not configured. The app's operator needs to set OAUTH_REDIRECT_URL.", "")
	}
	// The cookie has done its work whatever happens next.
	clear := stateCookie("", redirect.Path, redirect.Scheme == "https", 0)
	fail := func(status int, outcome string, err error, heading, reason string) intake.Response {
		resp := f.fail(r, status, outcome, err, heading, reason, intake.PathInstall)
		resp.SetCookies = []string{clear}
		return resp
	}
	state, code, slackErr := q.Get("state"), q.Get("code"), q.Get("error")
	if state == "" || (code == "" && slackErr == "") {
		return fail(400, outcomeBadRequest, nil, "This page is opened by Slack",
			"It was opened without the state and code Slack adds when it sends you back. Start the installation from the install page.")
	}
	secret, err := f.Secrets.Get(ctx, SecretKey)
	if err != nil {
		resp := f.secretUnavailable(r, err)
		resp.SetCookies = []string{clear}
		return resp
	}
	now := f.now()
	if err := checkState(stateKey(secret), cookieFrom(r.Cookies), state, now); err != nil {
		reason := "The installation was started in another browser, or the link was changed. For your safety it was stopped: start again from the install page, in this browser."
		switch {
		case errors.Is(err, ErrNoCookie):
			reason = "Your browser did not send back the cookie the install page set. Start again from the install page in this browser, with cookies allowed for this site."
		case errors.Is(err, ErrExpired):
			reason = "More than 10 minutes passed since the install page was opened. Start again from the install page."
		}
		return fail(403, outcomeBadState, err, "The installation could not be verified", reason)
	}
	if err := f.States.Use(ctx, state, now.Add(StateLifetime+clockSkew)); err != nil {
		if errors.Is(err, ErrStateUsed) {
			return fail(403, outcomeReplayed, err, "This installation link was already used",
				"Each visit to Slack's page can finish one installation. Start again from the install page.")
		}
		return fail(503, outcomeStoreDown, err, "The installation could not be finished right now",
			"The app could not reach its database. Nothing was installed; please start again in a minute.")
	}
	if slackErr != "" {
		if slackErr == "access_denied" {
			return fail(403, outcomeCancelled, nil, "The installation was cancelled",
				"You chose Cancel on Slack's page, so "+f.app()+" was not installed. You can start again at any time.")
		}
		if !slackErrorPattern.MatchString(slackErr) {
			slackErr = "unknown"
		}
		return fail(400, outcomeSlackRefused, errors.New("slack redirected with error "+slackErr), "Slack did not install the app",
			"Slack answered "+slackErr+". Nothing was installed; start again from the install page.")
	}

	inst, workspace, openURL, status, err := f.exchange(ctx, secret, code, redirect.String())
	if err != nil {
		if status == 502 {
			return fail(502, outcomeSlackDown, err, "Slack did not finish the installation",
				"Slack could not be reached, or did not answer in time. Nothing was installed; start again from the install page.")
		}
		return fail(status, outcomeSlackRefused, err, "Slack did not finish the installation",
			"Slack refused the installation ("+slackCode(err)+"). Nothing was installed; start again from the install page.")
	}
	saveCtx, cancel := bounded(ctx, SlackTimeout)
	defer cancel()
	saved, err := f.Store.Save(saveCtx, inst)
	if err != nil {
		return fail(503, outcomeStoreDown, err, "The installation could not be saved",
			"Slack approved it, but the app could not store it. Start again from the install page in a minute.")
	}
	f.log().Info("installed", logging.KeyRequestID, r.RequestID, "installation", saved)
	f.count(outcomeInstalled)
	resp := render(200, successPage, map[string]any{"App": f.app(), "Title": f.app() + " is installed", "Workspace": workspace, "OpenURL": openURL})
	resp.SetCookies = []string{clear}
	return resp
}

// slackCode is the Slack error code in err, or "an unexpected answer".
func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && slackErrorPattern.MatchString(se.Err) {
		return se.Err
	}
	return "an unexpected answer"
}

// exchange trades the code for the installation (oauth.v2.access) and names its bot
// (auth.test). status is 502 when Slack could not be reached, 400 when it refused.
func (f *Flow) exchange(ctx context.Context, secret, code, redirect string) (inst install.Installation, workspace, openURL string, status int, err error) {
	client := f.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	callCtx, cancel := bounded(ctx, SlackTimeout)
	defer cancel()
	resp, err := slack.GetOAuthV2ResponseContext(callCtx, client, f.ClientID, secret, code, redirect, slack.OAuthOptionAPIURL(f.APIURL))
	if err != nil {
		return inst, "", "", slackStatus(err), fmt.Errorf("oauth.v2.access: %w", err)
	}
	if resp.AccessToken == "" || (resp.TokenType != "" && resp.TokenType != "bot") {
		return inst, "", "", 400, fmt.Errorf("oauth.v2.access answered no bot token (token type %q)", resp.TokenType)
	}
	inst = install.FromOAuth(resp, f.now())
	workspace = resp.Team.Name
	if resp.IsEnterpriseInstall || workspace == "" {
		workspace = resp.Enterprise.Name
	}
	authCtx, cancel2 := bounded(ctx, SlackTimeout)
	defer cancel2()
	api := slack.New(resp.AccessToken, slack.OptionAPIURL(f.APIURL), slack.OptionHTTPClient(client))
	who, err := api.AuthTestContext(authCtx)
	if err != nil {
		return inst, "", "", slackStatus(err), fmt.Errorf("auth.test with the new token: %w", err)
	}
	inst.BotID = who.BotID
	if inst.BotUserID == "" {
		inst.BotUserID = who.UserID
	}
	if workspace == "" {
		workspace = who.Team
	}
	if u, perr := url.Parse(who.URL); perr == nil && u.Scheme == "https" {
		openURL = who.URL
	}
	return inst, workspace, openURL, 200, nil
}

// slackStatus is 400 for an answer of Slack's (it refused), 502 for anything else.
func slackStatus(err error) int {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return 400
	}
	return 502
}

// bounded is ctx bounded by d and by the invocation's deadline less intake.AnswerReserve,
// whichever comes first.
func bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-intake.AnswerReserve).Before(deadline) {
		deadline = dl.Add(-intake.AnswerReserve)
	}
	return context.WithDeadline(ctx, deadline)
}

func (f *Flow) secretUnavailable(r *intake.Request, err error) intake.Response {
	resp := f.fail(r, 503, outcomeSecretMissing, err, "The install page is unavailable right now",
		"The app could not load its Slack credentials in time. Nothing was changed; please try again in a minute.", "")
	resp.Headers = withRetryAfter
	return resp
}

var withRetryAfter = func() map[string]string {
	m := map[string]string{"Retry-After": "30"}
	for k, v := range pageHeaders {
		m[k] = v
	}
	return m
}()

// fail renders a failure page and logs why (err may name ids, never a secret: the errors of
// slack-go, the stores and checkState carry none).
func (f *Flow) fail(r *intake.Request, status int, outcome string, err error, heading, reason, again string) intake.Response {
	attrs := []any{logging.KeyRequestID, r.RequestID, "path", r.Path, "outcome", outcome, "status", status}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	f.log().Log(context.Background(), level, "install page failed", attrs...)
	f.count(outcome)
	if strings.HasPrefix(again, "/") {
		again = r.BaseURL + again
	}
	return render(status, failurePage, map[string]any{"App": f.app(), "Title": heading, "Heading": heading, "Reason": reason, "Again": again})
}

func (f *Flow) count(outcome string) {
	if f.Metrics != nil {
		f.Metrics.Count("InstallPages", 1, metrics.Dim{Name: "Outcome", Value: outcome})
	}
}

// DynamoPolicy bounds the pages' DynamoDB calls (the used state, the installation): two
// attempts of at most 400 ms.
var DynamoPolicy = awsclient.BoundedRetry{Attempts: 2, AttemptTimeout: 400 * time.Millisecond, BackoffBase: 20 * time.Millisecond, BackoffMax: 80 * time.Millisecond}

// DynamoDBOptions applies DynamoPolicy to the receiver's DynamoDB client.
func DynamoDBOptions(o *dynamodb.Options) {
	o.Retryer = DynamoPolicy.Retryer()
	o.HTTPClient = DynamoPolicy.HTTPClient()
}

package lambdamode

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slackrelay/slackrelay/infra/local/lambdaworld"
	"github.com/slackrelay/slackrelay/receiver/installflow"
	"github.com/slackrelay/slackrelay/receiver/intake"
	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/shared/fakessm"
)

// installEvent is a browser's GET of path on API Gateway's $default stage.
func installEvent(t *testing.T, path, query string) []byte {
	t.Helper()
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "GET " + path, RawPath: path, RawQueryString: query,
		Headers: map[string]string{"user-agent": "Mozilla/5.0"}}
	ev.RequestContext.Stage = "$default"
	ev.RequestContext.DomainName = "abc123.execute-api.us-east-1.amazonaws.com"
	ev.RequestContext.RequestID = "apigw-install"
	ev.RequestContext.HTTP.Method = "GET"
	ev.RequestContext.HTTP.Path = path
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// startManyWorkspaces runs the receiver as the template deploys it with Workspaces many: its
// client secret in the world's SSM, the installations table on the local DynamoDB.
func (w *world) startManyWorkspaces(prepare func()) (*lambdaworld.Function, lambdaworld.FunctionOptions) {
	w.t.Helper()
	w.local.InstallationsTable = w.local.Table + "-installations"
	if err := awstest.CreateTable(context.Background(), w.stack.DynamoDB(), w.local.InstallationsTable); err != nil {
		w.t.Fatal(err)
	}
	spec := lambdaworld.Spec{Params: map[string]string{"Workspaces": "many", "SlackClientId": "1234.5678"}}
	opts, err := lambdaworld.Options(tmpl, lambdaworld.Spec{LogicalID: lambdaworld.ReceiverFunction, Local: w.local, Params: spec.Params})
	if err != nil {
		w.t.Fatal(err)
	}
	w.ssm.Put(lambdaworld.EnvValue(opts.Env, "SLACK_CLIENT_SECRET_PARAM"), "lambda-test-client-secret")
	return w.startReceiver(spec, prepare)
}

// With Workspaces many the deployed receiver serves the install page: a state cookie set
// through API Gateway's cookies (Secure, HttpOnly, SameSite=Lax, only for the redirect's path)
// and an Add to Slack link to Slack's consent page with the redirect on the API's own host.
func TestReceiverInstallPage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f, opts := w.startManyWorkspaces(nil)
	if lambdaworld.EnvValue(opts.Env, "INSTALLATIONS_TABLE") != w.local.InstallationsTable {
		t.Fatalf("INSTALLATIONS_TABLE = %q; want the template to give the receiver the installations table", lambdaworld.EnvValue(opts.Env, "INSTALLATIONS_TABLE"))
	}
	resp, r := call(t, f, installEvent(t, intake.PathInstall, "team=T0002"))
	if r.TimedOut || resp.StatusCode != 200 || len(resp.Cookies) != 1 {
		t.Fatalf("install page: status %d, cookies %q (timed out %v):\n%s", resp.StatusCode, resp.Cookies, r.TimedOut, resp.Body)
	}
	c, err := http.ParseSetCookie(resp.Cookies[0])
	if err != nil || c.Name != installflow.CookieName || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != intake.PathOAuthRedirect {
		t.Errorf("cookie %q (%v): want Secure, HttpOnly, SameSite=Lax, Path=%s", resp.Cookies[0], err, intake.PathOAuthRedirect)
	}
	body := strings.ReplaceAll(resp.Body, "&amp;", "&")
	for _, want := range []string{"https://slack.com/oauth/v2/authorize?", "client_id=1234.5678", "team=T0002",
		"redirect_uri=https%3A%2F%2Fabc123.execute-api.us-east-1.amazonaws.com%2Fslack%2Foauth_redirect"} {
		if !strings.Contains(body, want) {
			t.Errorf("install page lacks %s:\n%s", want, resp.Body)
		}
	}
	t.Logf("install page answered in %s (cold: %v, init %s)", r.Duration.Round(time.Millisecond), r.Cold, r.Init.Duration.Round(time.Millisecond))
}

// SSM hanging from the cold start: the install page answers a 503 page within the deadline,
// never a hang, and works once SSM answers.
func TestReceiverInstallPageSSMHanging(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f, opts := w.startManyWorkspaces(func() { w.ssm.SetMode(fakessm.Hang) })
	resp, r := call(t, f, installEvent(t, intake.PathInstall, ""))
	if r.TimedOut || resp.StatusCode != 503 || !strings.Contains(resp.Body, "try again in a minute") {
		t.Fatalf("cold start with SSM hanging: status %d (timed out %v):\n%s", resp.StatusCode, r.TimedOut, resp.Body)
	}
	cold := r.Duration
	next := answeredInTime(t, "install page, SSM still hanging", f, installEvent(t, intake.PathInstall, ""), 503, opts.Timeout)
	// After the store's backoff the page calls SSM again, and that call is bounded too.
	calls := w.ssm.Calls()
	time.Sleep(secretsRetryMax(2))
	bounded := answeredInTime(t, "install page after the backoff, SSM still hanging", f, installEvent(t, intake.PathInstall, ""), 503, opts.Timeout)
	if w.ssm.Calls() == calls {
		t.Fatal("after the backoff the page did not try SSM again")
	}
	w.ssm.SetMode(fakessm.Answer)
	time.Sleep(secretsRetryMax(3))
	ok := answeredInTime(t, "install page once SSM answers", f, installEvent(t, intake.PathInstall, ""), 200, opts.Timeout)
	t.Logf("SSM hanging: 503 page at the cold start after %s, next after %s, after the backoff (SSM called, bounded) after %s (deadline %s); SSM back: 200 after %s",
		cold.Round(time.Millisecond), next.Round(time.Millisecond), bounded.Round(time.Millisecond), opts.Timeout, ok.Round(time.Millisecond))
}

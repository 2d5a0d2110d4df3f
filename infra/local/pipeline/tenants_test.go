package pipeline

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/install"
	"github.com/slackrelay/slackrelay/worker"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// The many-workspace mode through the real worker (worker.New with INSTALLATIONS_TABLE): each
// event is answered with its own installation's token, found from the event's authorizations,
// never with another workspace's; an event of a workspace with no usable installation is
// dead-lettered as not_installed; app_uninstalled, tokens_revoked and Slack's refusal of a
// token mark the installation; a rotating token is refreshed once across its expiry.

// manyWorkspaces is the local Slack of these tests: the default workspace T0001 (the harness's
// static token, never installed in the table), T0002 and T0006 (workspaces of their own), an
// org E0001 with T0003 and T0004, and T0005 where the app is never installed.
var manyWorkspaces = fakeslack.Options{
	TokenRotation: true,
	Workspaces: []fakeslack.Workspace{
		{ID: "T0002", Channels: []string{"C2"}},
		{ID: "T0003", EnterpriseID: "E0001", Channels: []string{"C3"}},
		{ID: "T0004", EnterpriseID: "E0001", Channels: []string{"C4"}},
		{ID: "T0005", Channels: []string{"C5"}},
		{ID: "T0006", Channels: []string{"C6"}},
	},
}

type tenantsWorld struct {
	*harness
	store *install.DynamoStore
}

// greeter answers a mention with the workspace and bot that answered.
func greeter(r *relay.Router, _ *worker.Setup) error {
	relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackeventsMention]) error {
		_, err := req.Reply(ctx, "hello from "+req.Tenant().Team+req.Tenant().Enterprise)
		return err
	})
	return nil
}

type slackeventsMention struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

func newTenantsWorld(t *testing.T) *tenantsWorld {
	table := "installations-" + strconv.FormatInt(seq.Add(1), 10)
	h := newHarness(t, withSlack(manyWorkspaces), withBot(greeter), withConfig(func(c *workerconfig.Config) {
		c.BotToken, c.InstallationsTable = "", table
		c.ClientID, c.ClientSecret = fakeslack.DefaultClientID, fakeslack.DefaultClientSecret
	}))
	if err := awstest.CreateTable(context.Background(), h.ddb, table); err != nil {
		t.Fatal(err)
	}
	return &tenantsWorld{harness: h, store: install.NewDynamoStore(h.ddb, table, nil)}
}

// install runs the OAuth flow on the local Slack for target (a team, or an org's enterprise
// id for an org-wide install) and stores the installation as the install flow does.
func (w *tenantsWorld) install(target string) install.Installation {
	w.t.Helper()
	ctx := context.Background()
	const redirect = "https://example.test/slack/oauth_redirect"
	q := url.Values{"client_id": {fakeslack.DefaultClientID}, "scope": {"app_mentions:read,chat:write"},
		"redirect_uri": {redirect}, "state": {"s"}, "team": {target}}
	consent, err := devworld.OpenPage(ctx, http.DefaultClient, w.slack.AuthorizeURL()+"?"+q.Encode())
	if err != nil {
		w.t.Fatal(err)
	}
	allow, err := consent.Link("allow")
	if err != nil {
		w.t.Fatal(err)
	}
	// Allow redirects to the app with the code: stop there, as the app is not running here.
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	back, err := devworld.OpenPage(ctx, noRedirects, allow)
	if err != nil || back.Status != http.StatusFound {
		w.t.Fatalf("Allow: %v, status %d, want a redirect to the app", err, back.Status)
	}
	loc, err := url.Parse(back.Location)
	if err != nil {
		w.t.Fatal(err)
	}
	resp, err := slack.GetOAuthV2ResponseContext(ctx, http.DefaultClient, fakeslack.DefaultClientID,
		fakeslack.DefaultClientSecret, loc.Query().Get("code"), redirect, slack.OAuthOptionAPIURL(w.slack.APIURL()))
	if err != nil {
		w.t.Fatalf("oauth.v2.access: %v", err)
	}
	saved, err := w.store.Save(ctx, install.FromOAuth(resp, time.Now()))
	if err != nil {
		w.t.Fatal(err)
	}
	return saved
}

// tenantEvent is an Events API body delivered to an installation (fixture.InTeam), enveloped.
func tenantEvent(t testing.TB, body, team, enterprise string, orgInstall bool) []byte {
	return eventEnvelope(t, fixture.InTeam(body, team, enterprise, orgInstall))
}

func (w *tenantsWorld) mention(id, team, enterprise string, orgInstall bool, channel, ts string) {
	w.send(tenantEvent(w.t, fixture.AppMention(id, channel, ts, "hi"), team, enterprise, orgInstall))
}

// answersInChannel are the bot's messages in channel.
func (w *tenantsWorld) answersInChannel(channel string) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range w.answers() {
		if m.Channel == channel {
			out = append(out, m)
		}
	}
	return out
}

// deadLetters are the DLQ's messages' failure classes by event id (it drains the DLQ).
func (w *tenantsWorld) deadLetters() map[string]string {
	return awstest.DeadLetterClasses(w.t, w.sqs, w.dlqURL)
}

func TestEachEventIsAnsweredWithItsOwnInstallationsToken(t *testing.T) {
	w := newTenantsWorld(t)
	w.install("T0002")
	w.install("E0001") // org-wide: T0003 and T0004
	w.install("T0006")

	w.mention("Ev1", "T0002", "", false, "C2", "1700000001.000100")
	w.mention("Ev2", "T0003", "E0001", true, "C3", "1700000002.000100")
	w.mention("Ev3", "T0005", "", false, "C5", "1700000003.000100") // never installed
	w.mention("Ev4", "T0006", "", false, "C6", "1700000004.000100")
	w.drain(30 * time.Second)

	for ch, want := range map[string]struct{ user, text string }{
		"C2": {"UB0002", "hello from T0002"}, "C3": {"UB0001", "hello from E0001"}, "C6": {"UB0006", "hello from T0006"},
	} {
		got := w.answersInChannel(ch)
		if len(got) != 1 || got[0].Text != want.text || got[0].User != want.user {
			t.Errorf("answers in %s = %+v, want one %q by %s", ch, got, want.text, want.user)
		}
	}
	if got := w.answersInChannel("C5"); len(got) != 0 {
		t.Errorf("the workspace with no installation got answers: %+v", got)
	}
	if dead := w.deadLetters(); len(dead) != 1 || dead["Ev3"] != envelope.FailureClassNotInstalled {
		t.Errorf("dead letters = %v, want only Ev3 as %s", dead, envelope.FailureClassNotInstalled)
	}
	if !strings.Contains(w.logs.String(), `no usable installation`) {
		t.Errorf("the worker did not say why Ev3 was not answered")
	}
}

func TestAnUninstalledWorkspaceGetsNothingAndTheOthersLoseNothing(t *testing.T) {
	w := newTenantsWorld(t)
	w.install("T0002")
	w.install("T0006")
	uninstalled := tenantEvent(t, `{"type":"event_callback","team_id":"T0002","api_app_id":"A0FAKESLACK","event_id":"EvUninstall","event_time":`+
		strconv.FormatInt(time.Now().Unix()+1, 10)+`,"event":{"type":"app_uninstalled","event_ts":"1700000000.000001"}}`, "T0002", "", false)
	w.slack.Uninstall("T0002")
	w.send(uninstalled)
	w.drain(30 * time.Second)
	inst, err := w.store.Get(context.Background(), install.TeamKey("T0002"))
	if err != nil || inst.Status != install.StatusUninstalled || inst.BotToken != "" {
		t.Fatalf("after app_uninstalled: %v, %v; want uninstalled with its tokens erased", inst, err)
	}
	// Interleaved: the uninstalled workspace's events and another's.
	for i, team := range []string{"T0002", "T0006", "T0002", "T0006"} {
		ch := "C" + team[4:]
		w.mention("EvAfter"+strconv.Itoa(i), team, "", false, ch, "17000001"+strconv.Itoa(10+i)+".000100")
	}
	w.drain(30 * time.Second)
	if got := w.answersInChannel("C2"); len(got) != 0 {
		t.Errorf("the uninstalled workspace was answered: %+v", got)
	}
	if got := w.answersInChannel("C6"); len(got) != 2 {
		t.Errorf("the other workspace got %d answers, want 2: %+v", len(got), got)
	}
	dead := w.deadLetters()
	if len(dead) != 2 || dead["EvAfter0"] != envelope.FailureClassNotInstalled || dead["EvAfter2"] != envelope.FailureClassNotInstalled {
		t.Errorf("dead letters = %v, want EvAfter0 and EvAfter2 as not_installed (replayable once installed again)", dead)
	}
}

func TestATokenSlackRefusesDisablesItsInstallation(t *testing.T) {
	w := newTenantsWorld(t)
	w.install("E0001")
	w.slack.Uninstall("E0001") // Slack revoked the org's tokens; no event told the worker
	w.mention("EvRefused", "T0004", "E0001", true, "C4", "1700000005.000100")
	w.drain(30 * time.Second)
	inst, err := w.store.Get(context.Background(), install.EnterpriseKey("E0001"))
	if err != nil || inst.Status != install.StatusDisabled || !strings.Contains(inst.StatusReason, "token_revoked") {
		t.Fatalf("after Slack refused the token: %v (%s), %v; want disabled saying token_revoked", inst, inst.StatusReason, err)
	}
	w.mention("EvNext", "T0003", "E0001", true, "C3", "1700000006.000100")
	w.drain(30 * time.Second)
	dead := w.deadLetters()
	if dead["EvRefused"] != envelope.FailureClassNotInstalled || dead["EvNext"] != envelope.FailureClassNotInstalled {
		t.Errorf("dead letters = %v, want EvRefused (Slack refused its token) and EvNext (disabled since) as not_installed", dead)
	}
	if n := len(w.answers()); n != 0 {
		t.Errorf("%d answers with a revoked token", n)
	}
}

func TestTokensRevokedDisablesTheInstallation(t *testing.T) {
	w := newTenantsWorld(t)
	w.install("T0002")
	body := `{"type":"event_callback","team_id":"T0002","event_id":"EvRevoked","event_time":` + strconv.FormatInt(time.Now().Unix()+1, 10) +
		`,"event":{"type":"tokens_revoked","tokens":{"oauth":["UX"],"bot":["UB0002"]},"event_ts":"1700000000.000002"}}`
	w.send(tenantEvent(t, body, "T0002", "", false))
	w.drain(30 * time.Second)
	inst, err := w.store.Get(context.Background(), install.TeamKey("T0002"))
	if err != nil || inst.Status != install.StatusDisabled || inst.StatusReason != "tokens_revoked" {
		t.Fatalf("after tokens_revoked: %v (%q), %v; want disabled", inst, inst.StatusReason, err)
	}
}

// Workers across a rotating token's refresh point: the token is refreshed once, ahead of its
// expiry, every event is answered, and none meets invalid_auth or token_expired.
func TestARotatingTokenIsRefreshedOnceAcrossItsExpiry(t *testing.T) {
	w := newTenantsWorld(t)
	first := w.install("T0002")
	if first.RefreshToken == "" || first.ExpiresAt.IsZero() {
		t.Fatalf("install without rotation: %v", first)
	}
	// The token has 5 minutes left: inside the 10 minutes ahead of expiry when it is
	// refreshed, still valid at Slack (the worker's clock is the real one).
	first.ExpiresAt = time.Now().Add(5 * time.Minute)
	if _, err := w.store.Save(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.mention("EvAfter"+strconv.Itoa(i), "T0002", "", false, "C2", "17000002"+strconv.Itoa(10+i)+".000100")
		}()
	}
	wg.Wait()
	w.drain(60 * time.Second)
	if got := w.slack.Refreshes("T0002"); got != 1 {
		t.Errorf("%d refreshes, want 1", got)
	}
	if got := len(w.answersInChannel("C2")); got != n {
		t.Errorf("%d answers, want %d", got, n)
	}
	if dead := w.deadLetters(); len(dead) != 0 {
		t.Errorf("dead letters: %v", dead)
	}
	for _, bad := range []string{"invalid_auth", "token_expired"} {
		if strings.Contains(w.logs.String(), bad) {
			t.Errorf("the worker met %s", bad)
		}
	}
	after, err := w.store.Get(context.Background(), install.TeamKey("T0002"))
	if err != nil || after.BotToken == first.BotToken || !after.ExpiresAt.After(time.Now().Add(11*time.Hour)) {
		t.Errorf("after the refresh: %v, %v; want a new token valid for about 12 hours", after, err)
	}
}

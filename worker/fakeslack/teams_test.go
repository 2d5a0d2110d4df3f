package fakeslack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

const (
	tokB = "xoxb-team-b"
	tokC = "xoxb-team-c"
)

// newTeams starts a server with the default workspace T0001 (testToken), T0002 (tokB,
// channel CB), and an org E0001 with T0003 (tokC, channel CC) and T0004 (not installed,
// channel CD).
func newTeams(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	opts.Workspaces = append(opts.Workspaces,
		Workspace{ID: "T0002", Name: "beta", Token: tokB, Channels: []string{"CB"}},
		Workspace{ID: "T0003", Name: "gamma", EnterpriseID: "E0001", EnterpriseName: "acme", Token: tokC, Channels: []string{"CC"}},
		Workspace{ID: "T0004", Name: "delta", EnterpriseID: "E0001", Channels: []string{"CD"}},
	)
	return newTest(t, opts)
}

// errCode is the Slack error code in err, or err's text when it is no Slack answer.
func errCode(err error) string {
	if code := slackErrCode(err); code != "" {
		return code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestAuthTestAnswersTheTokensTeam(t *testing.T) {
	s, _ := newTeams(t, Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		token, team, user, bot, enterprise string
	}{
		{testToken, "T0001", "UBOT", "BBOT", ""},
		{tokB, "T0002", "UB0002", "BB0002", ""},
		{tokC, "T0003", "UB0003", "BB0003", "E0001"},
	} {
		got, err := slack.New(tc.token, slack.OptionAPIURL(s.APIURL())).AuthTestContext(ctx)
		if err != nil {
			t.Fatalf("auth.test with %s: %v", tc.token, err)
		}
		if got.TeamID != tc.team || got.UserID != tc.user || got.BotID != tc.bot || got.EnterpriseID != tc.enterprise {
			t.Errorf("auth.test with %s = team %s user %s bot %s enterprise %s, want %s %s %s %s",
				tc.token, got.TeamID, got.UserID, got.BotID, got.EnterpriseID, tc.team, tc.user, tc.bot, tc.enterprise)
		}
	}
	for tok, want := range map[string]string{"xoxb-unknown": "invalid_auth", "": "not_authed"} {
		_, err := slack.New(tok, slack.OptionAPIURL(s.APIURL())).AuthTestContext(ctx)
		if got := errCode(err); got != want {
			t.Errorf("auth.test with %q: %q, want %s", tok, got, want)
		}
	}
}

func TestTokenSeesOnlyItsWorkspacesChannels(t *testing.T) {
	s, _ := newTeams(t, Options{})
	ctx := context.Background()
	a := slack.New(testToken, slack.OptionAPIURL(s.APIURL()))
	b := slack.New(tokB, slack.OptionAPIURL(s.APIURL()))
	// CA is declared by no one: the first workspace to use it has it.
	if _, _, err := a.PostMessageContext(ctx, "CA", slack.MsgOptionText("hi A", false)); err != nil {
		t.Fatalf("A posting in CA: %v", err)
	}
	if got := s.ChannelTeam("CA"); got != "T0001" {
		t.Fatalf("CA belongs to %q, want T0001", got)
	}
	if _, _, err := b.PostMessageContext(ctx, "CB", slack.MsgOptionText("hi B", false)); err != nil {
		t.Fatalf("B posting in CB: %v", err)
	}
	ts, err := s.AddUserMessage(UserMessage{Channel: "CB", User: "U2", Text: "secret of B", Team: "T0002"})
	if err != nil {
		t.Fatal(err)
	}
	cross := []struct {
		name string
		call func() error
	}{
		{"B posts in A's CA", func() error {
			_, _, err := b.PostMessageContext(ctx, "CA", slack.MsgOptionText("x", false))
			return err
		}},
		{"A posts in B's CB", func() error {
			_, _, err := a.PostMessageContext(ctx, "CB", slack.MsgOptionText("x", false))
			return err
		}},
		{"A reads B's thread", func() error {
			_, _, _, err := a.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: "CB", Timestamp: ts})
			return err
		}},
		{"A reads B's history", func() error {
			_, err := a.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "CB"})
			return err
		}},
		{"A reacts in CB", func() error { return a.AddReactionContext(ctx, "eyes", slack.NewRefToMessage("CB", ts)) }},
		{"B sets a status in CA", func() error {
			return b.SetAssistantThreadsStatusContext(ctx, slack.AssistantThreadsSetStatusParameters{ChannelID: "CA", ThreadTS: ts, Status: "x"})
		}},
	}
	for _, c := range cross {
		if got := errCode(c.call()); got != "channel_not_found" {
			t.Errorf("%s: %q, want channel_not_found", c.name, got)
		}
	}
	if ps := s.PostsFor("CB"); len(ps) != 1 || ps[0].Team != "T0002" {
		t.Errorf("CB has posts %+v, want only B's, in T0002", ps)
	}
	hist, err := b.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "CB"})
	if err != nil {
		t.Fatal(err)
	}
	var bots []string
	for _, m := range hist.Messages {
		if m.BotID != "" {
			bots = append(bots, m.User+"/"+m.BotID)
		}
	}
	if got := strings.Join(bots, ","); got != "UB0002/BB0002" {
		t.Errorf("B's bot message in CB is by %q, want UB0002/BB0002 (T0002's bot)", got)
	}
	msgs, _, _, err := b.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: "CB", Timestamp: ts})
	if err != nil || len(msgs) != 1 || msgs[0].Text != "secret of B" {
		t.Errorf("B reading its own thread: %v %+v", err, msgs)
	}
	if _, err := s.AddUserMessage(UserMessage{Channel: "CB", User: "U1", Text: "x", Team: "T0001"}); err == nil {
		t.Error("seeding a message of T0001 in T0002's CB worked")
	}
}

func TestAddWorkspaceRefusesClashes(t *testing.T) {
	s, _ := newTeams(t, Options{})
	for _, w := range []Workspace{
		{ID: "T0002"},
		{ID: "X1"},
		{ID: "T0009", EnterpriseID: "X"},
		{ID: "T0009", Token: tokB},
		{ID: "T0009", Channels: []string{"CB"}},
	} {
		if err := s.AddWorkspace(w); err == nil {
			t.Errorf("AddWorkspace(%+v) worked", w)
		}
	}
	if err := s.AddWorkspace(Workspace{ID: "T0009", Token: "xoxb-9"}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.TokenOwner("xoxb-9"); err != nil || c.Team != "T0009" || c.TeamName != "t0009" {
		t.Errorf("TokenOwner(xoxb-9) = %+v, %v", c, err)
	}
	if _, err := New(Options{Workspaces: []Workspace{{ID: "bad"}}}).Start(""); err == nil || !strings.Contains(err.Error(), "bad") {
		t.Errorf("Start with a bad workspace: %v", err)
	}
}

func TestWorkspacesControlAPI(t *testing.T) {
	s, base := newTeams(t, Options{})
	ctx := context.Background()
	c := &Client{BaseURL: base}
	if err := c.AddWorkspace(ctx, Workspace{ID: "T0010", Token: "xoxb-10", Channels: []string{"C10"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddWorkspace(ctx, Workspace{ID: "T0010"}); err == nil {
		t.Error("adding T0010 twice worked")
	}
	ws, err := c.Workspaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	if got := strings.Join(ids, ","); got != "T0001,T0002,T0003,T0004,T0010" {
		t.Errorf("workspaces %s", got)
	}
	before := s.opts.Now()
	if err := c.Advance(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if d := s.opts.Now().Sub(before); d < time.Hour || d > time.Hour+time.Minute {
		t.Errorf("clock moved %v, want 1h", d)
	}
	if err := c.Uninstall(ctx, "T0010"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenOwner("xoxb-10"); errCode(err) != "token_revoked" {
		t.Errorf("token after uninstall: %v, want token_revoked", err)
	}
	if n, err := c.Refreshes(ctx, "T0002"); err != nil || n != 0 {
		t.Errorf("Refreshes = %d, %v", n, err)
	}
}

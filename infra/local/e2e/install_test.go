package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
)

// An app distributed to many workspaces, through the real binaries: a workspace installs it
// with the receiver's pages (the local Slack's consent page, rotating tokens) and its first
// mention is answered with its own token, while the workspace installed before goes on being
// answered with its own; a replayed state is refused; an uninstalled workspace gets nothing,
// and nothing of the other's is lost.
func TestInstallThenFirstAnswerInTheNewWorkspace(t *testing.T) {
	localawstest.Require(t, stackErr)
	var logs logbuf.Buffer
	s, err := devworld.Start(context.Background(), devworld.Options{
		Bins: bins, DemoDelay: demoDelay, DemoTokensPerSecond: 1000, HandlerTimeout: 4 * time.Second,
		MaxReceiveCount: 2, BackoffBase: time.Second, LogOut: &logs,
		ManyWorkspaces: true, TokenRotation: true,
		Workspaces: []fakeslack.Workspace{{ID: "T0002", Name: "acme", Channels: []string{"CACME"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	logsOnFailure(t, &logs, 20000)
	ctx := context.Background()
	// The default workspace installed earlier.
	if err := s.Install(ctx, fakeslack.Workspace{ID: "T0001", Token: devworld.LocalBotToken}); err != nil {
		t.Fatal(err)
	}

	// Before acme installs: its mention is dead-lettered as not_installed, unanswered.
	early, earlyTS := event()
	if r := mention(t, s, fixture.InTeam(fixture.AppMention(early, "CACME", earlyTS, "are you there?"), "T0002", "", false)); r.Status != 202 {
		t.Fatalf("receiver answered %d", r.Status)
	}

	done, browser, err := s.InstallThroughPages(ctx, "T0002", true)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != 200 || !strings.Contains(done.Body, "slackrelay is installed in acme") {
		t.Fatalf("success page: %d at %s\n%s", done.Status, done.URL, done.Body)
	}
	// The same redirect again (a reload, a stolen link): refused, nothing stored twice.
	again, err := devworld.OpenPage(ctx, browser, done.URL.String())
	if err != nil {
		t.Fatal(err)
	}
	if again.Status != 403 && again.Status != 400 {
		t.Errorf("a replayed redirect answered %d, want it refused:\n%s", again.Status, again.Body)
	}

	id, ts := event()
	text := "what does acme's bot say?"
	if r := mention(t, s, fixture.InTeam(fixture.AppMention(id, "CACME", ts, text), "T0002", "", false)); r.Status != 202 {
		t.Fatalf("receiver answered %d", r.Status)
	}
	oldID, oldTS := event()
	if r := mention(t, s, fixture.AppMention(oldID, "C1", oldTS, "and the first workspace?")); r.Status != 202 {
		t.Fatalf("receiver answered %d", r.Status)
	}
	settle(t, s, "CACME", ts, answerTo(t, text), 30*time.Second)
	settle(t, s, "C1", oldTS, answerTo(t, "and the first workspace?"), 30*time.Second)
	for ch, bot := range map[string]string{"CACME": "UB0002", "C1": s.Slack.Workspaces()[0].BotUserID} {
		for _, m := range s.Slack.Messages(ch) {
			if m.Bot && m.User != bot {
				t.Errorf("a message in %s posted as %s, not its workspace's bot %s", ch, m.User, bot)
			}
		}
	}
	if n := len(botMessages(s, "CACME", earlyTS)); n != 0 {
		t.Errorf("the mention sent before the install was answered (%d bot messages)", n)
	}

	// acme uninstalls: Slack revokes its tokens and sends app_uninstalled.
	s.Slack.Uninstall("T0002")
	uninstall := `{"type":"event_callback","team_id":"T0002","api_app_id":"` + fakeslack.DefaultAppID + `","event_id":"EvUninstall` + ts +
		`","event_time":` + strings.Split(ts, ".")[0] + `9,"event":{"type":"app_uninstalled","event_ts":"` + ts + `"}}`
	if r := mention(t, s, fixture.InTeam(uninstall, "T0002", "", false)); r.Status != 202 {
		t.Fatalf("receiver answered %d", r.Status)
	}
	if err := devworld.WaitFor(20*time.Second, func() bool { return depth(t, s, s.Local.QueueURL) == 0 }); err != nil {
		t.Fatal(err)
	}
	lateID, lateTS := event()
	mention(t, s, fixture.InTeam(fixture.AppMention(lateID, "CACME", lateTS, "still there?"), "T0002", "", false))
	otherID, otherTS := event()
	mention(t, s, fixture.AppMention(otherID, "C1", otherTS, "and you?"))
	settle(t, s, "C1", otherTS, answerTo(t, "and you?"), 30*time.Second)
	if n := len(botMessages(s, "CACME", lateTS)); n != 0 {
		t.Errorf("the uninstalled workspace was answered (%d bot messages)", n)
	}
	if err := devworld.WaitFor(30*time.Second, func() bool { return depth(t, s, s.Local.QueueURL) == 0 }); err != nil {
		t.Fatal(err)
	}
	classes := awstest.DeadLetterClasses(t, s.Local.SQS(), s.Local.DLQURL)
	if classes[early] != envelope.FailureClassNotInstalled || classes[lateID] != envelope.FailureClassNotInstalled || len(classes) != 2 {
		t.Errorf("dead letters %v, want the mentions before the install and after the uninstall, as not_installed", classes)
	}
}

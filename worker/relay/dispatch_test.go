package relay

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/slackrelay/slackrelay/worker/internal/core"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// envelopeFor wraps a testdata payload as the receiver would.
func envelopeFor(t *testing.T, name string) *envelope.Envelope {
	t.Helper()
	body := readTestdata(t, name)
	switch {
	case strings.HasPrefix(name, "event_"):
		return &envelope.Envelope{Version: 1, ID: "e1", Kind: envelope.KindEvent, ContentType: envelope.ContentTypeJSON, Body: body}
	case strings.HasPrefix(name, "slash_"):
		return &envelope.Envelope{Version: 1, ID: "e1", Kind: envelope.KindSlashCommand, ContentType: envelope.ContentTypeForm, Body: body}
	default:
		form := url.Values{"payload": {body}}.Encode()
		return &envelope.Envelope{Version: 1, ID: "e1", Kind: envelope.KindInteraction, ContentType: envelope.ContentTypeForm, Body: form}
	}
}

func noop[T any](context.Context, *Request[T]) error { return nil }

// shippedLike registers routes the way the shipped bot does: mentions, DMs (channel messages
// declined), /ask, a button, a modal and a reaction.
func shippedLike() *Router {
	b := NewRouter()
	Event(b, "app_mention", noop[slackevents.AppMentionEvent], Name("reply"))
	Event(b, "message", noop[slackevents.MessageEvent], Name("reply"), Skip(func(_ context.Context, ev *slackevents.MessageEvent) string {
		if ev.ChannelType != "im" {
			return "not a direct message"
		}
		return ""
	}))
	Event(b, "reaction_added", noop[slackevents.ReactionAddedEvent])
	Command(b, "/ask", noop[slack.SlashCommand])
	Action(b, "slackrelay_regenerate", noop[slack.InteractionCallback])
	ViewSubmission(b, "slackrelay_ask", noop[slack.InteractionCallback])
	ViewClosed(b, "slackrelay_ask", noop[slack.InteractionCallback])
	Shortcut(b, "summarise_day", noop[slack.InteractionCallback])
	MessageShortcut(b, "explain_message", noop[slack.InteractionCallback])
	return b
}

var testServices = &core.Services{
	Identity: func(context.Context, core.Tenant) (core.Identity, error) {
		return core.Identity{UserID: "UBOT", BotID: "BBOT"}, nil
	},
}

func TestDispatchDecidesBeforeClaiming(t *testing.T) {
	t.Parallel()
	b := shippedLike()
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file      string
		wantType  string
		wantRoute string
		wantKey   string
		wantSkip  string
	}{
		{"event_app_mention.json", "app_mention", "reply", "msg:T0001:C0CHAN:1515449522.000016", ""},
		// The mention's message twin: same key, declined by the DM route without a claim.
		{"event_message_channel.json", "message", "reply", "msg:T0001:C0CHAN:1515449522.000016", "not a direct message"},
		{"event_message_im.json", "message", "reply", "msg:T0001:D0DM:1515449600.000100", ""},
		{"event_message_bot.json", "message", "reply", "msg:T0001:D0DM:1515449700.000100", "message subtype bot_message"},
		{"event_message_self.json", "message", "reply", "msg:T0001:D0DM:1515449601.000200", "message from a bot"},
		{"event_message_changed.json", "message", "reply", "msg:T0001:D0DM:1515449800.000200", "message subtype message_changed"},
		{"event_reaction_added.json", "reaction_added", "reaction_added", "evt:Ev0REACT", ""},
		{"slash_ask.form", "/ask", "/ask", "cmd:T0001:13345224609.738474920.8088930838d88f008e0", ""},
		{"interaction_block_actions.json", "block_actions:slackrelay_regenerate", "block_actions:slackrelay_regenerate", "act:T0001:U0USER:1548426417.840180", ""},
		{"interaction_view_submission.json", "view_submission:slackrelay_ask", "view_submission:slackrelay_ask", "int:T0001:12466734323.1395872398.93f7c2ce3ebb8d8a5eb3d4a1a1e1a2b3", ""},
		// view_closed carries no trigger: keyed by a digest of the body.
		{"interaction_view_closed.json", "view_closed:slackrelay_ask", "view_closed:slackrelay_ask", "", ""},
		{"interaction_shortcut.json", "shortcut:summarise_day", "shortcut:summarise_day", "int:T0001:944799105734.773906753841.38b5894552bdd4a780554ee59d1f3638", ""},
		{"interaction_message_action.json", "message_action:explain_message", "message_action:explain_message", "int:T0001:944799105734.773906753841.38b5894552bdd4a780554ee59d1f3639", ""},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			d, err := b.Dispatch(context.Background(), testServices, envelopeFor(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantKey == "" && strings.HasPrefix(d.Key, "int:T0001:sha256-") {
				tc.wantKey = d.Key // a digest: checked for its form only
			}
			if d.Type != tc.wantType || d.Route != tc.wantRoute || d.Key != tc.wantKey || d.Skip != tc.wantSkip {
				t.Errorf("got type=%q route=%q key=%q skip=%q\nwant type=%q route=%q key=%q skip=%q",
					d.Type, d.Route, d.Key, d.Skip, tc.wantType, tc.wantRoute, tc.wantKey, tc.wantSkip)
			}
		})
	}
}

func TestDispatchSelfAndOtherBots(t *testing.T) {
	t.Parallel()
	b := NewRouter()
	Event(b, "message", noop[slackevents.MessageEvent], AllowBotMessages(), AllowSubtypes("bot_message"))
	for file, want := range map[string]string{
		"event_message_self.json": "message from the bot itself",
		"event_message_bot.json":  "",
		"event_message_im.json":   "",
	} {
		d, err := b.Dispatch(context.Background(), testServices, envelopeFor(t, file))
		if err != nil {
			t.Fatal(err)
		}
		if d.Skip != want {
			t.Errorf("%s with bots allowed: skip = %q, want %q", file, d.Skip, want)
		}
	}
	// The identity lookup failing is transient, never a reason to drop or dead-letter.
	failing := &core.Services{Identity: func(context.Context, core.Tenant) (core.Identity, error) {
		return core.Identity{}, errors.New("auth.test: timeout")
	}}
	_, err := b.Dispatch(context.Background(), failing, envelopeFor(t, "event_message_im.json"))
	if c, _ := failure.Classify(err); err == nil || c != failure.Transient {
		t.Errorf("identity lookup failure: err=%v class=%v, want a transient error", err, c)
	}
}

func TestDispatchUnroutedAndMalformed(t *testing.T) {
	t.Parallel()
	b := shippedLike()
	d, err := b.Dispatch(context.Background(), testServices, &envelope.Envelope{Kind: envelope.KindEvent,
		Body: `{"type":"event_callback","team_id":"T1","event_id":"Ev9","event":{"type":"team_join","user":{"id":"U2"}}}`})
	if err != nil || d.Route != "" || d.Type != "team_join" {
		t.Errorf("unrouted event: got route=%q type=%q err=%v, want no route, type team_join", d.Route, d.Type, err)
	}
	for name, env := range map[string]*envelope.Envelope{
		"not json":          {Kind: envelope.KindEvent, Body: `{"type":`},
		"callback no event": {Kind: envelope.KindEvent, Body: `{"type":"event_callback","event_id":"Ev1"}`},
		"bad inner":         {Kind: envelope.KindEvent, Body: `{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention","text":7}}`},
		"no payload":        {Kind: envelope.KindInteraction, Body: `foo=bar`},
		"no command":        {Kind: envelope.KindSlashCommand, Body: `text=hi`},
	} {
		_, err := b.Dispatch(context.Background(), testServices, env)
		if c, _ := failure.Classify(err); err == nil || c != failure.Permanent {
			t.Errorf("%s: err=%v class=%v, want a permanent error", name, err, c)
		}
	}
}

func TestRegistrationMistakesStopStartUp(t *testing.T) {
	t.Parallel()
	b := NewRouter()
	Event(b, "app_mention", noop[slackevents.AppMentionEvent])
	Event(b, "app_mention", noop[slackevents.AppMentionEvent], Name("second"))
	Command(b, "ask", noop[slack.SlashCommand])
	Action(b, "", noop[slack.InteractionCallback])
	Event(b, "message", noop[slackevents.MessageEvent], Skip(func(context.Context, *slackevents.AppMentionEvent) string { return "" }))
	Event[json.RawMessage](b, "team_join", nil)
	err := b.Err()
	for _, want := range []string{"app_mention registered twice", `"ask" must start with /`, "needs an action or callback id",
		"an option expects payload slackevents.AppMentionEvent", "nil handler"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("registration error %v does not say %q", err, want)
		}
	}
}

func TestDedupeByOverridesTheKey(t *testing.T) {
	t.Parallel()
	b := NewRouter()
	Event(b, "reaction_added", noop[slackevents.ReactionAddedEvent], DedupeBy(func(ev *slackevents.ReactionAddedEvent) string {
		return "reaction:" + ev.Item.Channel + ":" + ev.Item.Timestamp + ":" + ev.Reaction
	}))
	d, err := b.Dispatch(context.Background(), testServices, envelopeFor(t, "event_reaction_added.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "by:T0001:reaction:C0CHAN:1515449522.000016:tada"; d.Key != want {
		t.Errorf("key = %q, want %q", d.Key, want)
	}
}

// TestOneReading: the dedupe key, the skip decision and the reply target come from the one
// decoding of the body the handler itself gets, whatever duplicate, mixed-case, escaped or
// Unicode-folded keys the body holds (the bodies the receiver's test feeds it too).
func TestOneReading(t *testing.T) {
	t.Parallel()
	b := shippedLike()
	files, err := filepath.Glob(filepath.Join("testdata", "readings", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bodies in testdata/readings: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			env := &envelope.Envelope{Kind: envelope.KindEvent, Body: strings.TrimSpace(string(body))}
			d, err := b.dispatch(context.Background(), testServices, env)
			if err != nil {
				t.Fatal(err)
			}
			var channel, ts, thread string
			switch p := d.payload.(type) {
			case *slackevents.AppMentionEvent:
				channel, ts, thread = p.Channel, p.TimeStamp, p.ThreadTimeStamp
			case *slackevents.MessageEvent:
				channel, ts, thread = p.Channel, p.TimeStamp, p.ThreadTimeStamp
			default:
				return // other routes: keyed by event id, nothing to reply to
			}
			if d.about.channel != channel || d.about.ts != ts || d.about.threadTS != thread {
				t.Errorf("reply target %s/%s (thread %q), payload %s/%s (thread %q): two readings",
					d.about.channel, d.about.ts, d.about.threadTS, channel, ts, thread)
			}
			if channel != "" && ts != "" && !strings.HasSuffix(d.Key, ":"+channel+":"+ts) {
				t.Errorf("dedupe key %q is not built from the payload's channel %q and ts %q", d.Key, channel, ts)
			}
		})
	}
}

// A key of the bot's own making is scoped to the workspace: the same key in two workspaces is
// two events.
func TestDedupeByKeysAreScopedToTheWorkspace(t *testing.T) {
	t.Parallel()
	b := NewRouter()
	Event(b, "reaction_added", noop[slackevents.ReactionAddedEvent], DedupeBy(func(ev *slackevents.ReactionAddedEvent) string {
		return "user:" + ev.User
	}))
	keys := map[string]bool{}
	for _, team := range []string{"T0001", "T0002"} {
		env := envelopeFor(t, "event_reaction_added.json")
		env.Body = strings.ReplaceAll(env.Body, `"team_id": "T0001"`, `"team_id": "`+team+`"`)
		env.Body = strings.ReplaceAll(env.Body, `"team_id":"T0001"`, `"team_id":"`+team+`"`)
		d, err := b.Dispatch(context.Background(), testServices, env)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(d.Key, "by:"+team+":user:") {
			t.Errorf("key %q in %s, want it scoped to the workspace", d.Key, team)
		}
		keys[d.Key] = true
	}
	if len(keys) != 2 {
		t.Errorf("keys %v, want two", keys)
	}
}

// The tenant whose token answers: the event's first authorization (on Grid and in Slack
// Connect channels it is the install Slack delivered to, not the writer's team), else its
// context team, else its team_id; a command's and an interaction's team and org fields.
func TestDispatchFindsTheTenant(t *testing.T) {
	t.Parallel()
	b := shippedLike()
	ev := func(extra string) *envelope.Envelope {
		body := `{"type":"event_callback","team_id":"T0001","enterprise_id":"E0001","event_id":"Ev1",` + extra +
			`"event":{"type":"reaction_added","user":"U1","reaction":"eyes","item":{"type":"message","channel":"C1","ts":"1.2"}}}`
		return &envelope.Envelope{Version: 1, ID: "e1", Kind: envelope.KindEvent, ContentType: envelope.ContentTypeJSON, Body: body}
	}
	cases := []struct {
		name string
		env  *envelope.Envelope
		want core.Tenant
	}{
		{"workspace authorization", ev(`"authorizations":[{"enterprise_id":"E0001","team_id":"T0002","is_enterprise_install":false}],`),
			core.Tenant{Team: "T0002", Enterprise: "E0001"}},
		{"org-wide authorization", ev(`"authorizations":[{"enterprise_id":"E0001","team_id":null,"is_enterprise_install":true}],`),
			core.Tenant{Enterprise: "E0001", EnterpriseInstall: true}},
		{"context team", ev(`"context_team_id":"T0003","context_enterprise_id":"E0009",`), core.Tenant{Team: "T0003", Enterprise: "E0009"}},
		{"team_id alone", ev(``), core.Tenant{Team: "T0001", Enterprise: "E0001"}},
		{"slash command", &envelope.Envelope{Version: 1, ID: "e1", Kind: envelope.KindSlashCommand, ContentType: envelope.ContentTypeForm,
			Body: "command=%2Fask&team_id=T0004&enterprise_id=E0002&is_enterprise_install=true&user_id=U1&channel_id=C1&trigger_id=1.2.3"},
			core.Tenant{Team: "T0004", Enterprise: "E0002", EnterpriseInstall: true}},
		{"interaction", &envelope.Envelope{Version: 1, ID: "e1", Kind: envelope.KindInteraction, ContentType: envelope.ContentTypeForm,
			Body: url.Values{"payload": {`{"type":"shortcut","callback_id":"summarise_day","trigger_id":"1.2.3","team":{"id":"T0005","enterprise_id":"E0003"},"user":{"id":"U1"}}`}}.Encode()},
			core.Tenant{Team: "T0005", Enterprise: "E0003"}},
	}
	for _, tc := range cases {
		d, err := b.Dispatch(context.Background(), testServices, tc.env)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if d.Tenant != tc.want {
			t.Errorf("%s: tenant %+v, want %+v", tc.name, d.Tenant, tc.want)
		}
	}
}

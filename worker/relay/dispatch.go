package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/internal/core"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// delivery is one envelope decoded once and decided before any claim (see core.Delivery).
type delivery struct {
	core.Delivery

	env     *envelope.Envelope
	route   *route
	payload any
	about   about
}

// about is what the framework itself needs from a payload: where to reply, whom it is from.
type about struct {
	tenant                 core.Tenant
	team, user, eventID    string
	channel, ts, threadTS  string
	botID, subtype         string
	messageLike            bool
	responseURL, triggerID string
}

// threadTS is where a reply goes: the thread the message is in, else a new thread under it.
func (a about) replyThread() string {
	if a.threadTS != "" {
		return a.threadTS
	}
	return a.ts
}

// Dispatch is the engine's entry into the routes (package engine calls it for each queue
// message; bot code does not): it decodes env's body once and decides which route runs it,
// under which dedupe key, or why none does. A body that cannot be decoded is a permanent
// error; a failed lookup of the bot's identity is transient.
func (r *Router) Dispatch(ctx context.Context, rt *core.Services, env *envelope.Envelope) (*core.Delivery, error) {
	d, err := r.dispatch(ctx, rt, env)
	if err != nil {
		return nil, err
	}
	if d.route != nil {
		d.Run = func(ctx context.Context, lease core.Lease, log *slog.Logger) error { return d.run(ctx, rt, lease, log) }
	}
	return &d.Delivery, nil
}

func (b *Router) dispatch(ctx context.Context, rt *core.Services, env *envelope.Envelope) (*delivery, error) {
	d := &delivery{env: env}
	var key routeKey
	var err error
	switch env.Kind {
	case envelope.KindEvent:
		key, err = d.decodeEvent(b)
	case envelope.KindSlashCommand:
		key, err = d.decodeCommand()
	case envelope.KindInteraction:
		key, err = d.decodeInteraction()
	default:
		err = fmt.Errorf("unknown kind %q", env.Kind)
	}
	if err != nil {
		return nil, failure.Permanentf("decode %s body: %w", env.Kind, err)
	}
	d.Type = key.String()
	r, ok := b.routes[key]
	if !ok {
		return d, nil
	}
	d.route, d.Route, d.Tenant = r, r.name, d.about.tenant
	if r.decode != nil {
		raw := d.payload.(json.RawMessage)
		if d.payload, err = r.decode(raw); err != nil {
			return nil, failure.AsPermanent(err)
		}
		d.about.fromEvent(d.payload, raw)
	}
	if d.Skip, err = d.skipReason(ctx, rt); err != nil {
		return nil, err
	}
	if r.opts.key != nil {
		if k := r.opts.key(d.payload); k != "" {
			// A key of the bot's own making is scoped to the workspace, as every key is: the
			// same key in two workspaces (a user id shared across an Enterprise Grid org, a
			// channel's Slack Connect twin) names two events, never one.
			d.Key = "by:" + d.about.team + ":" + k
		}
	}
	if d.Key == "" {
		d.Key = d.defaultKey(key)
	}
	return d, nil
}

func (d *delivery) decodeEvent(b *Router) (routeKey, error) {
	var outer callbackEvent
	if err := json.Unmarshal([]byte(d.env.Body), &outer); err != nil {
		return routeKey{}, err
	}
	if outer.Type != slackevents.CallbackEvent {
		// Other top-level types (url_verification, app_rate_limited) are answered by the
		// receiver; one that reaches the worker is not routable.
		return routeKey{kind: envelope.KindEvent, typ: outer.Type}, nil
	}
	if outer.InnerEvent == nil {
		return routeKey{}, fmt.Errorf("event_callback %s without event", outer.EventID)
	}
	var inner struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(*outer.InnerEvent, &inner); err != nil {
		return routeKey{}, err
	}
	d.payload = *outer.InnerEvent
	d.about.team, d.about.eventID = outer.TeamID, outer.EventID
	d.about.tenant = outer.tenant()
	return routeKey{kind: envelope.KindEvent, typ: inner.Type}, nil
}

// callbackEvent is the Events API envelope with the context ids slack-go's type leaves out.
type callbackEvent struct {
	slackevents.EventsAPICallbackEvent
	ContextTeamID       string `json:"context_team_id"`
	ContextEnterpriseID string `json:"context_enterprise_id"`
}

// tenant is the installation the event was delivered for: the first of its authorizations
// (the install Slack delivered it to: on Grid and in Slack Connect channels it is not always
// the team_id's workspace), else its context team and enterprise, else its team_id and
// enterprise_id.
func (e *callbackEvent) tenant() core.Tenant {
	if len(e.Authorizations) > 0 {
		a := e.Authorizations[0]
		if a.TeamID != "" || a.EnterpriseID != "" {
			return core.Tenant{Team: a.TeamID, Enterprise: a.EnterpriseID, EnterpriseInstall: a.IsEnterpriseInstall}
		}
	}
	t := core.Tenant{Team: e.ContextTeamID, Enterprise: e.ContextEnterpriseID}
	if t.Team == "" {
		t.Team = e.TeamID
	}
	if t.Enterprise == "" {
		t.Enterprise = e.EnterpriseID
	}
	return t
}

func (d *delivery) decodeCommand() (routeKey, error) {
	req, err := http.NewRequest(http.MethodPost, "/", strings.NewReader(d.env.Body))
	if err != nil {
		return routeKey{}, err
	}
	req.Header.Set("Content-Type", envelope.ContentTypeForm)
	cmd, err := slack.SlashCommandParse(req)
	if err != nil {
		return routeKey{}, err
	}
	if cmd.Command == "" {
		return routeKey{}, fmt.Errorf("slash command without command")
	}
	d.payload = &cmd
	d.about = about{team: cmd.TeamID, user: cmd.UserID, channel: cmd.ChannelID, responseURL: cmd.ResponseURL, triggerID: cmd.TriggerID,
		tenant: core.Tenant{Team: cmd.TeamID, Enterprise: cmd.EnterpriseID, EnterpriseInstall: cmd.IsEnterpriseInstall}}
	return routeKey{kind: envelope.KindSlashCommand, typ: cmd.Command}, nil
}

func (d *delivery) decodeInteraction() (routeKey, error) {
	form, err := url.ParseQuery(d.env.Body)
	if err != nil {
		return routeKey{}, err
	}
	raw := form.Get("payload")
	if raw == "" {
		return routeKey{}, fmt.Errorf("interactivity request without payload")
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(raw), &cb); err != nil {
		return routeKey{}, err
	}
	d.payload = &cb
	d.about = about{team: cb.Team.ID, user: cb.User.ID, channel: cb.Channel.ID, responseURL: cb.ResponseURL, triggerID: cb.TriggerID,
		tenant: core.Tenant{Team: cb.Team.ID, Enterprise: cb.Enterprise.ID, EnterpriseInstall: cb.IsEnterpriseInstall}}
	if d.about.tenant.Enterprise == "" {
		d.about.tenant.Enterprise = cb.Team.EnterpriseID
	}
	if d.about.channel == "" {
		d.about.channel = cb.Container.ChannelID
	}
	// A click on a message: replies go to the message's thread.
	d.about.ts, d.about.threadTS = cb.Message.Timestamp, cb.Message.ThreadTimestamp
	if d.about.ts == "" {
		d.about.ts = cb.Container.MessageTs
	}
	key := routeKey{kind: envelope.KindInteraction, typ: string(cb.Type)}
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		if len(cb.ActionCallback.BlockActions) > 0 {
			key.id = cb.ActionCallback.BlockActions[0].ActionID
		}
	case slack.InteractionTypeViewSubmission, slack.InteractionTypeViewClosed:
		key.id = cb.View.CallbackID
		// A modal opened with KeepOpen carries the receiver's marker; the handler sees only
		// its own metadata.
		cb.View.PrivateMetadata = strings.TrimPrefix(cb.View.PrivateMetadata, envelope.WorkingViewPrefix)
	default:
		key.id = cb.CallbackID
	}
	if len(cb.ResponseURLs) > 0 && d.about.responseURL == "" {
		d.about.responseURL = cb.ResponseURLs[0].ResponseURL
	}
	return key, nil
}

// fromEvent takes the reply target and author from the payload the handler will see, so the
// key, the skip decision and the reply all come from one reading of the body.
func (a *about) fromEvent(payload any, raw json.RawMessage) {
	switch p := payload.(type) {
	case *slackevents.AppMentionEvent:
		a.channel, a.ts, a.threadTS, a.user, a.botID = p.Channel, p.TimeStamp, p.ThreadTimeStamp, p.User, p.BotID
		a.messageLike = true
	case *slackevents.MessageEvent:
		a.channel, a.ts, a.threadTS, a.user, a.botID, a.subtype = p.Channel, p.TimeStamp, p.ThreadTimeStamp, p.User, p.BotID, p.SubType
		a.messageLike = true
	case *slackevents.ReactionAddedEvent:
		a.channel, a.ts, a.user = p.Item.Channel, p.Item.Timestamp, p.User
	default:
		// Types the framework does not know: take the common fields if they are there.
		var common struct {
			Channel  json.RawMessage `json:"channel"`
			TS       string          `json:"ts"`
			ThreadTS string          `json:"thread_ts"`
			User     json.RawMessage `json:"user"`
		}
		if json.Unmarshal(raw, &common) == nil {
			var s string
			if json.Unmarshal(common.Channel, &s) == nil {
				a.channel = s
			}
			if json.Unmarshal(common.User, &s) == nil {
				a.user = s
			}
			a.ts, a.threadTS = common.TS, common.ThreadTS
		}
	}
}

func (d *delivery) skipReason(ctx context.Context, rt *core.Services) (string, error) {
	a, opts := d.about, d.route.opts
	if a.messageLike {
		if a.subtype != "" && !opts.allowSubtypes[a.subtype] {
			return "message subtype " + a.subtype, nil
		}
		if a.botID != "" && !opts.allowBots {
			return "message from a bot", nil
		}
		if (opts.allowBots || a.botID == "") && rt != nil && rt.Identity != nil {
			id, err := rt.Identity(ctx, a.tenant)
			if err != nil {
				return "", failure.Retryable(fmt.Errorf("look up the bot's own ids: %w", err))
			}
			if (a.user != "" && a.user == id.UserID) || (a.botID != "" && a.botID == id.BotID) {
				return "message from the bot itself", nil
			}
		}
	}
	for _, skip := range opts.skips {
		if why := skip(ctx, d.payload); why != "" {
			return why, nil
		}
	}
	return "", nil
}

// Dedupe key prefixes.
const (
	keyMessage = "msg:" // one user message: app_mention and its message twin share it
	keyEvent   = "evt:"
	keyCommand = "cmd:"
	keyAction  = "act:" // one click: action_ts + user
	keyOther   = "int:"
)

// defaultKey is the route kind's dedupe policy: event_id for events, except that app_mention
// and message events about one message share (team, channel, ts); the trigger for slash
// commands, views and shortcuts; the click (action_ts + user) for block actions.
func (d *delivery) defaultKey(k routeKey) string {
	a := d.about
	switch k.kind {
	case envelope.KindEvent:
		if a.messageLike && a.channel != "" && a.ts != "" {
			return keyMessage + a.team + ":" + a.channel + ":" + a.ts
		}
		return keyEvent + a.eventID
	case envelope.KindSlashCommand:
		return keyCommand + a.team + ":" + d.triggerOrDigest()
	}
	if cb, ok := d.payload.(*slack.InteractionCallback); ok && cb.Type == slack.InteractionTypeBlockActions {
		ts := cb.ActionTs
		if len(cb.ActionCallback.BlockActions) > 0 && cb.ActionCallback.BlockActions[0].ActionTs != "" {
			ts = cb.ActionCallback.BlockActions[0].ActionTs
		}
		if ts != "" {
			return keyAction + a.team + ":" + a.user + ":" + ts
		}
	}
	return keyOther + a.team + ":" + d.triggerOrDigest()
}

func (d *delivery) triggerOrDigest() string {
	if d.about.triggerID != "" {
		return d.about.triggerID
	}
	sum := sha256.Sum256([]byte(d.env.Body))
	return "sha256-" + hex.EncodeToString(sum[:16])
}

package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

// Handler is a typed handler: it gets the decoded payload and the helpers in Request.
// Return nil when done, an error to retry (see Permanent and RetryAfter to steer that).
type Handler[T any] func(ctx context.Context, req *Request[T]) error

// Router is the set of routes a bot serves. Register routes with Event, Command, Action,
// ViewSubmission, ViewClosed, Shortcut and MessageShortcut; the worker checks Err once at
// start-up. A Router is not safe for registration from several goroutines; serving is.
type Router struct {
	routes map[routeKey]*route
	errs   []error
}

// NewRouter returns a Router with one route: the clicks of the Stop button a streamed answer
// shows (StreamOptions.Stop).
func NewRouter() *Router {
	r := &Router{routes: map[routeKey]*route{}}
	Action(r, StopActionID, stopClicked, Name("stop")) // the Stop button of streamed answers
	return r
}

// Err reports every registration mistake (duplicate routes, empty names, options that do
// not fit the route's payload), or nil. A worker must not start when it is not nil.
func (b *Router) Err() error { return errors.Join(b.errs...) }

// Routes lists the names of the routes the bot registered, for logs at start-up (the Stop
// button's route, which every Router has, is not listed).
func (b *Router) Routes() []string {
	var out []string
	for k, r := range b.routes {
		if k != stopRouteKey {
			out = append(out, r.name)
		}
	}
	return out
}

// stopRouteKey is the route NewRouter adds for Stop clicks.
var stopRouteKey = routeKey{envelope.KindInteraction, typeBlockActions, StopActionID}

// Interaction types routed by Action, ViewSubmission, ViewClosed, Shortcut, MessageShortcut.
const (
	typeBlockActions   = "block_actions"
	typeViewSubmission = "view_submission"
	typeViewClosed     = "view_closed"
	typeShortcut       = "shortcut"
	typeMessageAction  = "message_action"
)

type routeKey struct {
	kind envelope.Kind
	typ  string // event type, command, interaction type
	id   string // action_id or callback_id for interactions
}

func (k routeKey) String() string {
	switch {
	case k.kind == envelope.KindSlashCommand:
		return k.typ
	case k.id != "":
		return k.typ + ":" + k.id
	}
	return k.typ
}

type route struct {
	key     routeKey
	name    string
	payload reflect.Type
	// decode turns the raw inner event into *T (events only; commands and interactions are
	// decoded once per kind).
	decode func(raw json.RawMessage) (any, error)
	run    func(ctx context.Context, s *Session, payload any) error
	opts   routeOptions
}

// Event routes Events API events of eventType ("app_mention", "reaction_added", …) to h.
// T is the slack-go slackevents struct for that type (slackevents.AppMentionEvent), or
// json.RawMessage for types slack-go lacks; the inner event is decoded into it once.
func Event[T any](b *Router, eventType string, h Handler[T], opts ...Option) {
	if eventType == "" {
		b.errs = append(b.errs, errors.New("relay: Event needs an event type"))
		return
	}
	r := newRoute(b, routeKey{envelope.KindEvent, eventType, ""}, h, opts)
	if r != nil {
		r.decode = func(raw json.RawMessage) (any, error) {
			p := new(T)
			if err := json.Unmarshal(raw, p); err != nil {
				return nil, fmt.Errorf("decode %s event: %w", eventType, err)
			}
			return p, nil
		}
	}
}

// Command routes a slash command ("/ask") to h.
func Command(b *Router, command string, h Handler[slack.SlashCommand], opts ...Option) {
	if !strings.HasPrefix(command, "/") || len(command) < 2 {
		b.errs = append(b.errs, fmt.Errorf("relay: slash command %q must start with /", command))
		return
	}
	newRoute(b, routeKey{envelope.KindSlashCommand, command, ""}, h, opts)
}

// Action routes block_actions clicks on elements with actionID to h.
func Action(b *Router, actionID string, h Handler[slack.InteractionCallback], opts ...Option) {
	interaction(b, typeBlockActions, actionID, h, opts)
}

// ViewSubmission routes submissions of modals with callbackID to h. The receiver has already
// answered Slack (see docs/handlers.md for what the modal shows meanwhile).
func ViewSubmission(b *Router, callbackID string, h Handler[slack.InteractionCallback], opts ...Option) {
	interaction(b, typeViewSubmission, callbackID, h, opts)
}

// ViewClosed routes view_closed (modals opened with notify_on_close) with callbackID to h.
func ViewClosed(b *Router, callbackID string, h Handler[slack.InteractionCallback], opts ...Option) {
	interaction(b, typeViewClosed, callbackID, h, opts)
}

// Shortcut routes global shortcuts with callbackID to h.
func Shortcut(b *Router, callbackID string, h Handler[slack.InteractionCallback], opts ...Option) {
	interaction(b, typeShortcut, callbackID, h, opts)
}

// MessageShortcut routes message shortcuts (message_action) with callbackID to h.
func MessageShortcut(b *Router, callbackID string, h Handler[slack.InteractionCallback], opts ...Option) {
	interaction(b, typeMessageAction, callbackID, h, opts)
}

func interaction(b *Router, typ, id string, h Handler[slack.InteractionCallback], opts []Option) {
	if id == "" {
		b.errs = append(b.errs, fmt.Errorf("relay: %s route needs an action or callback id", typ))
		return
	}
	newRoute(b, routeKey{envelope.KindInteraction, typ, id}, h, opts)
}

func newRoute[T any](b *Router, key routeKey, h Handler[T], opts []Option) *route {
	if h == nil {
		b.errs = append(b.errs, fmt.Errorf("relay: route %s has a nil handler", key))
		return nil
	}
	if b.routes == nil {
		b.routes = map[routeKey]*route{}
	}
	r := &route{key: key, name: key.String(), payload: reflect.TypeFor[T]()}
	for _, o := range opts {
		o(&r.opts)
	}
	if r.opts.name != "" {
		r.name = r.opts.name
	}
	for _, t := range r.opts.payloadTypes {
		if t != r.payload {
			b.errs = append(b.errs, fmt.Errorf("relay: route %s: an option expects payload %v, the route decodes %v", key, t, r.payload))
		}
	}
	if old, dup := b.routes[key]; dup {
		b.errs = append(b.errs, fmt.Errorf("relay: route %s registered twice (as %q and %q)", key, old.name, r.name))
		return nil
	}
	r.run = func(ctx context.Context, s *Session, payload any) error {
		return h(ctx, &Request[T]{Payload: payload.(*T), Session: s})
	}
	b.routes[key] = r
	return r
}

// Option tunes a route.
type Option func(*routeOptions)

type routeOptions struct {
	name          string
	skips         []func(ctx context.Context, payload any) string
	key           func(payload any) string
	allowBots     bool
	allowSubtypes map[string]bool
	payloadTypes  []reflect.Type
	noSlack       bool
}

// Name sets the route's name in logs, metrics and DLQ reasons (default: the route itself,
// "app_mention", "/ask", "block_actions:approve").
func Name(name string) Option { return func(o *routeOptions) { o.name = name } }

// Skip adds a "not mine" decision, taken before the event is claimed: a non-empty reason
// acknowledges the delivery without running the handler and without consuming its dedupe
// key (so a twin delivery of the same message can still be answered by another route).
func Skip[T any](decide func(ctx context.Context, payload *T) (reason string)) Option {
	return func(o *routeOptions) {
		o.payloadTypes = append(o.payloadTypes, reflect.TypeFor[T]())
		o.skips = append(o.skips, func(ctx context.Context, p any) string {
			if tp, ok := p.(*T); ok {
				return decide(ctx, tp)
			}
			return ""
		})
	}
}

// DedupeBy replaces the route's dedupe key (see Key) with key(payload), scoped to the
// workspace ("by:<team>:<key>"). Deliveries of one workspace with the same key get one run of
// one handler between them; an empty key keeps the route's own.
func DedupeBy[T any](key func(payload *T) string) Option {
	return func(o *routeOptions) {
		o.payloadTypes = append(o.payloadTypes, reflect.TypeFor[T]())
		o.key = func(p any) string {
			if tp, ok := p.(*T); ok {
				return key(tp)
			}
			return ""
		}
	}
}

// AllowBotMessages lets message-like events written by bots (bot_id set) through; by default
// they are skipped, so two bots cannot answer each other forever. The bot's own messages are
// skipped either way.
func AllowBotMessages() Option { return func(o *routeOptions) { o.allowBots = true } }

// WithoutSlack runs the handler without a Slack client (its Session.Slack is nil): for an
// event that must be handled when the workspace's token can no longer be had, such as
// app_uninstalled or tokens_revoked. The handler must make no Slack call.
func WithoutSlack() Option { return func(o *routeOptions) { o.noSlack = true } }

// AllowSubtypes lets message events with these subtypes through (by default every message
// with a subtype, such as message_changed or bot_message, is skipped).
func AllowSubtypes(subtypes ...string) Option {
	return func(o *routeOptions) {
		if o.allowSubtypes == nil {
			o.allowSubtypes = map[string]bool{}
		}
		for _, s := range subtypes {
			o.allowSubtypes[s] = true
		}
	}
}

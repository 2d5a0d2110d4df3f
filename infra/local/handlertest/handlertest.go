// Package handlertest runs a bot's handlers the way the worker does — decoded once, declined
// or keyed before anything is claimed, then run under a progress record — against the local
// Slack server, with payloads from a test's testdata/ folder. A test asserts what the handler
// posted, and can deliver the same payload again to see that nothing is posted twice.
//
//	h := handlertest.New(t, func(b *relay.Router) { relay.Event(b, "reaction_added", thanks) })
//	got := h.Deliver(t, "testdata/reaction_added.json")
//	// got.Posts holds what the handler posted; h.Deliver again posts nothing more.
//
// The progress record is kept in memory here (the DynamoDB store has its own tests); the
// Slack side is the real protocol: slack-go against infra/local/localslack, which grants only
// the scopes of infra/slack-app-manifest.yaml.
package handlertest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/infra/local/localslack"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/internal/journal/journaltest"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// Token is the bot token the harness's Slack server expects.
const Token = "xoxb-handlertest"

// Harness is a bot with its routes, a local Slack server and in-memory progress records.
type Harness struct {
	// Slack is the local Slack server: seed messages, inject faults, read what was posted.
	Slack *localslack.Server
	bot   *relay.Router
	rt    *relay.Runtime
	log   *slog.Logger

	mu      sync.Mutex
	records map[string]*record
	delay   time.Duration // QueueDelay
	skew    time.Duration // how far the server's clock has been moved on
}

func (h *Harness) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Now().Add(h.skew)
}

// Option tunes a Harness.
type Option func(*Harness, *localslack.Options)

// QueueDelay models the time between Slack sending a request and the worker running it: the
// local Slack server's clock moves on by d before each delivery runs, so a trigger_id issued
// with the request is d old when the handler uses it (Slack accepts it for 3 s).
func QueueDelay(d time.Duration) Option {
	return func(h *Harness, _ *localslack.Options) { h.delay = d }
}

// Scopes grants these bot scopes instead of the manifest's.
func Scopes(scopes ...string) Option {
	return func(_ *Harness, o *localslack.Options) { o.Scopes = scopes }
}

// New starts a local Slack server (stopped when the test ends) and registers the bot's routes.
// A registration mistake fails the test.
func New(t testing.TB, register func(b *relay.Router), opts ...Option) *Harness {
	t.Helper()
	h := &Harness{records: map[string]*record{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	o := localslack.Options{Token: Token, Now: h.now}
	for _, opt := range opts {
		opt(h, &o)
	}
	srv := localslack.New(o)
	if _, err := srv.Start(""); err != nil {
		t.Fatalf("handlertest: start the local Slack server: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	b := relay.NewRouter()
	register(b)
	if err := b.Err(); err != nil {
		t.Fatalf("handlertest: %v", err)
	}
	client := slack.New(Token, slack.OptionAPIURL(srv.APIURL()))
	h.Slack, h.bot = srv, b
	h.rt = &relay.Runtime{
		Slack: func(context.Context) (*slack.Client, error) { return client, nil },
		Identity: func(context.Context) (relay.Identity, error) {
			return relay.Identity{UserID: "UBOT", BotID: "BBOT"}, nil
		},
		ResponseURLPrefixes: []string{h.responseURLPrefix()},
		Notes:               &notes{values: map[string]string{}},
	}
	return h
}

// Log sends the handlers' log lines to w (default: discarded).
func (h *Harness) Log(w io.Writer) { h.log = slog.New(slog.NewJSONHandler(w, nil)) }

func (h *Harness) responseURLPrefix() string {
	return strings.TrimSuffix(h.Slack.ResponseURL("x"), "x")
}

// Result is what one delivery did.
type Result struct {
	// Route is the route that took it ("" when none did); Skip is why it declined it.
	Route, Skip string
	// Key is the dedupe key; Attempt the run of the handler (1 first, 0 when it did not run).
	Key     string
	Attempt int
	// Err is what the handler returned.
	Err error
	// Posts are the messages and response_url posts made during this delivery.
	Posts []localslack.Post
	// Duplicate is set when the key was completed by an earlier delivery.
	Duplicate bool
}

// Deliver sends the payload in file as the receiver would wrap it — an Events API body (JSON
// with "type":"event_callback"), a slash command (a .form file of form fields), or an
// interaction payload (any other JSON) — and runs it. Slash commands and interactions get the
// local server's response_url. It fails the test only when the payload cannot be read.
func (h *Harness) Deliver(t testing.TB, file string) Result {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("handlertest: %v", err)
	}
	return h.DeliverBody(t, file, string(raw))
}

// DeliverBody is Deliver with the payload given as text; name decides its kind as a file name
// would (".form" for a slash command). A trigger_id in the payload is replaced with one the
// local server issues now (valid 3 s, once), as Slack's would be.
func (h *Harness) DeliverBody(t testing.TB, name, body string) Result {
	t.Helper()
	env, err := h.wrap(name, strings.TrimSpace(body))
	if err != nil {
		t.Fatalf("handlertest: %s: %v", name, err)
	}
	return h.run(env)
}

func (h *Harness) wrap(file, body string) (*envelope.Envelope, error) {
	env := &envelope.Envelope{Version: envelope.Version, ID: envelope.NewID(), ReceivedAt: time.Now().UTC(), EventTime: time.Now().Unix()}
	responseURL := h.Slack.ResponseURL(env.ID)
	switch {
	case strings.HasSuffix(file, ".form"):
		form, err := url.ParseQuery(body)
		if err != nil {
			return nil, err
		}
		form.Set("response_url", responseURL)
		if form.Get("trigger_id") != "" {
			form.Set("trigger_id", h.Slack.NewTrigger()) // valid for 3 s from now, as Slack's
		}
		env.Kind, env.ContentType, env.Body = envelope.KindSlashCommand, envelope.ContentTypeForm, form.Encode()
	default:
		var probe map[string]any
		if err := json.Unmarshal([]byte(body), &probe); err != nil {
			return nil, err
		}
		if probe["type"] == "event_callback" {
			env.Kind, env.ContentType, env.Body = envelope.KindEvent, envelope.ContentTypeJSON, body
			break
		}
		if _, ok := probe["response_url"]; ok {
			probe["response_url"] = responseURL
		}
		if _, ok := probe["trigger_id"]; ok {
			probe["trigger_id"] = h.Slack.NewTrigger()
		}
		payload, err := json.Marshal(probe)
		if err != nil {
			return nil, err
		}
		env.Kind, env.ContentType, env.Body = envelope.KindInteraction, envelope.ContentTypeForm, url.Values{"payload": {string(payload)}}.Encode()
	}
	return env, nil
}

func (h *Harness) run(env *envelope.Envelope) (r Result) {
	h.mu.Lock()
	h.skew += h.delay
	h.mu.Unlock()
	before := len(h.Slack.Posts())
	defer func() { r.Posts = h.Slack.Posts()[before:] }()
	d, err := h.bot.Dispatch(context.Background(), h.rt, env)
	if err != nil {
		r.Err = err
		return r
	}
	r.Route, r.Key, r.Skip = d.Route, d.Key, d.Skip
	if d.Route == "" || d.Skip != "" {
		return r
	}
	rec := h.record(d.Key)
	if rec.completed() {
		r.Duplicate = true
		return r
	}
	r.Attempt = rec.next()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.Err = d.Run(ctx, h.rt, rec, h.log.With("route", d.Route, "dedupe_key", d.Key))
	if r.Err == nil {
		rec.complete()
	}
	return r
}

func (h *Harness) record(key string) *record {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.records[key]
	if !ok {
		r = &record{Lease: journaltest.New(key)}
		h.records[key] = r
	}
	return r
}

// record is an event's journal in memory, counting the attempts that ran it.
type record struct {
	*journaltest.Lease
	mu    sync.Mutex
	tries int
}

func (r *record) next() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries++
	if r.tries > 1 {
		r.Release()
		r.NextAttempt()
	}
	return r.Attempt()
}
func (r *record) complete()       { r.Complete() }
func (r *record) completed() bool { return r.Completed() }

var _ relay.Lease = (*record)(nil)

// notes keeps Session.Remember's values in memory.
type notes struct {
	mu     sync.Mutex
	values map[string]string
}

func (n *notes) PutNote(_ context.Context, key, value string, _ time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.values[key] = value
	return nil
}

func (n *notes) Note(_ context.Context, key string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.values[key], nil
}

var _ relay.Notes = (*notes)(nil)

// Package localslack is a local stand-in for the Slack Web API, for tests and the local demo.
//
// It answers the methods slackrelay uses (auth.test, chat.postMessage, chat.update,
// chat.postEphemeral, chat.delete, reactions.add, reactions.remove, conversations.replies,
// conversations.history), modals (views.open, views.push, views.update, with triggers that
// expire and views with hashes, see NewTrigger), streamed messages (chat.startStream,
// chat.appendStream, chat.stopStream) and assistant threads (assistant.threads.setStatus,
// setSuggestedPrompts, setTitle), plus response_url posts (slash commands, interactions),
// which become messages as in Slack when the server knows where the response_url comes from
// (ResponseURLFrom): in the channel or shown to one user, replacing or deleting the clicked
// message, 5 posts within 30 minutes. It records what the app did (Posts, Views, Streams,
// AssistantThreads), shows each message as a Slack client would (Rendered, RenderedThread,
// RenderedChannel, Ephemerals: what tests should judge a bot by), holds content
// to Slack's limits (MaxBlocks, MaxBlocksChars, …) and can inject faults: Slack errors,
// HTTP 429 rate limits, plain HTTP failures and answers lost after the call took effect
// (LoseResponseNext), and optionally enforce rate limits (Options.RateLimits).
//
// Like Slack, it checks scopes: the token holds the bot scopes of the repository's app
// manifest (infra/slack-app-manifest.yaml) unless Options say otherwise, and a method called
// without its scope (see RequiredScope) answers missing_scope.
//
// Requests are accepted the way slack-go sends them (form-encoded, with the token in the
// `token` field or an Authorization: Bearer header) and as JSON bodies. Point slack-go at it
// with slack.OptionAPIURL(srv.APIURL()).
//
// It serves several workspaces, alone or in an Enterprise Grid org, each with its own bot
// token, and checks every call against the token's workspace (teams.go), and Slack's OAuth:
// the consent page at /oauth/v2/authorize and oauth.v2.access with the authorization_code and
// refresh_token grants, with rotating tokens that expire on the server's clock (oauth.go,
// Advance).
//
// Other processes can drive it over HTTP through the /_control/ endpoints, see Client.
//
// It is written here rather than taken from a library because no maintained Go library
// serves the Slack Web API locally with recording, scopes and fault injection.
package fakeslack

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// MaxTextLength is the longest message text, in characters, accepted before msg_too_long.
const MaxTextLength = 40000

// Options configure a Server. The zero value works: any token is accepted and the token
// holds the bot scopes of the repository's app manifest.
type Options struct {
	// Token is the expected bot token. When set, API calls carrying another token get
	// invalid_auth and calls carrying none get not_authed. Empty accepts any token.
	Token string
	// Scopes, when non-nil, are the bot scopes the token holds, instead of the manifest's
	// (e.g. the manifest's minus one, to test a missing scope). An empty non-nil list grants
	// nothing.
	Scopes []string
	// Manifest is the Slack app manifest whose oauth_config.scopes.bot the token holds when
	// Scopes is nil (default: infra/slack-app-manifest.yaml under the repository root).
	Manifest string
	// ChannelKinds declares the kind of conversations whose id prefix does not tell it
	// (e.g. a private channel whose id starts with C, or any group DM); see RequiredScope.
	ChannelKinds map[string]ChannelKind
	// BotUserID, BotID and TeamID identify the bot (defaults UBOT, BBOT, T0001).
	BotUserID string
	BotID     string
	TeamID    string
	// TeamName and BotName are reported by auth.test; BotName also labels Out lines
	// (defaults "fakeslack" and "bot").
	TeamName string
	BotName  string
	// Out, when non-nil, gets one human-readable line per post, stream start, append and
	// end, view opened or updated, and assistant status, prompts or title, e.g.
	//   slack ▸ #C123 (thread 1700000000.000100) bot: text…
	//   slack ▸ #C123 (stream 1700000000.000200) + the text just appended…
	Out io.Writer
	// Now is the server's clock (default time.Now): it stamps records (Post.At, …) and
	// decides when triggers expire, streams end by themselves, statuses time out and rate
	// windows slide, so a test can move time without sleeping.
	Now func() time.Time
	// StreamIdleTimeout is how long a streamed message stays open without an append before
	// it ends by itself, as Slack ends idle streams (default DefaultStreamIdleTimeout).
	StreamIdleTimeout time.Duration
	// StreamLifetime is how long a streamed message stays open after chat.startStream,
	// appends or not, before it ends by itself (default DefaultStreamLifetime).
	// SetStreamLifetime changes it on a running server.
	StreamLifetime time.Duration
	// RateLimits, when set, caps calls per minute by method name, answering HTTP 429 with
	// Retry-After beyond it (e.g. {"chat.appendStream": 100}, Slack's tier 4). Calls are
	// counted per stream for chat.appendStream and chat.stopStream, per channel for
	// chat.postMessage, and per method otherwise. Unlisted methods are not limited.
	RateLimits map[string]int
	// MissingChannels answer channel_not_found; ArchivedChannels answer is_archived to writes.
	MissingChannels  []string
	ArchivedChannels []string
	// Workspaces are more workspaces beside the default one (see Workspace and teams.go).
	Workspaces []Workspace
	// ClientID, ClientSecret, AppID and AppName are the app's, for OAuth (see oauth.go;
	// defaults DefaultClientID, DefaultClientSecret, DefaultAppID, DefaultAppName).
	ClientID     string
	ClientSecret string
	AppID        string
	AppName      string
	// TokenRotation makes OAuth installs answer rotating tokens: access tokens that expire
	// after TokenLifetime, with a refresh token.
	TokenRotation bool
}

// Metadata is Slack message metadata.
type Metadata struct {
	EventType string         `json:"event_type"`
	Payload   map[string]any `json:"event_payload"`
}

// Post is one recorded post: chat.postMessage, chat.postEphemeral or a response_url post.
type Post struct {
	// Method is "chat.postMessage", "chat.postEphemeral" or "response_url".
	Method  string `json:"method"`
	Channel string `json:"channel,omitempty"`
	// Text is the text argument: with Blocks only the notification fallback, not shown.
	Text string `json:"text"`
	// MarkdownText is the markdown_text argument (chat.postMessage, chat.postEphemeral).
	MarkdownText string `json:"markdown_text,omitempty"`
	ThreadTS     string `json:"thread_ts,omitempty"`
	// TS is the message timestamp assigned by the server (message_ts for ephemeral posts).
	// For a response_url post whose origin the server knows (ResponseURLFrom) it is the
	// message the post made or replaced (or, for a delete_original carrying nothing, the
	// one it deleted); it is empty for one whose origin is unknown.
	TS       string          `json:"ts,omitempty"`
	Blocks   json.RawMessage `json:"blocks,omitempty"`
	Metadata *Metadata       `json:"metadata,omitempty"`
	// User is the recipient of an ephemeral post (chat.postEphemeral, or an ephemeral
	// response_url post whose origin the server knows).
	User string `json:"user,omitempty"`
	// ResponseID, ResponseType (as sent: empty means ephemeral), ReplaceOriginal and
	// DeleteOriginal are set for response_url posts; Channel is set for those whose origin
	// the server knows.
	ResponseID      string `json:"response_id,omitempty"`
	ResponseType    string `json:"response_type,omitempty"`
	ReplaceOriginal bool   `json:"replace_original,omitempty"`
	DeleteOriginal  bool   `json:"delete_original,omitempty"`
	// Team is the workspace of the conversation posted in (chat.postMessage,
	// chat.postEphemeral; see Workspace).
	Team string    `json:"team,omitempty"`
	At   time.Time `json:"at"`
}

// Reaction is one reaction the bot currently has on a message.
type Reaction struct {
	Channel   string `json:"channel"`
	Timestamp string `json:"timestamp"`
	Name      string `json:"name"`
}

// Server is a local Slack Web API. It is safe for concurrent use.
type Server struct {
	opts     Options
	missing  map[string]bool
	archived map[string]bool
	mux      *http.ServeMux
	// scopes (in grant order) and granted are set by Start, before serving.
	scopes  []string
	granted map[string]bool

	mu       sync.Mutex
	srv      *loopback.Server // set by Start
	lastTS   int64            // microseconds of the newest timestamp handed out or seeded
	posts    []Post
	messages map[string][]*message // by channel, oldest first
	// ephemerals are the ephemeral messages shown now, by channel, oldest first.
	ephemerals map[string][]*message
	hooks      map[string]*responseHook // response_urls, by id
	reactions  map[Reaction]bool
	calls      map[string]int
	faults     map[string][]*fault
	// seq numbers triggers, views and hashes; it survives Reset so ids stay unique.
	seq       int64
	triggers  map[string]*trigger
	views     []*viewState // in the order they were opened or pushed
	streams   []*stream    // in the order they were started
	threads   []*assistantThread
	rateCalls map[string][]time.Time // by rate key, the calls inside the current window
	lifetime  time.Duration          // streams' lifetime now: Options.StreamLifetime or SetStreamLifetime's
	// Workspaces, tokens and OAuth (teams.go, oauth.go); they survive Reset.
	teams         map[string]*Workspace // by team id
	tokens        map[string]*token
	owners        map[string]string // conversation → team id
	refreshes     map[string]int    // refresh grants by installation
	pending       map[string]oauthRequest
	codes         map[string]*oauthCode
	refreshTokens map[string]*refreshToken
	teamsErr      error // a bad Options.Workspaces, reported by Start

	clockMu sync.Mutex
	offset  time.Duration // added to Options.Now by Advance

	outMu sync.Mutex
}

// New returns a Server; call Start to serve it.
func New(opts Options) *Server {
	if opts.BotUserID == "" {
		opts.BotUserID = "UBOT"
	}
	if opts.BotID == "" {
		opts.BotID = "BBOT"
	}
	if opts.TeamID == "" {
		opts.TeamID = "T0001"
	}
	if opts.TeamName == "" {
		opts.TeamName = "fakeslack"
	}
	if opts.BotName == "" {
		opts.BotName = "bot"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.AppID == "" {
		opts.AppID = DefaultAppID
	}
	if opts.AppName == "" {
		opts.AppName = DefaultAppName
	}
	s := &Server{
		opts:       opts,
		missing:    toSet(opts.MissingChannels),
		archived:   toSet(opts.ArchivedChannels),
		lastTS:     firstTS,
		messages:   map[string][]*message{},
		ephemerals: map[string][]*message{},
		hooks:      map[string]*responseHook{},
		reactions:  map[Reaction]bool{},
		calls:      map[string]int{},
		faults:     map[string][]*fault{},
		triggers:   map[string]*trigger{},
		rateCalls:  map[string][]time.Time{},
		pending:    map[string]oauthRequest{},
		codes:      map[string]*oauthCode{},

		refreshTokens: map[string]*refreshToken{},
	}
	base := opts.Now
	s.opts.Now = func() time.Time { return s.now(base) }
	s.teamsErr = s.initTeams()
	if s.opts.StreamIdleTimeout <= 0 {
		s.opts.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if s.opts.StreamLifetime <= 0 {
		s.opts.StreamLifetime = DefaultStreamLifetime
	}
	s.lifetime = s.opts.StreamLifetime
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.handleAPI)
	mux.HandleFunc("/response/{id}", s.handleResponseURL)
	s.routeControl(mux)
	s.mux = mux
	s.routeOAuth()
	return s
}

func toSet(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// Start decides the token's scopes (Options.Scopes, else the manifest's; an unreadable
// manifest is an error), listens on addr ("127.0.0.1:0" when empty; a missing host means
// 127.0.0.1) and serves in the background. It returns the base URL, e.g.
// "http://127.0.0.1:41234/".
func (s *Server) Start(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return "", errors.New("fakeslack: already started")
	}
	if s.teamsErr != nil {
		return "", s.teamsErr
	}
	if err := s.grantScopes(); err != nil {
		return "", err
	}
	srv, err := loopback.Serve("fakeslack", addr, s.mux)
	if err != nil {
		return "", err
	}
	s.srv = srv
	return srv.URL(), nil
}

func (s *Server) url() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return ""
	}
	return s.srv.URL()
}

// APIURL is the Web API base for slack.OptionAPIURL, e.g. "http://127.0.0.1:PORT/api/".
func (s *Server) APIURL() string { return s.url() + "api/" }

// AuthorizeURL is the OAuth consent page an Add to Slack link goes to (Slack's
// https://slack.com/oauth/v2/authorize), e.g. "http://127.0.0.1:PORT/oauth/v2/authorize".
func (s *Server) AuthorizeURL() string { return s.url() + "oauth/v2/authorize" }

// Close stops a server started with Start, letting requests in flight finish for up to 2 s.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// Posts returns a copy of all recorded posts, oldest first.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// PostsFor returns the recorded posts to channel.
func (s *Server) PostsFor(channel string) []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Post
	for _, p := range s.posts {
		if p.Channel == channel {
			out = append(out, p)
		}
	}
	return out
}

// Reactions returns the reactions currently present, sorted by channel, timestamp, name.
func (s *Server) Reactions() []Reaction {
	s.mu.Lock()
	out := make([]Reaction, 0, len(s.reactions))
	for r := range s.reactions {
		out = append(out, r)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Channel != b.Channel {
			return a.Channel < b.Channel
		}
		if a.Timestamp != b.Timestamp {
			return a.Timestamp < b.Timestamp
		}
		return a.Name < b.Name
	})
	return out
}

// Calls is how many calls of method were received, including failed and faulted ones.
// response_url posts count under ResponseURLMethod.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Reset forgets posts, messages (seeded ones too), ephemeral messages, response_urls (their
// origins and uses), reactions, call counts, pending faults, triggers, views, streams,
// assistant threads and rate windows, and gives streams their
// Options.StreamLifetime again. Timestamps and ids keep increasing across resets.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = s.opts.StreamLifetime
	s.posts = nil
	s.messages = map[string][]*message{}
	s.ephemerals = map[string][]*message{}
	s.hooks = map[string]*responseHook{}
	s.reactions = map[Reaction]bool{}
	s.calls = map[string]int{}
	s.faults = map[string][]*fault{}
	s.triggers = map[string]*trigger{}
	s.views = nil
	s.streams = nil
	s.threads = nil
	s.rateCalls = map[string][]time.Time{}
}

func (s *Server) recordLocked(p Post) {
	p.At = s.opts.Now()
	s.posts = append(s.posts, p)
}

// Package localslack is a local stand-in for the Slack Web API, for tests and the local demo.
//
// It answers the handful of methods slackrelay uses (auth.test, chat.postMessage, chat.update,
// chat.postEphemeral, reactions.add, reactions.remove, conversations.replies) plus
// slash-command response_url posts, records what was posted, and can inject faults: Slack
// errors, HTTP 429 rate limits and plain HTTP failures.
//
// Requests are accepted the way slack-go sends them (form-encoded, with the token in the
// `token` field or an Authorization: Bearer header) and as JSON bodies. Point slack-go at it
// with slack.OptionAPIURL(srv.APIURL()).
//
// Other processes can drive it over HTTP through the /_control/ endpoints, see Client.
package localslack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MaxTextLength is the longest message text, in characters, accepted before msg_too_long.
const MaxTextLength = 40000

// ResponseURLMethod is the method name under which response_url posts are counted, faulted
// (FailNext etc.) and recorded (Post.Method).
const ResponseURLMethod = "response_url"

// ErrClosed is returned by WaitPosts once the server has been closed.
var ErrClosed = errors.New("localslack: server closed")

// Options configure a Server. The zero value works: any token is accepted.
type Options struct {
	// Token is the expected bot token. When set, API calls carrying another token get
	// invalid_auth and calls carrying none get not_authed. Empty accepts any token.
	Token string
	// BotUserID, BotID and TeamID identify the bot (defaults UBOT, BBOT, T0001).
	BotUserID string
	BotID     string
	TeamID    string
	// TeamName and BotName are reported by auth.test; BotName also labels Out lines
	// (defaults "localslack" and "bot").
	TeamName string
	BotName  string
	// Out, when non-nil, gets one human-readable line per post, e.g.
	//   slack ▸ #C123 (thread 1700000000.000100) bot: text…
	Out io.Writer
	// Now stamps Post.At (default time.Now).
	Now func() time.Time
	// MissingChannels answer channel_not_found; ArchivedChannels answer is_archived to writes.
	MissingChannels  []string
	ArchivedChannels []string
}

// Metadata is Slack message metadata.
type Metadata struct {
	EventType string         `json:"event_type"`
	Payload   map[string]any `json:"event_payload"`
}

// Post is one recorded post: chat.postMessage, chat.postEphemeral or a response_url post.
type Post struct {
	// Method is "chat.postMessage", "chat.postEphemeral" or "response_url".
	Method   string `json:"method"`
	Channel  string `json:"channel,omitempty"`
	Text     string `json:"text"`
	ThreadTS string `json:"thread_ts,omitempty"`
	// TS is the message timestamp assigned by the server (message_ts for ephemeral posts,
	// empty for response_url posts).
	TS       string          `json:"ts,omitempty"`
	Blocks   json.RawMessage `json:"blocks,omitempty"`
	Metadata *Metadata       `json:"metadata,omitempty"`
	// User is the recipient of an ephemeral post.
	User string `json:"user,omitempty"`
	// ResponseID, ResponseType and ReplaceOriginal are set for response_url posts.
	ResponseID      string    `json:"response_id,omitempty"`
	ResponseType    string    `json:"response_type,omitempty"`
	ReplaceOriginal bool      `json:"replace_original,omitempty"`
	At              time.Time `json:"at"`
}

// Reaction is one reaction the bot currently has on a message.
type Reaction struct {
	Channel   string `json:"channel"`
	Timestamp string `json:"timestamp"`
	Name      string `json:"name"`
}

type faultKind int

const (
	faultSlack faultKind = iota
	faultRateLimit
	faultHTTP
)

type fault struct {
	kind       faultKind
	remaining  int
	slackError string
	retryAfter time.Duration
	status     int
}

type message struct {
	channel  string
	ts       string
	threadTS string
	text     string
	blocks   json.RawMessage
	metadata *Metadata
	edited   bool
}

// Server is a local Slack Web API. It is safe for concurrent use.
type Server struct {
	opts     Options
	missing  map[string]bool
	archived map[string]bool
	mux      *http.ServeMux

	mu        sync.Mutex
	baseURL   string
	seq       int64
	posts     []Post
	messages  map[string][]*message // by channel, in creation order
	reactions map[Reaction]bool
	calls     map[string]int
	faults    map[string][]*fault
	notify    chan struct{} // closed and replaced whenever posts change
	srv       *http.Server
	closed    chan struct{}
	closeOnce sync.Once

	outMu sync.Mutex
}

// New returns a Server; call Start, or mount it with httptest.NewServer.
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
		opts.TeamName = "localslack"
	}
	if opts.BotName == "" {
		opts.BotName = "bot"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:      opts,
		missing:   toSet(opts.MissingChannels),
		archived:  toSet(opts.ArchivedChannels),
		messages:  map[string][]*message{},
		reactions: map[Reaction]bool{},
		calls:     map[string]int{},
		faults:    map[string][]*fault{},
		notify:    make(chan struct{}),
		closed:    make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.handleAPI)
	mux.HandleFunc("/response/{id}", s.handleResponseURL)
	mux.HandleFunc("GET /_control/posts", s.ctlPosts)
	mux.HandleFunc("GET /_control/reactions", s.ctlReactions)
	mux.HandleFunc("GET /_control/calls", s.ctlCalls)
	mux.HandleFunc("POST /_control/fail", s.ctlFail)
	mux.HandleFunc("POST /_control/ratelimit", s.ctlRateLimit)
	mux.HandleFunc("POST /_control/failhttp", s.ctlFailHTTP)
	mux.HandleFunc("POST /_control/reset", s.ctlReset)
	s.mux = mux
	return s
}

func toSet(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// Start listens on addr ("127.0.0.1:0" when empty; a missing host means 127.0.0.1) and
// serves in the background. It returns the base URL, e.g. "http://127.0.0.1:41234/".
func (s *Server) Start(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("localslack: bad address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	s.mu.Lock()
	if s.srv != nil {
		s.mu.Unlock()
		return "", errors.New("localslack: already started")
	}
	s.mu.Unlock()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return "", fmt.Errorf("localslack: listen: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	base := "http://" + ln.Addr().String() + "/"
	s.mu.Lock()
	s.srv = srv
	s.baseURL = base
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return base, nil
}

// SetBaseURL tells the server where it is reachable, for ResponseURL, when it is served by
// something other than Start (e.g. httptest.NewServer).
func (s *Server) SetBaseURL(u string) {
	if u != "" && !strings.HasSuffix(u, "/") {
		u += "/"
	}
	s.mu.Lock()
	s.baseURL = u
	s.mu.Unlock()
}

// URL is the base URL ("http://127.0.0.1:PORT/"), empty before Start or SetBaseURL.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// APIURL is the Web API base for slack.OptionAPIURL, e.g. "http://127.0.0.1:PORT/api/".
func (s *Server) APIURL() string { return s.URL() + "api/" }

// ResponseURL is a slash-command response_url that records posts under id. It is relative
// ("/response/id") until Start or SetBaseURL.
func (s *Server) ResponseURL(id string) string {
	base := s.URL()
	if base == "" {
		base = "/"
	}
	return base + "response/" + url.PathEscape(id)
}

// Close stops a server started with Start and makes pending WaitPosts return ErrClosed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return srv.Close()
	}
	return nil
}

// ServeHTTP serves the Web API, response URLs and the control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ---- recording ----

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
	sortReactions(out)
	return out
}

func sortReactions(rs []Reaction) {
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Channel != b.Channel {
			return a.Channel < b.Channel
		}
		if a.Timestamp != b.Timestamp {
			return a.Timestamp < b.Timestamp
		}
		return a.Name < b.Name
	})
}

// Calls is how many calls of method were received, including failed and faulted ones.
// response_url posts count under ResponseURLMethod.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Reset forgets posts, messages, reactions, call counts and pending faults. Timestamps keep
// increasing across resets.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts = nil
	s.messages = map[string][]*message{}
	s.reactions = map[Reaction]bool{}
	s.calls = map[string]int{}
	s.faults = map[string][]*fault{}
	s.wakeLocked()
}

// WaitPosts waits until at least n posts are recorded, ctx is done, or the server is closed.
func (s *Server) WaitPosts(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		have, ch := len(s.posts), s.notify
		s.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("localslack: waiting for %d posts, have %d: %w", n, have, ctx.Err())
		case <-s.closed:
			return ErrClosed
		}
	}
}

func (s *Server) wakeLocked() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// ---- fault injection ----

// FailNext makes the next n calls of method answer HTTP 200 {"ok":false,"error":slackError}.
func (s *Server) FailNext(method string, n int, slackError string) {
	s.addFault(method, &fault{kind: faultSlack, remaining: n, slackError: slackError})
}

// RateLimitNext makes the next n calls of method answer HTTP 429 with Retry-After (whole
// seconds, rounded up, at least 1) and {"ok":false,"error":"ratelimited"}.
func (s *Server) RateLimitNext(method string, n int, retryAfter time.Duration) {
	s.addFault(method, &fault{kind: faultRateLimit, remaining: n, retryAfter: retryAfter})
}

// FailHTTPNext makes the next n calls of method answer HTTP status with a short text body.
// A status outside 400-599 is treated as 500.
func (s *Server) FailHTTPNext(method string, n int, status int) {
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	s.addFault(method, &fault{kind: faultHTTP, remaining: n, status: status})
}

func (s *Server) addFault(method string, f *fault) {
	if f.remaining <= 0 || method == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], f)
}

// beginCall counts a call of method and pops the fault to apply, if any.
func (s *Server) beginCall(method string) *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
	q := s.faults[method]
	if len(q) == 0 {
		return nil
	}
	f := *q[0]
	q[0].remaining--
	if q[0].remaining <= 0 {
		q = q[1:]
	}
	if len(q) == 0 {
		delete(s.faults, method)
	} else {
		s.faults[method] = q
	}
	return &f
}

func writeFault(w http.ResponseWriter, f *fault) {
	switch f.kind {
	case faultRateLimit:
		secs := int64((f.retryAfter + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeJSON(w, http.StatusTooManyRequests, slackErr("ratelimited"))
	case faultHTTP:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(f.status)
		fmt.Fprintf(w, "localslack: injected HTTP %d %s\n", f.status, http.StatusText(f.status))
	default:
		writeJSON(w, http.StatusOK, slackErr(f.slackError))
	}
}

// ---- request parsing ----

// params holds a request's arguments from a form/query or a JSON body.
type params struct {
	form url.Values
	json map[string]json.RawMessage
}

func readParams(r *http.Request) (params, error) {
	var p params
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err != nil {
			return p, err
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := json.Unmarshal(body, &p.json); err != nil {
				return p, err
			}
		}
		p.form = r.URL.Query()
		return p, nil
	}
	if err := r.ParseForm(); err != nil {
		return p, err
	}
	p.form = r.Form
	return p, nil
}

// get returns a parameter as a string: JSON strings unquoted, other JSON values verbatim.
func (p params) get(key string) string {
	if raw, ok := p.json[key]; ok {
		var str string
		if err := json.Unmarshal(raw, &str); err == nil {
			return str
		}
		if t := strings.TrimSpace(string(raw)); t != "null" {
			return t
		}
		return ""
	}
	return p.form.Get(key)
}

func (p params) bool(key string) bool {
	b, _ := strconv.ParseBool(p.get(key))
	return b
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

type obj = map[string]any

func slackErr(code string) obj { return obj{"ok": false, "error": code} }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ---- Web API ----

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	if f := s.beginCall(method); f != nil {
		writeFault(w, f)
		return
	}
	p, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusOK, slackErr("invalid_form_data"))
		return
	}
	if code := s.checkAuth(r, p); code != "" {
		writeJSON(w, http.StatusOK, slackErr(code))
		return
	}
	var resp obj
	switch method {
	case "auth.test":
		resp = s.authTest()
	case "chat.postMessage":
		resp = s.postMessage(p)
	case "chat.update":
		resp = s.update(p)
	case "chat.postEphemeral":
		resp = s.postEphemeral(p)
	case "reactions.add":
		resp = s.reaction(p, true)
	case "reactions.remove":
		resp = s.reaction(p, false)
	case "conversations.replies":
		resp = s.replies(p)
	default:
		resp = slackErr("unknown_method")
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) checkAuth(r *http.Request, p params) string {
	tok := bearer(r)
	if tok == "" {
		tok = p.get("token")
	}
	if s.opts.Token == "" {
		return ""
	}
	if tok == "" {
		return "not_authed"
	}
	if tok != s.opts.Token {
		return "invalid_auth"
	}
	return ""
}

func (s *Server) authTest() obj {
	return obj{
		"ok":      true,
		"url":     "https://" + s.opts.TeamName + ".slack.local/",
		"team":    s.opts.TeamName,
		"user":    s.opts.BotName,
		"team_id": s.opts.TeamID,
		"user_id": s.opts.BotUserID,
		"bot_id":  s.opts.BotID,
	}
}

// checkChannel validates a channel for reads (write=false) or writes.
func (s *Server) checkChannel(ch string, write bool) string {
	if ch == "" || s.missing[ch] {
		return "channel_not_found"
	}
	if write && s.archived[ch] {
		return "is_archived"
	}
	return ""
}

// content validates text/blocks and parses blocks and metadata.
func content(p params) (text string, blocks json.RawMessage, md *Metadata, code string) {
	text = p.get("text")
	if b := strings.TrimSpace(p.get("blocks")); b != "" && b != "[]" {
		if !json.Valid([]byte(b)) {
			return "", nil, nil, "invalid_blocks_format"
		}
		blocks = json.RawMessage(b)
	}
	if text == "" && blocks == nil && strings.TrimSpace(p.get("attachments")) == "" {
		return "", nil, nil, "no_text"
	}
	if utf8.RuneCountInString(text) > MaxTextLength {
		return "", nil, nil, "msg_too_long"
	}
	if m := strings.TrimSpace(p.get("metadata")); m != "" {
		md = &Metadata{}
		if err := json.Unmarshal([]byte(m), md); err != nil || md.EventType == "" {
			return "", nil, nil, "invalid_metadata_format"
		}
	}
	return text, blocks, md, ""
}

func (s *Server) nextTSLocked() string {
	s.seq++
	n := s.seq * 100
	return fmt.Sprintf("%d.%06d", 1700000000+n/1000000, n%1000000)
}

func (s *Server) messageJSON(m *message, withMeta bool) obj {
	o := obj{
		"type":    "message",
		"user":    s.opts.BotUserID,
		"bot_id":  s.opts.BotID,
		"text":    m.text,
		"ts":      m.ts,
		"channel": m.channel,
	}
	if m.threadTS != "" {
		o["thread_ts"] = m.threadTS
	}
	if m.blocks != nil {
		o["blocks"] = m.blocks
	}
	if withMeta && m.metadata != nil {
		o["metadata"] = m.metadata
	}
	if m.edited {
		o["edited"] = obj{"user": s.opts.BotUserID}
	}
	return o
}

func (s *Server) postMessage(p params) obj {
	ch := p.get("channel")
	if code := s.checkChannel(ch, true); code != "" {
		return slackErr(code)
	}
	text, blocks, md, code := content(p)
	if code != "" {
		return slackErr(code)
	}
	threadTS := p.get("thread_ts")
	s.mu.Lock()
	m := &message{channel: ch, ts: s.nextTSLocked(), threadTS: threadTS, text: text, blocks: blocks, metadata: md}
	s.messages[ch] = append(s.messages[ch], m)
	post := Post{Method: "chat.postMessage", Channel: ch, Text: text, ThreadTS: threadTS, TS: m.ts,
		Blocks: blocks, Metadata: md, At: s.opts.Now()}
	s.posts = append(s.posts, post)
	s.wakeLocked()
	msg := s.messageJSON(m, true)
	s.mu.Unlock()
	s.printPost(post)
	return obj{"ok": true, "channel": ch, "ts": m.ts, "message": msg}
}

func (s *Server) findLocked(ch, ts string) *message {
	for _, m := range s.messages[ch] {
		if m.ts == ts {
			return m
		}
	}
	return nil
}

func (s *Server) update(p params) obj {
	ch, ts := p.get("channel"), p.get("ts")
	if code := s.checkChannel(ch, true); code != "" {
		return slackErr(code)
	}
	text, blocks, md, code := content(p)
	if code != "" {
		return slackErr(code)
	}
	s.mu.Lock()
	m := s.findLocked(ch, ts)
	if m == nil {
		s.mu.Unlock()
		return slackErr("message_not_found")
	}
	m.text, m.blocks, m.edited = text, blocks, true
	if md != nil {
		m.metadata = md
	}
	msg := s.messageJSON(m, true)
	s.mu.Unlock()
	s.printLine("#%s (update %s) %s: %s", ch, ts, s.opts.BotName, preview(text, blocks))
	return obj{"ok": true, "channel": ch, "ts": ts, "text": text, "message": msg}
}

func (s *Server) postEphemeral(p params) obj {
	ch, user := p.get("channel"), p.get("user")
	if code := s.checkChannel(ch, true); code != "" {
		return slackErr(code)
	}
	if user == "" {
		return slackErr("user_not_in_channel")
	}
	text, blocks, _, code := content(p)
	if code != "" {
		return slackErr(code)
	}
	s.mu.Lock()
	post := Post{Method: "chat.postEphemeral", Channel: ch, Text: text, ThreadTS: p.get("thread_ts"),
		TS: s.nextTSLocked(), Blocks: blocks, User: user, At: s.opts.Now()}
	s.posts = append(s.posts, post)
	s.wakeLocked()
	s.mu.Unlock()
	s.printPost(post)
	return obj{"ok": true, "message_ts": post.TS}
}

func (s *Server) reaction(p params, add bool) obj {
	ch, ts, name := p.get("channel"), p.get("timestamp"), strings.Trim(p.get("name"), ":")
	if code := s.checkChannel(ch, add); code != "" {
		return slackErr(code)
	}
	if ts == "" {
		return slackErr("no_item_specified")
	}
	if name == "" {
		return slackErr("invalid_name")
	}
	key := Reaction{Channel: ch, Timestamp: ts, Name: name}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case add && s.reactions[key]:
		return slackErr("already_reacted")
	case !add && !s.reactions[key]:
		return slackErr("no_reaction")
	case add:
		s.reactions[key] = true
	default:
		delete(s.reactions, key)
	}
	return obj{"ok": true}
}

func (s *Server) replies(p params) obj {
	ch, ts := p.get("channel"), p.get("ts")
	if code := s.checkChannel(ch, false); code != "" {
		return slackErr(code)
	}
	if ts == "" {
		return slackErr("thread_not_found")
	}
	withMeta := p.bool("include_all_metadata")
	s.mu.Lock()
	defer s.mu.Unlock()
	var parent *message
	var thread []*message
	for _, m := range s.messages[ch] {
		switch {
		case m.ts == ts:
			parent = m
		case m.threadTS == ts:
			thread = append(thread, m)
		}
	}
	if parent == nil && len(thread) == 0 {
		return slackErr("thread_not_found")
	}
	msgs := []obj{}
	if parent != nil {
		o := s.messageJSON(parent, withMeta)
		if len(thread) > 0 {
			o["thread_ts"] = parent.ts
			o["reply_count"] = len(thread)
		}
		msgs = append(msgs, s.withReactionsLocked(o, parent))
	}
	for _, m := range thread {
		msgs = append(msgs, s.withReactionsLocked(s.messageJSON(m, withMeta), m))
	}
	return obj{"ok": true, "messages": msgs, "has_more": false,
		"response_metadata": obj{"next_cursor": ""}}
}

func (s *Server) withReactionsLocked(o obj, m *message) obj {
	var rs []obj
	for r := range s.reactions {
		if r.Channel == m.channel && r.Timestamp == m.ts {
			rs = append(rs, obj{"name": r.Name, "count": 1, "users": []string{s.opts.BotUserID}})
		}
	}
	if len(rs) > 0 {
		sort.Slice(rs, func(i, j int) bool { return rs[i]["name"].(string) < rs[j]["name"].(string) })
		o["reactions"] = rs
	}
	return o
}

// ---- response_url ----

func (s *Server) handleResponseURL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := r.PathValue("id")
	if f := s.beginCall(ResponseURLMethod); f != nil {
		writeFault(w, f)
		return
	}
	var body struct {
		Text            string          `json:"text"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		Blocks          json.RawMessage `json:"blocks"`
		ThreadTS        string          `json:"thread_ts"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 10<<20)).Decode(&body); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	if string(body.Blocks) == "null" {
		body.Blocks = nil
	}
	if body.Text == "" && body.Blocks == nil {
		http.Error(w, "no_text", http.StatusBadRequest)
		return
	}
	if utf8.RuneCountInString(body.Text) > MaxTextLength {
		http.Error(w, "msg_too_long", http.StatusBadRequest)
		return
	}
	post := Post{Method: ResponseURLMethod, Text: body.Text, ThreadTS: body.ThreadTS, Blocks: body.Blocks,
		ResponseID: id, ResponseType: body.ResponseType, ReplaceOriginal: body.ReplaceOriginal}
	s.mu.Lock()
	post.At = s.opts.Now()
	s.posts = append(s.posts, post)
	s.wakeLocked()
	s.mu.Unlock()
	s.printPost(post)
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

// ---- Out ----

func preview(text string, blocks json.RawMessage) string {
	if text == "" && blocks != nil {
		return "[blocks]"
	}
	text = strings.Join(strings.Fields(text), " ")
	const max = 160
	if utf8.RuneCountInString(text) > max {
		text = string([]rune(text)[:max]) + "…"
	}
	return text
}

func (s *Server) printPost(p Post) {
	if s.opts.Out == nil {
		return
	}
	var where string
	switch p.Method {
	case ResponseURLMethod:
		where = "response_url " + p.ResponseID
		if p.ResponseType != "" {
			where += " (" + p.ResponseType + ")"
		}
	case "chat.postEphemeral":
		where = "#" + p.Channel + " (ephemeral to " + p.User + ")"
	default:
		where = "#" + p.Channel
		if p.ThreadTS != "" {
			where += " (thread " + p.ThreadTS + ")"
		}
	}
	line := where + " " + s.opts.BotName + ": " + preview(p.Text, p.Blocks)
	if p.Metadata != nil {
		line += " [metadata " + p.Metadata.EventType + "]"
	}
	s.printLine("%s", line)
}

func (s *Server) printLine(format string, args ...any) {
	if s.opts.Out == nil {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.opts.Out, "slack ▸ "+format+"\n", args...)
}

// ---- control API ----

type controlFault struct {
	Method            string  `json:"method"`
	N                 *int    `json:"n"`
	Error             string  `json:"error"`
	RetryAfterSeconds float64 `json:"retry_after_seconds"`
	Status            int     `json:"status"`
}

func readControl(w http.ResponseWriter, r *http.Request) (controlFault, int, bool) {
	var c controlFault
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&c); err != nil {
		writeJSON(w, http.StatusBadRequest, slackErr("invalid_json"))
		return c, 0, false
	}
	if c.Method == "" {
		writeJSON(w, http.StatusBadRequest, slackErr("method_required"))
		return c, 0, false
	}
	n := 1
	if c.N != nil {
		n = *c.N
	}
	return c, n, true
}

func (s *Server) ctlPosts(w http.ResponseWriter, _ *http.Request) {
	posts := s.Posts()
	if posts == nil {
		posts = []Post{}
	}
	writeJSON(w, http.StatusOK, posts)
}

func (s *Server) ctlReactions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Reactions())
}

func (s *Server) ctlCalls(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, obj{"calls": s.Calls(r.URL.Query().Get("method"))})
}

func (s *Server) ctlFail(w http.ResponseWriter, r *http.Request) {
	c, n, ok := readControl(w, r)
	if !ok {
		return
	}
	if c.Error == "" {
		writeJSON(w, http.StatusBadRequest, slackErr("error_required"))
		return
	}
	s.FailNext(c.Method, n, c.Error)
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

func (s *Server) ctlRateLimit(w http.ResponseWriter, r *http.Request) {
	c, n, ok := readControl(w, r)
	if !ok {
		return
	}
	s.RateLimitNext(c.Method, n, time.Duration(c.RetryAfterSeconds*float64(time.Second)))
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

func (s *Server) ctlFailHTTP(w http.ResponseWriter, r *http.Request) {
	c, n, ok := readControl(w, r)
	if !ok {
		return
	}
	if c.Status < 400 || c.Status > 599 {
		writeJSON(w, http.StatusBadRequest, slackErr("status_must_be_4xx_or_5xx"))
		return
	}
	s.FailHTTPNext(c.Method, n, c.Status)
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

func (s *Server) ctlReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

// ---- control client ----

// Client drives a Server in another process through its /_control/ API.
type Client struct {
	// BaseURL is the server's base URL, as returned by Start (trailing slash optional).
	BaseURL string
	// HTTP is the client to use (http.DefaultClient when nil).
	HTTP *http.Client
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("localslack control %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("localslack control %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("localslack control %s: HTTP %d: %s", path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("localslack control %s: %w", path, err)
		}
	}
	return nil
}

// Posts returns the server's recorded posts.
func (c *Client) Posts(ctx context.Context) ([]Post, error) {
	var posts []Post
	err := c.do(ctx, http.MethodGet, "/_control/posts", nil, &posts)
	return posts, err
}

// Reactions returns the server's current reactions.
func (c *Client) Reactions(ctx context.Context) ([]Reaction, error) {
	var rs []Reaction
	err := c.do(ctx, http.MethodGet, "/_control/reactions", nil, &rs)
	return rs, err
}

// Fail is FailNext over HTTP.
func (c *Client) Fail(ctx context.Context, method string, n int, slackError string) error {
	return c.do(ctx, http.MethodPost, "/_control/fail", obj{"method": method, "n": n, "error": slackError}, nil)
}

// RateLimit is RateLimitNext over HTTP (retryAfter rounded up to whole seconds).
func (c *Client) RateLimit(ctx context.Context, method string, n int, retryAfter time.Duration) error {
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	return c.do(ctx, http.MethodPost, "/_control/ratelimit",
		obj{"method": method, "n": n, "retry_after_seconds": secs}, nil)
}

// FailHTTP is FailHTTPNext over HTTP.
func (c *Client) FailHTTP(ctx context.Context, method string, n int, status int) error {
	return c.do(ctx, http.MethodPost, "/_control/failhttp", obj{"method": method, "n": n, "status": status}, nil)
}

// Reset is Server.Reset over HTTP.
func (c *Client) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/_control/reset", obj{}, nil)
}

// Calls is Server.Calls over HTTP.
func (c *Client) Calls(ctx context.Context, method string) (int, error) {
	var out struct {
		Calls int `json:"calls"`
	}
	err := c.do(ctx, http.MethodGet, "/_control/calls?method="+url.QueryEscape(method), nil, &out)
	return out.Calls, err
}

// WaitPosts polls until at least n posts are recorded or ctx is done, and returns them.
func (c *Client) WaitPosts(ctx context.Context, n int) ([]Post, error) {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		posts, err := c.Posts(ctx)
		if err == nil && len(posts) >= n {
			return posts, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("have %d posts", len(posts))
			}
			return posts, fmt.Errorf("localslack: waiting for %d posts: %w (%v)", n, ctx.Err(), err)
		case <-t.C:
		}
	}
}

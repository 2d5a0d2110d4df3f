package fakeslack

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// params holds a request's arguments from a form/query or a JSON body.
type params struct {
	form url.Values
	json map[string]json.RawMessage
	// token is the call's token and caller who it speaks for (set once it is checked).
	token  string
	caller Caller
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

// invalidArgs is Slack's answer to arguments that fail its schema checks: invalid_arguments
// with one "[ERROR] …" line per problem in response_metadata.messages.
func invalidArgs(msgs ...string) obj {
	return obj{"ok": false, "error": "invalid_arguments", "response_metadata": obj{"messages": msgs}}
}

// argError is one invalid_arguments line, pointing at the argument when pointer is set.
func argError(problem, pointer string) string {
	if pointer == "" {
		return "[ERROR] " + problem
	}
	return "[ERROR] " + problem + " [json-pointer:" + pointer + "]"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiMethods are the Web API methods served; each has its scope in methodScopes.
var apiMethods = map[string]func(*Server, params) obj{
	"auth.test":             (*Server).authTest,
	"chat.postMessage":      (*Server).postMessage,
	"chat.update":           (*Server).update,
	"chat.postEphemeral":    (*Server).postEphemeral,
	"chat.delete":           (*Server).deleteMessage,
	"reactions.add":         func(s *Server, p params) obj { return s.reaction(p, true) },
	"reactions.remove":      func(s *Server, p params) obj { return s.reaction(p, false) },
	"conversations.replies": (*Server).replies,
	"conversations.history": (*Server).history,
	"views.open":            (*Server).viewsOpen,
	"views.push":            (*Server).viewsPush,
	"views.update":          (*Server).viewsUpdate,
	"chat.startStream":      (*Server).startStream,
	"chat.appendStream":     (*Server).appendStream,
	"chat.stopStream":       (*Server).stopStream,

	"assistant.threads.setStatus":           (*Server).setStatus,
	"assistant.threads.setSuggestedPrompts": (*Server).setSuggestedPrompts,
	"assistant.threads.setTitle":            (*Server).setTitle,

	"auth.revoke":    (*Server).authRevoke,
	"apps.uninstall": (*Server).appsUninstall,
}

// handleAPI answers /api/{method}, checking in Slack's order: the token, that the method
// exists, its scope, then its arguments.
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	if f := s.beginCall(method); f.losesResponse() {
		defer loseAnswer(w)
		w = &answerLost{}
	} else if f != nil {
		writeFault(w, f)
		return
	}
	p, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusOK, slackErr("invalid_form_data"))
		return
	}
	if method == "oauth.v2.access" { // authenticated by the client id and secret
		writeJSON(w, http.StatusOK, s.oauthAccess(r, p))
		return
	}
	if code := s.checkAuth(r, &p); code != "" {
		writeJSON(w, http.StatusOK, slackErr(code))
		return
	}
	serve, ok := apiMethods[method]
	if !ok {
		writeJSON(w, http.StatusOK, slackErr("unknown_method"))
		return
	}
	if needed := s.missingScope(method, p); needed != "" {
		writeJSON(w, http.StatusOK, s.missingScopeResponse(p.token, needed))
		return
	}
	if !s.visible(p) {
		writeJSON(w, http.StatusOK, slackErr("channel_not_found"))
		return
	}
	if wait := s.rateLimit(method, p); wait > 0 {
		writeFault(w, &fault{kind: faultRateLimit, retryAfter: wait})
		return
	}
	writeJSON(w, http.StatusOK, serve(s, p))
}

// checkAuth finds who the call's token speaks for (p.caller), or answers Slack's error.
func (s *Server) checkAuth(r *http.Request, p *params) string {
	tok := bearer(r)
	if tok == "" {
		tok = p.get("token")
	}
	s.mu.Lock()
	c, err := s.callerLocked(tok)
	s.mu.Unlock()
	if err != nil {
		return err.Error()
	}
	p.token, p.caller = tok, c
	return ""
}

// visible is whether the caller's workspace sees the conversation the call names (channel,
// or channel_id for assistant threads); a call naming none is let through.
func (s *Server) visible(p params) bool {
	ch := p.get("channel")
	if ch == "" {
		ch = p.get("channel_id")
	}
	if ch == "" {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.canSeeLocked(p.caller, ch)
}

// authTest answers who the token speaks for.
func (s *Server) authTest(p params) obj {
	c := p.caller
	out := obj{
		"ok":      true,
		"url":     "https://" + c.TeamName + ".slack.local/",
		"team":    c.TeamName,
		"user":    s.opts.BotName,
		"team_id": c.Team,
		"user_id": c.BotUserID,
		"bot_id":  c.BotID,
	}
	if c.EnterpriseID != "" {
		out["enterprise_id"] = c.EnterpriseID
	}
	if c.OrgWide {
		s.mu.Lock()
		ent := s.enterpriseLocked(c.EnterpriseID)
		s.mu.Unlock()
		out["is_enterprise_install"] = true
		out["url"] = "https://" + ent.EnterpriseName + ".enterprise.slack.local/"
		out["team"] = ent.EnterpriseName
	}
	return out
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

// msgContent is what a call posting or updating a message carries.
type msgContent struct {
	text     string // the text argument: what shows without blocks, else the notification fallback
	markdown string // the markdown_text argument, which stands in for text
	blocks   json.RawMessage
	metadata *Metadata
	// attachmentsOnly is set when the call carries attachments and no text, markdown or
	// blocks (chat.update then keeps the message's blocks).
	attachmentsOnly bool
}

// body is the message's text as the Web API returns it: markdown_text when that was sent,
// else text.
func (c msgContent) body() string {
	if c.markdown != "" {
		return c.markdown
	}
	return c.text
}

// content reads and checks a message's text, markdown_text, blocks and metadata, answering
// Slack's error (non-nil) when they break one of its rules.
func content(p params) (msgContent, obj) {
	c := msgContent{text: p.get("text"), markdown: p.get("markdown_text")}
	var bad obj
	if c.blocks, bad = readBlocks(p.get("blocks"), "/blocks", MaxBlocks); bad != nil {
		return c, bad
	}
	attachments := strings.TrimSpace(p.get("attachments")) != ""
	switch {
	case c.text == "" && c.markdown == "" && c.blocks == nil && !attachments:
		return c, slackErr("no_text")
	case utf8.RuneCountInString(c.text) > MaxTextLength:
		return c, slackErr("msg_too_long")
	// markdown_text "should not be used in conjunction with blocks or text" (chat.postMessage
	// reference); Slack's answer is markdown_text_conflict as far as we know, and refusing
	// is stricter than ignoring one of them in any case.
	case c.markdown != "" && (c.text != "" || c.blocks != nil):
		return c, slackErr("markdown_text_conflict")
	case utf8.RuneCountInString(c.markdown) > MaxMarkdownText:
		return c, slackErr("msg_too_long")
	}
	c.attachmentsOnly = attachments && c.text == "" && c.markdown == "" && c.blocks == nil
	md, code := readMetadata(p)
	if code != "" {
		return c, slackErr(code)
	}
	c.metadata = md
	return c, nil
}

// readMetadata reads the `metadata` argument (nil when absent).
func readMetadata(p params) (*Metadata, string) {
	m := strings.TrimSpace(p.get("metadata"))
	if m == "" {
		return nil, ""
	}
	md := &Metadata{}
	if err := json.Unmarshal([]byte(m), md); err != nil || md.EventType == "" {
		return nil, "invalid_metadata_format"
	}
	return md, ""
}

func (s *Server) postMessage(p params) obj {
	ch := p.get("channel")
	if code := s.checkChannel(ch, true); code != "" {
		return slackErr(code)
	}
	c, bad := content(p)
	if bad != nil {
		return bad
	}
	threadTS := p.get("thread_ts")
	s.mu.Lock()
	ts, at := s.nextTSLocked()
	m := &message{channel: ch, ts: ts, at: at, threadTS: threadTS, user: p.caller.BotUserID, botID: p.caller.BotID, bot: true,
		text: c.body(), blocks: c.blocks, metadata: c.metadata}
	s.insertLocked(m)
	post := Post{Method: "chat.postMessage", Channel: ch, Text: c.text, MarkdownText: c.markdown, ThreadTS: threadTS,
		TS: ts, Blocks: c.blocks, Metadata: c.metadata, Team: s.owners[ch]}
	s.recordLocked(post)
	msg := s.messageJSONLocked(m, true, 0)
	cleared := s.replyInThreadLocked(ch, threadTS)
	s.mu.Unlock()
	s.printPost(post)
	s.printLines(appendLine(nil, cleared))
	return obj{"ok": true, "channel": ch, "ts": ts, "message": msg}
}

// update is chat.update. It replaces the whole message, a streamed one too: with blocks
// when the call has them, else with its text (or markdown_text). A call with attachments
// only keeps the message's blocks, as Slack's reference says. Slack shows "(edited)" only
// for an update without blocks.
func (s *Server) update(p params) obj {
	ch, ts := p.get("channel"), p.get("ts")
	if code := s.checkChannel(ch, true); code != "" {
		return slackErr(code)
	}
	c, bad := content(p)
	if bad != nil {
		return bad
	}
	s.mu.Lock()
	m := s.findLocked(ch, ts)
	switch {
	case m == nil:
		s.mu.Unlock()
		return slackErr("message_not_found")
	case !m.bot:
		s.mu.Unlock()
		return slackErr("cant_update_message")
	}
	var expired string
	if m.stream != nil {
		if expired = s.expireStreamLocked(m.stream); m.stream.State == Streaming {
			s.mu.Unlock()
			return slackErr("streaming_state_conflict")
		}
	}
	m.text, m.edited, m.replaced = c.body(), true, true
	if !c.attachmentsOnly {
		m.blocks = c.blocks
	}
	m.editedShown = c.blocks == nil
	if c.metadata != nil {
		m.metadata = c.metadata
	}
	msg := s.messageJSONLocked(m, true, 0)
	s.mu.Unlock()
	s.printLines(appendLine(nil, expired))
	s.printLine("#%s (update %s) %s: %s", ch, ts, s.opts.BotName, preview(c.body(), c.blocks))
	return obj{"ok": true, "channel": ch, "ts": ts, "text": c.body(), "message": msg}
}

// deleteMessage is chat.delete: a bot token deletes only the bot's own messages.
func (s *Server) deleteMessage(p params) obj {
	ch, ts := p.get("channel"), p.get("ts")
	if code := s.checkChannel(ch, true); code != "" {
		return slackErr(code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findLocked(ch, ts)
	switch {
	case m == nil:
		return slackErr("message_not_found")
	case !m.bot:
		return slackErr("cant_delete_message")
	}
	s.deleteLocked(m)
	return obj{"ok": true, "channel": ch, "ts": ts}
}

func (s *Server) postEphemeral(p params) obj {
	ch, user := p.get("channel"), p.get("user")
	if code := s.checkChannel(ch, true); code != "" {
		return slackErr(code)
	}
	if user == "" {
		return slackErr("user_not_in_channel")
	}
	c, bad := content(p)
	if bad != nil {
		return bad
	}
	threadTS := p.get("thread_ts")
	s.mu.Lock()
	ts, at := s.nextTSLocked()
	s.insertEphemeralLocked(&message{channel: ch, ts: ts, at: at, threadTS: threadTS, user: p.caller.BotUserID, botID: p.caller.BotID, bot: true,
		text: c.body(), blocks: c.blocks, to: user})
	post := Post{Method: "chat.postEphemeral", Channel: ch, Text: c.text, MarkdownText: c.markdown,
		ThreadTS: threadTS, TS: ts, Blocks: c.blocks, User: user, Team: s.owners[ch]}
	s.recordLocked(post)
	s.mu.Unlock()
	s.printPost(post)
	return obj{"ok": true, "message_ts": ts}
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

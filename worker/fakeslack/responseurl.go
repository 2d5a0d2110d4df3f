package fakeslack

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"
)

// ResponseURLMethod is the method name under which response_url posts are counted, faulted
// (FailNext etc.) and recorded (Post.Method).
const ResponseURLMethod = "response_url"

// Slack's limits on one response_url: it takes up to ResponseURLUses posts within
// ResponseURLLifetime of the command or interaction it came with.
const (
	ResponseURLUses     = 5
	ResponseURLLifetime = 30 * time.Minute
)

// Origin is what a response_url answers: the slash command or interaction Slack issued it
// with. A response_url whose origin the server knows (see ResponseURLFrom) posts real
// messages; one issued without (ResponseURL) only records its posts.
type Origin struct {
	// Channel is the conversation of the command or interaction (channel_id, channel.id).
	Channel string `json:"channel"`
	// User is who ran the command or acted: ephemeral answers are shown to them alone.
	User string `json:"user"`
	// MessageTS is the message the interaction was on (container.message_ts, message.ts):
	// the one replace_original replaces and delete_original deletes. It is empty for a slash
	// command and for interactions not on a message (shortcuts, modals), which have no
	// original message. The server must have that message (posted by the bot, or shown to
	// User as an ephemeral one), as Slack has every message a button can be clicked on.
	MessageTS string `json:"message_ts,omitempty"`
	// Ephemeral says the message MessageTS is an ephemeral message shown to User
	// (container.is_ephemeral).
	Ephemeral bool `json:"is_ephemeral,omitempty"`
}

// responseHook is one response_url the server issued or was posted to.
type responseHook struct {
	origin Origin
	known  bool // origin was registered (ResponseURLFrom)
	issued time.Time
	uses   int
}

// ResponseURL is a response_url that records posts under id, issued now (its
// ResponseURLLifetime starts at the first ResponseURL or ResponseURLFrom call for id, or at
// its first post). Its origin is unknown: its posts are recorded (Posts) but show nowhere.
// To make them messages, issue it with ResponseURLFrom. It is relative ("/response/id")
// until Start.
func (s *Server) ResponseURL(id string) string {
	s.mu.Lock()
	s.hookLocked(id)
	s.mu.Unlock()
	return s.responseURL(id)
}

// ResponseURLFrom is ResponseURL for a response_url whose origin is known: its posts become
// messages as in Slack. An in_channel post is a message in o.Channel (Messages, Rendered); an
// ephemeral one (the default) a message shown to o.User alone (Ephemerals); thread_ts puts
// either in a thread. replace_original replaces the message o.MessageTS in place, keeping its
// ts, whether it is a channel or an ephemeral message, and keeps it so (Slack's replacement
// does not change the message's response_type); delete_original deletes it, and what the
// post carries then comes as a new message. Without an original message (a slash command),
// replace_original replaces nothing and the post is a new message, as Slack does it. A
// response_url takes ResponseURLUses posts within ResponseURLLifetime on the server's clock;
// later posts are refused with HTTP 404 (used_url, expired_url).
//
// Calling it again for an issued id changes its origin, not its issue time or uses.
func (s *Server) ResponseURLFrom(id string, o Origin) string {
	s.mu.Lock()
	h := s.hookLocked(id)
	h.origin, h.known = o, o.Channel != ""
	s.mu.Unlock()
	return s.responseURL(id)
}

func (s *Server) responseURL(id string) string {
	base := s.url()
	if base == "" {
		base = "/"
	}
	return base + "response/" + url.PathEscape(id)
}

// hookLocked returns the response_url id, issuing it now when it is new.
func (s *Server) hookLocked(id string) *responseHook {
	h := s.hooks[id]
	if h == nil {
		h = &responseHook{issued: s.opts.Now()}
		s.hooks[id] = h
	}
	return h
}

// responseBody is a response_url post, as Slack reads it.
type responseBody struct {
	Text            string          `json:"text"`
	ResponseType    string          `json:"response_type"`
	ReplaceOriginal bool            `json:"replace_original"`
	DeleteOriginal  bool            `json:"delete_original"`
	Blocks          json.RawMessage `json:"blocks"`
	ThreadTS        string          `json:"thread_ts"`
}

// handleResponseURL takes a post to a response_url (see ResponseURL, ResponseURLFrom). Like
// Slack's, it takes a JSON body and needs no token; refusals are an HTTP error status with
// the error code as the body.
func (s *Server) handleResponseURL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := r.PathValue("id")
	if f := s.beginCall(ResponseURLMethod); f.losesResponse() {
		defer loseAnswer(w)
		w = &answerLost{}
	} else if f != nil {
		writeFault(w, f)
		return
	}
	var body responseBody
	if err := json.NewDecoder(io.LimitReader(r.Body, 10<<20)).Decode(&body); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	if string(body.Blocks) == "null" {
		body.Blocks = nil
	}
	blocks, bad := readBlocks(string(body.Blocks), "/blocks", MaxBlocks)
	if bad != nil {
		http.Error(w, bad["error"].(string), http.StatusBadRequest)
		return
	}
	body.Blocks = blocks
	if body.Text == "" && body.Blocks == nil && !body.DeleteOriginal {
		http.Error(w, "no_text", http.StatusBadRequest)
		return
	}
	if utf8.RuneCountInString(body.Text) > MaxTextLength {
		http.Error(w, "msg_too_long", http.StatusBadRequest)
		return
	}

	s.mu.Lock()
	h := s.hookLocked(id)
	var refused string
	switch {
	// Slack's answers past the limits, as far as we know: HTTP 404 with these codes.
	case s.opts.Now().Sub(h.issued) > ResponseURLLifetime:
		refused = "expired_url"
	case h.uses >= ResponseURLUses:
		refused = "used_url"
	}
	if refused != "" {
		s.mu.Unlock()
		s.printLine("response_url %s refused: %s", id, refused)
		http.Error(w, refused, http.StatusNotFound)
		return
	}
	post := Post{Method: ResponseURLMethod, Text: body.Text, ThreadTS: body.ThreadTS, Blocks: body.Blocks,
		ResponseID: id, ResponseType: body.ResponseType, ReplaceOriginal: body.ReplaceOriginal,
		DeleteOriginal: body.DeleteOriginal}
	var line, cleared string
	if h.known {
		var code string
		if post, line, cleared, code = s.applyResponseLocked(h.origin, body, post); code != "" {
			s.mu.Unlock()
			s.printLine("response_url %s refused: %s", id, code)
			http.Error(w, code, http.StatusNotFound)
			return
		}
	}
	h.uses++
	s.recordLocked(post)
	s.mu.Unlock()
	if line == "" {
		s.printPost(post)
	} else {
		s.printLine("%s", line)
	}
	s.printLines(appendLine(nil, cleared))
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

// applyResponseLocked makes a response_url post from o what Slack makes of it: a replaced or
// deleted original message, and a new message for what it carries otherwise. It returns the
// post with its channel, ts and recipient, the Out line, any assistant-status line, and an
// error code when the original message is not there.
func (s *Server) applyResponseLocked(o Origin, b responseBody, post Post) (Post, string, string, string) {
	post.Channel = o.Channel
	ephemeral := b.ResponseType != "in_channel" // Slack's default is ephemeral
	where := "#" + o.Channel + " (response_url " + post.ResponseID
	hasOriginal := o.MessageTS != "" && (b.ReplaceOriginal || b.DeleteOriginal)
	var orig *message
	if hasOriginal {
		if o.Ephemeral {
			orig = s.findEphemeralLocked(o.Channel, o.MessageTS, o.User)
		} else {
			orig = s.findLocked(o.Channel, o.MessageTS)
		}
		if orig == nil {
			return post, "", "", "message_not_found"
		}
	}
	hasContent := b.Text != "" || b.Blocks != nil
	switch {
	case orig != nil && b.DeleteOriginal:
		if orig.to != "" {
			s.deleteEphemeralLocked(orig)
		} else {
			s.deleteLocked(orig)
		}
		post.TS = orig.ts
		where += ", deletes " + orig.ts
		if !hasContent {
			return post, where + ") " + s.opts.BotName + ": [deleted]", "", ""
		}
	case orig != nil: // replace_original: the message keeps its ts, place and audience
		orig.text, orig.blocks, orig.replaced = b.Text, b.Blocks, true
		post.TS, post.User = orig.ts, orig.to
		where += ", replaces " + orig.ts
		if orig.to != "" {
			where += ", ephemeral to " + orig.to
		}
		return post, where + ") " + s.opts.BotName + ": " + preview(b.Text, b.Blocks), "", ""
	}
	if !hasContent {
		return post, where + ", nothing to delete) " + s.opts.BotName + ": [nothing]", "", ""
	}
	ts, at := s.nextTSLocked()
	m := &message{channel: o.Channel, ts: ts, at: at, threadTS: b.ThreadTS, user: s.opts.BotUserID, bot: true,
		text: b.Text, blocks: b.Blocks}
	post.TS = ts
	var cleared string
	if ephemeral {
		m.to, post.User = o.User, o.User
		s.insertEphemeralLocked(m)
		where += ", ephemeral to " + o.User
	} else {
		s.insertLocked(m)
		where += ", in_channel"
		cleared = s.replyInThreadLocked(o.Channel, b.ThreadTS)
	}
	if b.ThreadTS != "" {
		where += ", thread " + b.ThreadTS
	}
	return post, where + ") " + s.opts.BotName + ": " + preview(b.Text, b.Blocks), cleared, ""
}

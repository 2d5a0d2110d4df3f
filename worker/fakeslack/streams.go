package fakeslack

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Streamed messages as Slack serves them: chat.startStream posts a message that then grows
// by chat.appendStream calls until chat.stopStream ends it, or it ends by itself (idle
// timeout, or its lifetime since the start). While it streams, chat.update refuses it
// (streaming_state_conflict); once it has ended, appends and stops are refused
// (message_not_in_streaming_state). conversations.replies and conversations.history show it
// with its text so far; Rendered shows it as a client does.

// MaxStreamChunk is the most markdown text, in characters, one streaming call may carry
// (markdown_text, or its markdown_text chunks together).
const MaxStreamChunk = MaxMarkdownText

// MaxStreamText is the most text, in characters, a streamed message may grow to. Slack does
// not document this limit; the server uses the message text limit.
const MaxStreamText = MaxTextLength

// DefaultStreamIdleTimeout is how long a stream stays open without an append, unless
// Options.StreamIdleTimeout says otherwise. Slack documents no figure; developers report
// streams ended after a few minutes.
const DefaultStreamIdleTimeout = 5 * time.Minute

// DefaultStreamLifetime is how long a stream stays open after chat.startStream however
// often it is appended to, unless Options.StreamLifetime says otherwise. Slack documents no
// figure; field reports in the Slack SDKs' trackers (python-slack-sdk #1859,
// node-slack-sdk #2702) saw streams end about 5 minutes after their start, later calls
// answering message_not_in_streaming_state.
const DefaultStreamLifetime = 5 * time.Minute

// StreamState is whether a streamed message is still open.
type StreamState string

// The states of a stream.
const (
	Streaming     StreamState = "streaming"
	StreamStopped StreamState = "stopped"
)

// StreamCall is one call on a stream, with the content it carried.
type StreamCall struct {
	// Method is "chat.startStream", "chat.appendStream" or "chat.stopStream".
	Method       string          `json:"method"`
	MarkdownText string          `json:"markdown_text,omitempty"`
	Chunks       json.RawMessage `json:"chunks,omitempty"`
	At           time.Time       `json:"at"`
}

// Stream is a streamed message: where it is, what it holds so far and whether it is open.
type Stream struct {
	Channel         string      `json:"channel"`
	TS              string      `json:"ts"`
	ThreadTS        string      `json:"thread_ts,omitempty"`
	RecipientUserID string      `json:"recipient_user_id,omitempty"`
	RecipientTeamID string      `json:"recipient_team_id,omitempty"`
	State           StreamState `json:"state"`
	// EndedBy is "chat.stopStream", or for a stream that ended by itself "idle" (no append
	// for Options.StreamIdleTimeout) or "lifetime" (Options.StreamLifetime after its start).
	EndedBy string `json:"ended_by,omitempty"`
	// Text is the markdown text so far: every call's markdown_text (or markdown_text
	// chunks), in order. It is what was streamed: a chat.update after the stream ended
	// changes the message (conversations.replies shows it) but not this record.
	Text string `json:"text"`
	// Tasks are the task cards the stream's task_update chunks drew, in the order they first
	// appeared, each in its latest state (a task_update with a known id updates its card);
	// Plan is the plan's title (plan_update) and TaskDisplay the start's task_display_mode
	// ("timeline" when none was given).
	Tasks       []Task `json:"tasks,omitempty"`
	Plan        string `json:"plan,omitempty"`
	TaskDisplay string `json:"task_display,omitempty"`
	// Blocks and Metadata are what chat.stopStream set.
	Blocks   json.RawMessage `json:"blocks,omitempty"`
	Metadata *Metadata       `json:"metadata,omitempty"`
	// Calls holds every accepted call on the stream, the start first.
	Calls     []StreamCall `json:"calls"`
	StartedAt time.Time    `json:"started_at"`
	StoppedAt time.Time    `json:"stopped_at,omitzero"`
}

// Count is how many of the stream's accepted calls were method ("chat.appendStream", …).
func (st Stream) Count(method string) int {
	n := 0
	for _, c := range st.Calls {
		if c.Method == method {
			n++
		}
	}
	return n
}

type stream struct {
	Stream
	msg          *message
	mode         string // "markdown_text" or "chunks", set by the first call with content
	lastActivity time.Time
	pieces       []streamPiece // what the calls showed, in order
}

// streamPiece is one piece of a streamed message as a client shows it: markdown text, or
// the blocks of a blocks chunk.
type streamPiece struct {
	text   string
	blocks json.RawMessage
}

// Task is a task card as a streamed message shows it: what task_update chunks with its id
// said last (a chunk leaving a field out keeps what the card showed).
type Task struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Status  string   `json:"status,omitempty"`
	Details string   `json:"details,omitempty"`
	Output  string   `json:"output,omitempty"`
	Sources []string `json:"sources,omitempty"`
}

// The statuses a task card takes (task_update's status).
var taskStatuses = map[string]bool{"": true, "pending": true, "in_progress": true, "complete": true, "error": true}

// streamCall is what one streaming call carries.
type streamCall struct {
	text   string          // its markdown: markdown_text, or the markdown_text chunks together
	chunks json.RawMessage // the chunks argument as sent
	mode   string          // "markdown_text", "chunks" or "" for neither
	pieces []streamPiece
	tasks  []Task  // task_update chunks, in order
	plan   *string // the last plan_update chunk's title
}

// cardsLine is what the server prints for c's cards and plan title.
func cardsLine(c streamCall) string {
	var b strings.Builder
	if c.plan != nil {
		fmt.Fprintf(&b, " [plan %q]", *c.plan)
	}
	for _, t := range c.tasks {
		fmt.Fprintf(&b, " [task %s %q", t.ID, t.Title)
		if t.Status != "" {
			b.WriteString(" " + t.Status)
		}
		if t.Output != "" {
			b.WriteString(": " + preview(t.Output, nil))
		}
		b.WriteString("]")
	}
	return b.String()
}

// applyTasks draws c's task cards and plan title on st.
func (st *stream) applyTasks(c streamCall) {
	for _, t := range c.tasks {
		i := slices.IndexFunc(st.Tasks, func(x Task) bool { return x.ID == t.ID })
		if i < 0 {
			st.Tasks = append(st.Tasks, t)
			continue
		}
		cur := &st.Tasks[i]
		cur.Title = t.Title
		if t.Status != "" {
			cur.Status = t.Status
		}
		if t.Details != "" {
			cur.Details = t.Details
		}
		if t.Output != "" {
			cur.Output = t.Output
		}
		if len(t.Sources) > 0 {
			cur.Sources = t.Sources
		}
	}
	if c.plan != nil {
		st.Plan = *c.plan
	}
}

// Streams returns every stream the app started, in that order, each as it is now.
func (s *Server) Streams() []Stream {
	s.mu.Lock()
	var lines []string
	out := make([]Stream, 0, len(s.streams))
	for _, st := range s.streams {
		lines = appendLine(lines, s.expireStreamLocked(st))
		out = append(out, st.snapshot())
	}
	s.mu.Unlock()
	s.printLines(lines)
	return out
}

// Stream returns the stream whose message is ts in channel, and false when there is none.
func (s *Server) Stream(channel, ts string) (Stream, bool) {
	for _, st := range s.Streams() {
		if st.Channel == channel && st.TS == ts {
			return st, true
		}
	}
	return Stream{}, false
}

func (st *stream) snapshot() Stream {
	out := st.Stream
	out.Calls = append([]StreamCall(nil), st.Calls...)
	out.Tasks = append([]Task(nil), st.Tasks...)
	return out
}

// expireStreamLocked ends st when it has been idle for Options.StreamIdleTimeout or open
// for the stream lifetime, whichever came first, and returns the line to print when it did.
func (s *Server) expireStreamLocked(st *stream) string {
	if st.State != Streaming {
		return ""
	}
	idleEnd, lifeEnd := st.lastActivity.Add(s.opts.StreamIdleTimeout), st.StartedAt.Add(s.lifetime)
	now := s.opts.Now()
	switch {
	case !now.Before(lifeEnd) && !lifeEnd.After(idleEnd):
		st.State, st.EndedBy, st.StoppedAt = StreamStopped, "lifetime", lifeEnd
		return fmt.Sprintf("#%s (stream %s) ■ ended by itself %s after its start, %d chars",
			st.Channel, st.TS, s.lifetime, utf8.RuneCountInString(st.Text))
	case !now.Before(idleEnd):
		st.State, st.EndedBy, st.StoppedAt = StreamStopped, "idle", idleEnd
		return fmt.Sprintf("#%s (stream %s) ■ ended by itself after %s without an append, %d chars",
			st.Channel, st.TS, s.opts.StreamIdleTimeout, utf8.RuneCountInString(st.Text))
	}
	return ""
}

// SetStreamLifetime changes how long streams stay open after chat.startStream, for streams
// already open too (d <= 0 goes back to Options.StreamLifetime), so a test of the real
// binaries can see a stream end by itself without waiting minutes. Reset undoes it.
func (s *Server) SetStreamLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		d = s.opts.StreamLifetime
	}
	s.lifetime = d
}

// streamContent reads the markdown_text or chunks a streaming call carries, answering
// Slack's error (non-nil) when they break a rule.
func streamContent(p params) (streamCall, obj) {
	var c streamCall
	c.text = p.get("markdown_text")
	raw := strings.TrimSpace(p.get("chunks"))
	switch {
	case c.text != "" && raw != "":
		return c, slackErr("cannot_provide_both_markdown_text_and_chunks")
	case c.text != "":
		c.mode = "markdown_text"
		c.pieces = []streamPiece{{text: c.text}}
	case raw != "":
		var parsed []struct {
			Type    string          `json:"type"`
			Text    string          `json:"text"`
			Blocks  json.RawMessage `json:"blocks"`
			ID      string          `json:"id"`
			Title   *string         `json:"title"`
			Status  string          `json:"status"`
			Details string          `json:"details"`
			Output  string          `json:"output"`
			Sources []struct {
				Type string `json:"type"`
				URL  string `json:"url"`
				Text string `json:"text"`
			} `json:"sources"`
		}
		if err := json.Unmarshal([]byte(raw), &parsed); err != nil || len(parsed) == 0 {
			return c, slackErr("invalid_chunks")
		}
		for i, ch := range parsed {
			switch ch.Type {
			case "":
				return c, slackErr("invalid_chunks")
			case "markdown_text":
				c.text += ch.Text
				c.pieces = append(c.pieces, streamPiece{text: ch.Text})
			case "blocks":
				// Each blocks chunk is held to a message's block limits: Slack documents 50
				// blocks a chunk; the rest is stricter than what is known.
				blocks, bad := readBlocks(string(ch.Blocks), fmt.Sprintf("/chunks/%d/blocks", i), MaxBlocks)
				if bad != nil {
					return c, bad
				}
				c.pieces = append(c.pieces, streamPiece{blocks: blocks})
			case "task_update":
				// A card needs its id and title; its status is one of the four.
				if ch.ID == "" || ch.Title == nil || *ch.Title == "" || !taskStatuses[ch.Status] {
					return c, slackErr("invalid_chunks")
				}
				t := Task{ID: ch.ID, Title: *ch.Title, Status: ch.Status, Details: ch.Details, Output: ch.Output}
				for _, src := range ch.Sources {
					if src.URL == "" {
						return c, slackErr("invalid_chunks")
					}
					t.Sources = append(t.Sources, src.URL)
				}
				c.tasks = append(c.tasks, t)
			case "plan_update":
				if ch.Title == nil || *ch.Title == "" {
					return c, slackErr("invalid_chunks")
				}
				c.plan = ch.Title
			default:
				return c, slackErr("invalid_chunks")
			}
		}
		c.chunks, c.mode = json.RawMessage(raw), "chunks"
	}
	if utf8.RuneCountInString(c.text) > MaxStreamChunk {
		return c, slackErr("msg_too_long")
	}
	return c, nil
}

// startStream is chat.startStream. Outside a DM, Slack needs the user the answer is for.
func (s *Server) startStream(p params) obj {
	ch, threadTS := p.get("channel"), p.get("thread_ts")
	if code := s.checkChannel(ch, true); code != "" {
		return slackErr(code)
	}
	userID, teamID := p.get("recipient_user_id"), p.get("recipient_team_id")
	if s.kindOf(ch) != IM {
		switch {
		case teamID == "":
			return slackErr("missing_recipient_team_id")
		case userID == "":
			return slackErr("missing_recipient_user_id")
		}
	}
	c, bad := streamContent(p)
	if bad != nil {
		return bad
	}
	display := p.get("task_display_mode")
	switch display {
	case "":
		display = "timeline"
	case "timeline", "plan":
	default:
		return slackErr("invalid_arguments")
	}
	text := c.text
	s.mu.Lock()
	ts, at := s.nextTSLocked()
	now := s.opts.Now()
	m := &message{channel: ch, ts: ts, at: at, threadTS: threadTS, user: p.caller.BotUserID, botID: p.caller.BotID, bot: true, text: text}
	st := &stream{Stream: Stream{Channel: ch, TS: ts, ThreadTS: threadTS, RecipientUserID: userID,
		RecipientTeamID: teamID, State: Streaming, Text: text, StartedAt: now, TaskDisplay: display,
		Calls: []StreamCall{{Method: "chat.startStream", MarkdownText: p.get("markdown_text"), Chunks: c.chunks, At: now}}},
		msg: m, mode: c.mode, lastActivity: now, pieces: c.pieces}
	st.applyTasks(c)
	m.stream = st
	s.insertLocked(m)
	s.streams = append(s.streams, st)
	cleared := s.replyInThreadLocked(ch, threadTS)
	s.mu.Unlock()
	where := "#" + ch
	if threadTS != "" {
		where += " (thread " + threadTS + ")"
	}
	line := where + " " + s.opts.BotName + ": ▶ stream " + ts
	if text != "" {
		line += ": " + preview(text, nil)
	}
	line += cardsLine(c)
	s.printLines(appendLine([]string{line}, cleared))
	return obj{"ok": true, "channel": ch, "ts": ts}
}

// streamLocked finds the open stream ts in ch, answering Slack's error when there is none.
func (s *Server) streamLocked(ch, ts string) (*stream, string, string) {
	m := s.findLocked(ch, ts)
	switch {
	case m == nil:
		return nil, "message_not_found", ""
	case !m.bot:
		return nil, "message_not_owned_by_app", ""
	case m.stream == nil:
		return nil, "message_not_in_streaming_state", ""
	}
	line := s.expireStreamLocked(m.stream)
	if m.stream.State != Streaming {
		return nil, "message_not_in_streaming_state", line
	}
	return m.stream, "", line
}

// growLocked adds one call's content to st, or answers why it cannot.
func (s *Server) growLocked(st *stream, method string, c streamCall, p params) string {
	if c.mode != "" && st.mode != "" && c.mode != st.mode {
		return "streaming_mode_mismatch"
	}
	if utf8.RuneCountInString(st.Text)+utf8.RuneCountInString(c.text) > MaxStreamText {
		return "msg_too_long"
	}
	if st.mode == "" {
		st.mode = c.mode
	}
	now := s.opts.Now()
	st.Text += c.text
	st.msg.text = st.Text
	st.pieces = append(st.pieces, c.pieces...)
	st.applyTasks(c)
	st.lastActivity = now
	st.Calls = append(st.Calls, StreamCall{Method: method, MarkdownText: p.get("markdown_text"), Chunks: c.chunks, At: now})
	return ""
}

// appendStream is chat.appendStream.
func (s *Server) appendStream(p params) obj {
	ch, ts := p.get("channel"), p.get("ts")
	if code := s.checkChannel(ch, true); code != "" {
		return slackErr(code)
	}
	c, bad := streamContent(p)
	switch {
	case bad != nil:
		return bad
	case c.mode == "":
		return slackErr("markdown_text_or_chunks_required")
	}
	text := c.text
	s.mu.Lock()
	st, code, expired := s.streamLocked(ch, ts)
	if code == "" {
		code = s.growLocked(st, "chat.appendStream", c, p)
	}
	s.mu.Unlock()
	s.printLines(appendLine(nil, expired))
	if code != "" {
		return slackErr(code)
	}
	line := fmt.Sprintf("#%s (stream %s) +", ch, ts)
	if text != "" {
		line += " " + preview(text, nil)
	}
	line += cardsLine(c)
	s.printLines([]string{line})
	return obj{"ok": true, "channel": ch, "ts": ts}
}

// stopStream is chat.stopStream: the last content, final blocks and metadata.
func (s *Server) stopStream(p params) obj {
	ch, ts := p.get("channel"), p.get("ts")
	if code := s.checkChannel(ch, true); code != "" {
		return slackErr(code)
	}
	c, bad := streamContent(p)
	if bad != nil {
		return bad
	}
	text := c.text
	blocks, bad := readBlocks(p.get("blocks"), "/blocks", MaxStopStreamBlocks)
	if bad != nil {
		return bad
	}
	md, code := readMetadata(p)
	if code != "" {
		return slackErr(code)
	}
	s.mu.Lock()
	st, code, expired := s.streamLocked(ch, ts)
	if code == "" {
		code = s.growLocked(st, "chat.stopStream", c, p)
	}
	if code != "" {
		s.mu.Unlock()
		s.printLines(appendLine(nil, expired))
		return slackErr(code)
	}
	st.State, st.EndedBy, st.StoppedAt = StreamStopped, "chat.stopStream", s.opts.Now()
	st.Blocks, st.Metadata = blocks, md
	if blocks != nil {
		st.msg.blocks = blocks
	}
	if md != nil {
		st.msg.metadata = md
	}
	msg := s.messageJSONLocked(st.msg, true, 0)
	line := fmt.Sprintf("#%s (stream %s) ■ stopped, %d chars in %d calls", ch, ts,
		utf8.RuneCountInString(st.Text), len(st.Calls))
	s.mu.Unlock()
	if text != "" || len(c.tasks) > 0 || c.plan != nil {
		s.printLines([]string{strings.TrimRight(fmt.Sprintf("#%s (stream %s) + %s", ch, ts, preview(text, nil)), " ") + cardsLine(c)})
	}
	if blocks != nil {
		line += " [blocks]"
	}
	if md != nil {
		line += " [metadata " + md.EventType + "]"
	}
	s.printLines([]string{line})
	return obj{"ok": true, "channel": ch, "ts": ts, "message": msg}
}

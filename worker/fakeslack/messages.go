package fakeslack

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// firstTS is the timestamp before the first one the server hands out, in microseconds:
// the first message gets 1700000000.000100.
const firstTS = 1_700_000_000_000_000

// tsStep is how far apart, in microseconds, consecutive server timestamps are.
const tsStep = 100

// message is one message in a conversation: the bot's (chat.postMessage, an in_channel
// response_url post) or a user's (AddUserMessage), or an ephemeral message the bot showed
// one user (chat.postEphemeral, an ephemeral response_url post), kept apart in
// Server.ephemerals.
type message struct {
	channel  string
	ts       string
	at       int64 // ts in microseconds, for ordering
	threadTS string
	user     string
	bot      bool
	botID    string // the posting bot's, when bot (default Options.BotID)
	text     string
	blocks   json.RawMessage
	metadata *Metadata
	edited   bool
	// editedShown is whether a client shows "(edited)": the last chat.update had no blocks.
	editedShown bool
	stream      *stream // set for a message started with chat.startStream
	// replaced is set once chat.update or a response_url's replace_original replaced the
	// message: a streamed message then no longer shows what it streamed.
	replaced bool
	// to is the one user an ephemeral message is shown to; empty for other messages.
	to string
}

// parseTS reads a Slack message timestamp ("1700000000.000100": seconds, a dot, six digits)
// as microseconds.
func parseTS(ts string) (int64, bool) {
	sec, frac, ok := strings.Cut(ts, ".")
	if !ok || len(frac) != 6 || sec == "" || len(sec) > 12 {
		return 0, false
	}
	s, err1 := strconv.ParseUint(sec, 10, 64)
	f, err2 := strconv.ParseUint(frac, 10, 64)
	if err1 != nil || err2 != nil || strings.ContainsAny(sec+frac, "+-") {
		return 0, false
	}
	return int64(s)*1_000_000 + int64(f), true
}

func formatTS(us int64) string {
	return fmt.Sprintf("%d.%06d", us/1_000_000, us%1_000_000)
}

// nextTSLocked hands out a timestamp later than every one handed out or seeded so far.
func (s *Server) nextTSLocked() (string, int64) {
	s.lastTS += tsStep
	return formatTS(s.lastTS), s.lastTS
}

// insertLocked adds m to its channel, keeping the channel ordered by timestamp.
func (s *Server) insertLocked(m *message) {
	list := s.messages[m.channel]
	i := sort.Search(len(list), func(i int) bool { return list[i].at > m.at })
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = m
	s.messages[m.channel] = list
	if m.at > s.lastTS {
		s.lastTS = m.at
	}
}

func (s *Server) findLocked(ch, ts string) *message {
	for _, m := range s.messages[ch] {
		if m.ts == ts {
			return m
		}
	}
	return nil
}

func (s *Server) deleteLocked(m *message) {
	list := s.messages[m.channel]
	for i, x := range list {
		if x == m {
			s.messages[m.channel] = append(list[:i:i], list[i+1:]...)
			return
		}
	}
}

// insertEphemeralLocked adds the ephemeral message m to its channel's, ordered by timestamp.
func (s *Server) insertEphemeralLocked(m *message) {
	list := s.ephemerals[m.channel]
	i := sort.Search(len(list), func(i int) bool { return list[i].at > m.at })
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = m
	s.ephemerals[m.channel] = list
}

// findEphemeralLocked returns the ephemeral message ts of ch shown to user (to anyone when
// user is empty).
func (s *Server) findEphemeralLocked(ch, ts, user string) *message {
	for _, m := range s.ephemerals[ch] {
		if m.ts == ts && (user == "" || m.to == user) {
			return m
		}
	}
	return nil
}

func (s *Server) deleteEphemeralLocked(m *message) {
	list := s.ephemerals[m.channel]
	for i, x := range list {
		if x == m {
			s.ephemerals[m.channel] = append(list[:i:i], list[i+1:]...)
			return
		}
	}
}

// UserMessage is a message a user posted, for AddUserMessage.
type UserMessage struct {
	Channel string `json:"channel"`
	User    string `json:"user"`
	Text    string `json:"text"`
	// TS is the message's timestamp ("1700000000.000100"); empty lets the server pick the
	// next one.
	TS string `json:"ts,omitempty"`
	// ThreadTS makes the message a reply in that thread; its TS must be later.
	ThreadTS string `json:"thread_ts,omitempty"`
	// Team, when set, is the workspace the message is posted in: the conversation becomes
	// that workspace's (an error when it is another's, see Workspace).
	Team string `json:"team,omitempty"`
}

// AddUserMessage puts a user's message in a conversation, as if the user had posted it, so
// conversations.replies and conversations.history see it (e.g. the parent of a thread the
// bot replies in). It is not a Post: Posts records what the app posted. It returns the
// message's timestamp.
func (s *Server) AddUserMessage(m UserMessage) (string, error) {
	switch {
	case m.Channel == "":
		return "", errors.New("fakeslack: user message without a channel")
	case s.missing[m.Channel]:
		return "", fmt.Errorf("fakeslack: user message in channel %s, which Options.MissingChannels says does not exist", m.Channel)
	case m.User == "":
		return "", errors.New("fakeslack: user message without a user")
	case m.Text == "":
		return "", errors.New("fakeslack: user message without text")
	}
	var at, thread int64
	if m.TS != "" {
		var ok bool
		if at, ok = parseTS(m.TS); !ok {
			return "", fmt.Errorf("fakeslack: user message ts %q is not a Slack timestamp like 1700000000.000100", m.TS)
		}
	}
	if m.ThreadTS != "" {
		var ok bool
		if thread, ok = parseTS(m.ThreadTS); !ok {
			return "", fmt.Errorf("fakeslack: user message thread_ts %q is not a Slack timestamp like 1700000000.000100", m.ThreadTS)
		}
		if m.TS != "" && at <= thread {
			return "", fmt.Errorf("fakeslack: reply ts %s is not after its thread_ts %s", m.TS, m.ThreadTS)
		}
	}
	s.mu.Lock()
	if m.Team != "" {
		if err := s.claimLocked(m.Team, m.Channel); err != nil {
			s.mu.Unlock()
			return "", err
		}
	}
	if m.TS == "" {
		s.lastTS = max(s.lastTS, thread) // a reply comes after its parent
		m.TS, at = s.nextTSLocked()
	} else if s.findLocked(m.Channel, m.TS) != nil {
		s.mu.Unlock()
		return "", fmt.Errorf("fakeslack: channel %s already has a message with ts %s", m.Channel, m.TS)
	}
	s.insertLocked(&message{channel: m.Channel, ts: m.TS, at: at, threadTS: m.ThreadTS, user: m.User, text: m.Text})
	s.mu.Unlock()
	where := "#" + m.Channel
	if m.ThreadTS != "" {
		where += " (thread " + m.ThreadTS + ")"
	}
	s.printLine("%s %s: %s", where, m.User, preview(m.Text, nil))
	return m.TS, nil
}

// threadLocked returns the messages of the thread ts belongs to, oldest first: its parent
// (when the server has it) then the replies. ts may name the parent or any reply. A thread
// whose parent the server never saw (a user's message not seeded with AddUserMessage) is
// found by its replies. found is false when nothing in ch has or replies to ts.
func (s *Server) threadLocked(ch, ts string) (msgs []*message, replies int, found bool) {
	root := ts
	if m := s.findLocked(ch, ts); m != nil && m.threadTS != "" {
		root = m.threadTS
	}
	for _, m := range s.messages[ch] {
		switch {
		case m.ts == root:
			msgs = append(msgs, m)
		case m.threadTS == root:
			msgs = append(msgs, m)
			replies++
		}
	}
	return msgs, replies, len(msgs) > 0
}

// replyCountsLocked counts the replies of each thread in ch, by thread_ts.
func (s *Server) replyCountsLocked(ch string) map[string]int {
	counts := map[string]int{}
	for _, m := range s.messages[ch] {
		if m.threadTS != "" && m.threadTS != m.ts {
			counts[m.threadTS]++
		}
	}
	return counts
}

// messageJSON is m as Slack shows it, with its reactions; metadata only when withMeta, as
// include_all_metadata asks. replies > 0 marks a thread parent.
func (s *Server) messageJSONLocked(m *message, withMeta bool, replies int) obj {
	o := obj{"type": "message", "text": m.text, "ts": m.ts, "user": m.user}
	if m.bot {
		o["bot_id"] = m.botID
		if m.botID == "" {
			o["bot_id"] = s.opts.BotID
		}
	}
	if m.threadTS != "" {
		o["thread_ts"] = m.threadTS
	}
	if replies > 0 {
		o["thread_ts"] = m.ts
		o["reply_count"] = replies
	}
	if m.blocks != nil {
		o["blocks"] = m.blocks
	}
	if withMeta && m.metadata != nil {
		o["metadata"] = m.metadata
	}
	if m.edited {
		o["edited"] = obj{"user": m.user}
	}
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

// Message is a message as the Web API returns it now (conversations.replies and
// conversations.history): the bot's posts and streams (with their text so far and any
// update applied) and seeded user messages. Text is the API's `text` field, which for a
// message with blocks is only the notification fallback, and Blocks are the blocks as sent
// (for a stream, chat.stopStream's). What a user sees is Rendered.
type Message struct {
	Channel  string          `json:"channel"`
	TS       string          `json:"ts"`
	ThreadTS string          `json:"thread_ts,omitempty"`
	User     string          `json:"user"`
	Bot      bool            `json:"bot"`
	Text     string          `json:"text"`
	Edited   bool            `json:"edited,omitempty"`
	Blocks   json.RawMessage `json:"blocks,omitempty"`
	Metadata *Metadata       `json:"metadata,omitempty"`
	// Streaming is set while a streamed message is still being written.
	Streaming bool `json:"streaming,omitempty"`
}

// Messages returns every message of channel ("" for all channels), oldest first. Streams
// that have run out of time end first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	var chans []string
	if channel != "" {
		chans = []string{channel}
	} else {
		for ch := range s.messages {
			chans = append(chans, ch)
		}
		sort.Strings(chans)
	}
	var out []Message
	var lines []string
	for _, ch := range chans {
		for _, m := range s.messages[ch] {
			if m.stream != nil {
				lines = appendLine(lines, s.expireStreamLocked(m.stream))
			}
			out = append(out, Message{Channel: m.channel, TS: m.ts, ThreadTS: m.threadTS, User: m.user, Bot: m.bot, Text: m.text,
				Edited: m.edited, Blocks: m.blocks, Metadata: m.metadata, Streaming: m.stream != nil && m.stream.State == Streaming})
		}
	}
	s.mu.Unlock()
	s.printLines(lines)
	return out
}

// BotReplies returns the bot's messages in the thread thread of channel, oldest first, as
// Messages shows them (the API's view), finished or still streaming (Message.Streaming).
// What a user reading the thread sees of them is RenderedThread.
func (s *Server) BotReplies(channel, thread string) []Message {
	var out []Message
	for _, m := range s.Messages(channel) {
		if m.Bot && m.ThreadTS == thread && m.TS != thread {
			out = append(out, m)
		}
	}
	return out
}

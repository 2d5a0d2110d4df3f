package fakeslack

import (
	"sort"
	"strings"
)

// Rendered is a message as a Slack client shows it now, which is what a test should judge
// a bot by: conversations.replies (and Message) give the API's view, in which `text` is
// only the notification fallback of a message with blocks.
//
// What shows:
//   - a message posted (chat.postMessage) with blocks shows its blocks, not its text
//     argument; without blocks, its text (or markdown_text);
//   - a streamed message shows everything sent as markdown_text or markdown_text chunks
//     by chat.startStream, appendStream and stopStream, in order, blocks chunks where they
//     came, and then chat.stopStream's blocks below ("rendered at the bottom of the
//     finalized message", chat.stopStream reference): blocks repeating the answer show it
//     twice;
//   - chat.update replaces the whole message (its blocks, else its text): a streamed
//     message updated no longer shows what it streamed;
//   - a user's message (AddUserMessage) shows its text;
//   - a response_url post whose origin the server knows (ResponseURLFrom) is a message like
//     any other: in_channel in the conversation, ephemeral shown to one user (VisibleTo),
//     and replace_original replaces the clicked message in place (same ts) as chat.update
//     does, without "(edited)";
//   - an ephemeral message (chat.postEphemeral, an ephemeral response_url post) shows only
//     to its user, in the channel as it is open on that user's screen (RenderedChannel,
//     Ephemerals), never in the conversation's history (Messages, RenderedThread).
//
// Block text and actions follow shown.showBlocks: markdown, section text and fields,
// header, context, rich_text… joined by "\n" between blocks; interactive elements give
// Actions. Posts to a response_url whose origin is unknown (ResponseURL) show nowhere: see
// Posts.
type Rendered struct {
	Channel  string `json:"channel"`
	TS       string `json:"ts"`
	ThreadTS string `json:"thread_ts,omitempty"`
	// User is who posted it; Bot is set for the app's messages.
	User string `json:"user"`
	Bot  bool   `json:"bot"`
	// Text is the visible text, in display order.
	Text string `json:"text"`
	// Streaming is set while a streamed message is still open.
	Streaming bool `json:"streaming,omitempty"`
	// Edited is whether the client marks it "(edited)": after a chat.update without blocks
	// (Slack's chat.update reference: an update with blocks shows no edited flag).
	Edited bool `json:"edited,omitempty"`
	// Actions are the action_ids of the interactive elements shown (buttons, selects, the
	// feedback_buttons of a context_actions block…), in display order.
	Actions []string `json:"actions,omitempty"`
	// Metadata is the message's metadata: not shown, but there for the app to read back.
	Metadata *Metadata `json:"metadata,omitempty"`
	// VisibleTo is set for an ephemeral message: the one user who sees it, marked "Only
	// visible to you" (it is not in the conversation's history).
	VisibleTo string `json:"visible_to,omitempty"`
	// Tasks are the task cards a streamed message shows (task_update chunks, each card once
	// in its latest state, in the order they appeared), as a timeline or, when TaskDisplay is
	// "plan", grouped under Plan. A chat.update replaces them with the rest of the message.
	Tasks       []Task `json:"tasks,omitempty"`
	Plan        string `json:"plan,omitempty"`
	TaskDisplay string `json:"task_display,omitempty"`
}

// Rendered returns the message ts of channel as a client shows it now (an ephemeral one with
// VisibleTo set), and false when the channel has no such message.
func (s *Server) Rendered(channel, ts string) (Rendered, bool) {
	s.mu.Lock()
	m := s.findLocked(channel, ts)
	if m == nil {
		m = s.findEphemeralLocked(channel, ts, "")
	}
	if m == nil {
		s.mu.Unlock()
		return Rendered{}, false
	}
	r, line := s.renderLocked(m)
	s.mu.Unlock()
	s.printLines(appendLine(nil, line))
	return r, true
}

// RenderedThread returns every message of the thread threadTS of channel as a client shows
// it now: the parent first (when the server has it), then the replies, in ts order. It is
// empty when nothing in channel has or replies to threadTS.
func (s *Server) RenderedThread(channel, threadTS string) []Rendered {
	s.mu.Lock()
	msgs, _, _ := s.threadLocked(channel, threadTS)
	out, lines := s.renderAllLocked(msgs)
	s.mu.Unlock()
	s.printLines(lines)
	return out
}

// Ephemerals returns the ephemeral messages of channel shown to user (to anyone when user is
// empty) as a client shows them now, oldest first, each with VisibleTo. Like Slack's, they are
// not in the conversation (Messages, conversations.history): only their user sees them.
func (s *Server) Ephemerals(channel, user string) []Rendered {
	s.mu.Lock()
	var out []Rendered
	for _, m := range s.ephemerals[channel] {
		if user == "" || m.to == user {
			r, _ := s.renderLocked(m)
			out = append(out, r)
		}
	}
	s.mu.Unlock()
	return out
}

// RenderedChannel returns channel as user sees it open now: its messages outside threads (a
// thread's parent, not its replies: see RenderedThread) and the ephemeral messages shown to
// user outside threads, in ts order. An empty user sees no ephemeral messages.
func (s *Server) RenderedChannel(channel, user string) []Rendered {
	s.mu.Lock()
	var msgs []*message
	for _, m := range s.messages[channel] {
		if m.threadTS == "" || m.threadTS == m.ts {
			msgs = append(msgs, m)
		}
	}
	for _, m := range s.ephemerals[channel] {
		if user != "" && m.to == user && m.threadTS == "" {
			msgs = append(msgs, m)
		}
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].at < msgs[j].at })
	out, lines := s.renderAllLocked(msgs)
	s.mu.Unlock()
	s.printLines(lines)
	return out
}

// renderAllLocked renders msgs, with the lines to print for streams that ran out of time.
func (s *Server) renderAllLocked(msgs []*message) ([]Rendered, []string) {
	out := make([]Rendered, 0, len(msgs))
	var lines []string
	for _, m := range msgs {
		r, line := s.renderLocked(m)
		out = append(out, r)
		lines = appendLine(lines, line)
	}
	return out, lines
}

// renderLocked is m as a client shows it, ending its stream first when that has run out
// of time (the line to print says so).
func (s *Server) renderLocked(m *message) (Rendered, string) {
	var line string
	if m.stream != nil {
		line = s.expireStreamLocked(m.stream)
	}
	r := Rendered{Channel: m.channel, TS: m.ts, ThreadTS: m.threadTS, User: m.user, Bot: m.bot,
		Streaming: m.stream != nil && m.stream.State == Streaming, Edited: m.edited && m.editedShown,
		Metadata: m.metadata, VisibleTo: m.to}
	var sh shown
	switch {
	case m.stream != nil && !m.replaced:
		var md strings.Builder
		flush := func() {
			if md.Len() > 0 {
				sh.texts = append(sh.texts, md.String())
				md.Reset()
			}
		}
		for _, p := range m.stream.pieces {
			if p.blocks == nil {
				md.WriteString(p.text)
				continue
			}
			flush()
			sh.showBlocks(p.blocks)
		}
		flush()
		if len(m.stream.Tasks) > 0 || m.stream.Plan != "" {
			r.Tasks, r.Plan, r.TaskDisplay = append([]Task(nil), m.stream.Tasks...), m.stream.Plan, m.stream.TaskDisplay
		}
		if m.stream.Blocks != nil {
			sh.showBlocks(m.stream.Blocks)
		}
	case m.blocks != nil:
		sh.showBlocks(m.blocks)
	default:
		sh.texts = append(sh.texts, m.text)
	}
	r.Text, r.Actions = sh.text(), sh.actions
	return r, line
}

package assistant

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/threadmemory"
)

// ThreadMemory is the bot's own record of the threads it takes part in (threadmemory.Store,
// in DynamoDB): the turns of each thread, keyed by workspace, conversation and thread, each
// turn by its message's ts.
type ThreadMemory interface {
	Read(ctx context.Context, k threadmemory.Key) (threadmemory.Thread, error)
	Add(ctx context.Context, k threadmemory.Key, turns ...threadmemory.Turn) (threadmemory.Thread, error)
	AddIfKnown(ctx context.Context, k threadmemory.Key, turns ...threadmemory.Turn) (bool, error)
	Edit(ctx context.Context, k threadmemory.Key, ts, text string) (bool, error)
	Remove(ctx context.Context, k threadmemory.Key, ts string) (bool, error)
}

var _ ThreadMemory = (*threadmemory.Store)(nil)

// Message subtypes the memory follows.
const (
	subtypeChanged = "message_changed"
	subtypeDeleted = "message_deleted"
)

// threadKey is the memory's key of the thread a session answers in.
func memoryKey(s *relay.Session, channel, thread string) threadmemory.Key {
	return threadmemory.Key{Team: s.Team(), Channel: channel, Thread: thread}
}

// message routes the message events the bot takes: a direct message is answered; in a
// thread the memory knows, a channel message is recorded as a turn; an edit or a deletion
// updates the memory.
func (h *handlers) message(ctx context.Context, req *relay.Request[slackevents.MessageEvent]) error {
	ev := req.Payload
	switch {
	case ev.SubType == subtypeChanged:
		return h.messageChanged(ctx, req)
	case ev.SubType == subtypeDeleted:
		return h.messageDeleted(ctx, req)
	case ev.ChannelType == "im":
		return h.answer(ctx, req.Session, withFiles(ev), true)
	}
	// A reply in a channel thread (the skip lets nothing else through): a turn of the thread
	// when the bot takes part in it, so the next mention there has it as context.
	_, err := h.cfg.Memory.AddIfKnown(ctx, memoryKey(req.Session, ev.Channel, ev.ThreadTimeStamp),
		threadmemory.Turn{TS: ev.TimeStamp, User: ev.User, Text: prompt(withFiles(ev))})
	if err != nil {
		return fmt.Errorf("record a reply in the thread: %w", err)
	}
	return nil
}

// messageChanged replaces an edited message's turn with its new text.
func (h *handlers) messageChanged(ctx context.Context, req *relay.Request[slackevents.MessageEvent]) error {
	m := req.Payload.Message
	thread := m.ThreadTimestamp
	if thread == "" {
		thread = m.Timestamp
	}
	ok, err := h.cfg.Memory.Edit(ctx, memoryKey(req.Session, req.Payload.Channel, thread), m.Timestamp, prompt(m.Text))
	if err != nil {
		return fmt.Errorf("record an edited message: %w", err)
	}
	req.Log.Info("thread memory: an edited message", "message_ts", m.Timestamp, "thread_ts", thread, "known", ok)
	return nil
}

// messageDeleted drops a deleted message's turn.
func (h *handlers) messageDeleted(ctx context.Context, req *relay.Request[slackevents.MessageEvent]) error {
	ev := req.Payload
	thread := ev.DeletedTimeStamp
	if ev.PreviousMessage != nil && ev.PreviousMessage.ThreadTimestamp != "" {
		thread = ev.PreviousMessage.ThreadTimestamp
	}
	ok, err := h.cfg.Memory.Remove(ctx, memoryKey(req.Session, ev.Channel, thread), ev.DeletedTimeStamp)
	if err != nil {
		return fmt.Errorf("record a deleted message: %w", err)
	}
	req.Log.Info("thread memory: a deleted message", "message_ts", ev.DeletedTimeStamp, "thread_ts", thread, "known", ok)
	return nil
}

// messageSkip declines, before anything is claimed, the message events the bot does nothing
// with: outside direct messages, all but replies in threads (recorded when the memory knows
// the thread), edits and deletions; without a memory, all but direct messages; edits of a
// bot's message (the bot's own answers change as they stream; the memory records what was
// shown when the answer ends).
func (h *handlers) messageSkip(_ context.Context, ev *slackevents.MessageEvent) string {
	switch ev.SubType {
	case subtypeChanged, subtypeDeleted:
		switch {
		case h.cfg.Memory == nil:
			return "an edit or a deletion without a thread memory"
		case ev.SubType == subtypeChanged && (ev.Message == nil || ev.Message.Timestamp == ""):
			return "an edit without its message"
		case ev.SubType == subtypeChanged && (ev.Message.BotID != "" || ev.Message.SubType == "bot_message"):
			return "an edit of a bot's message"
		case ev.SubType == subtypeDeleted && ev.DeletedTimeStamp == "":
			return "a deletion without its message"
		}
		return ""
	}
	if ev.ChannelType == "im" {
		return ""
	}
	if h.cfg.Memory == nil {
		return "message outside a direct message (mentions arrive as app_mention)"
	}
	if ev.ThreadTimeStamp == "" || ev.ThreadTimeStamp == ev.TimeStamp {
		return "message outside a thread, outside a direct message (mentions arrive as app_mention)"
	}
	return ""
}

// messageKey keeps a channel thread reply's delivery apart from its app_mention twin's (a
// reply that mentions the bot arrives as both): the twin records the turn, the mention
// answers it, and neither takes the other's key. Direct messages, edits and deletions keep
// the route's own key.
func messageKey(ev *slackevents.MessageEvent) string {
	if ev.SubType == "" && ev.ChannelType != "im" {
		return "thread-reply:" + ev.Channel + ":" + ev.TimeStamp
	}
	return ""
}

// memoryTurns are a thread's turns as its earlier messages.
func memoryTurns(turns []threadmemory.Turn, before string) []threadMessage {
	var out []threadMessage
	for _, t := range turns {
		if threadmemory.CompareTS(t.TS, before) >= 0 {
			continue
		}
		out = append(out, threadMessage{TS: t.TS, Text: t.Text, FromBot: t.Bot, Ours: t.Bot})
	}
	return out
}

// slackTurns are messages read from Slack as turns to seed the memory with (the bot's
// answers as its own; other bots' messages as the users' are).
func slackTurns(msgs []threadMessage) []threadmemory.Turn {
	out := make([]threadmemory.Turn, 0, len(msgs))
	for _, m := range msgs {
		if strings.TrimSpace(m.Text) == "" {
			continue
		}
		out = append(out, threadmemory.Turn{TS: m.TS, Text: m.Text, Bot: m.Ours})
	}
	return out
}

// rememberAnswer records the bot's answer, as shown (ts: its first message), in the thread's
// memory. A failure is logged: the answer stands, only a later follow-up misses it.
func (h *handlers) rememberAnswer(ctx context.Context, s *relay.Session, ts []string, text string) {
	if h.cfg.Memory == nil || len(ts) == 0 || strings.TrimSpace(text) == "" || s.Thread() == "" {
		return
	}
	_, err := h.cfg.Memory.Add(ctx, memoryKey(s, s.Channel(), s.Thread()), threadmemory.Turn{TS: ts[0], Text: text, Bot: true})
	if err != nil {
		s.Log.Warn("thread memory: could not record the answer", "error", err.Error())
	}
}

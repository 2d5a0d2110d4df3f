package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/llm"
)

// SlackAPI is the part of slack-go's client the reply handler uses.
type SlackAPI interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slack.MsgOption) (string, string, error)
	AddReactionContext(ctx context.Context, name string, item slack.ItemRef) error
	RemoveReactionContext(ctx context.Context, name string, item slack.ItemRef) error
	GetConversationRepliesContext(ctx context.Context, params *slack.GetConversationRepliesParameters) ([]slack.Message, bool, string, error)
}

var _ SlackAPI = (*slack.Client)(nil)

// Identity is the bot's own user and bot ids (from auth.test), so it never answers itself.
type Identity struct {
	UserID string
	BotID  string
}

// ReplyMetadataType is the message metadata event type slackrelay attaches to its replies;
// its payload carries the dedupe key, which is how a retry finds an earlier reply.
const ReplyMetadataType = "slackrelay_reply"

// WorkingReaction is added to the user's message while the bot works on it.
const WorkingReaction = "hourglass_flowing_sand"

// Reply answers app mentions and direct messages in their thread.
type Reply struct {
	Slack     SlackAPI
	Responder llm.Responder
	// Identity returns the bot's ids; it may call auth.test once and cache the answer.
	Identity func(ctx context.Context) (Identity, error)
}

var mentionRE = regexp.MustCompile(`<@[A-Z0-9]+(\|[^>]*)?>`)

type incoming struct {
	channel, user, botID, subtype, text, ts, threadTS, channelType, eventType string
}

func decodeIncoming(body string) (incoming, error) {
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		return incoming{}, failure.Permanentf("decode slack event: %w", err)
	}
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.AppMentionEvent:
		return incoming{channel: e.Channel, user: e.User, botID: e.BotID, text: e.Text, ts: e.TimeStamp, threadTS: e.ThreadTimeStamp, eventType: "app_mention"}, nil
	case *slackevents.MessageEvent:
		return incoming{channel: e.Channel, user: e.User, botID: e.BotID, subtype: e.SubType, text: e.Text, ts: e.TimeStamp, threadTS: e.ThreadTimeStamp, channelType: e.ChannelType, eventType: "message"}, nil
	}
	return incoming{}, failure.Permanentf("reply handler got inner event %T", ev.InnerEvent.Data)
}

// Handle replies to one app_mention or message.im event.
func (h *Reply) Handle(ctx context.Context, m *Message) error {
	in, err := decodeIncoming(m.Envelope.Body)
	if err != nil {
		return err
	}
	if skip := h.skipReason(ctx, in); skip != "" {
		m.Log.Info("event skipped", "why", skip)
		return nil
	}
	if in.channel == "" || in.ts == "" {
		return failure.Permanentf("%s without channel or ts", in.eventType)
	}
	threadTS := in.threadTS
	if threadTS == "" {
		threadTS = in.ts
	}
	key := m.Envelope.DedupeKey
	if m.MaybeAnswered {
		found, err := h.alreadyReplied(ctx, in.channel, threadTS, key)
		if err != nil {
			return fmt.Errorf("look for an earlier reply: %w", err)
		}
		if found {
			m.Log.Info("an earlier attempt already replied; not posting again")
			return nil
		}
	}
	item := slack.NewRefToMessage(in.channel, in.ts)
	if err := h.Slack.AddReactionContext(ctx, WorkingReaction, item); err != nil && !isSlackError(err, "already_reacted") {
		if c, _ := failure.Classify(err); c == failure.Permanent {
			return fmt.Errorf("add working reaction: %w", err)
		}
		m.Log.Warn("could not add the working reaction", "error", err.Error())
	}
	prompt := strings.TrimSpace(mentionRE.ReplaceAllString(in.text, ""))
	answer, err := h.Responder.Respond(ctx, prompt)
	if err != nil {
		h.removeReaction(ctx, m, item)
		return fmt.Errorf("responder: %w", err)
	}
	parts := Split(answer, MaxChunkRunes)
	if len(parts) == 0 {
		parts = []string{"(no answer)"}
	}
	for i, part := range parts {
		_, _, err := h.Slack.PostMessageContext(ctx, in.channel,
			slack.MsgOptionText(part, false),
			slack.MsgOptionTS(threadTS),
			slack.MsgOptionMetadata(slack.SlackMetadata{EventType: ReplyMetadataType, EventPayload: map[string]any{"dedupe_key": key, "part": i + 1, "parts": len(parts)}}),
		)
		if err != nil {
			if i > 0 {
				// Part of the answer is visible; a retry finds it and stops rather than repeat it.
				m.Log.Warn("reply cut short", "posted_parts", i, "parts", len(parts))
			}
			return fmt.Errorf("post reply part %d/%d: %w", i+1, len(parts), err)
		}
	}
	h.removeReaction(ctx, m, item)
	m.Log.Info("replied", "parts", len(parts), "thread_ts", threadTS)
	return nil
}

func (h *Reply) removeReaction(ctx context.Context, m *Message, item slack.ItemRef) {
	if err := h.Slack.RemoveReactionContext(ctx, WorkingReaction, item); err != nil && !isSlackError(err, "no_reaction") {
		m.Log.Warn("could not remove the working reaction", "error", err.Error())
	}
}

func (h *Reply) skipReason(ctx context.Context, in incoming) string {
	if in.botID != "" {
		return "message from a bot"
	}
	if in.subtype != "" {
		return "message subtype " + in.subtype
	}
	if in.eventType == "message" && in.channelType != "im" {
		return "message outside a direct message (mentions arrive as app_mention)"
	}
	if h.Identity != nil {
		if id, err := h.Identity(ctx); err == nil && in.user != "" && in.user == id.UserID {
			return "message from the bot itself"
		}
	}
	return ""
}

func (h *Reply) alreadyReplied(ctx context.Context, channel, threadTS, key string) (bool, error) {
	msgs, _, _, err := h.Slack.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
		ChannelID: channel, Timestamp: threadTS, IncludeAllMetadata: true, Limit: 200,
	})
	if isSlackError(err, "thread_not_found") {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, msg := range msgs {
		if msg.Metadata.EventType == ReplyMetadataType && msg.Metadata.EventPayload["dedupe_key"] == key {
			return true, nil
		}
	}
	return false, nil
}

func isSlackError(err error, code string) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se) && se.Err == code
}

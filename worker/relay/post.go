package relay

import (
	"context"
	"fmt"
	"strconv"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/progress"
)

// ReplyMetadataType is the message metadata event type of everything slackrelay posts; its
// payload carries the dedupe key, the step and the part, which is how a delivery that cannot
// tell from its record whether a part went out finds it in the thread.
const ReplyMetadataType = "slackrelay_reply"

// MaxPartRunes is the largest text posted in one message. Slack truncates message text at
// 40,000 characters and renders long text best in pieces of a few thousand.
const MaxPartRunes = 3900

// PostOption tunes a post.
type PostOption func(*postOptions)

type postOptions struct {
	lastBlocks []slack.Block
}

// WithBlocks appends blocks (buttons, context) to the last message of the post; the text goes
// in a markdown block above them.
func WithBlocks(blocks ...slack.Block) PostOption {
	return func(o *postOptions) { o.lastBlocks = append(o.lastBlocks, blocks...) }
}

// Posted is where a post's messages landed.
type Posted struct {
	Channel string
	// TS has one entry per message, in order.
	TS []string
}

// Reply answers in the thread of the message the delivery is about (app_mention, message,
// a click on a message). Long text is split into several messages. Exactly once: a retry
// skips what was posted and finishes the same text, even if the handler computed another.
func (s *Session) Reply(ctx context.Context, text string, opts ...PostOption) (Posted, error) {
	if s.about.channel == "" || s.about.replyThread() == "" {
		return Posted{}, failure.Permanentf("reply: this delivery is not about a message; use Post or Respond")
	}
	return s.Post(ctx, s.about.channel, s.about.replyThread(), text, opts...)
}

// Post posts text to channel, in the thread threadTS when it is not empty, exactly once (see
// Reply).
func (s *Session) Post(ctx context.Context, channel, threadTS, text string, opts ...PostOption) (Posted, error) {
	var o postOptions
	for _, opt := range opts {
		opt(&o)
	}
	id := s.nextStep("post")
	st, resumed := s.lease.Step(id)
	if st.Done {
		return Posted{Channel: channel, TS: st.Sent}, nil
	}
	if !resumed {
		st = progress.Step{Kind: "post", Parts: plan(text, 0), Pending: true}
		if err := s.save(ctx, id, st); err != nil {
			return Posted{}, err
		}
	} else {
		s.Log.Info("resuming a post an earlier attempt began", "step", id, "sent", len(st.Sent), "parts", len(st.Parts))
	}
	st, err := s.sendParts(ctx, id, st, resumed, partSink{
		what: "post",
		send: func(ctx context.Context, parts []string, i int) (string, error) {
			msg := []slack.MsgOption{
				slack.MsgOptionText(parts[i], false),
				slack.MsgOptionMetadata(slack.SlackMetadata{EventType: ReplyMetadataType, EventPayload: map[string]any{
					"dedupe_key": s.Key(), "step": id, "part": i + 1, "parts": len(parts),
				}}),
			}
			if threadTS != "" {
				msg = append(msg, slack.MsgOptionTS(threadTS))
			}
			if i == len(parts)-1 && len(o.lastBlocks) > 0 {
				blocks := append([]slack.Block{slack.NewMarkdownBlock("", parts[i])}, o.lastBlocks...)
				msg = append(msg, slack.MsgOptionBlocks(blocks...))
			}
			_, ts, err := s.Slack.PostMessageContext(ctx, channel, msg...)
			return ts, err
		},
		notSent: notSent,
		find: func(ctx context.Context, i int) (string, bool, error) {
			return s.findPosted(ctx, channel, threadTS, id, i+1)
		},
	})
	return Posted{Channel: channel, TS: st.Sent}, err
}

// findPosted looks for the message of (step, part) in the thread, reading it page by page.
// It is the fallback for the one case the record cannot answer: a part handed to Slack
// whose answer was lost (a crash, a timeout, the store down right after the post).
func (s *Session) findPosted(ctx context.Context, channel, threadTS, step string, part int) (string, bool, error) {
	key := s.Key()
	match := func(m slack.Message) bool {
		md := m.Metadata
		return md.EventType == ReplyMetadataType && fmt.Sprint(md.EventPayload["dedupe_key"]) == key &&
			fmt.Sprint(md.EventPayload["step"]) == step && number(md.EventPayload["part"]) == part
	}
	cursor := ""
	for page := 0; ; page++ {
		var msgs []slack.Message
		var next string
		var err error
		if threadTS != "" {
			var hasMore bool
			msgs, hasMore, next, err = s.Slack.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
				ChannelID: channel, Timestamp: threadTS, IncludeAllMetadata: true, Limit: 200, Cursor: cursor,
			})
			if !hasMore {
				next = ""
			}
			if isSlackError(err, "thread_not_found") {
				return "", false, nil
			}
		} else {
			// A post outside a thread: look among the channel's latest messages.
			var h *slack.GetConversationHistoryResponse
			h, err = s.Slack.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: channel, IncludeAllMetadata: true, Limit: 200, Cursor: cursor,
			})
			if err == nil {
				msgs, next = h.Messages, h.ResponseMetaData.NextCursor
				if page >= 4 {
					next = ""
				}
			}
		}
		if err != nil {
			return "", false, err
		}
		for _, m := range msgs {
			if match(m) {
				return m.Timestamp, true, nil
			}
		}
		if next == "" {
			return "", false, nil
		}
		cursor = next
	}
}

func number(v any) int {
	switch n := v.(type) {
	case float64:
		return int(n)
	case int:
		return n
	case string:
		i, _ := strconv.Atoi(n)
		return i
	}
	return 0
}

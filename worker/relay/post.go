package relay

import (
	"context"
	"fmt"
	"strconv"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// ReplyMetadataType is the message metadata event type of everything slackrelay posts; its
// payload carries the dedupe key, the step and the part, which is how a delivery that cannot
// tell from its record whether a part went out finds it in the thread.
const ReplyMetadataType = "slackrelay_reply"

// PostOption tunes a post.
type PostOption func(*postOptions)

type postOptions struct {
	lastBlocks []slack.Block
}

// WithBlocks appends blocks (buttons, context) to the last message of the post; the text goes
// in a markdown block above them. They must fit in FinalBlocksChars.
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
	a := s.run.about
	if a.channel == "" || a.replyThread() == "" {
		return Posted{}, failure.Permanentf("reply: this delivery is not about a message; use Post or Respond")
	}
	return s.Post(ctx, a.channel, a.replyThread(), text, opts...)
}

// Post posts text to channel, in the thread threadTS when it is not empty, exactly once (see
// Reply). Its step is named after the channel and thread ("post:C123:1700000000.000100");
// a second post to the same place in one run needs Named.
func (s *Session) Post(ctx context.Context, channel, threadTS, text string, opts ...PostOption) (Posted, error) {
	var o postOptions
	for _, opt := range opts {
		opt(&o)
	}
	extra, err := lastBlocksChars(o.lastBlocks)
	if err != nil {
		return Posted{}, err
	}
	name, legacyID, err := s.step("post", channel+":"+orDash(threadTS))
	if err != nil {
		return Posted{}, err
	}
	var st partsStep
	resumed, err := s.load(name, legacyID, &st)
	if err != nil {
		return Posted{}, err
	}
	if st.Done {
		return Posted{Channel: channel, TS: st.Sent}, nil
	}
	if !resumed || len(st.Parts) == 0 {
		st = partsStep{Kind: "post", Parts: plan(text, 0, extra)}
	} else {
		s.Log.Info("resuming a post an earlier attempt began", "step", name, "sent", len(st.Sent), "parts", len(st.Parts))
	}
	st, err = s.sendParts(ctx, name, st, partSink{
		what: "post",
		send: func(ctx context.Context, parts []string, i int) (string, error) {
			msg := []slack.MsgOption{
				slack.MsgOptionText(parts[i], false),
				slack.MsgOptionMetadata(slack.SlackMetadata{EventType: ReplyMetadataType, EventPayload: map[string]any{
					"dedupe_key": s.Key(), "step": name, "part": i + 1, "parts": len(parts),
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
			ts, found, err := s.findPosted(ctx, channel, threadTS, name, i+1)
			if !found && err == nil && s.run.lease.HasLegacy() {
				// A part the earlier release handed over carries its step id ("post#1").
				ts, found, err = s.findPosted(ctx, channel, threadTS, legacyID, i+1)
			}
			return ts, found, err
		},
	})
	return Posted{Channel: channel, TS: st.Sent}, err
}

// lastBlocksChars measures blocks that go under a message's text: they must leave the text
// its share of Slack's limits. It returns their JSON characters with the separating comma.
func lastBlocksChars(blocks []slack.Block) (int, error) {
	if len(blocks) == 0 {
		return 0, nil
	}
	if len(blocks) >= maxBlocks {
		return 0, failure.Permanentf("%d blocks under the text; a message holds %d in all", len(blocks), maxBlocks)
	}
	n := blocksChars(blocks)
	if n > FinalBlocksChars {
		return 0, failure.Permanentf("the blocks under the text take %d characters of JSON; at most %d leave the text room", n, FinalBlocksChars)
	}
	return n + 1, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// findPosted looks for the message of (step, part) in the thread by its metadata. It is the
// fallback for the one case the record cannot answer: a part handed to Slack whose answer was
// lost (a crash, a timeout, the store down right after the post).
func (s *Session) findPosted(ctx context.Context, channel, threadTS, step string, part int) (string, bool, error) {
	key := s.Key()
	return s.scanThread(ctx, channel, threadTS, func(m slack.Message) bool {
		md := m.Metadata
		return md.EventType == ReplyMetadataType && fmt.Sprint(md.EventPayload["dedupe_key"]) == key &&
			fmt.Sprint(md.EventPayload["step"]) == step && number(md.EventPayload["part"]) == part
	})
}

// scanThread reads the thread threadTS of channel page by page (with metadata) and returns
// the ts of the first message match accepts. Outside a thread it looks among the channel's
// latest 1,000 messages. A thread Slack does not know holds nothing.
func (s *Session) scanThread(ctx context.Context, channel, threadTS string, match func(slack.Message) bool) (string, bool, error) {
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

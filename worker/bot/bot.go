// Package bot is the bot slackrelay ships, written with package relay as any bot would be: it
// answers mentions and direct messages in their thread (with a Regenerate button), and /ask
// through its response_url, or in a modal when /ask comes without a question.
package bot

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/llm"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// WorkingReaction is added to the user's message while the bot works on it.
const WorkingReaction = "hourglass_flowing_sand"

// Register adds the shipped routes to b; answers come from responder.
func Register(b *relay.Bot, responder llm.Responder) {
	h := &handlers{llm: responder}
	relay.Event(b, "app_mention", h.mention, relay.Name("reply"))
	relay.Event(b, "message", h.directMessage, relay.Name("reply"), relay.Skip(outsideDirectMessages))
	relay.Command(b, "/ask", h.ask, relay.Name("ask"))
	relay.ViewSubmission(b, CallbackAsk, h.askSubmitted, relay.Name("ask-modal"))
	relay.Action(b, ActionRegenerate, h.regenerate, relay.Name("regenerate"))
}

type handlers struct {
	llm llm.Responder
}

func (h *handlers) mention(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
	return h.answerInThread(ctx, req.Session, req.Payload.Text)
}

func (h *handlers) directMessage(ctx context.Context, req *relay.Request[slackevents.MessageEvent]) error {
	return h.answerInThread(ctx, req.Session, req.Payload.Text)
}

// outsideDirectMessages declines channel messages: in channels the bot answers mentions,
// which arrive as app_mention (the message twin of a mention must not consume its key).
func outsideDirectMessages(_ context.Context, ev *slackevents.MessageEvent) string {
	if ev.ChannelType != "im" {
		return "message outside a direct message (mentions arrive as app_mention)"
	}
	return ""
}

var mentionRE = regexp.MustCompile(`<@[A-Z0-9]+(\|[^>]*)?>`)

// prompt is the user's text without the mention of the bot.
func prompt(text string) string { return strings.TrimSpace(mentionRE.ReplaceAllString(text, "")) }

// answerInThread marks the message as being worked on, asks the responder and replies in the
// message's thread, with a Regenerate button on the reply.
func (h *handlers) answerInThread(ctx context.Context, s *relay.Session, text string) error {
	if err := s.AddReaction(ctx, WorkingReaction); err != nil {
		if c, _ := failure.Classify(err); c == failure.Permanent {
			return fmt.Errorf("add working reaction: %w", err)
		}
		s.Log.Warn("could not add the working reaction", "error", err.Error())
	}
	q := prompt(text)
	answer, err := h.llm.Respond(ctx, q)
	if err != nil {
		h.clearReaction(ctx, s)
		return fmt.Errorf("responder: %w", err)
	}
	posted, err := s.Reply(ctx, answer, relay.WithBlocks(regenerateButton(q, s.Source())))
	if err != nil {
		return err
	}
	h.clearReaction(ctx, s)
	s.Log.Info("replied", "messages", len(posted.TS), "thread_ts", s.Thread())
	return nil
}

func (h *handlers) clearReaction(ctx context.Context, s *relay.Session) {
	if err := s.RemoveReaction(ctx, WorkingReaction); err != nil {
		s.Log.Warn("could not remove the working reaction", "error", err.Error())
	}
}

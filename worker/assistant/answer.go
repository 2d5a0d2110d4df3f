package assistant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
	"github.com/slackrelay/slackrelay/worker/internal/textcut"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// status is shown in a DM or assistant thread while the bot works.
var (
	status          = "is thinking…"
	loadingMessages = []string{"Reading the thread…", "Thinking…", "Writing the answer…"}
)

// answer asks the model about text (the user's message, in its thread) and answers in the
// thread: streamed as it is written when the model streams, with the thread's earlier
// messages as context, Regenerate and feedback buttons under it. In a DM the thread shows a
// status while the bot works (and the first question titles the thread); in a channel a
// reaction on the message does.
func (h *handlers) answer(ctx context.Context, s *relay.Session, msgText string, dm bool) error {
	if over, err := h.overBudget(ctx, s); err != nil || over {
		if err != nil {
			return err
		}
		return h.refuse(ctx, s) // the workspace used its daily tokens: a notice, no model call
	}
	q := prompt(msgText)
	source := s.Source()
	earlier := h.history(ctx, s, source)
	if dm {
		h.setStatus(ctx, s, status, loadingMessages)
	} else if err := s.AddReaction(ctx, WorkingReaction); err != nil {
		if c, _ := failure.Classify(err); c == failure.Permanent {
			return fmt.Errorf("add working reaction: %w", err)
		}
		s.Log.Warn("could not add the working reaction", "error", err.Error())
	}
	// done takes the "working" sign down and, in a DM, titles a new thread after its first
	// question. The answer clears a DM's status anyway; in a channel a reaction left behind
	// would say the bot is still at it. Failing either (other than for good) fails the
	// attempt: the retry finds the answer finished and only does what is left.
	done := func() error {
		if dm {
			h.setStatus(ctx, s, "", nil)
			if len(earlier) == 0 {
				return h.setTitle(ctx, s, q)
			}
			return nil
		}
		err := s.RemoveReaction(ctx, WorkingReaction)
		if c, _ := failure.Classify(err); err != nil && c != failure.Permanent {
			return fmt.Errorf("remove the working reaction: %w", err)
		}
		if err != nil {
			s.Log.Warn("could not remove the working reaction", "error", err.Error())
		}
		return nil
	}
	buttons := []slack.Block{regenerateButton(q, source), feedbackButtons()}
	streamer, streams := h.cfg.LLM.(llm.Streamer)
	if !streams {
		answer, err := h.cfg.LLM.Respond(ctx, q)
		if err != nil {
			_ = done()
			return fmt.Errorf("responder: %w", err)
		}
		if _, err := s.Reply(ctx, answer, relay.WithBlocks(buttons...)); err != nil {
			return err
		}
		return done()
	}
	w, err := s.Stream(ctx, relay.StreamOptions{Disabled: h.cfg.NoStreaming})
	if err != nil {
		return err
	}
	if w.Done() {
		// An earlier attempt finished the answer; what it cost is in the journal.
		if err := h.account(ctx, s, agent.Usage{}); err != nil {
			return err
		}
		return done()
	}
	var res llm.Result
	var used agent.Usage // what this attempt asked of the model (nothing when it was not asked)
	msgs, dropped := llm.History(earlier, q, h.historyBudget())
	if !w.Complete() {
		// Continue from what earlier attempts showed (nothing, for a new answer): the model
		// is asked for the rest, and only the rest is appended.
		req := llm.Request{System: h.systemPrompt(ctx, s), Messages: msgs, Partial: w.Text(), Log: s.Log}
		var slackErr error // a failure to write into Slack, as opposed to the model's
		res, err = streamer.Stream(ctx, req, func(piece string) error {
			slackErr = w.Append(ctx, piece)
			return slackErr
		})
		if errors.Is(slackErr, failure.ErrContinue) {
			// The invocation ends: the answer goes on in the next one, status and all.
			return slackErr
		}
		if slackErr != nil {
			_ = done()
			abandonIfPermanent(ctx, w, slackErr)
			return slackErr // keeps its own class and reason (not_in_channel, 429, …)
		}
		if err != nil {
			abandonIfPermanent(ctx, w, err)
			var se *llm.StreamError
			if errors.As(err, &se) && errors.Is(err, context.DeadlineExceeded) {
				// The invocation ran out mid-answer: what was shown is in the journal and the
				// next delivery continues from it.
				return fmt.Errorf("answer cut by the invocation's deadline after %d characters: %w", utf8.RuneCountInString(res.Text), err)
			}
			_ = done()
			if errors.As(err, &se) {
				// The answer stopped part way; the retry continues it from what was shown.
				return fmt.Errorf("answer cut after %d characters: %w", utf8.RuneCountInString(res.Text), err)
			}
			return fmt.Errorf("responder: %w", err)
		}
		used = h.streamUsage(res)
	}
	// What the answer cost, kept before the stream's last writes so that they carry it.
	if err := h.account(ctx, s, used); err != nil {
		return err
	}
	ts, err := w.Finish(ctx, buttons...)
	if err != nil {
		return err
	}
	if err := done(); err != nil {
		return err
	}
	s.Log.Info("answered", "messages", len(ts), "thread_ts", s.Thread(), "history", len(msgs)-1, "history_dropped", dropped,
		"prompt_tokens", res.Usage.PromptTokens, "completion_tokens", res.Usage.CompletionTokens)
	return nil
}

// abandonIfPermanent stops the answer's stream when err sends the event to the DLQ: no
// message is left streaming until Slack ends it.
func abandonIfPermanent(ctx context.Context, w *relay.Stream, err error) {
	if c, _ := failure.Classify(err); c == failure.Permanent {
		w.Abandon(ctx)
	}
}

func (h *handlers) historyBudget() int {
	if h.cfg.HistoryChars > 0 {
		return h.cfg.HistoryChars
	}
	return 24000
}

// history is the thread's messages before source, oldest first, for a follow-up question.
// A thread that cannot be read is answered without its history (logged), never failed.
func (h *handlers) history(ctx context.Context, s *relay.Session, source relay.MessageRef) []llm.Turn {
	thread := s.Thread()
	if thread == "" || thread == source.TS || h.cfg.HistoryChars < 0 {
		return nil // a new thread: nothing before it
	}
	var turns []llm.Turn
	cursor := ""
	for range 10 {
		msgs, more, next, err := s.Slack.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
			ChannelID: source.Channel, Timestamp: thread, Limit: 200, Cursor: cursor})
		if err != nil {
			s.Log.Warn("could not read the thread; answering without its history", "error", err.Error())
			return nil
		}
		for _, m := range msgs {
			if !before(m.Timestamp, source.TS) {
				return turns
			}
			turns = append(turns, llm.Turn{Text: prompt(m.Text), FromBot: m.BotID != ""})
		}
		if !more || next == "" {
			break
		}
		cursor = next
	}
	return turns
}

// systemPrompt adds, when an assistant thread told us, the channel the user is looking at.
func (h *handlers) systemPrompt(ctx context.Context, s *relay.Session) string {
	channel, err := s.Recall(ctx, contextNote(s.User()))
	if err != nil {
		s.Log.Warn("could not read what the user is looking at", "error", err.Error())
	}
	if channel == "" {
		return llm.SlackSystemPrompt
	}
	return llm.SlackSystemPrompt + " The user is currently looking at the channel <#" + channel + ">."
}

func (h *handlers) setStatus(ctx context.Context, s *relay.Session, st string, loading []string) {
	err := s.Slack.SetAssistantThreadsStatusContext(ctx, slack.AssistantThreadsSetStatusParameters{
		ChannelID: s.Channel(), ThreadTS: s.Thread(), Status: st, LoadingMessages: loading})
	if err != nil {
		s.Log.Warn("could not set the thread's status", "status", st, "error", err.Error())
	}
}

// setTitle names a new thread after its first question (idempotent). A failure a retry
// can fix is returned; one it cannot is logged.
func (h *handlers) setTitle(ctx context.Context, s *relay.Session, q string) error {
	title := strings.Join(strings.Fields(textcut.Truncate(q, 200)), " ")
	if r := []rune(title); len(r) > 60 {
		title = string(r[:59]) + "…"
	}
	if title == "" {
		return nil
	}
	err := s.Slack.SetAssistantThreadsTitleContext(ctx, slack.AssistantThreadsSetTitleParameters{
		ChannelID: s.Channel(), ThreadTS: s.Thread(), Title: title})
	if c, _ := failure.Classify(err); err != nil && c != failure.Permanent {
		return fmt.Errorf("set the thread's title: %w", err)
	}
	if err != nil {
		s.Log.Warn("could not set the thread's title", "error", err.Error())
	}
	return nil
}

// before reports whether Slack timestamp a ("1700000000.000100") is earlier than b.
func before(a, b string) bool {
	as, au, _ := strings.Cut(a, ".")
	bs, bu, _ := strings.Cut(b, ".")
	if len(as) != len(bs) {
		return len(as) < len(bs)
	}
	if as != bs {
		return as < bs
	}
	au, bu = au+strings.Repeat("0", 6-min(6, len(au))), bu+strings.Repeat("0", 6-min(6, len(bu)))
	return au < bu
}

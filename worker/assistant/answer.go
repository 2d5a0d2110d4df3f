package assistant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
	"github.com/slackrelay/slackrelay/worker/internal/textcut"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/threadmemory"
)

// status is shown in a DM or assistant thread while the bot works.
var (
	status          = "is thinking…"
	loadingMessages = []string{"Reading the thread…", "Thinking…", "Writing the answer…"}
)

// answer asks the model about text (the user's message, in its thread) and answers in the
// thread: streamed as it is written when the model streams, with the thread's earlier
// messages as context, Regenerate and feedback buttons under it. With an Agent the answer is
// written by the tool loop, the model calling the bot's tools as it needs them. In a DM the
// thread shows a status while the bot works (and the first question titles the thread); in a
// channel a reaction on the message does.
func (h *handlers) answer(ctx context.Context, s *relay.Session, msgText string, dm bool) error {
	if over, err := h.overBudget(ctx, s); err != nil || over {
		if err != nil {
			return err
		}
		return h.refuse(ctx, s) // the workspace used its daily tokens: a notice, no model call
	}
	q := prompt(msgText)
	source := s.Source()
	th := &thread{s: s, source: source, question: q, memory: h.cfg.Memory, slackReads: !h.cfg.NoSlackThreadReads}
	earlier := h.history(ctx, s, th)
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
	if !streams && h.cfg.Agent == nil {
		answer, err := h.cfg.LLM.Respond(ctx, q)
		if err != nil {
			_ = done()
			return fmt.Errorf("responder: %w", err)
		}
		posted, err := s.Reply(ctx, answer, relay.WithBlocks(buttons...))
		if err != nil {
			return err
		}
		h.rememberAnswer(ctx, s, posted.TS, answer)
		return done()
	}
	opts := relay.StreamOptions{Disabled: h.cfg.NoStreaming, Stop: h.cfg.StopButton}
	if h.cfg.Agent != nil {
		opts.Tasks = h.cfg.TaskCards
	}
	w, err := s.Stream(ctx, opts)
	if err != nil {
		return err
	}
	if w.Done() {
		// An earlier attempt finished the answer; what it cost is in the journal. It may
		// have ended before the memory had the answer: recording it again changes nothing.
		if err := h.account(ctx, s, agent.Usage{}); err != nil {
			return err
		}
		ts, _ := w.Finish(ctx) // the answer's messages (nothing is sent)
		h.rememberAnswer(ctx, s, ts, w.Text())
		return done()
	}
	var used usage // what this attempt asked of the model (nothing when it was not asked)
	msgs, dropped := llm.History(turns(earlier), q, h.historyBudget())
	if !w.Complete() {
		// Continue from what earlier attempts showed (nothing, for a new answer): the model
		// is asked for the rest, and only the rest is appended.
		fromModel := false
		if h.cfg.Agent != nil {
			used, err = h.runAgent(ctx, s, w, th, msgs)
		} else {
			used, fromModel, err = h.stream(ctx, s, w, streamer, msgs)
		}
		if err != nil {
			// A failed answer is continued by its retry (or a replay of its dead letter),
			// which records it when it ends.
			return failed(ctx, w, err, fromModel, done)
		}
	}
	// What the answer cost, kept before the stream's last writes so that they carry it.
	if err := h.account(ctx, s, used.cost); err != nil {
		return err
	}
	ts, err := w.Finish(ctx, buttons...)
	if err != nil {
		return err
	}
	h.rememberAnswer(ctx, s, ts, w.Text())
	if err := done(); err != nil {
		return err
	}
	attrs := []any{"messages", len(ts), "thread_ts", s.Thread(), "history", len(msgs) - 1, "history_dropped", dropped,
		"prompt_tokens", used.promptTokens, "completion_tokens", used.cost.OutputTokens}
	if h.cfg.Agent != nil {
		attrs = append(attrs, "model_turns", used.cost.ModelCalls, "tool_calls", used.cost.ToolCalls)
		if used.unknown > 0 {
			attrs = append(attrs, "tool_outcomes_unknown", used.unknown)
		}
		if used.stopped != "" {
			attrs = append(attrs, "stopped", used.stopped)
		}
	}
	s.Log.Info("answered", attrs...)
	return nil
}

// usage is what writing an answer took: what it cost (tokens, model calls and time, tool
// calls), for accounting and the "answered" log line, with, through the tool loop, the calls
// whose outcome is unknown and the bound or the Stop that ended it.
type usage struct {
	cost agent.Usage
	// promptTokens is the prompt's tokens as the model reported them (for the plain stream,
	// without the prompt cache's, which cost counts).
	promptTokens int
	unknown      int
	stopped      string
}

// stream writes the answer with the model's Stream. fromModel says err is the model's rather
// than a failure to write into Slack (which keeps its own class and reason: not_in_channel,
// 429, …).
func (h *handlers) stream(ctx context.Context, s *relay.Session, w *relay.Stream, streamer llm.Streamer, msgs []llm.Message) (usage, bool, error) {
	req := llm.Request{System: h.systemPrompt(ctx, s), Messages: msgs, Partial: w.Text(), Log: s.Log}
	// The model's request ends when the answer's Stop button is clicked; the stream is
	// written with the handler's context.
	mctx, watched := w.Watch(ctx)
	defer watched()
	var slackErr error
	res, err := streamer.Stream(mctx, req, func(piece string) error {
		slackErr = w.Append(ctx, piece)
		return slackErr
	})
	used := usage{promptTokens: res.Usage.PromptTokens, cost: h.streamUsage(res)}
	if w.Stopped() {
		used.stopped = "stopped with its Stop button"
		return used, false, nil // Finish ends the answer with what was shown and a note
	}
	if slackErr != nil {
		return used, false, slackErr
	}
	return used, err != nil, err
}

// loggingModel is a model that can log its turns with a delivery's ids (llm.ChatAgent,
// llm.BedrockAgent).
type loggingModel interface {
	WithLog(log *slog.Logger) agent.Model
}

// runAgent writes the answer with the tool loop: the thread's history and the question as the
// conversation (after the channel the user is looking at, when an assistant thread told us),
// the bot's tools on offer, the thread within reach of earlier_answers.
func (h *handlers) runAgent(ctx context.Context, s *relay.Session, w *relay.Stream, th *thread, msgs []llm.Message) (usage, error) {
	conv := make([]agent.Message, 0, len(msgs)+1)
	if note := h.contextLine(ctx, s); note != "" {
		conv = append(conv, agent.Message{Role: llm.RoleSystem, Text: note})
	}
	for _, m := range msgs {
		conv = append(conv, agent.Message{Role: m.Role, Text: m.Content})
	}
	model := h.cfg.Agent
	if l, ok := model.(loggingModel); ok {
		model = l.WithLog(s.Log)
	}
	res, err := agent.Run(withThread(ctx, th), s, w, model, conv, h.cfg.Tools, h.cfg.AgentOptions)
	cost := res.Usage()
	return usage{cost: cost, promptTokens: cost.InputTokens, unknown: res.Unknown, stopped: res.Stopped}, err
}

// failed is what an answer that stopped with err returns, the "working" sign taken down
// (done) unless the answer goes on: the invocation's end (ErrContinue, or the model's stream
// cut by the deadline) continues it in the next delivery from what was shown, status and all;
// a permanent failure abandons the stream first, so no message is left streaming until Slack
// ends it. fromModel marks the model's own error, which is named as the responder's.
func failed(ctx context.Context, w *relay.Stream, err error, fromModel bool, done func() error) error {
	if errors.Is(err, failure.ErrContinue) {
		return err
	}
	abandonIfPermanent(ctx, w, err)
	shown := utf8.RuneCountInString(w.Text())
	var se *llm.StreamError
	if errors.As(err, &se) && errors.Is(err, context.DeadlineExceeded) {
		// The invocation ran out mid-answer: what was shown is in the journal and the next
		// delivery continues from it.
		return fmt.Errorf("answer cut by the invocation's deadline after %d characters: %w", shown, err)
	}
	_ = done()
	if errors.As(err, &se) {
		// The answer stopped part way; the retry continues it from what was shown.
		return fmt.Errorf("answer cut after %d characters: %w", shown, err)
	}
	if fromModel {
		return fmt.Errorf("responder: %w", err)
	}
	return err
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

// history is the thread's messages before the question, oldest first, for a follow-up
// question. A thread that cannot be read is answered without its history (logged), never
// failed.
func (h *handlers) history(ctx context.Context, s *relay.Session, th *thread) []threadMessage {
	if h.cfg.HistoryChars < 0 {
		if h.cfg.Memory != nil {
			// No history is sent, but the question is still the thread's turn (for
			// earlier_answers and the memory of later answers).
			if _, err := th.messages(ctx); err != nil {
				s.Log.Warn("thread memory: could not record the question", "error", err.Error())
			}
		}
		return nil
	}
	msgs, err := th.messages(ctx)
	if err != nil {
		s.Log.Warn("could not read the thread; answering without its history", "error", err.Error())
		return nil
	}
	return msgs
}

// threadMessage is one earlier message of the thread.
type threadMessage struct {
	TS   string
	Text string // without the mention of the bot
	// FromBot is a bot's message (sent to the model as the assistant's); Ours is one of this
	// bot's answers (it carries slackrelay's reply metadata).
	FromBot, Ours bool
}

// turns are the thread's messages as the history of a request.
func turns(msgs []threadMessage) []llm.Turn {
	out := make([]llm.Turn, len(msgs))
	for i, m := range msgs {
		out[i] = llm.Turn{Text: m.Text, FromBot: m.FromBot}
	}
	return out
}

// thread reads the messages of a question's thread before it, once for the answer: for its
// history, and for the earlier_answers tool when the history did not read them. With a
// thread memory it records the question as the thread's turn and reads the thread from the
// memory; from Slack (conversations.replies) only when the memory has no record of the thread
// and Slack reads are allowed (one workspace), and then the memory is seeded with what Slack
// showed.
type thread struct {
	s      *relay.Session
	source relay.MessageRef
	// question is the question's text, recorded as its turn; memory and slackReads as
	// Config's Memory and !NoSlackThreadReads.
	question   string
	memory     ThreadMemory
	slackReads bool

	mu   sync.Mutex
	read bool
	msgs []threadMessage
}

// messages are the thread's messages before the question, oldest first; none in a new thread.
// A failed read is not kept: the next call tries again.
func (t *thread) messages(ctx context.Context) ([]threadMessage, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.read {
		return t.msgs, nil
	}
	parent := t.s.Thread()
	if parent == "" {
		t.read = true
		return nil, nil
	}
	memoryFailed := false
	if t.memory != nil {
		msgs, ok, err := t.fromMemory(ctx, parent)
		if err != nil && !t.slackReads {
			return nil, err
		}
		if err != nil {
			// One workspace: Slack can still tell (the question is not recorded).
			t.s.Log.Warn("thread memory unavailable; reading the thread from Slack", "error", err.Error())
			memoryFailed = true
		}
		if ok {
			t.read, t.msgs = true, msgs
			return msgs, nil
		}
	}
	if parent == t.source.TS || !t.slackReads {
		t.read = true
		return nil, nil // a new thread: nothing before it (or nothing the bot may read)
	}
	msgs, err := t.fromSlack(ctx, parent)
	if err != nil {
		return nil, err
	}
	if t.memory != nil && !memoryFailed && len(msgs) > 0 {
		// The thread started before the memory knew it: keep what Slack showed, so the next
		// follow-up needs no read.
		if _, err := t.memory.Add(ctx, memoryKey(t.s, t.source.Channel, parent), slackTurns(msgs)...); err != nil {
			t.s.Log.Warn("thread memory: could not keep the thread read from Slack", "error", err.Error())
		}
	}
	t.read, t.msgs = true, msgs
	return msgs, nil
}

// fromMemory records the question as the thread's turn and returns the turns before it; ok
// is false when the memory had no record of the thread before (a new thread, or one started
// before the memory: the caller decides whether to read it from Slack).
func (t *thread) fromMemory(ctx context.Context, parent string) ([]threadMessage, bool, error) {
	q := threadmemory.Turn{TS: t.source.TS, User: t.s.User(), Text: t.question}
	th, err := t.memory.Add(ctx, memoryKey(t.s, t.source.Channel, parent), q)
	if err != nil {
		return nil, false, fmt.Errorf("thread memory: %w", err)
	}
	if !th.Found {
		return nil, false, nil
	}
	return memoryTurns(th.Turns, t.source.TS), true, nil
}

// fromSlack reads the thread's messages before the question with conversations.replies.
func (t *thread) fromSlack(ctx context.Context, parent string) ([]threadMessage, error) {
	var msgs []threadMessage
	cursor := ""
	for range 10 {
		page, more, next, err := t.s.Slack.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
			ChannelID: t.source.Channel, Timestamp: parent, Limit: 200, Cursor: cursor, IncludeAllMetadata: true})
		if err != nil {
			return nil, fmt.Errorf("read the thread: %w", err)
		}
		for _, m := range page {
			if !before(m.Timestamp, t.source.TS) {
				more = false
				break
			}
			msgs = append(msgs, threadMessage{TS: m.Timestamp, Text: prompt(m.Text), FromBot: m.BotID != "",
				Ours: m.BotID != "" && m.Metadata.EventType == relay.ReplyMetadataType})
		}
		if !more || next == "" {
			break
		}
		cursor = next
	}
	return msgs, nil
}

// systemPrompt adds, when an assistant thread told us, the channel the user is looking at.
func (h *handlers) systemPrompt(ctx context.Context, s *relay.Session) string {
	if line := h.contextLine(ctx, s); line != "" {
		return llm.SlackSystemPrompt + " " + line
	}
	return llm.SlackSystemPrompt
}

// contextLine names the channel the user is looking at, when an assistant thread told us
// ("" otherwise).
func (h *handlers) contextLine(ctx context.Context, s *relay.Session) string {
	channel, err := s.Recall(ctx, contextNote(s.User()))
	if err != nil {
		s.Log.Warn("could not read what the user is looking at", "error", err.Error())
	}
	if channel == "" {
		return ""
	}
	return "The user is currently looking at the channel <#" + channel + ">."
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

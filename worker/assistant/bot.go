// Package assistant is the bot slackrelay ships, written with package relay as any bot would be: an
// AI assistant that answers mentions, direct messages and assistant threads in their thread,
// streamed as it is written, with the thread's earlier messages as context, a status while it
// works, Regenerate and feedback buttons on every answer; and /ask, through its response_url
// or in a modal when it comes without a question. A model that can call tools answers through
// the tool loop (package agent) with the bot's tools (calculate, current_time,
// earlier_answers), each call run once for the event.
package assistant

import (
	"context"
	"regexp"
	"strings"

	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// WorkingReaction is added to a channel message while the bot works on it (in DMs and
// assistant threads the thread's status says so instead).
const WorkingReaction = "hourglass_flowing_sand"

// Config is what the shipped bot is built with.
type Config struct {
	// LLM answers; when it is also an llm.Streamer, answers stream into the thread.
	LLM llm.Responder
	// Agent, when set, writes the answers to mentions and messages through the tool loop
	// (agent.Run) with Tools, streamed, instead of LLM's Stream; LLM still answers /ask and
	// Regenerate. New sets it for a model that can call tools unless AGENT_TOOLS=off. A model
	// with a WithLog(*slog.Logger) agent.Model method (llm.ChatAgent, llm.BedrockAgent) logs
	// each turn with the delivery's ids.
	Agent agent.Model
	// Tools are what Agent may call (none: it answers without tools). New offers DefaultTools.
	Tools []agent.Tool
	// AgentOptions bound the tool loop (rounds, time); zero values are agent's defaults.
	AgentOptions agent.Options
	// Model names the model in feedback logs and metrics.
	Model string
	// HistoryChars bounds the thread history sent with a follow-up (characters); 0 means
	// 24,000 and a negative value sends no history.
	HistoryChars int
	// NoStreaming answers with a post updated in place instead of chat.*Stream.
	NoStreaming bool
	// TaskCards shows the tool loop's calls as task cards (relay.TasksTimeline or
	// relay.TasksPlan; "" for none); StopButton shows a Stop button on streamed answers.
	TaskCards  relay.TaskDisplay
	StopButton bool
	// NoAssistantView leaves the older assistant view's events (assistant_thread_started,
	// assistant_thread_context_changed) unrouted: an app with only the agent view never gets
	// them. The zero value serves them, for apps installed with features.assistant_view.
	NoAssistantView bool
	// Metrics receives the Feedback metric and each answer's cost metrics (nil: none).
	Metrics *metrics.Emitter
	// Prices price Model's tokens (LLM_PRICES); a model without a price has an unknown cost.
	Prices Prices
	// Memory, when set, is the bot's own record of the threads it takes part in: a
	// question is recorded as its thread's turn when it arrives and the answer (as shown)
	// when it ends; follow-ups and earlier_answers read the thread from it; message_changed
	// and message_deleted events update it, and replies in channel threads it knows are
	// recorded. nil: threads are read from Slack (conversations.replies).
	Memory ThreadMemory
	// NoSlackThreadReads never reads a thread from Slack: with many workspaces, where a
	// distributed app gets one conversations.replies call a minute per workspace. A thread
	// the memory does not know is then answered without its history. Otherwise a thread
	// the memory has no record of (started before it) is read from Slack once and kept.
	NoSlackThreadReads bool
	// DailyTokenBudget is how many tokens (input and output) a workspace's answers may use
	// in a UTC day; past it the bot answers a short notice instead of asking the model. 0:
	// no budget (and no daily count kept).
	DailyTokenBudget int64
}

// Register adds the shipped routes to b.
func Register(b *relay.Router, cfg Config) {
	h := &handlers{cfg: cfg}
	relay.Event(b, "app_mention", h.mention, relay.Name("reply"))
	relay.Event(b, "message", h.message, relay.Name("reply"), relay.Skip(h.messageSkip), relay.DedupeBy(messageKey),
		relay.AllowSubtypes("file_share", subtypeChanged, subtypeDeleted))
	relay.Command(b, "/ask", h.ask, relay.Name("ask"))
	relay.ViewSubmission(b, CallbackAsk, h.askSubmitted, relay.Name("ask-modal"))
	relay.Action(b, ActionRegenerate, h.regenerate, relay.Name("regenerate"))
	relay.Action(b, ActionFeedback, h.feedback, relay.Name("feedback"))
	if !cfg.NoAssistantView {
		relay.Event(b, "assistant_thread_started", h.threadStarted, relay.Name("assistant"))
		relay.Event(b, "assistant_thread_context_changed", h.threadContextChanged, relay.Name("assistant"))
	}
	relay.Event(b, "app_home_opened", h.messagesTabOpened, relay.Name("assistant"), relay.Skip(notTheMessagesTab),
		relay.DedupeBy(greetingKey))
	relay.Event(b, "app_context_changed", h.appContextChanged, relay.Name("assistant"))
}

type handlers struct {
	cfg Config
}

func (h *handlers) mention(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
	return h.answer(ctx, req.Session, req.Payload.Text, false)
}

// withFiles is a direct message's text, naming the files shared with it (a file_share
// message): the bot cannot read them, but it answers, and says so, rather than ignore them.
func withFiles(ev *slackevents.MessageEvent) string {
	if ev.Message == nil || len(ev.Message.Files) == 0 {
		return ev.Text
	}
	var names []string
	for _, f := range ev.Message.Files {
		name := f.Name
		if name == "" {
			name = f.Title
		}
		if name == "" {
			name = "a file"
		}
		names = append(names, name)
	}
	note := "(The user shared " + strings.Join(names, ", ") + "; you cannot open files, so answer from the text and say so if the file matters.)"
	if strings.TrimSpace(ev.Text) == "" {
		return note
	}
	return ev.Text + "\n\n" + note
}

var mentionRE = regexp.MustCompile(`<@[A-Z0-9]+(\|[^>]*)?>`)

// prompt is the user's text without the mention of the bot.
func prompt(text string) string { return strings.TrimSpace(mentionRE.ReplaceAllString(text, "")) }

package assistant

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// suggestedPrompts greet a new assistant thread (at most 4, Slack's limit).
var suggestedPrompts = []slack.AssistantThreadsPrompt{
	{Title: "Summarise this channel", Message: "Summarise what happened in this channel today."},
	{Title: "Explain slackrelay", Message: "How does slackrelay answer without missing Slack's 3-second deadline?"},
	{Title: "Draft a reply", Message: "Help me draft a friendly reply to the last message."},
}

// contextNote is the note key holding the channel a user is looking at.
func contextNote(user string) string { return "context:" + user }

// threadStarted greets a new assistant thread with suggested prompts and remembers the
// channel the user opened it from.
func (h *handlers) threadStarted(ctx context.Context, req *relay.Request[slackevents.AssistantThreadStartedEvent]) error {
	t := req.Payload.AssistantThread
	h.rememberContext(ctx, req.Session, t.UserID, t.Context.ChannelID)
	return h.suggest(ctx, req.Session, t.ChannelID, t.ThreadTimeStamp)
}

// threadContextChanged remembers the channel the user now looks at, for the next answer.
func (h *handlers) threadContextChanged(ctx context.Context, req *relay.Request[slackevents.AssistantThreadContextChangedEvent]) error {
	t := req.Payload.AssistantThread
	h.rememberContext(ctx, req.Session, t.UserID, t.Context.ChannelID)
	return nil
}

// messagesTabOpened greets the agent view (the app's messages tab), where every message is
// a thread of its own: the prompts go on the conversation, not a thread.
func (h *handlers) messagesTabOpened(ctx context.Context, req *relay.Request[slackevents.AppHomeOpenedEvent]) error {
	ev := req.Payload
	if ev.Context != nil {
		h.rememberContext(ctx, req.Session, ev.User, channelOf(*ev.Context))
	}
	// The greeting, then the prompts (agent apps set them on the conversation's latest
	// message). The route runs once per user and UTC day (greetingKey), so a user who opens
	// the tab often is greeted once a day.
	if _, err := req.Post(ctx, ev.Channel, "", greeting); err != nil {
		return err
	}
	return h.suggest(ctx, req.Session, ev.Channel, "")
}

// greeting opens the messages tab once a day.
const greeting = "Hi! Ask me anything here, or mention me in a channel. I can do exact arithmetic, tell the time anywhere, and look back at what I said earlier in a thread."

// greetingKey makes the messages tab's route run once per workspace, user and UTC day (the
// day of the event's time).
func greetingKey(ev *slackevents.AppHomeOpenedEvent) string {
	sec, _, _ := strings.Cut(ev.EventTimeStamp, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return "" // the route's own key
	}
	return "home:" + ev.User + ":" + time.Unix(n, 0).UTC().Format("2006-01-02")
}

func notTheMessagesTab(_ context.Context, ev *slackevents.AppHomeOpenedEvent) string {
	if ev.Tab != "messages" {
		return "app home opened on the " + ev.Tab + " tab"
	}
	return ""
}

// appContextChanged is the agent view's context change: remember the channel in view.
func (h *handlers) appContextChanged(ctx context.Context, req *relay.Request[slackevents.AppContextChangedEvent]) error {
	h.rememberContext(ctx, req.Session, req.Payload.User, channelOf(req.Payload.Context))
	return nil
}

func channelOf(c slackevents.AppContext) string {
	for _, e := range c.Entities {
		if e.Type == slackevents.AppContextEntityChannel {
			return e.Value
		}
	}
	return ""
}

// rememberContext keeps the channel for the user's next answers. Failing to keep it only
// costs the answer that context: logged, never retried.
func (h *handlers) rememberContext(ctx context.Context, s *relay.Session, user, channel string) {
	if user == "" || channel == "" {
		return
	}
	if err := s.Remember(ctx, contextNote(user), channel); err != nil {
		s.Log.Warn("could not remember the channel the user is looking at", "error", err.Error())
	}
}

// suggest sets the suggested prompts (idempotent). A failure that a retry can fix is
// retried; one it cannot (a missing scope, say) is logged: a greeting is not worth a dead
// letter.
func (h *handlers) suggest(ctx context.Context, s *relay.Session, channel, thread string) error {
	err := s.Slack.SetAssistantThreadsSuggestedPromptsContext(ctx, slack.AssistantThreadsSetSuggestedPromptsParameters{
		ChannelID: channel, ThreadTS: thread, Title: "Try asking", Prompts: suggestedPrompts})
	if c, _ := failure.Classify(err); err != nil && c != failure.Permanent {
		return fmt.Errorf("set suggested prompts: %w", err)
	}
	if err != nil {
		s.Log.Warn("could not set suggested prompts", "error", err.Error())
	}
	return nil
}

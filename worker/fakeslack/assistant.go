package fakeslack

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Assistant threads as Slack serves them: a thread's status ("is thinking…", with loading
// messages), suggested prompts and title. A status goes away when the app sets an empty
// one, when the app replies in the thread, or after StatusLifetime without a reply.

// StatusLifetime is how long a thread's status stays without a message from the app.
const StatusLifetime = 2 * time.Minute

// Limits of the assistant thread methods.
const (
	MaxLoadingMessages  = 10
	MaxSuggestedPrompts = 4
)

// Prompt is a suggested prompt: the title shown and the message sent when it is picked.
type Prompt struct {
	Title   string `json:"title"`
	Message string `json:"message"`
}

// AssistantChange is one change to an assistant thread.
type AssistantChange struct {
	// Method is the call that made the change ("assistant.threads.setStatus",
	// "assistant.threads.setSuggestedPrompts", "assistant.threads.setTitle"), or "" when the
	// status went away without one (Cleared says why).
	Method          string   `json:"method,omitempty"`
	Status          string   `json:"status,omitempty"`
	LoadingMessages []string `json:"loading_messages,omitempty"`
	PromptsTitle    string   `json:"prompts_title,omitempty"`
	Prompts         []Prompt `json:"prompts,omitempty"`
	Title           string   `json:"title,omitempty"`
	// Cleared says why the status went away: "empty_status", "reply" or "timeout".
	Cleared string    `json:"cleared,omitempty"`
	At      time.Time `json:"at"`
}

// AssistantThread is what the app set on one thread: its current status, prompts and
// title, and the history of changes.
type AssistantThread struct {
	Channel         string            `json:"channel_id"`
	ThreadTS        string            `json:"thread_ts"`
	Status          string            `json:"status,omitempty"`
	LoadingMessages []string          `json:"loading_messages,omitempty"`
	PromptsTitle    string            `json:"prompts_title,omitempty"`
	Prompts         []Prompt          `json:"prompts,omitempty"`
	Title           string            `json:"title,omitempty"`
	History         []AssistantChange `json:"history"`
}

type assistantThread struct {
	AssistantThread
	statusAt time.Time
}

func (th *assistantThread) snapshot() AssistantThread {
	out := th.AssistantThread
	out.History = append([]AssistantChange(nil), th.History...)
	return out
}

// AssistantThreads returns every thread the app set a status, prompts or title on, in the
// order it first did, each as it is now.
func (s *Server) AssistantThreads() []AssistantThread {
	s.mu.Lock()
	var lines []string
	out := make([]AssistantThread, 0, len(s.threads))
	for _, th := range s.threads {
		lines = appendLine(lines, s.expireStatusLocked(th))
		out = append(out, th.snapshot())
	}
	s.mu.Unlock()
	s.printLines(lines)
	return out
}

// AssistantThread returns the thread threadTS in channel, and false when the app set
// nothing on it.
func (s *Server) AssistantThread(channel, threadTS string) (AssistantThread, bool) {
	for _, th := range s.AssistantThreads() {
		if th.Channel == channel && th.ThreadTS == threadTS {
			return th, true
		}
	}
	return AssistantThread{}, false
}

func (s *Server) assistantThreadLocked(ch, ts string, create bool) *assistantThread {
	for _, th := range s.threads {
		if th.Channel == ch && th.ThreadTS == ts {
			return th
		}
	}
	if !create {
		return nil
	}
	th := &assistantThread{AssistantThread: AssistantThread{Channel: ch, ThreadTS: ts}}
	s.threads = append(s.threads, th)
	return th
}

// clearStatusLocked takes th's status away for reason, recording it at at, and returns the
// line to print.
func (s *Server) clearStatusLocked(th *assistantThread, method, reason string, at time.Time) string {
	had := th.Status != ""
	th.Status, th.LoadingMessages = "", nil
	th.History = append(th.History, AssistantChange{Method: method, Cleared: reason, At: at})
	if !had {
		return ""
	}
	why := map[string]string{"empty_status": "by an empty status", "reply": "by the app's reply",
		"timeout": "after " + StatusLifetime.String() + " without a reply"}[reason]
	return fmt.Sprintf("#%s (thread %s) status cleared %s", th.Channel, th.ThreadTS, why)
}

// expireStatusLocked clears a status older than StatusLifetime.
func (s *Server) expireStatusLocked(th *assistantThread) string {
	if th.Status == "" || s.opts.Now().Sub(th.statusAt) < StatusLifetime {
		return ""
	}
	return s.clearStatusLocked(th, "", "timeout", th.statusAt.Add(StatusLifetime))
}

// replyInThreadLocked notes that the app posted in thread threadTS of ch: that clears the
// thread's status. It returns the line to print.
func (s *Server) replyInThreadLocked(ch, threadTS string) string {
	th := s.assistantThreadLocked(ch, threadTS, false)
	if threadTS == "" || th == nil || th.Status == "" {
		return ""
	}
	if line := s.expireStatusLocked(th); line != "" {
		return line
	}
	return s.clearStatusLocked(th, "", "reply", s.opts.Now())
}

// threadArgs reads channel_id and thread_ts. A missing thread_ts is the channel's latest
// message when fallback is set (as setSuggestedPrompts does).
func (s *Server) threadArgs(p params, fallback bool) (string, string, string) {
	ch, ts := p.get("channel_id"), p.get("thread_ts")
	if code := s.checkChannel(ch, true); code != "" {
		return "", "", code
	}
	if ts == "" && fallback {
		s.mu.Lock()
		if list := s.messages[ch]; len(list) > 0 {
			ts = list[len(list)-1].ts
		}
		s.mu.Unlock()
		if ts == "" {
			return "", "", "missing_thread_ts"
		}
	}
	if _, ok := parseTS(ts); !ok {
		return "", "", "invalid_thread_ts"
	}
	return ch, ts, ""
}

// stringList reads a list argument sent as a JSON array or, as slack-go sends
// loading_messages, as comma-separated text.
func stringList(raw string) ([]string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, true
	}
	var list []string
	if strings.HasPrefix(raw, "[") {
		return list, json.Unmarshal([]byte(raw), &list) == nil
	}
	for _, item := range strings.Split(raw, ",") {
		if item = strings.TrimSpace(item); item != "" {
			list = append(list, item)
		}
	}
	return list, true
}

// setStatus is assistant.threads.setStatus; an empty status clears the thread's status.
func (s *Server) setStatus(p params) obj {
	ch, ts, code := s.threadArgs(p, false)
	if code != "" {
		return slackErr(code)
	}
	status := p.get("status")
	loading, ok := stringList(p.get("loading_messages"))
	switch {
	case !ok:
		return invalidArgs(argError("must be an array of strings", "/loading_messages"))
	case len(loading) > MaxLoadingMessages:
		return invalidArgs(argError(fmt.Sprintf("must provide at most %d items", MaxLoadingMessages), "/loading_messages"))
	}
	s.mu.Lock()
	th := s.assistantThreadLocked(ch, ts, true)
	now := s.opts.Now()
	lines := appendLine(nil, s.expireStatusLocked(th))
	if status == "" {
		lines = appendLine(lines, s.clearStatusLocked(th, "assistant.threads.setStatus", "empty_status", now))
	} else {
		th.Status, th.LoadingMessages, th.statusAt = status, loading, now
		th.History = append(th.History, AssistantChange{Method: "assistant.threads.setStatus", Status: status,
			LoadingMessages: loading, At: now})
		line := fmt.Sprintf("#%s (thread %s) status: %s", ch, ts, preview(status, nil))
		if len(loading) > 0 {
			line += fmt.Sprintf(" (%d loading messages)", len(loading))
		}
		lines = append(lines, line)
	}
	s.mu.Unlock()
	s.printLines(lines)
	return obj{"ok": true}
}

// setSuggestedPrompts is assistant.threads.setSuggestedPrompts.
func (s *Server) setSuggestedPrompts(p params) obj {
	ch, ts, code := s.threadArgs(p, true)
	if code != "" {
		return slackErr(code)
	}
	raw := strings.TrimSpace(p.get("prompts"))
	var prompts []Prompt
	switch {
	case raw == "" || raw == "null":
		return invalidArgs(argError("missing required field: prompts", ""))
	case json.Unmarshal([]byte(raw), &prompts) != nil:
		return invalidArgs(argError("must be an array of objects with title and message", "/prompts"))
	case len(prompts) == 0:
		return invalidArgs(argError("must provide at least 1 items", "/prompts"))
	case len(prompts) > MaxSuggestedPrompts:
		return invalidArgs(argError(fmt.Sprintf("must provide at most %d items", MaxSuggestedPrompts), "/prompts"))
	}
	var msgs []string
	for i, pr := range prompts {
		if pr.Title == "" {
			msgs = append(msgs, argError("missing required field: title", fmt.Sprintf("/prompts/%d", i)))
		}
		if pr.Message == "" {
			msgs = append(msgs, argError("missing required field: message", fmt.Sprintf("/prompts/%d", i)))
		}
	}
	if msgs != nil {
		return invalidArgs(msgs...)
	}
	title := p.get("title")
	s.mu.Lock()
	th := s.assistantThreadLocked(ch, ts, true)
	th.PromptsTitle, th.Prompts = title, prompts
	th.History = append(th.History, AssistantChange{Method: "assistant.threads.setSuggestedPrompts",
		PromptsTitle: title, Prompts: prompts, At: s.opts.Now()})
	s.mu.Unlock()
	names := make([]string, len(prompts))
	for i, pr := range prompts {
		names[i] = pr.Title
	}
	head := "prompts"
	if title != "" {
		head += " " + fmt.Sprintf("%q", title)
	}
	s.printLine("#%s (thread %s) %s: %s", ch, ts, head, preview(strings.Join(names, " · "), nil))
	return obj{"ok": true}
}

// setTitle is assistant.threads.setTitle.
func (s *Server) setTitle(p params) obj {
	ch, ts, code := s.threadArgs(p, false)
	if code != "" {
		return slackErr(code)
	}
	title := p.get("title")
	if title == "" {
		return invalidArgs(argError("missing required field: title", ""))
	}
	s.mu.Lock()
	th := s.assistantThreadLocked(ch, ts, true)
	th.Title = title
	th.History = append(th.History, AssistantChange{Method: "assistant.threads.setTitle", Title: title, At: s.opts.Now()})
	s.mu.Unlock()
	s.printLine("#%s (thread %s) title: %s", ch, ts, preview(title, nil))
	return obj{"ok": true}
}

package llm

import "unicode/utf8"

// Turn is one earlier message of a thread.
type Turn struct {
	Text string
	// FromBot is true for the bot's own messages (sent as the assistant's).
	FromBot bool
}

// History returns the messages of a request answering prompt in a thread whose earlier
// messages are earlier (oldest first, the prompt's own message not among them): as many of
// the newest earlier messages as fit in budget characters together with the prompt, oldest
// first, then the prompt. The prompt is always kept, even alone over the budget; older
// messages are dropped from the first one (going back in time) that does not fit, so the
// conversation sent has no gaps. Empty messages are skipped. dropped counts the earlier
// messages left out for the budget.
func History(earlier []Turn, prompt string, budget int) (msgs []Message, dropped int) {
	used := utf8.RuneCountInString(prompt)
	first := len(earlier) // earlier[first:] are kept
	for i := len(earlier) - 1; i >= 0; i-- {
		n := utf8.RuneCountInString(earlier[i].Text)
		if n == 0 {
			first = i
			continue
		}
		if used+n > budget {
			break
		}
		used += n
		first = i
	}
	msgs = make([]Message, 0, len(earlier)-first+1)
	for _, t := range earlier[first:] {
		if t.Text == "" {
			continue
		}
		role := RoleUser
		if t.FromBot {
			role = RoleAssistant
		}
		msgs = append(msgs, Message{Role: role, Content: t.Text})
	}
	for _, t := range earlier[:first] {
		if t.Text != "" {
			dropped++
		}
	}
	return append(msgs, Message{Role: RoleUser, Content: prompt}), dropped
}

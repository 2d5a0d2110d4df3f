package localllm

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// vocabulary fills generated answers: the words are picked by a hash of the prompt, so one
// prompt always gets the same answer.
var vocabulary = strings.Fields(`the queue keeps every event until a worker has answered it once and only once
while the thread shows each word as soon as it arrives from the model so that people can read
along instead of waiting for a long reply to appear all at once at the end of the work`)

// answerTokens returns the answer to messages as tokens that concatenate to its text, each
// a word with the space after it (see words). The generated answer names the prompt (the last
// message) and the number of messages received, then fills up to n tokens with words chosen
// by the prompt.
func (s *Server) answerTokens(messages []Message, n int) []string {
	if s.opts.Answer != nil {
		return words(s.opts.Answer(messages))
	}
	if n <= 0 {
		n = DefaultAnswerTokens
	}
	prompt := ""
	if len(messages) > 0 {
		prompt = messages[len(messages)-1].Content
	}
	head := strings.Fields(prompt)
	if len(head) > 8 {
		head = append(head[:8], "…")
	}
	toks := words(fmt.Sprintf("Local answer to %q after %d messages: ", strings.Join(head, " "), len(messages)))
	h := fnv.New64a()
	_, _ = h.Write([]byte(prompt))
	x := h.Sum64()
	for len(toks) < n {
		x = x*6364136223846793005 + 1442695040888963407 // one step of a linear congruential generator
		toks = append(toks, vocabulary[(x>>33)%uint64(len(vocabulary))]+" ")
	}
	toks = toks[:n]
	toks[n-1] = strings.TrimRight(toks[n-1], " ")
	return toks
}

// words cuts text after each space, so the pieces join back to text.
func words(text string) []string {
	out := strings.SplitAfter(text, " ")
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// promptTokens approximates a request's prompt tokens: its words, plus 3 per message for
// the role and framing, as chat models count roughly.
func promptTokens(messages []Message) int {
	n := 0
	for _, m := range messages {
		n += 3 + len(strings.Fields(m.Content))
	}
	return n
}

// AnswerText is the text the server answers to messages at the current pace's length, cut
// to maxTokens tokens when that is positive (as a request's max_tokens would), so tests can
// compare what a client received with what was sent.
func (s *Server) AnswerText(messages []Message, maxTokens int) string {
	toks := s.answerTokens(messages, s.Pace().AnswerTokens)
	if maxTokens > 0 && maxTokens < len(toks) {
		toks = toks[:maxTokens]
	}
	return strings.Join(toks, "")
}

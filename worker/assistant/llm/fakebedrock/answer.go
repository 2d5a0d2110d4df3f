package fakebedrock

import (
	"strings"
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"
)

// vocabulary fills generated answers: the words are picked by a hash of the prompt, so one
// prompt always gets the same answer.
var vocabulary = strings.Fields(`the model on bedrock streams every word of its answer as an event so that the thread
can show the reply while it is written and the worker can pick it up again from the last word shown
when an invocation ends before the answer does`)

// prompt is the text of the conversation's last user message.
func prompt(msgs []Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return strings.Join(msgs[i].Texts, "\n")
		}
	}
	return ""
}

// answerTokens returns the answer to msgs as tokens that concatenate to its text, each a word
// with the space after it: script when not empty, else a generated text naming the prompt and
// the number of messages, then words chosen by the prompt. n (0: the default) is the length in
// tokens, as Pace.AnswerTokens says.
func answerTokens(msgs []Message, n int, script string) []string {
	p := prompt(msgs)
	if script != "" {
		return fakemodel.Fill(fakemodel.Words(script), n, p, vocabulary)
	}
	if n <= 0 {
		n = DefaultAnswerTokens
	}
	return fakemodel.Fill(fakemodel.Generated("Bedrock", p, len(msgs)), n, p, vocabulary)
}

// reply returns the tokens answering msgs: the answer, or, when the last message is the
// assistant's (a prefill), the answer to the messages before it from where that message's
// text ends.
func reply(msgs []Message, n int, script string) ([]string, *Prefill) {
	last := len(msgs) - 1
	if last < 0 || msgs[last].Role != "assistant" {
		return answerTokens(msgs, n, script), nil
	}
	given := strings.Join(msgs[last].Texts, "")
	rest, prefix := fakemodel.After(answerTokens(msgs[:last], n, script), given)
	return rest, &Prefill{Chars: utf8.RuneCountInString(given), NotAPrefix: !prefix}
}

// inputTokens approximates a request's input tokens: its words, plus 3 per message and per
// system block, as models count roughly.
func inputTokens(system []string, msgs []Message) int {
	n := 0
	for _, s := range system {
		n += 3 + len(strings.Fields(s))
	}
	for _, m := range msgs {
		n += 3
		for _, t := range m.Texts {
			n += len(strings.Fields(t))
		}
		for _, r := range m.ToolResults {
			n += len(strings.Fields(r.Text()))
		}
	}
	return n
}

// AnswerText is the text the server answers to msgs at the current pace's length, cut to
// maxTokens tokens when that is positive, so tests can compare what a client received with
// what was sent. Messages ending with the assistant's are a prefill: the text is then the
// continuation, from where that message ends.
func (s *Server) AnswerText(msgs []Message, maxTokens int) string {
	s.mu.Lock()
	n, script := s.pace.AnswerTokens, s.script
	s.mu.Unlock()
	toks, _ := reply(msgs, n, script)
	if maxTokens > 0 && maxTokens < len(toks) {
		toks = toks[:maxTokens]
	}
	return strings.Join(toks, "")
}

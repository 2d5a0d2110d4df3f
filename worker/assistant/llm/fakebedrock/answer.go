package fakebedrock

import (
	"fmt"
	"hash/fnv"
	"strings"
	"unicode/utf8"
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
	var toks []string
	if script != "" {
		toks = words(script)
	} else {
		if n <= 0 {
			n = DefaultAnswerTokens
		}
		head := strings.Fields(p)
		if len(head) > 8 {
			head = append(head[:8], "…")
		}
		toks = words(fmt.Sprintf("Bedrock answer to %q after %d messages: ", strings.Join(head, " "), len(msgs)))
	}
	if n <= 0 {
		return toks
	}
	if k := len(toks); k > 0 && k < n && !strings.HasSuffix(toks[k-1], " ") {
		toks[k-1] += " "
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(p))
	x := h.Sum64()
	for len(toks) < n {
		x = x*6364136223846793005 + 1442695040888963407 // one step of a linear congruential generator
		toks = append(toks, vocabulary[(x>>33)%uint64(len(vocabulary))]+" ")
	}
	toks = toks[:n]
	toks[n-1] = strings.TrimRight(toks[n-1], " ")
	return toks
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
	rest, prefix := after(answerTokens(msgs[:last], n, script), given)
	return rest, &Prefill{Chars: utf8.RuneCountInString(given), NotAPrefix: !prefix}
}

// after returns the tokens of the answer toks that follow the text given, the first one cut
// where given ends, and whether given is a beginning of the answer. When it is not, the
// answer goes on from given's length in characters.
func after(toks []string, given string) (rest []string, prefix bool) {
	text := strings.Join(toks, "")
	if !strings.HasPrefix(text, given) {
		off, n := len(text), utf8.RuneCountInString(given)
		for i := range text {
			if n == 0 {
				off = i
				break
			}
			n--
		}
		rest, _ = after(toks, text[:off])
		return rest, false
	}
	off, pos := len(given), 0
	for _, t := range toks {
		switch end := pos + len(t); {
		case end <= off:
		case pos >= off:
			rest = append(rest, t)
		default:
			rest = append(rest, t[off-pos:])
		}
		pos += len(t)
	}
	return rest, true
}

// words cuts text after each space, so the pieces join back to text.
func words(text string) []string {
	out := strings.SplitAfter(text, " ")
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
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

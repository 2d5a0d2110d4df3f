package fakellm

import (
	"fmt"
	"hash/fnv"
	"strings"
	"unicode/utf8"
)

// vocabulary fills generated answers: the words are picked by a hash of the prompt, so one
// prompt always gets the same answer.
var vocabulary = strings.Fields(`the queue keeps every event until a worker has answered it once and only once
while the thread shows each word as soon as it arrives from the model so that people can read
along instead of waiting for a long reply to appear all at once at the end of the work`)

// How a request asked to continue its last message (Continuation.Via).
const (
	// ViaContinueFinalMessage: `continue_final_message: true` with `add_generation_prompt:
	// false`, as vLLM asks.
	ViaContinueFinalMessage = "continue_final_message"
	// ViaPrefix: `"prefix": true` on the last message, as DeepSeek's and Mistral's APIs ask.
	ViaPrefix = "prefix"
	// ViaTrailing: a trailing assistant message alone, which llama.cpp's server continues by
	// default.
	ViaTrailing = "trailing"
)

// Continuation is a request that asked to continue its last message, the assistant's (a
// prefill): the answer is the scripted answer to the conversation before that message,
// from where the message's text ends.
type Continuation struct {
	// Via is how the request asked: ViaContinueFinalMessage, ViaPrefix or ViaTrailing.
	Via string `json:"via"`
	// Chars is the length of the given text in characters.
	Chars int `json:"chars"`
	// NotAPrefix is set when the given text is not a beginning of the scripted answer: the
	// answer was continued from the given text's length anyway.
	NotAPrefix bool `json:"not_a_prefix,omitempty"`
}

// answerTokens returns the answer to messages as tokens that concatenate to its text, each
// a word with the space after it (see words). The text is script (SetScript) when not
// empty, else Options.Answer's when that is set, else generated: it names the prompt (the last
// message) and the number of messages received, then words chosen by the prompt. n (0: the
// default) is the length in tokens: a generated answer is n tokens long (DefaultAnswerTokens
// when n is 0); a script's or Options.Answer's text is cut to n tokens, or filled up to n
// with words chosen by the prompt, when n is positive, and kept as it is when n is 0.
func (s *Server) answerTokens(messages []Message, n int, script string) ([]string, []ToolCall) {
	prompt := ""
	if len(messages) > 0 {
		prompt = messages[len(messages)-1].Content
	}
	var r *Reply
	if script == "" && s.opts.Reply != nil {
		r = s.opts.Reply(messages)
	}
	var toks []string
	var calls []ToolCall
	switch {
	case script != "":
		toks = words(script)
	case r != nil:
		calls = r.ToolCalls
		if r.Text == "" {
			return nil, calls
		}
		toks = words(r.Text)
	case s.opts.Answer != nil:
		toks = words(s.opts.Answer(messages))
	default:
		if n <= 0 {
			n = DefaultAnswerTokens
		}
		head := strings.Fields(prompt)
		if len(head) > 8 {
			head = append(head[:8], "…")
		}
		toks = words(fmt.Sprintf("Local answer to %q after %d messages: ", strings.Join(head, " "), len(messages)))
	}
	if n <= 0 {
		return toks, calls
	}
	if k := len(toks); k > 0 && k < n && !strings.HasSuffix(toks[k-1], " ") {
		toks[k-1] += " " // a custom text without a space at its end, filled up
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(prompt))
	x := h.Sum64()
	for len(toks) < n {
		x = x*6364136223846793005 + 1442695040888963407 // one step of a linear congruential generator
		toks = append(toks, vocabulary[(x>>33)%uint64(len(vocabulary))]+" ")
	}
	toks = toks[:n]
	toks[n-1] = strings.TrimRight(toks[n-1], " ")
	return toks, calls
}

// reply returns the tokens answering msgs, and the tool calls after them: the scripted
// answer, or, when via names how the request asked to continue its last message, the
// scripted answer to the messages before it from where that message's text ends (its
// Continuation recorded).
func (s *Server) reply(msgs []Message, via string, n int, script string) ([]string, []ToolCall, *Continuation) {
	if via == "" {
		toks, calls := s.answerTokens(msgs, n, script)
		return toks, calls, nil
	}
	given := msgs[len(msgs)-1].Content
	toks, calls := s.answerTokens(msgs[:len(msgs)-1], n, script)
	rest, prefix := after(toks, given)
	return rest, calls, &Continuation{Via: via, Chars: utf8.RuneCountInString(given), NotAPrefix: !prefix}
}

// after returns the tokens of the answer toks that follow the text given, the first one
// cut where given ends, and whether given is a beginning of the answer. When it is not, the
// answer goes on from given's length in characters (nothing when given is as long).
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
// compare what a client received with what was sent. Messages ending with an assistant's
// are taken as a request to continue it (as the server takes them unless the request says
// otherwise): the text is then the continuation, from where that message ends.
func (s *Server) AnswerText(messages []Message, maxTokens int) string {
	via := ""
	if n := len(messages); n > 0 && messages[n-1].Role == "assistant" {
		via = ViaTrailing
	}
	s.mu.Lock()
	n, script := s.pace.AnswerTokens, s.script
	s.mu.Unlock()
	toks, _, _ := s.reply(messages, via, n, script)
	if maxTokens > 0 && maxTokens < len(toks) {
		toks = toks[:maxTokens]
	}
	return strings.Join(toks, "")
}

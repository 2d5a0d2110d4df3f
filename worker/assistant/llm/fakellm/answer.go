package fakellm

import (
	"strings"
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"
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
		toks = fakemodel.Words(script)
	case r != nil:
		calls = r.ToolCalls
		if r.Text == "" {
			return nil, calls
		}
		toks = fakemodel.Words(r.Text)
	case s.opts.Answer != nil:
		toks = fakemodel.Words(s.opts.Answer(messages))
	default:
		if n <= 0 {
			n = DefaultAnswerTokens
		}
		toks = fakemodel.Generated("Local", prompt, len(messages))
	}
	return fakemodel.Fill(toks, n, prompt, vocabulary), calls
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
	rest, prefix := fakemodel.After(toks, given)
	return rest, calls, &Continuation{Via: via, Chars: utf8.RuneCountInString(given), NotAPrefix: !prefix}
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

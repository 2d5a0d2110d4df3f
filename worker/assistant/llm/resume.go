package llm

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// PrefillStyle is how a prefill request (Chat.Prefill) asks the server to continue its
// final, assistant message rather than answer after it. Servers disagree: vLLM needs two
// request fields, DeepSeek and Mistral a field on the message, llama.cpp's server nothing;
// and strict APIs refuse fields they do not know.
type PrefillStyle string

// Prefill styles.
const (
	// PrefillContinue (the default, also "") sends `continue_final_message: true` and
	// `add_generation_prompt: false`: vLLM's and Hugging Face TGI's parameters (vLLM refuses
	// continue_final_message with its default add_generation_prompt), which recent llama.cpp
	// servers also accept and lenient servers ignore.
	PrefillContinue PrefillStyle = "continue"
	// PrefillPrefix sets `"prefix": true` on the final message, as DeepSeek's and Mistral's
	// APIs ask.
	PrefillPrefix PrefillStyle = "prefix"
	// PrefillPlain sends the final assistant message alone, for servers that continue any
	// trailing assistant message (llama.cpp's llama-server by default) and refuse fields they
	// do not know.
	PrefillPlain PrefillStyle = "plain"
)

// ParsePrefillStyle reads a prefill style as configured: "continue" (or ""), "prefix" or
// "plain".
func ParsePrefillStyle(s string) (PrefillStyle, error) {
	switch st := PrefillStyle(s); st {
	case "", PrefillContinue:
		return PrefillContinue, nil
	case PrefillPrefix, PrefillPlain:
		return st, nil
	}
	return "", fmt.Errorf("prefill style %q is not continue, prefix or plain", s)
}

// resumer drops from the text a server sends what Request.Partial already holds, so onDelta
// gets only the continuation and Partial followed by it is the answer.
//
// Regenerating, the server sends the whole answer again: the whole characters of Partial
// (head) are dropped one for one, compared as they go. Prefilling, the server was sent
// Partial without its trailing whitespace (chat templates strip it, and a model continues
// "word" better than "word ") and without an incomplete last character (JSON cannot carry
// half a character): its continuation starts where that text ends. In both cases the bytes
// of Partial the server has not accounted for (tail: the incomplete character; prefilling,
// the whitespace before it) are dropped from the continuation as far as it repeats them, so
// Partial cut inside a character is completed by the rest of that character.
type resumer struct {
	regenerate bool
	partial    int    // characters of Partial
	head       string // whole characters of Partial still to drop (regenerating)
	tail       string // bytes of Partial the continuation should start with, still to drop

	dropped    int           // characters dropped from the server's text
	firstDelta time.Duration // from the request to the first new text (0 before it)
	same       int           // characters dropped that were Partial's, up to the first that was not
	differs    bool          // regenerating, the new answer is not Partial at its beginning
	logged     bool
}

// newResumer returns the resumer of a request with partial, and, prefilling, the text to send
// as the final assistant message ("" for none: nothing worth sending).
func newResumer(partial string, prefill bool) (*resumer, string) {
	r := &resumer{regenerate: !prefill, partial: utf8.RuneCountInString(partial)}
	whole := partial[:len(partial)-len(incompleteRune(partial))]
	if !prefill {
		r.head, r.tail = whole, partial[len(whole):]
		return r, ""
	}
	sent := strings.TrimRightFunc(whole, unicode.IsSpace)
	r.tail = partial[len(sent):]
	return r, sent
}

// incompleteRune is the end of s that begins a UTF-8 encoded character without finishing
// it (s cut inside a character), or "".
func incompleteRune(s string) string {
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if utf8.FullRuneInString(s[i:]) {
				return ""
			}
			return s[i:]
		}
	}
	return ""
}

// take returns the part of piece (text as the server sent it) that is new.
func (r *resumer) take(piece string) string {
	for r.head != "" && piece != "" {
		_, n := utf8.DecodeRuneInString(piece)
		_, m := utf8.DecodeRuneInString(r.head)
		if !r.differs && piece[:n] == r.head[:m] {
			r.same++
		} else {
			r.differs = true
		}
		piece, r.head = piece[n:], r.head[m:]
		r.dropped++
	}
	if r.tail == "" || piece == "" {
		return piece
	}
	k := 0
	for k < len(r.tail) && k < len(piece) && r.tail[k] == piece[k] {
		k++
	}
	switch {
	case k == len(piece) && k < len(r.tail):
		r.tail = r.tail[k:] // the piece was all a repeat; the next one may go on with it
	case k < len(r.tail) && r.regenerate:
		// Another character where Partial has one cut short: it stands for it, and is
		// dropped like the others.
		r.differs = true
		_, k = utf8.DecodeRuneInString(piece)
		r.tail = ""
	default:
		r.tail = ""
	}
	r.dropped += utf8.RuneCountInString(piece[:k])
	return piece[k:]
}

// finish ends the dropping: ended says the server's answer is complete (not cut), so a
// regenerated answer that ended before reaching the end of Partial differs from it.
// Regenerating, a difference is logged once to log at WARN, with lengths, never text: the
// model did not give the same answer twice, so the continuation may not follow on from
// Partial.
func (r *resumer) finish(ended bool, log *slog.Logger, model string) {
	if ended && r.regenerate && (r.head != "" || r.tail != "") {
		r.differs = true
	}
	if !r.differs || r.logged || log == nil {
		return
	}
	r.logged = true
	log.Warn("llm regenerated answer differs from the partial answer shown (the model is not deterministic)",
		"model", model, "partial_chars", r.partial, "same_chars", r.same, "regenerated_chars", r.dropped, "complete", ended)
}

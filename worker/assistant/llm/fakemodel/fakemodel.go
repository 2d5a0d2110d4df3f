// Package fakemodel is what the local model stand-ins (fakellm, an OpenAI-compatible API, and
// fakebedrock, Bedrock's ConverseStream) share, so they answer alike and are paced alike: the
// pace of an answer (Pace, Pacer, and its JSON form on their control APIs), the answer's
// tokens (Words, Generated, Fill), and continuing a text a request gives (After). Each
// stand-in keeps only its API's shape. No emulator of either API runs here, which is why they
// are hand-written.
package fakemodel

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultAnswerTokens is a generated answer's length when Pace.AnswerTokens is 0.
const DefaultAnswerTokens = 30

// Pace is how fast a stand-in answers.
type Pace struct {
	// FirstToken is the wait between a request and the first token.
	FirstToken time.Duration
	// TokensPerSecond is the rate of the tokens after the first (0: as fast as possible).
	TokensPerSecond float64
	// AnswerTokens is the answer's length in tokens (words). 0: DefaultAnswerTokens for a
	// generated answer, and a given text (a script) as it is; a positive value also cuts such
	// a text, or fills it up with generated words. A request's own limit on output tokens
	// cuts the answer shorter.
	AnswerTokens int
}

// Due is when token i is due after the request: the first after FirstToken, each further one
// 1/TokensPerSecond later.
func (p Pace) Due(i int) time.Duration {
	d := p.FirstToken
	if p.TokensPerSecond > 0 && i > 0 {
		d += time.Duration(float64(i) / p.TokensPerSecond * float64(time.Second))
	}
	return d
}

// Span is the time from a request to the last token of an answer of tokens tokens at this
// pace (stalls aside): FirstToken, then tokens-1 tokens at TokensPerSecond. Tokens are
// written on a timer, so an answer spanning minutes costs a goroutine and a timer, no CPU.
func (p Pace) Span(tokens int) time.Duration { return p.Due(max(tokens-1, 0)) }

// PaceJSON is a Pace on a stand-in's control API (POST and GET /_control/pace); a field left
// out is left as it is.
type PaceJSON struct {
	FirstTokenSeconds *float64 `json:"first_token_seconds,omitempty"`
	TokensPerSecond   *float64 `json:"tokens_per_second,omitempty"`
	AnswerTokens      *int     `json:"answer_tokens,omitempty"`
}

// JSON is p on the control API.
func (p Pace) JSON() PaceJSON {
	first := p.FirstToken.Seconds()
	return PaceJSON{FirstTokenSeconds: &first, TokensPerSecond: &p.TokensPerSecond, AnswerTokens: &p.AnswerTokens}
}

// ErrNegative is Apply's answer to a negative value.
var ErrNegative = errors.New("negative_value")

// Apply sets the fields j gives on p; a negative value changes nothing and is ErrNegative.
func (j PaceJSON) Apply(p *Pace) error {
	if j.FirstTokenSeconds != nil && *j.FirstTokenSeconds < 0 || j.TokensPerSecond != nil && *j.TokensPerSecond < 0 ||
		j.AnswerTokens != nil && *j.AnswerTokens < 0 {
		return ErrNegative
	}
	if j.FirstTokenSeconds != nil {
		p.FirstToken = Seconds(*j.FirstTokenSeconds)
	}
	if j.TokensPerSecond != nil {
		p.TokensPerSecond = *j.TokensPerSecond
	}
	if j.AnswerTokens != nil {
		p.AnswerTokens = *j.AnswerTokens
	}
	return nil
}

// Seconds turns a control API's seconds into a duration.
func Seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// Pacer waits for the moments tokens are due, on one timer for the whole answer.
type Pacer struct {
	ctx   context.Context
	timer *time.Timer
}

// NewPacer returns a pacer that stops waiting when ctx ends (the client went away).
func NewPacer(ctx context.Context) *Pacer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &Pacer{ctx: ctx, timer: t}
}

// Wait returns after d, or with ctx's error when the client goes away first.
func (p *Pacer) Wait(d time.Duration) error {
	if d <= 0 {
		return p.ctx.Err()
	}
	p.timer.Reset(d)
	select {
	case <-p.timer.C:
		return nil
	case <-p.ctx.Done():
		p.timer.Stop()
		return p.ctx.Err()
	}
}

// Words cuts text after each space, so the pieces join back to text.
func Words(text string) []string {
	out := strings.SplitAfter(text, " ")
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// Generated is the start of a generated answer: "<label> answer to "<the prompt's first
// words>" after <messages> messages: ", as tokens.
func Generated(label, prompt string, messages int) []string {
	head := strings.Fields(prompt)
	if len(head) > 8 {
		head = append(head[:8], "…")
	}
	return Words(fmt.Sprintf("%s answer to %q after %d messages: ", label, strings.Join(head, " "), messages))
}

// Fill makes toks n tokens long: cut, or filled up with words of vocabulary chosen by prompt
// (the same prompt always gets the same words). n <= 0 keeps toks as they are.
func Fill(toks []string, n int, prompt string, vocabulary []string) []string {
	if n <= 0 {
		return toks
	}
	if k := len(toks); k > 0 && k < n && !strings.HasSuffix(toks[k-1], " ") {
		toks[k-1] += " " // a given text without a space at its end, filled up
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
	return toks
}

// After returns the tokens of the answer toks that follow the text given, the first one cut
// where given ends, and whether given is a beginning of the answer. When it is not, the
// answer goes on from given's length in characters (nothing when given is as long).
func After(toks []string, given string) (rest []string, prefix bool) {
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
		rest, _ = After(toks, text[:off])
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

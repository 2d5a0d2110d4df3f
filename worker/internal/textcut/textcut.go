// Package textcut cuts text for Slack and for the fields that hold it: at paragraph, line and
// word boundaries, and never inside a UTF-8 sequence.
package textcut

import (
	"strings"
	"unicode/utf8"
)

// Split cuts text into pieces of at most max runes, preferring paragraph, line, then word
// boundaries, never cutting inside a UTF-8 sequence. Empty text gives no pieces.
func Split(text string, max int) []string {
	return SplitFit(text, func(string) int { return max })
}

// SplitFit cuts text into pieces as Split does, each at most fit(rest) runes, where rest is
// the text not yet cut (so fit can measure more than runes: escaped size, a block's budget).
// A fit below 1 still takes one rune. Every piece is trimmed at its cut; no text is lost.
func SplitFit(text string, fit func(rest string) int) []string {
	text = strings.TrimSpace(text)
	var out []string
	for text != "" {
		n := max(fit(text), 1)
		if utf8.RuneCountInString(text) <= n {
			out = append(out, text)
			break
		}
		// Byte offset of the n-th rune.
		cut := 0
		for i := range text {
			if n == 0 {
				cut = i
				break
			}
			n--
		}
		window := text[:cut]
		at := -1
		for _, sep := range []string{"\n\n", "\n", " "} {
			if i := strings.LastIndex(window, sep); i > len(window)/2 {
				at = i
				break
			}
		}
		if at < 0 {
			at = cut
		}
		out = append(out, strings.TrimSpace(text[:at]))
		text = strings.TrimSpace(text[at:])
	}
	return out
}

// Truncate cuts s to at most max bytes without splitting a UTF-8 sequence.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

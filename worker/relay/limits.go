package relay

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/internal/textcut"
)

// Slack's size limits, as its method and Block Kit pages give them (and, for the blocks'
// total, as developers measured it: Slack does not document that one). Every helper sizes
// what it sends by these before sending, so a size error from Slack is a bug, not a retry.
const (
	// maxTextChars is the most a message's text argument holds (chat.postMessage,
	// chat.update, response_url).
	maxTextChars = 40000
	// maxMarkdownChars is the most markdown_text one chat.startStream, appendStream or
	// stopStream call carries, and the most all markdown blocks of one message hold.
	maxMarkdownChars = 12000
	// maxBlocksChars bounds a message's blocks. Slack answers msg_blocks_too_long at about
	// 13,200 characters of block text (bolt-js #2509); we count the characters of the blocks'
	// JSON as slack-go sends it, which is never less, so a message we size fits.
	maxBlocksChars = 13200
	// maxBlocks is the most blocks a message (and, separately, chat.stopStream) holds.
	maxBlocks = 50
	// MaxSectionChars is the most text a section block holds.
	MaxSectionChars = 3000
	// MaxViewBlocks is the most blocks a modal holds.
	MaxViewBlocks = 100
)

// Sizes the helpers plan with.
const (
	// MaxAnswerMessageChars bounds each message of a streamed answer, so that any of them can
	// be set whole by chat.update as one markdown block with the buttons under it (a resumed
	// message, a stream Slack ended by itself). Longer answers continue in another message.
	MaxAnswerMessageChars = 11000
	// FinalBlocksChars is what the blocks under an answer (Finish's, WithBlocks') may take in
	// JSON characters; the text's share of maxBlocksChars is what is left.
	FinalBlocksChars = 2000
	// MaxPartRunes is the longest text posted in one message of a multi-part post: Slack
	// renders long text best in pieces of a few thousand characters.
	MaxPartRunes = 3900
)

// jsonChars is how many characters s takes inside a JSON string as encoding/json writes it
// (with HTML escaping, as slack-go marshals blocks).
func jsonChars(s string) int {
	n := 0
	for i, r := range s {
		n += runeJSONChars(r, r == utf8.RuneError && !validAt(s, i))
	}
	return n
}

// runeJSONChars is how many characters r takes inside a JSON string (invalid: a byte that is
// not UTF-8, written as \ufffd).
func runeJSONChars(r rune, invalid bool) int {
	switch {
	case invalid:
		return 6
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t' || r == '\b' || r == '\f':
		return 2
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
		return 6
	}
	return 1
}

func validAt(s string, i int) bool {
	r, size := utf8.DecodeRuneInString(s[i:])
	return !(r == utf8.RuneError && size <= 1)
}

// blocksChars is the characters of blocks' JSON (0 for none).
func blocksChars(blocks []slack.Block) int {
	if len(blocks) == 0 {
		return 0
	}
	raw, err := json.Marshal(blocks)
	if err != nil {
		return maxBlocksChars + 1
	}
	return utf8.RuneCount(raw)
}

// markdownBlockOverhead is the JSON around a markdown block's text, with the comma that
// separates it from the next block.
var markdownBlockOverhead = blocksChars([]slack.Block{slack.NewMarkdownBlock("", "")}) + 1

// fitMarkdown returns how many leading runes of text fit in one markdown block next to
// blocks of extraChars JSON characters: at most maxRunes runes and maxMarkdownChars, and the
// block's JSON within maxBlocksChars.
func fitMarkdown(text string, maxRunes, extraChars int) int {
	maxRunes = min(maxRunes, maxMarkdownChars)
	budget := maxBlocksChars - extraChars - markdownBlockOverhead
	n, chars := 0, 0
	for i, r := range text {
		if n == maxRunes {
			return n
		}
		c := runeJSONChars(r, r == utf8.RuneError && !validAt(text, i))
		if chars+c > budget {
			return n
		}
		chars += c
		n++
	}
	return n
}

// splitMarkdown cuts text into pieces that each fit fitMarkdown(maxRunes, extraChars),
// preferring paragraph, line, then word boundaries (textcut.SplitFit).
func splitMarkdown(body string, maxRunes, extraChars int) []string {
	return textcut.SplitFit(body, func(rest string) int { return fitMarkdown(rest, maxRunes, extraChars) })
}

// byteOffset is the byte offset of rune n of s (len(s) when s is shorter).
func byteOffset(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}

// cutToFit cuts text to what fits in one markdown block next to extraChars of blocks, with
// note after it when it had to be cut.
func cutToFit(text string, maxRunes, extraChars int, note string) string {
	if fitMarkdown(text, maxRunes, extraChars) >= utf8.RuneCountInString(text) {
		return text
	}
	room := fitMarkdown(text, maxRunes-utf8.RuneCountInString(note), extraChars+jsonChars(note))
	return strings.TrimSpace(text[:byteOffset(text, room)]) + note
}

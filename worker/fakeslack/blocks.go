package fakeslack

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Block Kit as Slack checks and shows it: the limits a message's (or a modal's) blocks must
// keep, answered with Slack's error codes, and the text and actions a client shows for them.
// Where Slack's exact rule is unknown the server is stricter than Slack, and says so.

// Limits of message content. A message is what chat.postMessage, chat.postEphemeral,
// chat.update, a response_url post or a stream (chat.startStream, appendStream, stopStream)
// carries.
const (
	// MaxMarkdownText is the most characters one call's markdown_text may carry
	// (chat.postMessage, chat.update and the streaming methods' reference pages:
	// "Limit this field to 12,000 characters"); beyond it: msg_too_long.
	MaxMarkdownText = 12000

	// MaxBlocks is the most blocks in one message (Block Kit reference: "up to 50 blocks in
	// each message"); beyond it: invalid_blocks.
	MaxBlocks = 50
	// MaxStopStreamBlocks is the most blocks chat.stopStream may put under a streamed
	// message; a limit of its own, separate from blocks sent in chunks (chat.stopStream
	// reference). Each blocks chunk of a stream is held to MaxBlocks.
	MaxStopStreamBlocks = 50
	// MaxViewBlocks is the most blocks in a modal view (modals reference: 100).
	MaxViewBlocks = 100

	// MaxSectionText is the most characters of a section block's text (section block
	// reference: 3,000); beyond it: invalid_blocks.
	MaxSectionText = 3000
	// MaxSectionFields and MaxSectionFieldText bound a section block's fields: at most 10,
	// each at most 2,000 characters (section block reference).
	MaxSectionFields    = 10
	MaxSectionFieldText = 2000
	// MaxHeaderText is the most characters of a header block's text (header block
	// reference: 150).
	MaxHeaderText = 150
	// MaxMarkdownBlocksText is the most characters all markdown blocks of one message hold
	// together (markdown block reference: "The cumulative limit for all markdown blocks in
	// a single payload is 12,000 characters"); beyond it: invalid_blocks.
	MaxMarkdownBlocksText = 12000
	// MaxContextElements is the most elements of a context block (context block
	// reference: 10).
	MaxContextElements = 10
	// MaxActionsElements is the most elements of an actions block (actions block
	// reference: 25).
	MaxActionsElements = 25
	// MaxButtonText and MaxButtonValue bound a button, and each button of a
	// feedback_buttons element: text up to 75 characters, value up to 2,000 (button and
	// feedback buttons element references).
	MaxButtonText  = 75
	MaxButtonValue = 2000
	// MaxBlockID and MaxActionID are the longest block_id and action_id (Block Kit
	// reference: 255 characters).
	MaxBlockID  = 255
	MaxActionID = 255

	// MaxBlocksChars is the most characters (runes) of a message's blocks, counted over the
	// `blocks` argument as received, i.e. its JSON; beyond it: msg_blocks_too_long. Slack
	// documents no such limit: field reports (bolt-js issue #2509) saw msg_blocks_too_long
	// at about 13,200 characters of block text, the exact figure varying with the blocks.
	// Counting the JSON, not only the text, is stricter than Slack.
	MaxBlocksChars = 13200
)

// blockError is an invalid_blocks answer with Slack's "[ERROR] …" lines.
func blockError(msgs []string) obj {
	return obj{"ok": false, "error": "invalid_blocks", "response_metadata": obj{"messages": msgs}}
}

// readBlocks parses a `blocks` argument ("" or "[]" is none) and checks it against the
// message limits, at most maxBlocks blocks. It answers Slack's error (nil when the blocks
// are fine): invalid_blocks_format when they are not a JSON array, invalid_blocks (with the
// problems in response_metadata.messages) or msg_blocks_too_long.
func readBlocks(raw, pointer string, maxBlocks int) (json.RawMessage, obj) {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "[]" {
		return nil, nil
	}
	var blocks []any
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		return nil, slackErr("invalid_blocks_format")
	}
	if msgs := checkBlocks(blocks, pointer, maxBlocks); msgs != nil {
		return nil, blockError(msgs)
	}
	if n := markdownBlocksChars(blocks); n > MaxMarkdownBlocksText {
		return nil, blockError([]string{argError(fmt.Sprintf("markdown blocks hold %d characters, at most %d allowed in one message",
			n, MaxMarkdownBlocksText), pointer)})
	}
	if utf8.RuneCountInString(raw) > MaxBlocksChars {
		return nil, slackErr("msg_blocks_too_long")
	}
	return json.RawMessage(raw), nil
}

// problems collects "[ERROR] …" lines, as Slack lists them in response_metadata.messages.
type problems []string

func (p *problems) add(problem, at string) { *p = append(*p, argError(problem, at)) }

func (p *problems) tooLong(s string, limit int, at string) {
	if utf8.RuneCountInString(s) > limit {
		p.add(fmt.Sprintf("must be less than %d characters", limit+1), at)
	}
}

func (p *problems) tooMany(n, limit int, at string) {
	if n > limit {
		p.add(fmt.Sprintf("must provide at most %d items", limit), at)
	}
}

// checkBlocks returns one "[ERROR] …" line per limit the blocks break (nil: none); pointer
// is where they are in the request ("/blocks", "/view/blocks").
func checkBlocks(blocks []any, pointer string, maxBlocks int) []string {
	var ps problems
	ps.tooMany(len(blocks), maxBlocks, pointer)
	for i, v := range blocks {
		at := fmt.Sprintf("%s/%d", pointer, i)
		b, _ := v.(map[string]any)
		if str(b["type"]) == "" {
			ps.add("missing required field: type", at)
			continue
		}
		ps.tooLong(str(b["block_id"]), MaxBlockID, at+"/block_id")
		switch str(b["type"]) {
		case "section":
			fields := list(b["fields"])
			if b["text"] == nil && len(fields) == 0 {
				ps.add("must provide either text or fields", at)
			}
			ps.tooLong(textOf(b["text"]), MaxSectionText, at+"/text/text")
			ps.tooMany(len(fields), MaxSectionFields, at+"/fields")
			for j, f := range fields {
				ps.tooLong(textOf(f), MaxSectionFieldText, fmt.Sprintf("%s/fields/%d/text", at, j))
			}
			ps.element(b["accessory"], at+"/accessory")
		case "header":
			ps.tooLong(textOf(b["text"]), MaxHeaderText, at+"/text/text")
		case "context":
			ps.tooMany(len(list(b["elements"])), MaxContextElements, at+"/elements")
		case "actions":
			ps.tooMany(len(list(b["elements"])), MaxActionsElements, at+"/elements")
			ps.elements(b, at)
		case "context_actions":
			ps.elements(b, at)
		case "input":
			ps.element(b["element"], at+"/element")
		}
	}
	return ps
}

// elements checks the interactive elements of block b, which is at at.
func (p *problems) elements(b map[string]any, at string) {
	for j, e := range list(b["elements"]) {
		p.element(e, fmt.Sprintf("%s/elements/%d", at, j))
	}
}

// element checks an interactive element (nothing when v is not one): its action_id, and a
// button's (or each feedback button's) text and value.
func (p *problems) element(v any, at string) {
	e, ok := v.(map[string]any)
	if !ok {
		return
	}
	p.tooLong(str(e["action_id"]), MaxActionID, at+"/action_id")
	button := func(b map[string]any, where string) {
		p.tooLong(textOf(b["text"]), MaxButtonText, where+"/text/text")
		p.tooLong(str(b["value"]), MaxButtonValue, where+"/value")
	}
	switch str(e["type"]) {
	case "button":
		button(e, at)
	case "feedback_buttons":
		for _, k := range []string{"positive_button", "negative_button"} {
			if b, ok := e[k].(map[string]any); ok {
				button(b, at+"/"+k)
			}
		}
	}
}

// markdownBlocksChars counts the characters of all markdown blocks' text.
func markdownBlocksChars(blocks []any) int {
	n := 0
	for _, v := range blocks {
		if b, _ := v.(map[string]any); str(b["type"]) == "markdown" {
			n += utf8.RuneCountInString(str(b["text"]))
		}
	}
	return n
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// textOf is the text of a text object ({"type":"mrkdwn","text":…}) or of a plain string.
func textOf(v any) string {
	if m, ok := v.(map[string]any); ok {
		return str(m["text"])
	}
	return str(v)
}

// shown is what a client shows of some blocks: their text, one entry per block that shows
// any, and the action_ids of the interactive elements among them.
type shown struct {
	texts   []string
	actions []string
}

// showBlocks adds what a client shows of raw (a JSON array of blocks) to sh:
//   - markdown: its text; section: its text, then each field's; header: its text;
//     context: its text elements, joined by spaces; image and video: their title;
//     input: its label; rich_text: its text elements concatenated, one line per section,
//     list item, quote or preformatted element;
//   - interactive elements (buttons, selects, the feedback_buttons and icon_button of a
//     context_actions block, a section's accessory, an input's element…) add their
//     action_id to actions, not text (elements without one add nothing);
//   - other blocks: the text of their text objects, in order.
func (sh *shown) showBlocks(raw json.RawMessage) {
	var blocks []any
	if json.Unmarshal(raw, &blocks) != nil {
		return
	}
	for _, v := range blocks {
		b, _ := v.(map[string]any)
		var lines []string
		switch str(b["type"]) {
		case "markdown":
			lines = append(lines, str(b["text"]))
		case "section":
			lines = append(lines, textOf(b["text"]))
			for _, f := range list(b["fields"]) {
				lines = append(lines, textOf(f))
			}
			sh.element(b["accessory"])
		case "header":
			lines = append(lines, textOf(b["text"]))
		case "context":
			var words []string
			for _, e := range list(b["elements"]) {
				if t := textOf(e); t != "" {
					words = append(words, t)
				}
			}
			lines = append(lines, strings.Join(words, " "))
		case "image", "video":
			lines = append(lines, textOf(b["title"]))
		case "input":
			lines = append(lines, textOf(b["label"]))
			sh.element(b["element"])
		case "rich_text":
			for _, e := range list(b["elements"]) {
				lines = append(lines, richLines(e)...)
			}
		case "actions", "context_actions":
			for _, e := range list(b["elements"]) {
				sh.element(e)
			}
		case "divider", "file":
		default:
			raw, _ := json.Marshal(b)
			lines = blockTexts(raw, lines)
			sh.actionsIn(b)
		}
		var kept []string
		for _, l := range lines {
			if l != "" {
				kept = append(kept, l)
			}
		}
		if len(kept) > 0 {
			sh.texts = append(sh.texts, strings.Join(kept, "\n"))
		}
	}
}

// element adds an interactive element's action_id.
func (sh *shown) element(v any) {
	e, _ := v.(map[string]any)
	if id := str(e["action_id"]); id != "" {
		sh.actions = append(sh.actions, id)
	}
}

// actionsIn adds the action_ids found anywhere in v, in order (blocks the server does not
// know in detail).
func (sh *shown) actionsIn(v any) {
	switch x := v.(type) {
	case map[string]any:
		sh.element(x)
		for _, k := range []string{"accessory", "element", "elements"} {
			sh.actionsIn(x[k])
		}
	case []any:
		for _, e := range x {
			sh.actionsIn(e)
		}
	}
}

// richLines is the text of one element of a rich_text block: a section, quote or
// preformatted element is one line of its text elements concatenated; a list is one line
// per item.
func richLines(v any) []string {
	e, _ := v.(map[string]any)
	if str(e["type"]) == "rich_text_list" {
		var lines []string
		for _, item := range list(e["elements"]) {
			lines = append(lines, richLines(item)...)
		}
		return lines
	}
	var b strings.Builder
	for _, leaf := range list(e["elements"]) {
		b.WriteString(richLeaf(leaf))
	}
	return []string{b.String()}
}

// richLeaf is the text a client shows for one rich text element: text as is, a link's
// text (else its url), an emoji as :name:, a user, channel or user group as Slack writes
// mentions.
func richLeaf(v any) string {
	e, _ := v.(map[string]any)
	switch str(e["type"]) {
	case "text":
		return str(e["text"])
	case "link":
		if t := str(e["text"]); t != "" {
			return t
		}
		return str(e["url"])
	case "emoji":
		return ":" + str(e["name"]) + ":"
	case "user":
		return "<@" + str(e["user_id"]) + ">"
	case "channel":
		return "<#" + str(e["channel_id"]) + ">"
	case "usergroup":
		return "<!subteam^" + str(e["usergroup_id"]) + ">"
	case "broadcast":
		return "<!" + str(e["range"]) + ">"
	}
	return str(e["text"])
}

// text is everything shown, one block after another.
func (sh *shown) text() string { return strings.Join(sh.texts, "\n") }

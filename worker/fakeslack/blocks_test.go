package fakeslack

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

func sectionBlock(chars int) map[string]any {
	return map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": strings.Repeat("s", chars)}}
}

func markdownBlock(chars int) map[string]any {
	return map[string]any{"type": "markdown", "text": strings.Repeat("m", chars)}
}

func textBlock(kind string, chars int) map[string]any {
	return map[string]any{"type": kind, "text": map[string]any{"type": "plain_text", "text": strings.Repeat("h", chars)}}
}

func button(textChars, valueChars int) map[string]any {
	return map[string]any{"type": "button", "action_id": "b", "value": strings.Repeat("v", valueChars),
		"text": map[string]any{"type": "plain_text", "text": strings.Repeat("b", textChars)}}
}

func times(n int, b any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// blocksOfChars is valid blocks whose JSON is n characters long, padded with fill.
func blocksOfChars(t *testing.T, n int, fill string) string {
	t.Helper()
	b := blocksJSON(t, sectionBlock(MaxSectionText), sectionBlock(MaxSectionText), sectionBlock(MaxSectionText),
		sectionBlock(MaxSectionText), textBlock("section", 0))
	pad := n - utf8.RuneCountInString(b)
	b = strings.Replace(b, `"text":""`, `"text":"`+strings.Repeat(fill, pad)+`"`, 1)
	if got := utf8.RuneCountInString(b); got != n {
		t.Fatalf("blocksOfChars made %d characters, want %d", got, n)
	}
	return b
}

func blocksJSON(t *testing.T, blocks ...any) string {
	t.Helper()
	b, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sendBlocks sends blocks with method the way a bot does and returns the Slack error code
// ("" for ok) and the response_metadata messages.
func sendBlocks(t *testing.T, s *Server, base, method, blocks string) (string, string) {
	t.Helper()
	answer := func(r apiResp) (string, string) {
		if r.ok() {
			return "", ""
		}
		msgs, _ := json.Marshal(r.body["response_metadata"])
		return r.str("error"), string(msgs)
	}
	switch method {
	case "chat.postMessage":
		return answer(form(t, base, method, vals("channel", "C1", "text", "fallback", "blocks", blocks)))
	case "chat.postEphemeral":
		return answer(form(t, base, method, vals("channel", "C1", "user", "U1", "text", "fallback", "blocks", blocks)))
	case "chat.update":
		ts := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "first")).str("ts")
		return answer(form(t, base, method, vals("channel", "C1", "ts", ts, "text", "fallback", "blocks", blocks)))
	case "chat.stopStream":
		ts := form(t, base, "chat.startStream", vals("channel", "D1", "markdown_text", "answer")).str("ts")
		return answer(form(t, base, method, vals("channel", "D1", "ts", ts, "blocks", blocks)))
	case "chat.appendStream":
		ts := form(t, base, "chat.startStream", vals("channel", "D1")).str("ts")
		chunks := `[{"type":"blocks","blocks":` + blocks + `}]`
		return answer(form(t, base, method, vals("channel", "D1", "ts", ts, "chunks", chunks)))
	case ResponseURLMethod:
		// A response_url takes 5 posts: each call gets its own.
		u := s.ResponseURL("cmd-" + strconv.Itoa(s.Calls(ResponseURLMethod)))
		resp, err := http.Post(u, "application/json", strings.NewReader(`{"text":"fallback","blocks":`+blocks+`}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			return "", ""
		}
		return strings.TrimSpace(string(body)), ""
	}
	t.Fatalf("sendBlocks: no way to send %s", method)
	return "", ""
}

// Every method that carries blocks holds them to Slack's limits.
func TestBlockLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		blocks func(t *testing.T) string
		want   string
		// message is part of a response_metadata line, for invalid_blocks.
		message string
	}{
		{"50 blocks", func(t *testing.T) string {
			return blocksJSON(t, times(MaxBlocks, map[string]any{"type": "divider"})...)
		}, "", ""},
		{"51 blocks", func(t *testing.T) string {
			return blocksJSON(t, times(MaxBlocks+1, map[string]any{"type": "divider"})...)
		}, "invalid_blocks", "must provide at most 50 items [json-pointer:/blocks]"},
		{"section of 3,000", func(t *testing.T) string { return blocksJSON(t, sectionBlock(MaxSectionText)) }, "", ""},
		{"section of 3,001", func(t *testing.T) string { return blocksJSON(t, sectionBlock(10), sectionBlock(MaxSectionText+1)) },
			"invalid_blocks", "must be less than 3001 characters [json-pointer:/blocks/1/text/text]"},
		{"section of 10 fields", func(t *testing.T) string {
			return blocksJSON(t, map[string]any{"type": "section", "fields": times(MaxSectionFields, map[string]any{"type": "mrkdwn", "text": "f"})})
		}, "", ""},
		{"section of 11 fields", func(t *testing.T) string {
			return blocksJSON(t, map[string]any{"type": "section", "fields": times(MaxSectionFields+1, map[string]any{"type": "mrkdwn", "text": "f"})})
		}, "invalid_blocks", "[json-pointer:/blocks/0/fields]"},
		{"section field of 2,001", func(t *testing.T) string {
			return blocksJSON(t, map[string]any{"type": "section", "fields": []any{map[string]any{"type": "mrkdwn", "text": strings.Repeat("f", MaxSectionFieldText+1)}}})
		}, "invalid_blocks", "[json-pointer:/blocks/0/fields/0/text]"},
		{"empty section", func(t *testing.T) string { return blocksJSON(t, map[string]any{"type": "section"}) }, "invalid_blocks", "either text or fields"},
		{"markdown blocks of 12,000 together", func(t *testing.T) string {
			return blocksJSON(t, markdownBlock(MaxMarkdownBlocksText/2), markdownBlock(MaxMarkdownBlocksText/2))
		}, "", ""},
		{"markdown blocks of 12,001 together", func(t *testing.T) string {
			return blocksJSON(t, markdownBlock(MaxMarkdownBlocksText/2), markdownBlock(MaxMarkdownBlocksText/2+1))
		}, "invalid_blocks", "at most 12000"},
		{"blocks of 13,200 characters, more bytes", func(t *testing.T) string { return blocksOfChars(t, MaxBlocksChars, "é") }, "", ""},
		{"blocks of 13,201 characters", func(t *testing.T) string { return blocksOfChars(t, MaxBlocksChars+1, "s") }, "msg_blocks_too_long", ""},
		{"header of 150", func(t *testing.T) string { return blocksJSON(t, textBlock("header", MaxHeaderText)) }, "", ""},
		{"header of 151", func(t *testing.T) string { return blocksJSON(t, textBlock("header", MaxHeaderText+1)) },
			"invalid_blocks", "must be less than 151 characters [json-pointer:/blocks/0/text/text]"},
		{"buttons at their limits", func(t *testing.T) string {
			return blocksJSON(t, map[string]any{"type": "actions", "elements": []any{button(MaxButtonText, MaxButtonValue)}})
		}, "", ""},
		{"button text of 76", func(t *testing.T) string {
			return blocksJSON(t, map[string]any{"type": "actions", "elements": []any{button(1, 1), button(MaxButtonText+1, 1)}})
		}, "invalid_blocks", "[json-pointer:/blocks/0/elements/1/text/text]"},
		{"button value of 2,001", func(t *testing.T) string {
			return blocksJSON(t, sectionBlock(1), map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "x"},
				"accessory": button(1, MaxButtonValue+1)})
		}, "invalid_blocks", "[json-pointer:/blocks/1/accessory/value]"},
		{"feedback button text of 76", func(t *testing.T) string {
			return blocksJSON(t, map[string]any{"type": "context_actions", "elements": []any{map[string]any{"type": "feedback_buttons",
				"action_id": "f", "positive_button": button(MaxButtonText+1, 1), "negative_button": button(1, 1)}}})
		}, "invalid_blocks", "[json-pointer:/blocks/0/elements/0/positive_button/text/text]"},
		{"25 actions", func(t *testing.T) string {
			return blocksJSON(t, map[string]any{"type": "actions", "elements": times(MaxActionsElements, button(1, 1))})
		}, "", ""},
		{"26 actions", func(t *testing.T) string {
			return blocksJSON(t, map[string]any{"type": "actions", "elements": times(MaxActionsElements+1, button(1, 1))})
		}, "invalid_blocks", "[json-pointer:/blocks/0/elements]"},
		{"10 context elements", func(t *testing.T) string {
			return blocksJSON(t, map[string]any{"type": "context", "elements": times(MaxContextElements, map[string]any{"type": "mrkdwn", "text": "c"})})
		}, "", ""},
		{"11 context elements", func(t *testing.T) string {
			return blocksJSON(t, map[string]any{"type": "context", "elements": times(MaxContextElements+1, map[string]any{"type": "mrkdwn", "text": "c"})})
		}, "invalid_blocks", "[json-pointer:/blocks/0/elements]"},
		{"block without a type", func(t *testing.T) string { return blocksJSON(t, map[string]any{"text": "x"}) }, "invalid_blocks", "missing required field: type"},
		{"not an array", func(*testing.T) string { return `{"type":"divider"}` }, "invalid_blocks_format", ""},
	}
	methods := []string{"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.stopStream", "chat.appendStream", ResponseURLMethod}
	for _, method := range methods {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			s, base := newTest(t, Options{})
			for _, tc := range tests {
				code, msgs := sendBlocks(t, s, base, method, tc.blocks(t))
				pointer := tc.message
				if method == "chat.appendStream" {
					pointer = strings.ReplaceAll(pointer, "/blocks", "/chunks/0/blocks")
				}
				if code != tc.want || (method != ResponseURLMethod && !strings.Contains(msgs, pointer)) {
					t.Errorf("%s: got %q %s, want %q with a message containing %q", tc.name, code, msgs, tc.want, pointer)
				}
			}
		})
	}
}

// A refused message leaves nothing behind, and the text limits hold for every way of
// sending text.
func TestMessageTextLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"text of 40,000", []string{"text", strings.Repeat("t", MaxTextLength)}, ""},
		{"text of 40,001", []string{"text", strings.Repeat("t", MaxTextLength+1)}, "msg_too_long"},
		{"markdown_text of 12,000", []string{"markdown_text", strings.Repeat("m", MaxMarkdownText)}, ""},
		{"markdown_text of 12,001", []string{"markdown_text", strings.Repeat("m", MaxMarkdownText+1)}, "msg_too_long"},
		{"markdown_text with text", []string{"markdown_text", "m", "text", "t"}, "markdown_text_conflict"},
		{"markdown_text with blocks", []string{"markdown_text", "m", "blocks", `[{"type":"divider"}]`}, "markdown_text_conflict"},
		{"nothing", nil, "no_text"},
	}
	for _, method := range []string{"chat.postMessage", "chat.postEphemeral", "chat.update"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			s, base := newTest(t, Options{})
			ts := form(t, base, "chat.postMessage", vals("channel", "C1", "text", "first")).str("ts")
			for _, tc := range tests {
				args := append([]string{"channel", "C1", "user", "U1", "ts", ts}, tc.args...)
				r := form(t, base, method, vals(args...))
				if (tc.want == "" && !r.ok()) || (tc.want != "" && r.str("error") != tc.want) {
					t.Errorf("%s: %s = %v, want %q (\"\" = ok)", tc.name, method, r.body, tc.want)
				}
			}
			if got := len(s.Messages("C1")); got != 1+2*boolInt(method == "chat.postMessage") {
				t.Errorf("C1 holds %d messages, want the first and the accepted posts only", got)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// markdown_text on chat.postMessage and chat.update is the message's text.
func TestMarkdownTextMessages(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	api := newAPI(s)
	ctx := context.Background()
	_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionMarkdownText("**first**"))
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Posts()[0]; p.MarkdownText != "**first**" || p.Text != "" {
		t.Fatalf("Post = %+v, want markdown_text recorded apart from text", p)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionMarkdownText("**second**")); err != nil {
		t.Fatal(err)
	}
	if m := s.Messages("C1"); len(m) != 1 || m[0].Text != "**second**" || !m[0].Edited {
		t.Fatalf("Messages = %+v, want the updated markdown, edited", m)
	}
}

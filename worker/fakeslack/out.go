package fakeslack

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// preview is text on one line, cut at 160 characters, or "[blocks]" for a blocks-only post.
func preview(text string, blocks json.RawMessage) string {
	if text == "" && blocks != nil {
		return "[blocks]"
	}
	text = strings.Join(strings.Fields(text), " ")
	const max = 160
	if utf8.RuneCountInString(text) > max {
		text = string([]rune(text)[:max]) + "…"
	}
	return text
}

func (s *Server) printPost(p Post) {
	if s.opts.Out == nil {
		return
	}
	var where string
	switch p.Method {
	case ResponseURLMethod:
		where = "response_url " + p.ResponseID
		if p.ResponseType != "" {
			where += " (" + p.ResponseType + ")"
		}
	case "chat.postEphemeral":
		where = "#" + p.Channel + " (ephemeral to " + p.User + ")"
	default:
		where = "#" + p.Channel
		if p.ThreadTS != "" {
			where += " (thread " + p.ThreadTS + ")"
		}
	}
	line := where + " " + s.opts.BotName + ": " + preview(p.Text, p.Blocks)
	if p.Metadata != nil {
		line += " [metadata " + p.Metadata.EventType + "]"
	}
	s.printLine("%s", line)
}

func (s *Server) printLine(format string, args ...any) {
	if s.opts.Out == nil {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.opts.Out, "slack ▸ "+format+"\n", args...)
}

// printLines prints each line, as printLine does.
func (s *Server) printLines(lines []string) {
	for _, l := range lines {
		s.printLine("%s", l)
	}
}

// appendLine adds line to lines unless it is empty.
func appendLine(lines []string, line string) []string {
	if line == "" {
		return lines
	}
	return append(lines, line)
}

// printView prints a view opened, pushed or updated: its title, callback id and the start
// of its text.
func (s *Server) printView(v View, method string, root *viewState) {
	if s.opts.Out == nil {
		return
	}
	what := map[string]string{"views.open": "opened", "views.push": "pushed", "views.update": "updated"}[method]
	if root != nil {
		what += " onto " + root.ID
	}
	line := fmt.Sprintf("view %s %s %q", v.ID, what, v.Title)
	if v.CallbackID != "" {
		line += " (" + v.CallbackID + ")"
	}
	var payload struct {
		Blocks json.RawMessage `json:"blocks"`
	}
	_ = json.Unmarshal(v.Payload, &payload)
	if text := strings.Join(blockTexts(payload.Blocks, nil), " · "); text != "" {
		line += ": " + preview(text, nil)
	}
	s.printLine("%s", line)
}

// blockTexts collects the "text" strings of Block Kit JSON, in order.
func blockTexts(raw json.RawMessage, into []string) []string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return into
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if t, ok := x["text"].(string); ok && strings.TrimSpace(t) != "" {
				into = append(into, t)
			}
			for _, k := range []string{"text", "label", "element", "elements", "fields", "accessory"} {
				if e, ok := x[k]; ok {
					walk(e)
				}
			}
		}
	}
	walk(v)
	return into
}

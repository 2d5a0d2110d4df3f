package fakebedrock

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ToolUseBlock is a toolUse block of a request's assistant message, as recorded.
type ToolUseBlock struct {
	ID    string          `json:"tool_use_id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input,omitempty"`
}

// ToolResultBlock is a toolResult block of a request's user message, as recorded.
type ToolResultBlock struct {
	ToolUseID string `json:"tool_use_id"`
	// Status is the block's status as sent ("error", "success" or empty).
	Status string `json:"status,omitempty"`
	// Texts are its text content blocks; JSON its json content blocks.
	Texts []string          `json:"texts,omitempty"`
	JSON  []json.RawMessage `json:"json,omitempty"`
}

// Text is the result's text content, its blocks joined.
func (r ToolResultBlock) Text() string { return strings.Join(r.Texts, "") }

// Turn is a scripted answer (SetTurns): its text, then toolUse blocks for Tools (stopReason
// tool_use) when there are any.
type Turn struct {
	// Text is the answer's text, cut into words as a script is; ToolResultPlaceholder in it
	// stands for the text of the conversation's last toolResult block. Empty: no text.
	Text  string     `json:"text,omitempty"`
	Tools []ToolCall `json:"tools,omitempty"`
}

// ToolResultPlaceholder in a Turn's text is replaced by the text of the conversation's last
// toolResult block, so an answer can quote what a tool said.
const ToolResultPlaceholder = "{tool_result}"

// SetTurns scripts a conversation with tools: a conversation with k user messages carrying
// toolResult blocks (k rounds of tool calls answered) gets turns[k] as its answer, so the
// first request gets turns[0], the request carrying the results of its tool calls turns[1],
// and so on; a conversation past the last turn gets the usual answer (the script, or a
// generated one). The answer depends on the conversation only: the same conversation asked
// again (a retry, a prefill of the same turn) gets the same turn. An injected ToolUseNext
// applies on top. None: no scripted turns.
func (s *Server) SetTurns(turns ...Turn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.turns = slices.Clone(turns)
}

// plannedTurn is the scripted turn answering msgs, if any, its placeholder filled.
func plannedTurn(turns []Turn, msgs []Message) (Turn, bool) {
	k, last := 0, ""
	for _, m := range msgs {
		if m.Role == "user" && len(m.ToolResults) > 0 {
			k++
			last = m.ToolResults[len(m.ToolResults)-1].Text()
		}
	}
	if k >= len(turns) {
		return Turn{}, false
	}
	t := turns[k]
	t.Text = strings.ReplaceAll(t.Text, ToolResultPlaceholder, last)
	return t, true
}

// readTool records block j of message i when it is a toolUse or a toolResult block (kind is
// its member name), checking what Bedrock checks of it.
func (m *Message) readTool(kind string, raw json.RawMessage, i, j int) error {
	switch kind {
	case "toolUse":
		var b struct {
			ToolUseID string          `json:"toolUseId"`
			Name      string          `json:"name"`
			Input     json.RawMessage `json:"input"`
		}
		if err := json.Unmarshal(raw, &b); err != nil || b.ToolUseID == "" || b.Name == "" {
			return fmt.Errorf("messages.%d.content.%d.toolUse needs a toolUseId, a name and an input", i, j)
		}
		if m.Role != "assistant" {
			return fmt.Errorf("messages.%d.content.%d: toolUse blocks are only allowed in assistant messages", i, j)
		}
		m.ToolUses = append(m.ToolUses, ToolUseBlock{ID: b.ToolUseID, Name: b.Name, Input: b.Input})
	case "toolResult":
		var b struct {
			ToolUseID string                       `json:"toolUseId"`
			Status    string                       `json:"status"`
			Content   []map[string]json.RawMessage `json:"content"`
		}
		if err := json.Unmarshal(raw, &b); err != nil || b.ToolUseID == "" {
			return fmt.Errorf("messages.%d.content.%d.toolResult needs a toolUseId", i, j)
		}
		if m.Role != "user" {
			return fmt.Errorf("messages.%d.content.%d: toolResult blocks are only allowed in user messages", i, j)
		}
		if b.Status != "" && b.Status != "success" && b.Status != "error" {
			return fmt.Errorf("1 validation error detected: Value '%s' at 'messages.%d.member.content.%d.member.toolResult.status' failed to satisfy constraint: Member must satisfy enum value set: [success, error]", b.Status, i+1, j+1)
		}
		r := ToolResultBlock{ToolUseID: b.ToolUseID, Status: b.Status}
		for _, c := range b.Content {
			if t, ok := c["text"]; ok {
				var s string
				if err := json.Unmarshal(t, &s); err != nil {
					return fmt.Errorf("messages.%d.content.%d.toolResult.content.text is not a string", i, j)
				}
				r.Texts = append(r.Texts, s)
			}
			if v, ok := c["json"]; ok {
				r.JSON = append(r.JSON, v)
			}
		}
		m.ToolResults = append(m.ToolResults, r)
	}
	return nil
}

// checkToolBlocks checks the tool blocks of a conversation as Bedrock does: they need a
// toolConfig, and the toolUse blocks of an assistant message are answered, each, by a
// toolResult block of the next message, which has no others.
func checkToolBlocks(msgs []Message, toolConfig bool) error {
	for i, m := range msgs {
		if (len(m.ToolUses) > 0 || len(m.ToolResults) > 0) && !toolConfig {
			return errors.New("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
		}
		if len(m.ToolResults) == 0 {
			if i > 0 && len(msgs[i-1].ToolUses) > 0 {
				return fmt.Errorf("Expected toolResult blocks at messages.%d.content for the following Ids: %s", i, toolUseIDs(msgs[i-1].ToolUses, nil))
			}
			continue
		}
		var asked []ToolUseBlock
		if i > 0 {
			asked = msgs[i-1].ToolUses
		}
		if len(m.ToolResults) > len(asked) {
			return fmt.Errorf("The number of toolResult blocks at messages.%d.content exceeds the number of toolUse blocks of previous turn.", i)
		}
		answered := map[string]bool{}
		for _, r := range m.ToolResults {
			if !slices.ContainsFunc(asked, func(u ToolUseBlock) bool { return u.ID == r.ToolUseID }) {
				return fmt.Errorf("The toolUseId %s at messages.%d.content does not match a toolUse block of the previous turn.", r.ToolUseID, i)
			}
			answered[r.ToolUseID] = true
		}
		if len(answered) < len(asked) {
			return fmt.Errorf("Expected toolResult blocks at messages.%d.content for the following Ids: %s", i, toolUseIDs(asked, answered))
		}
	}
	return nil
}

func toolUseIDs(uses []ToolUseBlock, except map[string]bool) string {
	var ids []string
	for _, u := range uses {
		if !except[u.ID] {
			ids = append(ids, u.ID)
		}
	}
	return strings.Join(ids, ", ")
}

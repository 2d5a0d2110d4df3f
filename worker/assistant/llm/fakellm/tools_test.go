package fakellm

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A Reply's tool call streams after its text: the id and name first, then the arguments in
// several pieces that put together are the arguments; the finish reason is "tool_calls".
func TestReplyStreamsToolCallsInPieces(t *testing.T) {
	t.Parallel()
	args := `{"title":"imprimante en feu — vite"}`
	_, base := newTest(t, Options{APIKey: testKey, Reply: func([]Message) *Reply {
		return &Reply{Text: "Opening one.", ToolCalls: []ToolCall{{ID: "call_1", Name: "open_ticket", Arguments: args}}}
	}})
	got := readStream(t, post(t, base+"v1/chat/completions", chatBody(t, true, true, 0, Message{Role: "user", Content: "q"})), time.Now())
	var pieces []string
	var id, name, finish string
	for _, ch := range got.chunks {
		for _, c := range ch.Choices {
			for _, tc := range c.Delta.ToolCalls {
				if tc.Index == nil || *tc.Index != 0 {
					t.Fatalf("a tool call piece without index 0: %+v", tc)
				}
				id, name = id+tc.ID, name+tc.Function.Name
				if tc.Function.Arguments != "" {
					pieces = append(pieces, tc.Function.Arguments)
				}
			}
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
	}
	if got.text != "Opening one." || id != "call_1" || name != "open_ticket" || len(pieces) < 3 || strings.Join(pieces, "") != args || finish != "tool_calls" || !got.done {
		t.Fatalf("text %q, call %s %s, arguments in %d pieces %q, finish %q; want the text then the call in pieces", got.text, id, name, len(pieces), pieces, finish)
	}
}

// Tool messages are checked as the OpenAI API checks them: each answers a call of the
// assistant message before it, and every call is answered.
func TestToolMessagesMustAnswerTheCalls(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{APIKey: testKey})
	call := `{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}`
	for name, msgs := range map[string]string{
		"unknown id":   `[{"role":"user","content":"q"},` + call + `,{"role":"tool","tool_call_id":"c2","content":"x"}]`,
		"unanswered":   `[{"role":"user","content":"q"},` + call + `,{"role":"user","content":"again"}]`,
		"no tool call": `[{"role":"user","content":"q"},{"role":"tool","tool_call_id":"c1","content":"x"}]`,
	} {
		resp := post(t, base+"v1/chat/completions", `{"model":"m1","messages":`+msgs+`}`)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d %s; want 400", name, resp.StatusCode, body)
		}
	}
	ok := `[{"role":"user","content":"q"},` + call + `,{"role":"tool","tool_call_id":"c1","content":"done"}]`
	resp := post(t, base+"v1/chat/completions", `{"model":"m1","messages":`+ok+`,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a well-formed tool conversation: HTTP %d", resp.StatusCode)
	}
	reqs := s.Requests()
	rec, _ := json.Marshal(reqs[len(reqs)-1])
	for _, want := range []string{`"tool_calls":[{"id":"c1","name":"f","arguments":"{}"}]`, `"tool_call_id":"c1"`, `"tools":[{"name":"f","parameters":{"type":"object"}}]`} {
		if !strings.Contains(string(rec), want) {
			t.Errorf("recorded %s; want it to hold %s", rec, want)
		}
	}
}

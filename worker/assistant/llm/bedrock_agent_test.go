package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

const agentChannel, agentTS = "C0BEDROCK", "1700000003.000100"

// ticketTurns script the stand-in: ask for a ticket, then quote what the tool said.
var ticketTurns = []fakebedrock.Turn{
	{Text: "Let me open a ticket.", Tools: []fakebedrock.ToolCall{{ID: "tooluse_ticket1", Name: "open_ticket", Input: json.RawMessage(`{"title":"printer on fire","priority":12345678901234567}`)}}},
	{Text: "Done: " + fakebedrock.ToolResultPlaceholder},
}

type agentTicketIn struct {
	Title    string `json:"title" jsonschema:"description=what the ticket is about"`
	Priority int64  `json:"priority,omitempty"`
}

// agentBot answers a mention with agent.Run on model, offering open_ticket (side-effecting).
type agentBot struct {
	model  agent.Model
	opened atomic.Int32
	inputs []agentTicketIn
}

func (b *agentBot) register(r *relay.Router) {
	open := agent.NewTool("open_ticket", "opens a ticket", func(_ context.Context, in agentTicketIn, key string) (string, error) {
		n := b.opened.Add(1)
		b.inputs = append(b.inputs, in)
		return fmt.Sprintf("ticket T-%d %q", n, in.Title), nil
	}, agent.SideEffects())
	relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		w, err := req.Stream(ctx, relay.StreamOptions{})
		if err != nil || w.Done() {
			return err
		}
		if _, err := agent.Run(ctx, req.Session, w, b.model, []agent.Message{{Role: "user", Text: req.Payload.Text}}, []agent.Tool{open}, agent.Options{}); err != nil {
			return err
		}
		_, err = w.Finish(ctx)
		return err
	})
}

func agentAnswer(h *relaytest.Harness) string {
	var texts []string
	for _, m := range h.Slack.RenderedThread(agentChannel, agentTS) {
		if m.Bot {
			texts = append(texts, m.Text)
		}
	}
	return strings.Join(texts, "|")
}

// sameJSON compares JSON texts by value.
var sameJSON = cmp.Transformer("json", func(raw json.RawMessage) any {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	return v
})

// The agent loop on Bedrock: the tool is offered as a toolSpec, runs once, the second request
// carries the toolUse and its toolResult in Bedrock's shape, and the answer quotes the result.
func TestBedrockAgentToolConversation(t *testing.T) {
	t.Parallel()
	srv, b, _ := setupBedrock(t, fakebedrock.Options{})
	srv.SetTurns(ticketTurns...)
	bot := &agentBot{model: b.Agent()}
	h := relaytest.New(t, bot.register)
	text := "my printer is on fire"
	got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvB1", agentChannel, agentTS, text))
	if got.Err != nil || bot.opened.Load() != 1 {
		t.Fatalf("got %+v, opened %d; want the ticket opened once", got, bot.opened.Load())
	}
	if bot.inputs[0] != (agentTicketIn{Title: "printer on fire", Priority: 12345678901234567}) {
		t.Errorf("the tool got %+v", bot.inputs[0])
	}
	want := "Let me open a ticket.\n\nDone: ticket T-1 \"printer on fire\""
	if a := agentAnswer(h); a != want {
		t.Errorf("the thread shows %q, want %q", a, want)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("Bedrock got %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if len(r.Tools) != 1 || r.Tools[0].Name != "open_ticket" || r.Tools[0].Description != "opens a ticket" ||
			!strings.Contains(string(r.Tools[0].Schema), "what the ticket is about") {
			t.Errorf("request %d offered %+v; want open_ticket with its schema", i, r.Tools)
		}
	}
	user := fakebedrock.Message{Role: "user", Texts: []string{"<@UBOT> " + text}}
	if diff := cmp.Diff([]fakebedrock.Message{user}, reqs[0].Messages); diff != "" {
		t.Errorf("first request (-want +got):\n%s", diff)
	}
	second := []fakebedrock.Message{
		user,
		{Role: "assistant", Texts: []string{"Let me open a ticket."}, Others: []string{"toolUse"}, ToolUses: []fakebedrock.ToolUseBlock{
			{ID: "tooluse_ticket1", Name: "open_ticket", Input: json.RawMessage(`{"title":"printer on fire","priority":12345678901234567}`)}}},
		{Role: "user", Others: []string{"toolResult"}, ToolResults: []fakebedrock.ToolResultBlock{
			{ToolUseID: "tooluse_ticket1", Texts: []string{`ticket T-1 "printer on fire"`}}}},
	}
	if diff := cmp.Diff(second, reqs[1].Messages, sameJSON); diff != "" {
		t.Errorf("second request (-want +got):\n%s", diff)
	}
	if in := string(reqs[1].Messages[1].ToolUses[0].Input); !strings.Contains(in, "12345678901234567") {
		t.Errorf("the toolUse input was sent as %s; want its numbers as written", in)
	}
}

// A crash after the side-effecting tool ran, before its result was recorded: the tool is not
// called again and the model hears, in an error toolResult, that the outcome is unknown.
func TestBedrockAgentCrashAfterTheTool(t *testing.T) {
	t.Parallel()
	srv, b, _ := setupBedrock(t, fakebedrock.Options{})
	srv.SetTurns(ticketTurns...)
	bot := &agentBot{model: b.Agent()}
	h := relaytest.New(t, bot.register)
	h.CrashAfter("once:agent:tool:0:0")
	got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvB2", agentChannel, agentTS, "my printer is on fire"))
	if bot.opened.Load() != 1 || got.Deliveries != 2 {
		t.Fatalf("got %+v, opened %d; want the ticket opened once over two deliveries", got, bot.opened.Load())
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("Bedrock got %d requests, want 2 (the first turn replayed from the journal)", len(reqs))
	}
	msgs := reqs[1].Messages
	if len(msgs) != 3 || len(msgs[1].ToolUses) != 1 || len(msgs[2].ToolResults) != 1 {
		t.Fatalf("second request %+v; want the toolUse and its toolResult", msgs)
	}
	r := msgs[2].ToolResults[0]
	if r.ToolUseID != "tooluse_ticket1" || r.Status != "error" || !strings.Contains(r.Text(), "the outcome of this call is unknown") {
		t.Errorf("tool result %+v; want an error saying the outcome is unknown", r)
	}
	a := agentAnswer(h)
	if strings.Count(a, "Let me open a ticket.") != 1 || !strings.Contains(a, "Done: the outcome of this call is unknown") {
		t.Errorf("the thread shows %q; want the first turn once and the unknown outcome quoted", a)
	}
}

// A turn cut short is continued by prefill (the client's rule); usage comes back; a refusal
// keeps its class.
func TestBedrockAgentTurn(t *testing.T) {
	t.Parallel()
	srv, b, _ := setupBedrock(t, fakebedrock.Options{CacheReadTokens: 7})
	srv.SetTurns(ticketTurns...)
	b.Prefill = true
	var got strings.Builder
	req := agent.TurnRequest{Messages: []agent.Message{{Role: "user", Text: "printer"}}, Partial: "Let me open "}
	turn, err := b.Agent().Turn(context.Background(), req, func(s string) error { got.WriteString(s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != "a ticket." || turn.Text != "Let me open a ticket." || len(turn.ToolCalls) != 1 || turn.ToolCalls[0].ID != "tooluse_ticket1" {
		t.Errorf("streamed %q, turn %+v", got.String(), turn)
	}
	r := srv.Requests()[0]
	if r.Prefill == nil || r.Prefill.NotAPrefix || len(r.Messages) != 2 || !cmp.Equal(r.Messages[1].Texts, []string{"Let me open"}) {
		t.Errorf("request %+v; want the partial turn as a prefill", r)
	}
	if turn.InputTokens != (3+1)+(3+3)+7 || turn.OutputTokens == 0 {
		t.Errorf("usage in %d out %d; want 17 in (7 cached) and some out", turn.InputTokens, turn.OutputTokens)
	}

	srv.FailNext(1, http.StatusBadRequest, fakebedrock.ValidationException)
	_, err = b.Agent().Turn(context.Background(), agent.TurnRequest{Messages: req.Messages}, func(string) error { return nil })
	if c, _ := failure.Classify(err); c != failure.Permanent {
		t.Errorf("a ValidationException gave %v (%v), want permanent", err, c)
	}
	srv.ThrottleNext(1, 0)
	_, err = b.Agent().Turn(context.Background(), agent.TurnRequest{Messages: req.Messages}, func(string) error { return nil })
	if c, _ := failure.Classify(err); c != failure.Transient {
		t.Errorf("a throttle gave %v (%v), want transient", err, c)
	}
}

// The conversation in Converse's shape: merged roles, blank text left out, error results,
// the placeholders around it.
func TestConverseAgentMessages(t *testing.T) {
	msgs, system, err := converseAgentMessages([]agent.Message{
		{Role: "assistant", Text: "hello"},
		{Role: "system", Text: "be brief"},
		{Role: "user", Text: "a"},
		{Role: "user", Text: " "},
		{Role: "assistant", ToolCalls: []agent.ToolCall{{ID: "1", Name: "x"}, {ID: "2", Name: "y", Input: json.RawMessage(`[1.50]`)}}},
		{Role: "tool", ToolResults: []agent.ToolResult{{CallID: "1", Content: "ok"}, {CallID: "2", Content: "", IsError: true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var shape []string
	for _, m := range msgs {
		var blocks []string
		for _, c := range m.Content {
			blocks = append(blocks, fmt.Sprintf("%T", c))
		}
		shape = append(shape, string(m.Role)+":"+strings.Join(blocks, ","))
	}
	want := []string{
		"user:*types.ContentBlockMemberText",
		"assistant:*types.ContentBlockMemberText",
		"user:*types.ContentBlockMemberText",
		"assistant:*types.ContentBlockMemberToolUse,*types.ContentBlockMemberToolUse",
		"user:*types.ContentBlockMemberToolResult,*types.ContentBlockMemberToolResult",
	}
	if !cmp.Equal(shape, want) || !cmp.Equal(system, []string{"be brief"}) {
		t.Errorf("shape %q system %q; want %q and the system message", shape, system, want)
	}
	if _, _, err := converseAgentMessages([]agent.Message{{Role: "assistant", ToolCalls: []agent.ToolCall{{ID: "1", Name: "x", Input: json.RawMessage(`{`)}}}}); err == nil {
		t.Error("a tool call whose input is not JSON was sent")
	}
}

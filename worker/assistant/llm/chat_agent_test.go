package llm

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

const chatAgentChannel, chatAgentTS = "C0CHATAGENT", "1700000004.000100"

const chatTicketArgs = `{"title":"printer on fire"}`

// chatTicketScript is a model that asks for a ticket (text, then the call, its arguments
// streamed in pieces), then, once the tool's result has come, answers quoting it.
func chatTicketScript(msgs []fakellm.Message) *fakellm.Reply {
	last := msgs[len(msgs)-1]
	if last.Role != "tool" {
		return &fakellm.Reply{Text: "Let me open a ticket.", ToolCalls: []fakellm.ToolCall{{ID: "call_7Qx", Name: "open_ticket", Arguments: chatTicketArgs}}}
	}
	return &fakellm.Reply{Text: "Done: " + last.Content}
}

type chatTicketIn struct {
	Title string `json:"title" jsonschema:"description=what the ticket is about"`
}

// chatBot answers a mention with agent.Run on the chat client, offering a side-effecting
// open_ticket tool.
type chatBot struct {
	model   agent.Model
	opened  atomic.Int32
	titles  []string
	results []agent.Result
}

func (b *chatBot) register(r *relay.Router) {
	open := agent.NewTool("open_ticket", "opens a ticket", func(_ context.Context, in chatTicketIn, _ string) (string, error) {
		n := b.opened.Add(1)
		b.titles = append(b.titles, in.Title)
		return fmt.Sprintf("ticket T-%d %q", n, in.Title), nil
	}, agent.SideEffects())
	relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		w, err := req.Stream(ctx, relay.StreamOptions{})
		if err != nil || w.Done() {
			return err
		}
		res, err := agent.Run(ctx, req.Session, w, b.model, []agent.Message{{Role: "user", Text: "my printer is on fire"}}, []agent.Tool{open}, agent.Options{})
		if err != nil {
			return err
		}
		b.results = append(b.results, res)
		_, err = w.Finish(ctx)
		return err
	})
}

func chatAgentAnswer(h *relaytest.Harness) string {
	var texts []string
	for _, m := range h.Slack.RenderedThread(chatAgentChannel, chatAgentTS) {
		if m.Bot {
			texts = append(texts, m.Text)
		}
	}
	return strings.Join(texts, "|")
}

func TestChatAgentCallsAToolOnceAndAnswersWithItsResult(t *testing.T) {
	srv, c, _ := setup(t, fakellm.Options{Reply: chatTicketScript})
	b := &chatBot{model: c.Agent()}
	h := relaytest.New(t, b.register)
	got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvCA1", chatAgentChannel, chatAgentTS, "help"))
	if got.Err != nil || b.opened.Load() != 1 || len(b.titles) != 1 || b.titles[0] != "printer on fire" {
		t.Fatalf("got %+v, opened %d with %q; want one ticket for the printer", got, b.opened.Load(), b.titles)
	}
	want := "Let me open a ticket.\n\nDone: ticket T-1 \"printer on fire\""
	if a := chatAgentAnswer(h); a != want {
		t.Errorf("the thread shows %q, want %q", a, want)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("the model was asked %d times, want 2", len(reqs))
	}
	for i, r := range reqs {
		if !r.Stream || !r.IncludeUsage || len(r.Tools) != 1 || r.Tools[0].Name != "open_ticket" || r.Tools[0].Description != "opens a ticket" ||
			!strings.Contains(string(r.Tools[0].Parameters), "what the ticket is about") || strings.Contains(string(r.Tools[0].Parameters), "$schema") {
			t.Errorf("request %d: stream %v, usage %v, tools %+v; want open_ticket offered with its schema", i+1, r.Stream, r.IncludeUsage, r.Tools)
		}
	}
	wantSecond := []fakellm.Message{
		{Role: "system", Content: SlackSystemPrompt},
		{Role: "user", Content: "my printer is on fire"},
		{Role: "assistant", Content: "Let me open a ticket.", ToolCalls: []fakellm.ToolCall{{ID: "call_7Qx", Name: "open_ticket", Arguments: chatTicketArgs}}},
		{Role: "tool", ToolCallID: "call_7Qx", Content: `ticket T-1 "printer on fire"`},
	}
	if diff := cmp.Diff(wantSecond[1:], reqs[1].Messages); diff != "" {
		t.Errorf("the second request's messages (-want +got):\n%s", diff)
	}
	if len(b.results) != 1 || len(b.results[0].Turns) != 2 {
		t.Fatalf("results %+v; want one run of two turns", b.results)
	}
	first := b.results[0].Turns[0]
	if first.InputTokens == 0 || first.OutputTokens == 0 || len(first.ToolCalls) != 1 || string(first.ToolCalls[0].Input) != chatTicketArgs {
		t.Errorf("the first turn is %+v; want its usage and the call with its arguments put together", first)
	}
}

func TestChatAgentACrashAfterTheToolTellsTheModelTheOutcomeIsUnknown(t *testing.T) {
	srv, c, _ := setup(t, fakellm.Options{Reply: chatTicketScript})
	b := &chatBot{model: c.Agent()}
	h := relaytest.New(t, b.register)
	h.CrashAfter("once:agent:tool:0:0") // the ticket is opened, then the worker dies
	got := h.DeliverBody(t, "mention.json", fixture.AppMention("EvCA2", chatAgentChannel, chatAgentTS, "help"))
	if b.opened.Load() != 1 {
		t.Fatalf("the ticket was opened %d times, want once", b.opened.Load())
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("the model was asked %d times, want 2 (the first turn replayed from the journal)", len(reqs))
	}
	msgs := reqs[1].Messages
	last := msgs[len(msgs)-1]
	if last.Role != "tool" || last.ToolCallID != "call_7Qx" || !strings.HasPrefix(last.Content, "error: the outcome of this call is unknown") {
		t.Errorf("the second request ends with %+v; want the tool message saying the outcome is unknown", last)
	}
	if prev := msgs[len(msgs)-2]; prev.Role != "assistant" || len(prev.ToolCalls) != 1 || prev.ToolCalls[0].ID != "call_7Qx" {
		t.Errorf("the tool message follows %+v; want the assistant's call", prev)
	}
	a := chatAgentAnswer(h)
	if got.Deliveries != 2 || strings.Count(a, "Let me open a ticket.") != 1 || !strings.Contains(a, "Done: error: the outcome of this call is unknown") {
		t.Errorf("got %+v, thread %q; want one answer saying the outcome is unknown", got, a)
	}
}

// One turn on its own: a server that does not stream answers the call whole, and a Partial
// is continued (regenerated: only what follows it reaches onText), the call still made.
func TestChatAgentTurn(t *testing.T) {
	for _, noStreaming := range []bool{false, true} {
		_, c, _ := setup(t, fakellm.Options{Reply: chatTicketScript, NoStreaming: noStreaming})
		var shown strings.Builder
		turn, err := c.Agent().Turn(context.Background(), agent.TurnRequest{
			Messages: []agent.Message{{Role: "user", Text: "my printer is on fire"}},
			Tools:    []agent.ToolSpec{{Name: "open_ticket", Description: "opens a ticket"}},
			Partial:  "Let me ",
		}, func(s string) error { shown.WriteString(s); return nil })
		want := []agent.ToolCall{{ID: "call_7Qx", Name: "open_ticket", Input: []byte(chatTicketArgs)}}
		if err != nil || turn.Text != "Let me open a ticket." || shown.String() != "open a ticket." || !cmp.Equal(turn.ToolCalls, want) {
			t.Errorf("no streaming %v: turn %+v, shown %q, err %v; want the continuation and the call", noStreaming, turn, shown.String(), err)
		}
	}
}

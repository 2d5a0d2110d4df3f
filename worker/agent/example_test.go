package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack/slackevents"

	"github.com/slackrelay/slackrelay/worker/agent"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// newTicket is what the model fills in to open a ticket: the JSON schema of this type (its
// fields, their `json` names and their `jsonschema` tags) is what the model is offered, and
// the model's input is decoded into it (unknown fields refused).
type newTicket struct {
	Title    string `json:"title" jsonschema:"maxLength=120,description=One line saying what is wrong"`
	Priority string `json:"priority,omitempty" jsonschema:"enum=low,enum=normal,enum=urgent,description=How urgent it is (default normal)"`
}

// serviceDesk stands for a ticket system that takes an idempotency key: the same key twice
// opens one ticket.
type serviceDesk struct {
	mu    sync.Mutex
	byKey map[string]string
}

func (d *serviceDesk) Open(_ context.Context, title, priority, key string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, ok := d.byKey[key]; ok {
		return id, nil
	}
	id := fmt.Sprintf("IT-%d", 100+len(d.byKey))
	d.byKey[key] = id
	return id, nil
}

var desk = &serviceDesk{byKey: map[string]string{}}

// openTicket is a tool with a side effect: at most one call of it per call the model makes,
// across every attempt of the event.
var openTicket = agent.NewTool("open_ticket",
	"Opens a ticket in the IT service desk and returns its id. Use it only when the user asks for a ticket; give the id in the answer.",
	func(ctx context.Context, in newTicket, key string) (string, error) {
		if strings.TrimSpace(in.Title) == "" {
			// The model hears "the tool failed: a ticket needs a title" and can call again.
			return "", errors.New("a ticket needs a title")
		}
		// key is the same on every attempt of this event: the desk opens one ticket for it
		// even if an attempt dies after the call and before the result is recorded.
		return desk.Open(ctx, in.Title, in.Priority, key)
	},
	agent.SideEffects(),           // intent recorded before the call; never called twice
	agent.Timeout(10*time.Second), // past it the model hears that the tool failed
)

// A tool is a typed Go function: NewTool derives the schema the model is offered from its
// input type.
func ExampleNewTool() {
	spec := openTicket.Spec()
	var schema struct {
		Properties map[string]any `json:"properties"`
		Required   []string       `json:"required"`
	}
	if err := json.Unmarshal(spec.Schema, &schema); err != nil {
		fmt.Println(err)
		return
	}
	props, _ := json.Marshal(schema.Properties)
	fmt.Println(spec.Name, "requires", schema.Required)
	fmt.Println(string(props))
	// Output:
	// open_ticket requires [title]
	// {"priority":{"description":"How urgent it is (default normal)","enum":["low","normal","urgent"],"type":"string"},"title":{"description":"One line saying what is wrong","maxLength":120,"type":"string"}}
}

// deskModel stands for the model (llm.Chat.Agent() or llm.Bedrock.Agent() in the shipped
// bot): it asks for a ticket, then answers with its id.
type deskModel struct{}

func (deskModel) Turn(_ context.Context, req agent.TurnRequest, onText func(string) error) (agent.Turn, error) {
	last := req.Messages[len(req.Messages)-1]
	t := agent.Turn{Text: "Opening a ticket.", ToolCalls: []agent.ToolCall{{ID: "c1", Name: "open_ticket", Input: []byte(`{"title":"printer on fire"}`)}}}
	if len(last.ToolResults) > 0 {
		t = agent.Turn{Text: "Your ticket is " + last.ToolResults[0].Content + "."}
	}
	return t, onText(strings.TrimPrefix(t.Text, req.Partial))
}

// A handler answers through the tool loop: the model's turns stream into the thread, each
// tool call runs once for the event, and the bounds end a runaway answer with a note.
func ExampleRun() {
	r := relay.NewRouter()
	relay.Event(r, "app_mention", func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		w, err := req.Stream(ctx, relay.StreamOptions{})
		if err != nil || w.Done() {
			return err
		}
		msgs := []agent.Message{{Role: "user", Text: req.Payload.Text}}
		res, err := agent.Run(ctx, req.Session, w, deskModel{}, msgs, []agent.Tool{openTicket},
			agent.Options{MaxRounds: 5, MaxTime: 2 * time.Minute})
		if err != nil {
			return err // a continuation, a model's failure, a lost claim: the engine decides
		}
		req.Log.Info("answered", "tool_calls", res.ToolCalls, "unknown_outcomes", res.Unknown)
		_, err = w.Finish(ctx)
		return err
	})
	fmt.Println(r.Err())
	// Output: <nil>
}

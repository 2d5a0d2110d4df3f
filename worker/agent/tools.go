package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/invopop/jsonschema"
)

// ToolSpec is a tool as the model sees it: its name, what it does, and the JSON schema of
// its input.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"input_schema"`
}

// Tool is a function the model may call (NewTool).
type Tool struct {
	spec        ToolSpec
	sideEffects bool
	timeout     time.Duration
	call        func(ctx context.Context, input json.RawMessage, key string) (string, error)
	err         error
}

// Spec is the tool as the model sees it.
func (t Tool) Spec() ToolSpec { return t.spec }

// ToolOption tunes a tool.
type ToolOption func(*Tool)

// SideEffects marks a tool that changes something outside (opens a ticket, sends mail): it is
// called at most once per call the model makes, across every attempt of the event, its intent
// recorded before the call (see relay.Once). Tools without it are treated as reads: an attempt
// that stopped before recording a result calls them again.
func SideEffects() ToolOption { return func(t *Tool) { t.sideEffects = true } }

// Timeout bounds one call of the tool; past it the model hears that the tool failed.
func Timeout(d time.Duration) ToolOption { return func(t *Tool) { t.timeout = d } }

var toolName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,63}$`)

// NewTool makes fn a tool named name. The model's input is decoded into In (a struct; its JSON
// schema, from the struct's fields and `json`/`jsonschema` tags, is what the model is
// offered); the result, Out, goes back to the model as JSON (a string as it is). fn gets the
// call's idempotency key, the same on every attempt of the event: hand it to the system a
// side-effecting tool calls. A mistake (a bad name, an input type without a schema) makes Run
// fail permanently at its first use.
func NewTool[In, Out any](name, description string, fn func(ctx context.Context, in In, key string) (Out, error), opts ...ToolOption) Tool {
	t := Tool{spec: ToolSpec{Name: name, Description: description}}
	for _, o := range opts {
		o(&t)
	}
	if !toolName.MatchString(name) {
		t.err = fmt.Errorf("agent: tool name %q: letters, digits, _ and - only, starting with a letter, at most 64", name)
		return t
	}
	r := jsonschema.Reflector{DoNotReference: true, ExpandedStruct: true}
	schema, err := json.Marshal(r.Reflect(new(In)))
	if err != nil {
		t.err = fmt.Errorf("agent: tool %s: the schema of its input: %w", name, err)
		return t
	}
	t.spec.Schema = schema
	t.call = func(ctx context.Context, input json.RawMessage, key string) (string, error) {
		var in In
		dec := json.NewDecoder(bytes.NewReader(input))
		dec.DisallowUnknownFields()
		if len(bytes.TrimSpace(input)) > 0 {
			if err := dec.Decode(&in); err != nil {
				return "", fmt.Errorf("its input does not fit the schema: %w", err)
			}
		}
		out, err := fn(ctx, in, key)
		if err != nil {
			return "", err
		}
		if s, ok := any(out).(string); ok {
			return s, nil
		}
		raw, err := json.Marshal(out)
		if err != nil {
			return "", fmt.Errorf("its result is not JSON: %w", err)
		}
		return string(raw), nil
	}
	return t
}

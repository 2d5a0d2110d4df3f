// Package handler holds the worker's router and the handlers slackrelay ships: replies to
// app mentions and direct messages, and the /ask slash command answered via response_url.
package handler

import (
	"context"
	"log/slog"

	"github.com/slackrelay/slackrelay/shared/envelope"
)

// Message is one envelope delivered to a handler.
type Message struct {
	Envelope *envelope.Envelope
	// ReceiveCount is SQS's ApproximateReceiveCount for this delivery.
	ReceiveCount int
	// MaybeAnswered is set when an earlier attempt may have replied before it failed or
	// died; handlers that post must check for their earlier reply first.
	MaybeAnswered bool
	Log           *slog.Logger
}

// Handler processes one message. Errors are classified by package failure.
type Handler interface {
	Handle(ctx context.Context, m *Message) error
}

// Func adapts a function to Handler.
type Func func(ctx context.Context, m *Message) error

// Handle calls f.
func (f Func) Handle(ctx context.Context, m *Message) error { return f(ctx, m) }

// Router maps (kind, event type) to a named handler.
type Router struct {
	routes map[routeKey]Route
}

type routeKey struct {
	kind      envelope.Kind
	eventType string
}

// Route is a registered handler and the name logs and DLQ attributes use for it.
type Route struct {
	Name    string
	Handler Handler
}

// Register adds a handler for kind and event type ("app_mention", "/ask", "block_actions").
// An empty event type matches every event type of the kind without a handler of its own.
func (r *Router) Register(kind envelope.Kind, eventType, name string, h Handler) {
	if r.routes == nil {
		r.routes = map[routeKey]Route{}
	}
	r.routes[routeKey{kind, eventType}] = Route{Name: name, Handler: h}
}

// Lookup finds the handler for an envelope; ok is false when none is registered.
func (r *Router) Lookup(e *envelope.Envelope) (Route, bool) {
	if rt, ok := r.routes[routeKey{e.Kind, e.EventType}]; ok {
		return rt, true
	}
	rt, ok := r.routes[routeKey{e.Kind, ""}]
	return rt, ok
}

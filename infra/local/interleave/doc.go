// Package interleave is a seeded property test of the worker's step journal: two copies of
// one Slack event (Slack's retry, an SQS duplicate) run through the real engine
// (engine.New(…).HandleSQS), its real journal (on the local dynalite), the real handler
// library (relay) and a local Slack (worker/fakeslack), while a scheduler driven by
// one seed decides, at every call an invocation makes to DynamoDB, Slack or SQS, which
// invocation goes next and whether the call goes through, loses its answer, is refused, or
// crashes its invocation before or after it took effect. After every copy has settled
// (acknowledged or dead-lettered) the thread must show the handler's answer exactly once, as a
// Slack client shows it; a dead-lettered event may show less, never a repeated text, and
// replaying its dead letters must finish it exactly once.
//
// It exists because the journal's guarantees (docs/design.md, "Delivery guarantees: the step
// journal") are claims about every interleaving of deliveries and failures, and the
// example-based tests of the journal, the engine and the relay each pick a few of them by
// hand. Here thousands of schedules are drawn at random and each can be replayed alone from its
// seed: go test ./interleave -run TestInterleavings -seed N -v prints its trace.
//
// Everything is in the package's tests; this file only documents it.
package interleave

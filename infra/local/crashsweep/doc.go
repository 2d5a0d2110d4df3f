// Package crashsweep proves the worker's exactly-once promise point by point. For each path
// an event can take (a streamed mention, one with the bot's thread memory, a long streamed
// answer, a multi-part posted answer, /ask opening a modal, the modal's submission, a
// Regenerate click, a feedback click, an assistant thread starting, an agent's tool loop on either model API), a clean run
// lists every call to Slack and every DynamoDB write the real engine makes (engine.New with
// its DynamoDB journal, the handler library, the shipped bot's handlers or, for the tool loop,
// agent.Run with the chat-completions or the Bedrock client against its stand-in), and every
// request of the bot's own clients (the model's turns, the calls its tools make). Then, for each of those points, a
// run injects one fault there — the worker dying before the call, dying after it took
// effect and before its answer was read, the call failing, the call's answer lost while the
// worker goes on, and, at a model's turn, the worker dying mid-stream — and redelivers the
// SQS message until the event settles. Every run must end as a person reading Slack sees one
// finished answer (nothing streaming, no second message, no repeated text, no error post),
// or, where a point is at-most-once by Slack's design (a response_url or ephemeral post, a
// modal whose answer was lost), nothing more than one. On the tool loop, besides: the
// side-effecting tool took effect at most once (its service, which does not deduplicate,
// holds at most one ticket), and an answer that does not say the outcome is unknown names the
// one ticket there is, while one that does carries the call's idempotency key.
//
// It runs in process for speed: the engine's Slack and DynamoDB clients go through a
// transport that can kill the invocation at a point (no further request of that invocation
// reaches a server, as after a crash), and the queue the engine talks to is a recording
// stand-in, so a redelivery happens at once instead of after a visibility timeout. The
// servers are real: dynalite for DynamoDB, the local Slack server for Slack, whose clock is
// moved forward by the time SQS would take to deliver again (a trigger expires, a stream
// ends by itself). The real-binaries suites (infra/local/e2e) cover the queues and processes.
package crashsweep

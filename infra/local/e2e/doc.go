// Package e2e is slackrelay's end-to-end reliability suite: it drives the real receiver,
// worker and DLQ binaries in local mode over loopback (see package devworld) and checks, case
// by case, what Slack gets back, what a user reading the thread sees (the bot's messages as a
// Slack client renders them, judged by package answercheck: the answer's text exactly once,
// nothing still streaming, its buttons once under its last message), what lands in the DLQ:
// nothing lost, nothing doubled. The reliability cases run the worker's demo responder; the streaming cases
// (stream_test.go) run it against the local LLM server at a watchable pace. It runs in
// `make test` and alone with `make e2e`.
package e2e

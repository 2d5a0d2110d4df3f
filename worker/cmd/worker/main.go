// Command worker is slackrelay's second stage: it runs the shipped bot's handlers on the
// events queue (Lambda's SQS event source, or a local poller; see worker/app). Locally it
// prints the ready line (shared/logging.Ready, docs/local.md) when it starts polling.
// docs/configuration.md lists its environment variables; docs/handlers.md shows how to add a
// handler.
package main

import (
	"github.com/slackrelay/slackrelay/worker/app"
	"github.com/slackrelay/slackrelay/worker/bot"
	"github.com/slackrelay/slackrelay/worker/relay"
)

func main() {
	app.Main(func(b *relay.Bot, d app.Deps) {
		bot.Register(b, bot.Config{LLM: d.LLM, Model: d.Model, HistoryChars: d.HistoryChars, NoStreaming: !d.Streaming, Metrics: d.Metrics})
	})
}

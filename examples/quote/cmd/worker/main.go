// Command worker runs the quote bot on slackrelay: in AWS Lambda on the events queue's event
// source mapping (build it as the root Makefile's build target builds worker/cmd/worker; see
// examples/README.md), elsewhere under the local poller. It reads the framework's variables
// (docs/configuration.md) and the bot's own, QUOTE_API_URL.
package main

import (
	"github.com/slackrelay/slackrelay/examples/quote"
	"github.com/slackrelay/slackrelay/worker"
)

func main() { worker.Main(quote.New) }

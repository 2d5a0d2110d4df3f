// Command worker runs the bot slackrelay ships (worker/assistant) on the framework: in AWS
// Lambda on the events queue's event source mapping, elsewhere under the local poller.
// docs/configuration.md lists its environment variables; docs/handlers.md shows how to write
// a bot of your own (examples/ holds one).
package main

import (
	"github.com/slackrelay/slackrelay/worker"
	"github.com/slackrelay/slackrelay/worker/assistant"
)

func main() { worker.Main(assistant.New) }

// Command slackrelay-dlq is the operators' tool for the slackrelay dead-letter queue: stats,
// list, show, replay, redrive, export, import, purge. See `slackrelay-dlq help`,
// docs/runbook.md and package cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/slackrelay/slackrelay/worker/cmd/slackrelay-dlq/cli"
)

func main() {
	// On Ctrl-C the context ends and the commands make peeked messages visible again.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "slackrelay-dlq:", err)
	}
	os.Exit(cli.ExitCode(err))
}

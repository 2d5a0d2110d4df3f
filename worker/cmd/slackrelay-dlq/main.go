// Command slackrelay-dlq is the operators' tool for the slackrelay dead-letter queue: list,
// show, replay, redrive, export, import, purge. See `slackrelay-dlq help` and docs/runbook.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/slackrelay/slackrelay/worker/dlqtool"
)

func main() {
	// On Ctrl-C the context ends and the commands make peeked messages visible again.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dlqtool.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "slackrelay-dlq:", err)
	}
	os.Exit(dlqtool.ExitCode(err))
}

//go:build !lambda.norpc

package worker

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/slackrelay/slackrelay/shared/logging"
	"github.com/slackrelay/slackrelay/worker/poller"
)

// poll stands in for Lambda's SQS event source mapping outside Lambda: it long-polls the
// events queue and hands each batch to the same engine, until SIGINT or SIGTERM.
func poll(a *App, log *slog.Logger) error {
	cfg := a.cfg
	p := &poller.Poller{
		SQS: a.sqs, QueueURL: cfg.QueueURL, Handler: a.Engine.HandleSQS,
		BatchSize: cfg.PollBatchSize, Wait: cfg.PollWait, Timeout: cfg.HandlerTimeout, Loops: cfg.PollLoops, Log: log,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal now terminates the process
		log.Info("stopping: finishing the batches in flight")
	}()
	logging.Ready(os.Stdout, "worker", "queue_url", cfg.QueueURL, "batch_size", cfg.PollBatchSize, "handler_timeout", cfg.HandlerTimeout.String())
	err := p.Run(ctx)
	log.Info("stopped")
	return err
}

// Command worker is slackrelay's second stage. In AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it
// handles SQS batches from the event source mapping; elsewhere a poller stands in for that
// mapping and feeds the same handler. SIGINT/SIGTERM stop polling and let batches in flight
// finish; a second signal exits at once (unfinished messages return to the queue). Locally it
// prints the ready line (shared/logging.Ready, docs/local.md) when it starts polling.
// docs/configuration.md lists its environment variables.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/shared/logging"
	"github.com/slackrelay/slackrelay/worker/app"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := workerconfig.Load(os.Getenv)
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stdout, cfg.LogLevel)
	if err != nil {
		return err
	}
	config.LogDeprecations(log, cfg.Deprecations)
	awsCfg, err := awsclient.Load(context.Background(), os.Getenv)
	if err != nil {
		return err
	}
	a, err := app.New(cfg, awsCfg, os.Getenv, log, os.Stdout)
	if err != nil {
		return err
	}
	if cfg.Lambda {
		lambda.Start(a.Processor.HandleSQS)
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal now terminates the process
		log.Info("stopping: finishing the batches in flight")
	}()
	logging.Ready(os.Stdout, "worker", "queue_url", cfg.QueueURL, "batch_size", cfg.PollBatchSize, "handler_timeout", cfg.HandlerTimeout.String())
	err = a.Poller.Run(ctx)
	log.Info("stopped")
	return err
}

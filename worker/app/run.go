package app

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
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// Main runs the worker with the routes register adds, and exits the process when it stops.
// In AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it handles SQS batches from the event source
// mapping; elsewhere a poller stands in for that mapping and feeds the same handler.
func Main(register Register) {
	if err := run(register); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(register Register) error {
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
	a, err := New(cfg, awsCfg, os.Getenv, log, os.Stdout, register)
	if err != nil {
		return err
	}
	if cfg.Lambda {
		lambda.Start(a.Processor.HandleSQS)
		return nil
	}
	// SIGINT/SIGTERM stop polling and let batches in flight finish; a second signal exits at
	// once (unfinished messages return to the queue).
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

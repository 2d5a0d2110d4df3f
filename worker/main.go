package worker

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/shared/lambdainit"
	"github.com/slackrelay/slackrelay/shared/logging"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// Main runs the worker with bot's routes, and exits the process when it stops. In AWS Lambda
// (AWS_LAMBDA_RUNTIME_API set) it handles SQS batches from the event source mapping;
// elsewhere a poller stands in for that mapping and feeds the same engine (see poll.go:
// binaries built with -tags lambda.norpc have no poller). SIGINT/SIGTERM stop polling and let
// batches in flight finish; a second signal exits at once (unfinished messages return to the
// queue).
//
// A failed start is one JSON log line and, in Lambda, a report to the Runtime API's
// init/error endpoint (shared/lambdainit); SSM being down at init is not one (see preload).
func Main(bot Bot) {
	if err := run(bot); err != nil {
		lambdainit.Exit("worker", err)
	}
}

// run starts the worker; an error before the handler runs is a failed start (init),
// reported by lambdainit.
func run(bot Bot) error {
	cfg, err := workerconfig.Load(os.Getenv)
	if err != nil {
		return lambdainit.Config(err)
	}
	log, err := logging.New(os.Stdout, cfg.LogLevel)
	if err != nil {
		return lambdainit.Config(err)
	}
	config.LogDeprecations(log, cfg.Deprecations)
	awsCfg, err := awsclient.Load(context.Background(), os.Getenv)
	if err != nil {
		return lambdainit.Config(err)
	}
	a, err := New(cfg, awsCfg, os.Getenv, log, os.Stdout, bot)
	if err != nil {
		return lambdainit.Config(err)
	}
	preload(a, log)
	if cfg.Lambda {
		lambda.Start(a.Engine.HandleSQS)
		return nil
	}
	return poll(a, log)
}

// preload reads the bot token (and the LLM key) during init, bounded by SecretsTimeout, so
// the first batch does not wait for SSM. SSM being down at init is not a failed start:
// Lambda would only start the function again for the next batch, into the same outage. The
// worker starts, the store has logged the failure and remembers it, and the messages of a
// batch that comes meanwhile fail as retryable (secrets.ErrUnavailable), to come back after
// the processor's backoff, when the store tries SSM again.
func preload(a *App, log *slog.Logger) {
	start := time.Now()
	err := a.Secrets.Preload(context.Background())
	took := time.Since(start).Milliseconds()
	if err != nil {
		log.Warn("starting without the secrets; messages fail as retryable until they load", "took_ms", took)
		return
	}
	log.Info("secrets loaded", "took_ms", took)
}

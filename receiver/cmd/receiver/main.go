// Command receiver is slackrelay's first stage. In AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it
// serves API Gateway HTTP API events; elsewhere it is a local HTTP server on LISTEN_ADDR that
// prints the ready line (shared/logging.Ready, docs/local.md) once it accepts requests.
// docs/configuration.md lists its environment variables.
//
// Init reads the configuration and loads the signing secret. A failed start is one JSON log
// line and, in Lambda, a report to the Runtime API's init/error endpoint (shared/lambdainit);
// SSM being down is not a failed start (see preload).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/slackrelay/slackrelay/receiver/installflow"
	"github.com/slackrelay/slackrelay/receiver/intake"
	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/shared/install"
	"github.com/slackrelay/slackrelay/shared/lambdainit"
	"github.com/slackrelay/slackrelay/shared/logging"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/shared/secrets"
)

func main() {
	if err := run(); err != nil {
		lambdainit.Exit("receiver", err)
	}
}

// run starts the receiver; an error is a failed start (init), reported by lambdainit.
func run() error {
	cfg, err := receiverconfig.Load(os.Getenv)
	if err != nil {
		return lambdainit.Config(err)
	}
	log, err := logging.New(os.Stdout, cfg.LogLevel)
	if err != nil {
		return lambdainit.Config(err)
	}
	config.LogDeprecations(log, cfg.Deprecations)
	ctx := context.Background()
	awsCfg, err := awsclient.Load(ctx, os.Getenv)
	if err != nil {
		return lambdainit.Config(err)
	}
	m := metrics.New(os.Stdout, "slackrelay/receiver")
	var store *secrets.Store
	if cfg.SigningSecretParam != "" {
		client := ssm.NewFromConfig(awsCfg, func(o *ssm.Options) { o.BaseEndpoint = awsclient.Endpoint(os.Getenv, "SSM") }, intake.SSMOptions)
		store = secrets.NewSSM(client, map[string]string{intake.SecretKey: cfg.SigningSecretParam}, intake.SecretsOptions(cfg.SecretsMaxAge, log, m))
		preload(ctx, store, log)
	} else {
		store = secrets.NewStatic(map[string]string{intake.SecretKey: cfg.SigningSecret})
	}
	h := &intake.Handler{
		QueueURL:     cfg.QueueURL,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Sender:       sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = awsclient.Endpoint(os.Getenv, "SQS") }, intake.SQSOptions),
		Secrets:      store,
		Log:          log,
		Metrics:      m,
	}
	if cfg.Install.Table != "" {
		h.Pages = installFlow(cfg, awsCfg, log, m)
		log.Info("install pages on", "install", intake.PathInstall, "redirect", intake.PathOAuthRedirect)
	}
	if cfg.Lambda {
		lambda.Start(h.HandleLambda)
		return nil
	}

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	logging.Ready(os.Stdout, "receiver", logging.KeyAddr, ln.Addr().String(), "url", "http://"+ln.Addr().String()+intake.PathEvents)
	stop, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-stop.Done():
	}
	log.Info("shutting down")
	shutdownCtx, done := context.WithTimeout(ctx, 5*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// installFlow builds the install pages of many-workspace mode. The client secret is read from
// SSM when a page first needs it (not at init: the events' cold start does not wait for it),
// bounded like the signing secret.
func installFlow(cfg receiverconfig.Config, awsCfg aws.Config, log *slog.Logger, m *metrics.Emitter) *installflow.Flow {
	var secret installflow.Secrets
	if cfg.Install.ClientSecretParam != "" {
		client := ssm.NewFromConfig(awsCfg, func(o *ssm.Options) { o.BaseEndpoint = awsclient.Endpoint(os.Getenv, "SSM") }, intake.SSMOptions)
		secret = secrets.NewSSM(client, map[string]string{installflow.SecretKey: cfg.Install.ClientSecretParam}, intake.SecretsOptions(cfg.SecretsMaxAge, log, m))
	} else {
		secret = secrets.NewStatic(map[string]string{installflow.SecretKey: cfg.Install.ClientSecret})
	}
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.BaseEndpoint = awsclient.Endpoint(os.Getenv, "DYNAMODB") }, installflow.DynamoDBOptions)
	return &installflow.Flow{
		ClientID:     cfg.Install.ClientID,
		Scopes:       cfg.Install.Scopes,
		RedirectURL:  cfg.Install.RedirectURL,
		AuthorizeURL: cfg.Install.AuthorizeURL,
		APIURL:       cfg.Install.SlackAPIURL,
		Secrets:      secret,
		Store:        install.NewDynamoStore(db, cfg.Install.Table, nil),
		States:       installflow.DynamoStates{DB: db, Table: cfg.Install.Table},
		Log:          log,
		Metrics:      m,
	}
}

// preload reads the signing secret during init (in Lambda, before the runtime loop asks for
// the first request; locally, before the server listens), bounded by
// intake.SecretsTimeout. A failure does not stop the start: the store has logged it and
// remembers it, requests meanwhile get a 503 that Slack retries, and the store tries SSM
// again once its backoff has passed.
func preload(ctx context.Context, store *secrets.Store, log *slog.Logger) {
	start := time.Now()
	err := store.Preload(ctx)
	took := time.Since(start).Milliseconds()
	if err != nil {
		log.Warn("starting without the signing secret; requests get 503 until it loads", "took_ms", took)
		return
	}
	log.Info("signing secret loaded", "took_ms", took)
}

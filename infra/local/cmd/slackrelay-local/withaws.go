package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/awstest"
)

// withAWS is `slackrelay-local with-aws -- CMD ARGS...`: it starts the local SQS and
// DynamoDB servers on 127.0.0.1, runs CMD with the AWS variables pointing at them
// (shared/awstest reads them: this is how the production modules' integration tests find
// the servers without importing infra/local), stops the servers when CMD ends, and returns
// CMD's exit status. Ctrl-C (or SIGTERM) reaches CMD, then stops the servers.
//
// Two SQS servers run: fauxqs (AWS_ENDPOINT_URL_SQS) and local-aws-sqs
// (SLACKRELAY_SQS_MOVE_TASKS_ENDPOINT), which has the message move tasks fauxqs lacks.
func withAWS(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: slackrelay-local with-aws -- CMD [ARGS...]")
		return 2
	}
	cmd := exec.Command(args[0], args[1:]...)
	if cmd.Err != nil { // not found: say so before starting anything
		fmt.Fprintln(os.Stderr, "slackrelay-local with-aws:", cmd.Err)
		return 127
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got os.Signal
	go func() {
		select {
		case got = <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()

	// Both SQS servers and dynalite start at once (each takes about a second).
	var mu sync.Mutex
	var stacks []*localaws.Servers
	var errs []error
	var wg sync.WaitGroup
	for _, opts := range []localaws.Options{
		{Stderr: os.Stderr},
		{Stderr: os.Stderr, SQSImpl: localaws.ImplLocalAWSSQS, NoDynamoDB: true},
	} {
		wg.Go(func() {
			s, err := localaws.Start(ctx, opts)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			stacks = append(stacks, s)
		})
	}
	wg.Wait()
	defer func() {
		for _, s := range stacks {
			s.Stop()
		}
	}()
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "slackrelay-local with-aws:", err)
		if ctx.Err() != nil {
			return 130 // interrupted while starting
		}
		return 1
	}
	primary, moveTasks := stacks[0], stacks[1]
	if primary.DynamoDBEndpoint == "" {
		primary, moveTasks = moveTasks, primary
	}

	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		awsclient.EnvRegion+"="+awsclient.DefaultRegion,
		awsclient.EnvAccessKeyID+"=local", awsclient.EnvSecretAccessKey+"=local", awsclient.EnvSessionToken+"=",
		"AWS_EC2_METADATA_DISABLED=true",
		awstest.EnvSQS+"="+primary.SQSEndpoint,
		awstest.EnvDynamoDB+"="+primary.DynamoDBEndpoint,
		awstest.EnvSQSMoveTasks+"="+moveTasks.SQSEndpoint,
	)
	fmt.Fprintf(os.Stderr, "with-aws: SQS %s, DynamoDB %s, SQS with move tasks %s (stopped when %s ends)\n",
		primary.SQSEndpoint, primary.DynamoDBEndpoint, moveTasks.SQSEndpoint, args[0])
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "slackrelay-local with-aws:", err)
		return 127
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// Ctrl-C in a terminal signals CMD too; a signal sent to this process alone is
		// passed on. CMD gets a while to finish, then is killed.
		_ = cmd.Process.Signal(got)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

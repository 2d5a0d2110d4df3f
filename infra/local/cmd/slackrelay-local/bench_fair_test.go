package main

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/awsclient"
)

// TestFairTargetOnTheLocalWorld runs the deployed-stack measurement (bench -fair-events-url)
// against the local world with its worker stopped, as the recipe in docs/deploy.md has the
// stack's event source mapping disabled: every message sent through the receiver is
// consumed once, and on the local server's fair queue the quiet tenants' messages do not
// wait behind the noisy tenant's backlog (their p99 dwell is under the noisy tenant's median).
func TestFairTargetOnTheLocalWorld(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binaries and runs for about 30 s")
	}
	ctx := context.Background()
	root, err := localaws.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := localaws.FindDir(); err != nil {
		localawstest.Require(t, err)
	}
	bins, err := devworld.Build(ctx, root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := devworld.Start(ctx, devworld.Options{Bins: bins})
	localawstest.Require(t, err)
	t.Cleanup(s.Stop)
	s.StopWorker()
	target := fairTarget{EventsURL: s.ReceiverURL + "/slack/events", QueueURL: s.Local.QueueURL, Secret: devworld.LocalSigningSecret, Consumers: 2, Rate: fairNoisyRate,
		SQS: sqs.NewFromConfig(awsclient.Local(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(s.Local.SQSEndpoint) })}
	const noisy, quiet = 400, 2
	d, err := fairConsume(ctx, target, true, noisy, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.noisy) != noisy || len(d.quiet) != fairQuietTenants*quiet {
		t.Fatalf("consumed %d noisy and %d quiet messages, want %d and %d", len(d.noisy), len(d.quiet), noisy, fairQuietTenants*quiet)
	}
	if q, n := pct(d.quiet, 99), pct(d.noisy, 50); q >= n || n < 2*time.Second {
		t.Fatalf("quiet p99 dwell %v, noisy median %v: want a noisy backlog (median over 2 s) the quiet tenants do not wait behind", q, n)
	}
}

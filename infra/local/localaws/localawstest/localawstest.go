// Package localawstest gives integration tests one local stack per test binary.
//
// Tests that need it call Stack(t). When the npm servers are not installed the tests are
// skipped, unless SLACKRELAY_REQUIRE_LOCAL_STACK=1 (set by `make test` and CI), where a
// missing stack is a failure rather than a silent skip.
package localawstest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/awstest"

	"github.com/slackrelay/slackrelay/infra/local/localaws"
)

var (
	once   sync.Once
	shared *localaws.Servers
	err    error
)

// Stack returns the package's shared stack, started on first use. Run stops it.
func Stack(t testing.TB) *localaws.Servers {
	t.Helper()
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		shared, err = localaws.Start(ctx, localaws.Options{Stderr: os.Stderr})
	})
	Require(t, err)
	return shared
}

// Start starts a stack of its own for one test (stopped by t.Cleanup).
func Start(t testing.TB, opts localaws.Options) *localaws.Servers {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	s, err := localaws.Start(ctx, opts)
	Require(t, err)
	t.Cleanup(s.Stop)
	return s
}

// Require skips (or, under SLACKRELAY_REQUIRE_LOCAL_STACK=1, fails) when err is set.
func Require(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("SLACKRELAY_REQUIRE_LOCAL_STACK") == "1" {
		t.Fatalf("local stack unavailable: %v", err)
	}
	t.Skipf("local stack unavailable (set SLACKRELAY_REQUIRE_LOCAL_STACK=1 to fail instead): %v", err)
}

// Run is TestMain's body: it runs the tests and then stops the shared stack.
func Run(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// QueueURLs creates a fresh queue pair on the shared stack's server, so tests do not see each
// other's messages. It returns the queue and DLQ URLs.
func QueueURLs(t testing.TB, s *localaws.Servers, name string, maxReceive int) (string, string) {
	t.Helper()
	q, dlq, err := awstest.CreateQueuePair(context.Background(), s.SQS(), name, maxReceive)
	if err != nil {
		t.Fatal(fmt.Errorf("create queue pair %s: %w", name, err))
	}
	return q, dlq
}

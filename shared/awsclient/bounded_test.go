package awsclient

import (
	"context"
	"crypto/md5"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestBoundedRetryBackoff(t *testing.T) {
	t.Parallel()
	p := BoundedRetry{Attempts: 4, AttemptTimeout: 100 * time.Millisecond, BackoffBase: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
	for _, tc := range []struct {
		attempt  int
		r        float64
		want     time.Duration
		describe string
	}{
		{0, 0, 10 * time.Millisecond, "the SDK's 2026 numbering starts at 0: half the base"},
		{1, 0, 10 * time.Millisecond, "first retry, no jitter: half the base"},
		{1, 0.5, 15 * time.Millisecond, "first retry, half jitter"},
		{2, 0, 20 * time.Millisecond, "second retry: doubled, halved"},
		{3, 0.999999, 50 * time.Millisecond, "third retry: capped at BackoffMax"},
		{30, 0, 25 * time.Millisecond, "far retries stay capped"},
	} {
		if got := p.Backoff(tc.attempt, tc.r).Round(time.Millisecond); got != tc.want {
			t.Errorf("Backoff(%d, %v) = %s, want %s (%s)", tc.attempt, tc.r, got, tc.want, tc.describe)
		}
	}
	if got, want := p.Budget(), 4*100*time.Millisecond+3*50*time.Millisecond; got != want {
		t.Errorf("Budget = %s, want %s", got, want)
	}
}

// silentListener accepts connections and never answers; it counts them.
func silentListener(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String(), &n
}

// refusedURL is a loopback address that refuses connections for the whole test: its port is
// bound but never listened on, so no other test's listener can take it meanwhile (a port
// freed at once could be). infra/local/loopback.RefusedEndpoint does the same for the other
// modules; shared cannot import infra/local, which imports shared.
func refusedURL(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// The real SQS client under the policy gives up after its attempts, within its budget,
// whether the server never answers or refuses the connection.
func TestBoundedRetryEndsWithinBudget(t *testing.T) {
	t.Parallel()
	p := BoundedRetry{Attempts: 3, AttemptTimeout: 150 * time.Millisecond, BackoffBase: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond}
	silent, accepted := silentListener(t)
	for _, tc := range []struct {
		name     string
		url      string
		min, max time.Duration
	}{
		{"server never answers", silent, 3 * p.AttemptTimeout, p.Budget() + 200*time.Millisecond},
		{"connection refused", refusedURL(t), 0, 2*p.BackoffMax + 200*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client := sqs.NewFromConfig(Local(), func(o *sqs.Options) {
				o.BaseEndpoint = aws.String(tc.url)
				o.Retryer = p.Retryer()
				o.HTTPClient = p.HTTPClient()
			})
			// The caller's deadline is far: the policy, not the context, must end the call.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			_, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(tc.url + "/q"), MessageBody: aws.String("x")})
			took := time.Since(start)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("SendMessage = %v (context %v); want a failure from the policy", err, ctx.Err())
			}
			if took < tc.min || took > tc.max {
				t.Fatalf("SendMessage failed after %s; want between %s and %s", took, tc.min, tc.max)
			}
			t.Logf("%s: failed after %s (budget %s): %v", tc.name, took.Round(time.Millisecond), p.Budget(), err)
		})
	}
	t.Cleanup(func() {
		if n := accepted.Load(); n != 3 {
			t.Errorf("the silent server saw %d connections, want 3 (one per attempt)", n)
		}
	})
}

// A call keeps its retries after earlier calls of the same client timed out: 30 calls to a
// queue that never answers in time (90 timed-out attempts, which drain the SDK's default
// retry quota), then calls whose first attempt is slow and second fast all succeed on their
// second attempt, as the policy says, instead of failing after one.
func TestBoundedRetryKeepsItsAttemptsAfterTimeouts(t *testing.T) {
	t.Parallel()
	p := BoundedRetry{Attempts: 3, AttemptTimeout: 30 * time.Millisecond, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond}
	var stalled atomic.Bool
	stalled.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stalled.Load() || strings.HasPrefix(r.Header.Get("Amz-Sdk-Request"), "attempt=1;") {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		fmt.Fprintf(w, `{"MessageId":"m1","MD5OfMessageBody":"%x"}`, md5.Sum([]byte("x")))
	}))
	t.Cleanup(srv.Close)
	client := sqs.NewFromConfig(Local(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.Retryer = p.Retryer()
		o.HTTPClient = p.HTTPClient()
	})
	send := func() error {
		_, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(srv.URL + "/q"), MessageBody: aws.String("x")})
		return err
	}
	for range 30 {
		if err := send(); err == nil {
			t.Fatal("a call to the stalled queue succeeded")
		}
	}
	stalled.Store(false)
	for i := range 10 {
		if err := send(); err != nil {
			t.Fatalf("call %d after the stall: %v; want success on its second attempt", i, err)
		}
	}
}

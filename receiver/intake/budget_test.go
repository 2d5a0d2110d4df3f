package intake

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/fakessm"
	"github.com/slackrelay/slackrelay/shared/loopback"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/shared/secrets"
	"github.com/slackrelay/slackrelay/shared/slackverify"
)

// invocationTimeout is the receiver's Lambda timeout (infra/template.yaml).
const invocationTimeout = 2 * time.Second

// A queue that never answers and one that refuses connections both end in a 503 from the
// send policy, inside the invocation's deadline less the answer reserve.
func TestUnreachableQueueAnswers503WithinTheBudget(t *testing.T) {
	t.Parallel()
	if limit := invocationTimeout - AnswerReserve; SendPolicy.Budget() >= limit {
		t.Fatalf("SendPolicy.Budget() = %s, not inside the %s an invocation has before its reserve", SendPolicy.Budget(), limit)
	}
	for _, tc := range []struct {
		name string
		url  string
	}{
		{"never answers", loopback.SilentEndpoint(t)},
		{"refuses connections", loopback.RefusedEndpoint(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client := sqs.NewFromConfig(awsclient.Local(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(tc.url) }, SQSOptions)
			var logs bytes.Buffer
			h := newHandler(client, staticSecrets(), &logs)
			h.QueueURL = tc.url + "/000000000000/events"
			ctx, cancel := context.WithTimeout(context.Background(), invocationTimeout)
			defer cancel()
			start := time.Now()
			resp := h.Handle(ctx, signed(PathEvents, mentionBody))
			took := time.Since(start)
			if resp.Status != 503 || resp.NoRetry {
				t.Fatalf("status %d noRetry %v; want a 503 Slack retries", resp.Status, resp.NoRetry)
			}
			if limit := invocationTimeout - AnswerReserve; took >= limit {
				t.Fatalf("503 after %s; want it before %s (the deadline less the reserve)", took, limit)
			}
			// The policy ended the call: every attempt failed, none was cut by the context.
			if !strings.Contains(logs.String(), "exceeded maximum number of attempts") {
				t.Fatalf("the send did not end by the policy's attempts:\n%s", logs.String())
			}
			t.Logf("queue %s: 503 after %s (policy budget %s, deadline %s less reserve %s)",
				tc.name, took.Round(time.Millisecond), SendPolicy.Budget(), invocationTimeout, AnswerReserve)
		})
	}
}

// ssmStore is the receiver's signing-secret store over the real SSM client and a local SSM.
func ssmStore(t *testing.T, logs io.Writer) (*secrets.Store, *fakessm.Server) {
	t.Helper()
	srv, err := fakessm.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	srv.Put("/slackrelay/test/signing-secret", testSecret)
	client := ssm.NewFromConfig(awsclient.Local(), func(o *ssm.Options) { o.BaseEndpoint = aws.String(srv.URL()) }, SSMOptions)
	store := secrets.NewSSM(client, map[string]string{SecretKey: "/slackrelay/test/signing-secret"},
		SecretsOptions(5*time.Minute, slog.New(slog.NewJSONHandler(logs, nil)), metrics.New(io.Discard, "test")))
	return store, srv
}

func unsigned() *Request {
	r := signed(PathEvents, mentionBody)
	r.Header = func(string) string { return "" }
	return r
}

// Bad traffic during an SSM outage does not turn into SSM calls: 50 unsigned and 50 badly
// signed requests cost at most one GetParameters call (its attempts) before the store's
// backoff, whether or not a secret was loaded before the outage.
func TestBadTrafficDuringAnSSMOutageMakesNoSSMCalls(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		loaded bool
	}{
		{"cold, nothing loaded", false},
		{"warm, a secret loaded", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			store, srv := ssmStore(t, &logs)
			h := newHandler(&fakeSender{}, store, &logs)
			h.Verifier.Now = nil // the store's backoff runs on the real clock; so does the window
			ctx := context.Background()
			if tc.loaded {
				if err := store.Preload(ctx); err != nil {
					t.Fatal(err)
				}
			}
			before := srv.Calls()
			srv.SetMode(fakessm.Fail)
			statuses := map[int]int{}
			for i := 0; i < 50; i++ {
				for _, r := range []*Request{unsigned(), freshBadlySigned()} {
					c, cancel := context.WithTimeout(ctx, invocationTimeout)
					statuses[h.Handle(c, r).Status]++
					cancel()
				}
			}
			calls := srv.Calls() - before
			t.Logf("%s: 100 bad requests during the outage made %d GetParameters requests; statuses %v", tc.name, calls, statuses)
			if calls > SSMPolicy.Attempts {
				t.Fatalf("%d GetParameters requests reached SSM; want at most %d (one call's attempts)", calls, SSMPolicy.Attempts)
			}
			if statuses[401] < 50 || statuses[202]+statuses[200] != 0 {
				t.Fatalf("statuses %v; want every request refused, the unsigned ones with 401", statuses)
			}
			// A genuine request during the outage: 202 with the last good secret, 503 without one.
			c, cancel := context.WithTimeout(ctx, invocationTimeout)
			defer cancel()
			want := map[bool]int{true: 202, false: 503}[tc.loaded]
			if got := h.Handle(c, freshSigned()).Status; got != want {
				t.Fatalf("a genuine request during the outage: status %d, want %d", got, want)
			}
		})
	}
}

// freshSigned and freshBadlySigned carry the current time (the store's backoff uses the real
// clock, so the handler's verifier does too).
func freshSigned() *Request { return resign(signed(PathEvents, mentionBody), testSecret) }

func freshBadlySigned() *Request { return resign(signed(PathEvents, mentionBody), "not-the-secret") }

// resign signs r with secret at the current time; a wrong secret makes a request only the
// secret can tell from a genuine one.
func resign(r *Request, secret string) *Request {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig := slackverify.Sign([]byte(secret), ts, r.Body)
	r.Header = func(n string) string {
		switch n {
		case slackverify.HeaderTimestamp:
			return ts
		case slackverify.HeaderSignature:
			return sig
		}
		return ""
	}
	return r
}

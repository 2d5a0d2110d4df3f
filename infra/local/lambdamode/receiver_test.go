package lambdamode

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slackrelay/slackrelay/infra/local/lambdaworld"
	"github.com/slackrelay/slackrelay/receiver/intake"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/fakessm"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/loopback"
)

// startReceiver runs the receiver with the template's environment, its signing secret in
// the world's SSM; prepare runs before the start (to take SSM away at cold start).
func (w *world) startReceiver(spec lambdaworld.Spec, prepare func()) (*lambdaworld.Function, lambdaworld.FunctionOptions) {
	w.t.Helper()
	spec.LogicalID = lambdaworld.ReceiverFunction
	opts, err := lambdaworld.Options(tmpl, lambdaworld.Spec{LogicalID: spec.LogicalID, Local: w.local})
	if err != nil {
		w.t.Fatal(err)
	}
	w.ssm.Put(lambdaworld.EnvValue(opts.Env, "SIGNING_SECRET_PARAM"), signingSecret)
	if prepare != nil {
		prepare()
	}
	return w.start(spec)
}

// answeredInTime fails unless the invocation answered status within the deadline less the
// receiver's answer reserve, and returns how long it took.
func answeredInTime(t *testing.T, what string, f *lambdaworld.Function, event []byte, status int, timeout time.Duration) time.Duration {
	t.Helper()
	resp, r := call(t, f, event)
	if r.TimedOut || resp.StatusCode != status {
		t.Fatalf("%s: status %d (timed out: %v, %s), want %d", what, resp.StatusCode, r.TimedOut, resp.Body, status)
	}
	if limit := timeout - intake.AnswerReserve; r.Duration >= limit {
		t.Fatalf("%s: answered after %s; want before %s (the %s deadline less the reserve)", what, r.Duration, limit, timeout)
	}
	return r.Duration
}

// The receiver answers Slack's requests as deployed: every format API Gateway hands it, and
// the envelope on the queue holds the exact bytes Slack signed.
func TestReceiver(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f, opts := w.startReceiver(lambdaworld.Spec{}, nil)
	if opts.Timeout != 2*time.Second {
		t.Fatalf("the template's receiver timeout is %s; the deadline checks below assume 2s", opts.Timeout)
	}
	mentionBody := fixture.AppMention("EvLambda1", "CLAMBDA", "1700000000.000100", "hello from a named stage")
	slash := fixture.SlashCommand("/ask", "why?", "tr.lambda", "https://hooks.slack.com/commands/T0001/1/x")
	type want struct {
		status   int
		body     string
		enqueued envelope.Kind
		noRetry  bool
	}
	cases := []struct {
		name  string
		event []byte
		want  want
	}{
		{"signed event", lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", fixture.AppMention("EvLambda2", "CLAMBDA", "1700000000.000200", "hi"), signingSecret, false), want{status: 202, enqueued: envelope.KindEvent}},
		{"base64 body", lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", fixture.AppMention("EvLambda3", "CLAMBDA", "1700000000.000300", "héllo ✓"), signingSecret, true), want{status: 202, enqueued: envelope.KindEvent}},
		{"slash command", lambdaworld.HTTPEvent("$default", intake.PathCommands, "application/x-www-form-urlencoded", slash, signingSecret, false), want{status: 200, enqueued: envelope.KindSlashCommand}},
		{"url_verification", lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", `{"token":"x","challenge":"ch4ll3nge-lambda","type":"url_verification"}`, signingSecret, false), want{status: 200, body: "ch4ll3nge-lambda"}},
		{"bad signature", lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", mentionBody, "wrong-secret", false), want{status: 401}},
		{"unsigned", lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", mentionBody, "", false), want{status: 401}},
		{"named stage", lambdaworld.HTTPEvent("prod", intake.PathEvents, "application/json", mentionBody, signingSecret, false), want{status: 202, enqueued: envelope.KindEvent}},
		{"unknown route under /slack/", lambdaworld.HTTPEvent("$default", "/slack/event", "application/json", mentionBody, signingSecret, false), want{status: 404}},
		{"unknown path", lambdaworld.HTTPEvent("$default", "/wp-login.php", "application/json", mentionBody, signingSecret, false), want{status: 404, noRetry: true}},
	}
	sqsClient := w.stack.SQS()
	for _, tc := range cases {
		// Sequential: one instance takes one event at a time, as in Lambda.
		t.Run(tc.name, func(t *testing.T) {
			resp, r := call(t, f, tc.event)
			if resp.StatusCode != tc.want.status || (tc.want.body != "" && resp.Body != tc.want.body) {
				t.Fatalf("status %d body %q; want %d %q", resp.StatusCode, resp.Body, tc.want.status, tc.want.body)
			}
			if got := resp.Headers["x-slack-no-retry"] == "1"; got != tc.want.noRetry {
				t.Fatalf("x-slack-no-retry %v, want %v", got, tc.want.noRetry)
			}
			msgs := receive(t, sqsClient, w.local.QueueURL)
			if tc.want.enqueued == "" {
				if len(msgs) != 0 {
					t.Fatalf("%d messages enqueued, want none", len(msgs))
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("%d messages enqueued, want 1", len(msgs))
			}
			e, err := envelope.Decode([]byte(aws.ToString(msgs[0].Body)))
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != tc.want.enqueued || e.Body != signedBody(t, tc.event) {
				t.Fatalf("envelope kind %s body %q; want %s and the signed bytes", e.Kind, e.Body, tc.want.enqueued)
			}
			t.Logf("%s: %s", tc.name, r.Duration.Round(time.Microsecond))
		})
	}
	if init := f.Init(); init.Failed() || init.Duration <= 0 {
		t.Fatalf("init %+v; want a measured start", init)
	}
	// RIE's REPORT lines give the memory it was handed: the template's.
	if opts.MemoryMB != 256 || !strings.Contains(f.Logs(), "Memory Size: 256 MB") {
		t.Fatalf("memory %d MB, and RIE reported it as:\n%s", opts.MemoryMB, f.Logs())
	}
}

// A hanging SSM at cold start: init gives up within its bound and the function starts; the
// first requests get a 503 (Slack retries) well before the deadline, without waiting on
// SSM again until the store's backoff has passed; a call after it is bounded too; once SSM
// answers, requests are accepted. Init runs at the first request (RIE, like Lambda), and RIE
// counts it against that request's 2 s: the request itself must not wait on SSM.
func TestReceiverSSMHangingAtColdStart(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f, opts := w.startReceiver(lambdaworld.Spec{}, func() { w.ssm.SetMode(fakessm.Hang) })
	event := func() []byte {
		return lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", fixture.AppMention("EvCold", "CCOLD", "1700000000.000400", "cold"), signingSecret, false)
	}
	resp, r := call(t, f, event())
	init := r.Init
	if !r.Cold || init.Failed() || init.Duration > intake.SecretsTimeout+500*time.Millisecond {
		t.Fatalf("init %+v; want a start within the %s SSM bound", init, intake.SecretsTimeout)
	}
	if r.TimedOut || resp.StatusCode != 503 || r.Duration > 100*time.Millisecond {
		t.Fatalf("first request: status %d after %s (timed out: %v); want a 503 at once, no second wait on SSM", resp.StatusCode, r.Duration, r.TimedOut)
	}
	first := r.Duration
	calls := w.ssm.Calls()
	next := answeredInTime(t, "next request", f, event(), 503, opts.Timeout)
	if w.ssm.Calls() != calls {
		t.Fatalf("a request called SSM again %s after a failed load; want the backoff to answer", init.Duration)
	}
	time.Sleep(secretsRetryMax(1))
	bounded := answeredInTime(t, "request after the backoff, SSM still hanging", f, event(), 503, opts.Timeout)
	if w.ssm.Calls() == calls {
		t.Fatal("after the backoff the store did not try SSM again")
	}
	w.ssm.SetMode(fakessm.Answer)
	time.Sleep(secretsRetryMax(2))
	ok := answeredInTime(t, "request once SSM answers", f, event(), 202, opts.Timeout)
	t.Logf("SSM hanging at cold start: init %s; first request 503 after %s, next 503 after %s; after the backoff 503 after %s (SSM call bounded); SSM back: 202 after %s",
		init.Duration.Round(time.Millisecond), first.Round(time.Millisecond), next.Round(time.Millisecond), bounded.Round(time.Millisecond), ok.Round(time.Millisecond))
}

// secretsRetryMax is the longest backoff after failures failed loads in a row (the store's
// defaults: 1s doubling), plus a margin.
func secretsRetryMax(failures int) time.Duration {
	return time.Second<<(failures-1) + 100*time.Millisecond
}

// A hanging SSM at refresh: the store serves the last good secret (stale-while-error), so
// the request is verified and enqueued (202) before the deadline, the refresh bounded to
// leave the send its budget; the next request does not call SSM (backoff).
func TestReceiverSSMHangingAtRefresh(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// A 1s cache instead of the template's 5m, to reach a refresh.
	f, opts := w.startReceiver(lambdaworld.Spec{Set: map[string]string{"SECRETS_MAX_AGE": "1s"}}, nil)
	event := func(id string) []byte {
		return lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", fixture.AppMention(id, "CREFRESH", "1700000000.000500", "refresh"), signingSecret, false)
	}
	warm := answeredInTime(t, "with SSM answering", f, event("EvR1"), 202, opts.Timeout)
	w.ssm.SetMode(fakessm.Hang)
	time.Sleep(1100 * time.Millisecond)
	calls := w.ssm.Calls()
	refresh := answeredInTime(t, "refresh with SSM hanging", f, event("EvR2"), 202, opts.Timeout)
	if w.ssm.Calls() == calls {
		t.Fatal("the expired cache did not lead to an SSM call")
	}
	calls = w.ssm.Calls()
	after := answeredInTime(t, "next request", f, event("EvR3"), 202, opts.Timeout)
	if w.ssm.Calls() != calls {
		t.Fatal("the request after a failed refresh called SSM again; want the backoff")
	}
	if n := len(receive(t, w.stack.SQS(), w.local.QueueURL)); n != 3 {
		t.Fatalf("%d messages enqueued, want 3", n)
	}
	if !logged(f, map[string]string{"level": "WARN", "msg": "ssm parameters could not be read", "serving": "stale"}) ||
		strings.Contains(f.Logs(), signingSecret) {
		t.Fatal("want a WARN line about the failed refresh serving the stale secret, and never the secret")
	}
	t.Logf("SSM hanging at refresh: warm 202 after %s; refresh with SSM hanging: 202 after %s (stale secret); next: 202 after %s",
		warm.Round(time.Millisecond), refresh.Round(time.Millisecond), after.Round(time.Millisecond))
}

// A queue that never answers and one that refuses connections: 503 from the send policy
// before the deadline less the reserve.
func TestReceiverSQSUnreachable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		endpoint func(t testing.TB) string
	}{
		{"never answers", loopback.SilentEndpoint},
		{"refuses connections", loopback.RefusedEndpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			local := w.local
			local.SQSEndpoint = tc.endpoint(t)
			f, opts := w.startReceiver(lambdaworld.Spec{Local: local}, nil)
			took := answeredInTime(t, "enqueue", f, lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json",
				fixture.AppMention("EvSQS", "CSQS", "1700000000.000600", "sqs"), signingSecret, false), 503, opts.Timeout)
			if !logged(f, map[string]string{"msg": "enqueue failed; answering 503 so Slack retries"}) ||
				!strings.Contains(f.Logs(), "exceeded maximum number of attempts") {
				t.Fatal("want the enqueue failure logged, ended by the policy's attempts")
			}
			t.Logf("SQS %s: 503 after %s (deadline %s, reserve %s)", tc.name, took.Round(time.Millisecond), opts.Timeout, intake.AnswerReserve)
		})
	}
}

// Bad traffic during an SSM outage costs no SSM calls: the preload's call at init, then
// nothing until the backoff has passed, however many requests come.
func TestReceiverBadTrafficDuringSSMOutage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f, _ := w.startReceiver(lambdaworld.Spec{}, func() { w.ssm.SetMode(fakessm.Fail) })
	// The first request starts the function (init preloads the secret).
	body := fixture.AppMention("EvBad", "CBAD", "1700000000.000700", "bad")
	if resp, r := call(t, f, lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", body, "", false)); !r.Cold || resp.StatusCode != 401 {
		t.Fatalf("first (unsigned) request: %d, cold %v; want the cold start's 401", resp.StatusCode, r.Cold)
	}
	atInit := w.ssm.Calls()
	start := time.Now()
	statuses := map[int]int{}
	for i := 0; i < 50; i++ {
		for _, secret := range []string{"", "wrong-secret"} {
			resp, _ := call(t, f, lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", body, secret, false))
			statuses[resp.StatusCode]++
		}
	}
	took := time.Since(start)
	extra := w.ssm.Calls() - atInit
	t.Logf("100 bad requests in %s during an SSM outage: %d GetParameters requests at init, %d after; statuses %v",
		took.Round(time.Millisecond), atInit, extra, statuses)
	// The store may try once more per backoff (at least 500ms) the requests span.
	allowed := intake.SSMPolicy.Attempts * (1 + int(took/(500*time.Millisecond)))
	if extra > allowed {
		t.Fatalf("%d GetParameters requests during %s of bad traffic; want at most %d", extra, took, allowed)
	}
	if statuses[401] != 50 || statuses[503] != 50 {
		t.Fatalf("statuses %v; want 50 unsigned 401s and 50 503s (no secret to check the others)", statuses)
	}
}

// A configuration error at init goes to the Runtime API's init/error and is one JSON line;
// the request that started the function gets the error (RIE's 502), and so does the next,
// which tries init again.
func TestReceiverInitFailure(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f, _ := w.startReceiver(lambdaworld.Spec{Unset: []string{"EVENTS_QUEUE_URL"}}, nil)
	event := lambdaworld.HTTPEvent("$default", intake.PathEvents, "application/json", fixture.AppMention("EvInit", "CINIT", "1700000000.000800", "init"), signingSecret, false)
	for i := 0; i < 2; i++ {
		r, err := f.Invoke(context.Background(), event)
		init := r.Init
		if !errors.Is(err, lambdaworld.ErrInitFailed) || init.Error == nil || init.Error.ErrorType != "Runtime.ConfigError" ||
			!strings.Contains(init.Error.ErrorMessage, "EVENTS_QUEUE_URL is required") || !init.Exited {
			t.Fatalf("invocation %d: %+v, %v; want init/error Runtime.ConfigError naming EVENTS_QUEUE_URL, then an exit", i, r, err)
		}
	}
	if !logged(f, map[string]string{"level": "ERROR", "msg": "init failed", "error_type": "Runtime.ConfigError"}) {
		t.Fatalf("no JSON init failure line in:\n%s", f.Logs())
	}
}

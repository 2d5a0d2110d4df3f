package intake

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/shared/secrets"
)

// The receiver's time budget. The function's timeout is 2 s (infra/template.yaml) and Slack
// gives up after 3 s. Of an invocation's time:
//
//   - the last AnswerReserve is never spent on AWS calls: it is the time to write a 503;
//   - SendMessage gets up to SendPolicy.Budget() before that (3 attempts of at most 300 ms,
//     jittered waits of 10-80 ms): a queue that never answers, or refuses connections, ends
//     in a 503 from the policy, with the reserve untouched;
//   - a secret that must be read (a cold start whose init could not load it, a refresh)
//     gets what is left before those two: SecretsReserve is what an SSM call leaves of the
//     invocation, so the request can still be enqueued with the secret it returns.
//
// Without a deadline (local mode, init), SendMessage is bounded by SendPolicy alone and an
// SSM call by SecretsTimeout.
var (
	SendPolicy = awsclient.BoundedRetry{Attempts: 3, AttemptTimeout: 300 * time.Millisecond, BackoffBase: 20 * time.Millisecond, BackoffMax: 80 * time.Millisecond}
	SSMPolicy  = awsclient.BoundedRetry{Attempts: 2, AttemptTimeout: 300 * time.Millisecond, BackoffBase: 20 * time.Millisecond, BackoffMax: 80 * time.Millisecond}
)

const (
	// AnswerReserve is the end of an invocation no AWS call may use.
	AnswerReserve = 250 * time.Millisecond
	// SecretsTimeout bounds one SSM call: the signing secret's load at init (which delays
	// the first answer of a cold start) and calls made without a deadline.
	SecretsTimeout = time.Second
)

// SecretsReserve is the part of an invocation an SSM call leaves for enqueueing and answering.
var SecretsReserve = AnswerReserve + SendPolicy.Budget()

// SecretsOptions are the secret store's options for the receiver: SSM calls bounded by
// SecretsTimeout and SecretsReserve, values cached for maxAge, failures logged to log.
func SecretsOptions(maxAge time.Duration, log *slog.Logger, m *metrics.Emitter) secrets.Options {
	return secrets.Options{MaxAge: maxAge, Timeout: SecretsTimeout, Reserve: SecretsReserve, Log: log, Metrics: m}
}

// SQSOptions applies SendPolicy to the receiver's SQS client.
func SQSOptions(o *sqs.Options) {
	o.Retryer = SendPolicy.Retryer()
	o.HTTPClient = SendPolicy.HTTPClient()
}

// SSMOptions applies SSMPolicy to the receiver's SSM client.
func SSMOptions(o *ssm.Options) {
	o.Retryer = SSMPolicy.Retryer()
	o.HTTPClient = SSMPolicy.HTTPClient()
}

// enqueueContext bounds SendMessage: by the policy's budget, and by the invocation's
// deadline less AnswerReserve, whichever comes first.
func enqueueContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(SendPolicy.Budget())
	if d, ok := ctx.Deadline(); ok && d.Add(-AnswerReserve).Before(deadline) {
		deadline = d.Add(-AnswerReserve)
	}
	return context.WithDeadline(ctx, deadline)
}

package awsclient

import (
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// BoundedRetry is a retry policy for calls that must end inside a known time, such as the
// receiver's SendMessage before Slack's deadline: at most Attempts attempts, each cut off
// after AttemptTimeout (a server that accepts the connection and never answers costs one
// attempt, not the whole deadline), with a jittered wait between attempts that starts at
// BackoffBase and doubles up to BackoffMax. Budget is the longest the whole call can take,
// so a caller can plan its deadline around it rather than around a context that expires.
//
// It is built on the SDK's standard retryer (what is retried), with two differences: the
// backoff, and no client-wide retry quota. The SDK's own backoff waits up to a second and
// adds no jitter once it reaches its cap, which a 2-second budget cannot afford. Its retry
// quota (a token bucket shared by every call of the client, drained by 10 for each timed-out
// attempt and refilled by 1 per success) would turn the policy into one attempt per call once
// about 50 attempts have timed out: a receiver answering hundreds of requests a second, whose
// queue is slow for a moment, would then answer 503 to every request whose first attempt is
// slow, for as long as the bucket takes to refill. Attempts and Budget already bound what one
// call may cost, and a 503 brings Slack's retries (more requests, not fewer).
type BoundedRetry struct {
	Attempts                int
	AttemptTimeout          time.Duration
	BackoffBase, BackoffMax time.Duration
}

// Budget is the longest a call made under the policy can take: every attempt running to
// its timeout, every wait at its longest.
func (p BoundedRetry) Budget() time.Duration {
	return time.Duration(p.Attempts)*p.AttemptTimeout + time.Duration(max(p.Attempts-1, 0))*p.BackoffMax
}

// Backoff is the wait before retry number attempt (1 for the first retry): BackoffBase
// doubled per earlier retry, capped at BackoffMax, then jittered to between half and all
// of it by r, a number in [0, 1).
func (p BoundedRetry) Backoff(attempt int, r float64) time.Duration {
	d := p.BackoffBase
	for i := 1; i < attempt && d < p.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.BackoffMax)
	return d/2 + time.Duration(r*float64(d/2))
}

// Retryer returns the SDK retryer of the policy, for a client's Options.Retryer. (The SDK
// reads StandardOptions.MaxBackoff only to build its own backoff, which Backoff replaces.)
func (p BoundedRetry) Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = p.Attempts
		o.RateLimiter = ratelimit.None
		o.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
			return p.Backoff(attempt, rand.Float64()), nil
		})
	})
}

// HTTPClient returns an HTTP client whose requests (one per attempt) end after
// AttemptTimeout, for a client's Options.HTTPClient.
func (p BoundedRetry) HTTPClient() aws.HTTPClient {
	return NewHTTPClient(awshttp.NewBuildableClient().WithTimeout(p.AttemptTimeout))
}

//go:build lambda.norpc

package worker

import (
	"errors"
	"log/slog"
)

// poll is absent from Lambda builds (-tags lambda.norpc): there the event source mapping
// polls, and the poller is not linked in.
func poll(*App, *slog.Logger) error {
	return errors.New("this binary was built for AWS Lambda (-tags lambda.norpc) and has no local poller: " +
		"run it under Lambda's Runtime API (AWS_LAMBDA_RUNTIME_API), or build it without the tag to poll locally")
}

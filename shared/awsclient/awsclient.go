// Package awsclient loads the aws.Config both binaries use. In Lambda the default chain
// applies; locally the standard AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL_DYNAMODB /
// AWS_ENDPOINT_URL_SSM variables point the same clients at local servers, and fixed
// placeholder credentials are used when none are configured.
package awsclient

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// DefaultRegion is used locally when AWS_REGION is unset.
const DefaultRegion = "us-east-1"

// Load returns the SDK configuration. getenv is os.Getenv (a map in tests).
//
// Retries: the SDK's standard retryer with at most 3 attempts and a 1 s backoff cap, so that
// the receiver answers Slack well inside its 3-second budget even when SQS is slow.
func Load(ctx context.Context, getenv func(string) string) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.MaxBackoff = time.Second
			})
		}),
	}
	local := getenv("AWS_LAMBDA_RUNTIME_API") == ""
	if local {
		if getenv("AWS_REGION") == "" && getenv("AWS_DEFAULT_REGION") == "" {
			opts = append(opts, config.WithRegion(DefaultRegion))
		}
		if getenv("AWS_ACCESS_KEY_ID") == "" && getenv("AWS_PROFILE") == "" {
			opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load aws config: %w", err)
	}
	return cfg, nil
}

// Local returns a configuration for local servers: fixed credentials, DefaultRegion, and the
// endpoint resolved per service by the caller (BaseEndpoint on each client's options).
func Local() aws.Config {
	return aws.Config{
		Region:      DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 3; o.MaxBackoff = time.Second })
		},
	}
}

// Package awsclient builds the aws.Config the receiver and the worker use, without the SDK's
// config package: in Lambda the credentials and region are in the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION), so the shared
// config files, SSO and STS code that config.LoadDefaultConfig links in are dead weight in a
// function that must cold-start fast (the receiver's binary is about 3 MB smaller without it).
// Locally, the standard AWS_ENDPOINT_URL_<SERVICE> variables point each client at a local
// server and placeholder credentials are used when none are set.
//
// Operators' tools (slackrelay-dlq) use the SDK's full default chain instead.
package awsclient

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/slackrelay/slackrelay/shared/config"
)

// The AWS variables Load and Endpoint read (the SDK's standard names).
const (
	EnvRegion          = "AWS_REGION"
	EnvDefaultRegion   = "AWS_DEFAULT_REGION"
	EnvAccessKeyID     = "AWS_ACCESS_KEY_ID"
	EnvSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken    = "AWS_SESSION_TOKEN"
	EnvEndpointURL     = "AWS_ENDPOINT_URL"
	// EnvEndpointURLService is the documented pattern of EndpointVar's names.
	EnvEndpointURLService = EnvEndpointURL + "_<SERVICE>"
)

// Vars documents the AWS variables the receiver and the worker read through this package,
// for docs/configuration.md. Lambda sets the region and credentials from the function's
// execution role; locally they may be left unset.
var Vars = []config.Var{
	{Name: EnvRegion, Default: DefaultRegion, Doc: "the region of every AWS client (Lambda sets it; the default is for local servers)"},
	{Name: EnvDefaultRegion, Doc: "read when AWS_REGION is unset"},
	{Name: EnvAccessKeyID, Doc: "credentials, with AWS_SECRET_ACCESS_KEY (set by Lambda from the execution role; required there). Unset locally: placeholder credentials for the local servers"},
	{Name: EnvSecretAccessKey, Doc: "see AWS_ACCESS_KEY_ID"},
	{Name: EnvSessionToken, Doc: "the session token of temporary credentials (set by Lambda)"},
	{Name: EnvEndpointURLService, Doc: "the endpoint of one service's client, for local servers: SERVICE is SQS (both binaries), DYNAMODB (worker), SSM (when a secret is read from SSM) or BEDROCK_RUNTIME (the shipped bot with LLM_PROVIDER=bedrock); unset: the regional AWS endpoint"},
	{Name: EnvEndpointURL, Doc: "the endpoint of every client without its own AWS_ENDPOINT_URL_<SERVICE>"},
	{Name: config.EnvLambdaRuntimeAPI, Doc: "set by Lambda in every function: selects Lambda mode (the Lambda runtime API, SSM secrets, no local servers); unset: local mode"},
}

// EndpointVar returns the name of the endpoint variable of service ("SQS" → AWS_ENDPOINT_URL_SQS).
func EndpointVar(service string) string { return EnvEndpointURL + "_" + service }

// DefaultRegion is used locally when AWS_REGION is unset.
const DefaultRegion = "us-east-1"

// Load returns the SDK configuration from getenv (os.Getenv, or a map in tests).
//
// Retries: the SDK's standard retryer with at most 3 attempts and a 1 s backoff cap. A client
// that must answer inside a deadline (the receiver's SQS and SSM clients) sets a
// BoundedRetry of its own instead.
func Load(_ context.Context, getenv func(string) string) (aws.Config, error) {
	cfg := Local()
	if r := getenv(EnvRegion); r != "" {
		cfg.Region = r
	} else if r := getenv(EnvDefaultRegion); r != "" {
		cfg.Region = r
	}
	key, secret := getenv(EnvAccessKeyID), getenv(EnvSecretAccessKey)
	switch {
	case key != "" && secret != "":
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(key, secret, getenv(EnvSessionToken)))
	case config.IsLambda(getenv):
		return aws.Config{}, errors.New("aws credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them from the execution role)")
	}
	return cfg, nil
}

// Local returns a configuration with placeholder credentials and DefaultRegion, for local
// servers (the endpoint is set per client).
func Local() aws.Config {
	return aws.Config{
		Region:      DefaultRegion,
		HTTPClient:  NewHTTPClient(nil),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 3; o.MaxBackoff = time.Second })
		},
	}
}

// Endpoint returns AWS_ENDPOINT_URL_<SERVICE> (or AWS_ENDPOINT_URL) for a client's
// BaseEndpoint, or nil to use the service's regional endpoint. service is the SDK's
// upper-case service id: "SQS", "DYNAMODB", "SSM", "BEDROCK_RUNTIME".
func Endpoint(getenv func(string) string, service string) *string {
	if u := getenv(EndpointVar(service)); u != "" {
		return aws.String(u)
	}
	if u := getenv(EnvEndpointURL); u != "" {
		return aws.String(u)
	}
	return nil
}

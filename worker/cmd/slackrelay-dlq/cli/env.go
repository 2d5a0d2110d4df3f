package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/worker/internal/journal"
)

// The tool's own variables.
const (
	envQueueURL = "SLACKRELAY_QUEUE_URL"
	envDLQURL   = "SLACKRELAY_DLQ_URL"
	envStateDir = "SLACKRELAY_DLQ_STATE_DIR"
	envTable    = "SLACKRELAY_TABLE"
)

// Vars is every environment variable slackrelay-dlq reads: its own, and those of the AWS
// SDK's default configuration that operators set (the SDK reads the rest of its standard
// variables too). Flags win over variables.
var Vars = []config.Var{
	{Name: envQueueURL, Doc: "the events queue URL when neither --queue-url nor --stack names it"},
	{Name: envDLQURL, Doc: "the dead-letter queue URL when neither --dlq-url nor --stack names it"},
	{Name: envTable, Doc: "the worker's journal table (IDEMPOTENCY_TABLE) for costs when neither --table nor --stack names it"},
	{Name: envStateDir, Default: "slackrelay-dlq under the user's cache directory", Doc: "where export records are kept: purge deletes only the messages the last export of the DLQ saved (by message id and body digest)"},
	{Name: "AWS_REGION", Doc: "the AWS region when --region is not given (AWS_DEFAULT_REGION and the profile's region also work)"},
	{Name: "AWS_PROFILE", Doc: "the shared-config profile to use"},
	{Name: "AWS_ACCESS_KEY_ID", Doc: "static credentials (with AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); else the SDK's chain: profile, SSO, instance role"},
	{Name: "AWS_SECRET_ACCESS_KEY", Doc: "see AWS_ACCESS_KEY_ID"},
	{Name: "AWS_SESSION_TOKEN", Doc: "see AWS_ACCESS_KEY_ID"},
	{Name: "AWS_ENDPOINT_URL_SQS", Doc: "another SQS endpoint (a local server); AWS_ENDPOINT_URL for every service"},
	{Name: "AWS_ENDPOINT_URL_CLOUDFORMATION", Doc: "another CloudFormation endpoint (--stack)"},
	{Name: "AWS_ENDPOINT_URL_DYNAMODB", Doc: "another DynamoDB endpoint (costs; a local server)"},
	{Name: "AWS_EC2_METADATA_DISABLED", Doc: "true stops the SDK probing instance metadata for credentials (saves seconds off AWS)"},
}

func printEnv(w io.Writer) {
	fmt.Fprintln(w, "\nEnvironment:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range Vars {
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, v.Doc)
	}
	_ = tw.Flush()
}

// stateDir is where export records live: Deps.StateDir, $SLACKRELAY_DLQ_STATE_DIR, or
// slackrelay-dlq under the user's cache directory.
func (inv *invocation) stateDir() (string, error) {
	if inv.deps.StateDir != "" {
		return inv.deps.StateDir, nil
	}
	if d := inv.deps.Getenv(envStateDir); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no directory for export records: %w (set %s)", err, envStateDir)
	}
	return filepath.Join(base, "slackrelay-dlq"), nil
}

func newAWSClients(ctx context.Context, region string) (SQSAPI, CFNAPI, error) {
	cfg, err := loadAWS(ctx, region)
	if err != nil {
		return nil, nil, err
	}
	return sqs.NewFromConfig(cfg), cloudformation.NewFromConfig(cfg), nil
}

// newDynamoDB builds the DynamoDB client costs scans the journal table with.
func newDynamoDB(ctx context.Context, region string) (journal.Scanner, error) {
	cfg, err := loadAWS(ctx, region)
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(cfg), nil
}

// loadAWS is the SDK's default configuration for region ("" = the SDK's default).
func loadAWS(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return cfg, errors.New("no AWS region: pass --region or set AWS_REGION")
	}
	// Keeps the SDK from losing a response SQS acted on (see awsclient.HTTPClient).
	cfg.HTTPClient = awsclient.NewHTTPClient(cfg.HTTPClient)
	return cfg, nil
}

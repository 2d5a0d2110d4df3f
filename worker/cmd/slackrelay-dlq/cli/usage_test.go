package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// fakeCFN maps stack name → outputs.
type fakeCFN map[string]map[string]string

func (f fakeCFN) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	outs, ok := f[aws.ToString(in.StackName)]
	if !ok {
		return nil, fmt.Errorf("Stack with id %s does not exist", aws.ToString(in.StackName))
	}
	st := cfntypes.Stack{StackName: in.StackName}
	for k, v := range outs {
		st.Outputs = append(st.Outputs, cfntypes.Output{OutputKey: aws.String(k), OutputValue: aws.String(v)})
	}
	return &cloudformation.DescribeStacksOutput{Stacks: []cfntypes.Stack{st}}, nil
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	deps := Deps{SQS: sqs.New(sqs.Options{Region: "us-east-1"}), Getenv: func(string) string { return "" }}
	dlq := []string{"--dlq-url", "http://127.0.0.1:1/000000000000/x-dlq", "--queue-url", "http://127.0.0.1:1/000000000000/x"}
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"help", "frobnicate"},
		{"list", "--bogus"},
		{"list", "extra"},
		{"list", "--older-than", "soon"},
		{"list"},                     // no DLQ URL
		{"replay", "--dlq-url", "x"}, // no selection
		append([]string{"replay", "--all"}, "--dlq-url", "x"), // no events queue URL
		append([]string{"replay", "--all", "--rate", "0"}, dlq...),
		append([]string{"show"}, dlq...),
		append([]string{"show", "a", "b"}, dlq...),
		append([]string{"import"}, dlq...),
		append([]string{"import", "--in", "f", "--to", "elsewhere"}, dlq...),
		append([]string{"redrive", "restart"}, dlq...),
		append([]string{"redrive", "--rate", "501"}, dlq...),
		append([]string{"list", "--settle", "0s"}, dlq...),
		append([]string{"export", "--scan-timeout", "-1s"}, dlq...),
		append([]string{"list", "--max", "-1"}, dlq...),
		append([]string{"purge", "now"}, dlq...),
		append([]string{"stats", "--peek", "-5"}, dlq...),
		append([]string{"import", "--settle", "1s", "--in", "f"}, dlq...), // import does not scan
	} {
		var out, errb strings.Builder
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := RunWith(ctx, deps, args, &out, &errb)
		cancel()
		var ue *UsageError
		if !errors.As(err, &ue) || ExitCode(err) != 2 {
			t.Errorf("%q: got %v (exit %d), want a usage error", args, err, ExitCode(err))
		}
	}
	var out, errb strings.Builder
	err := RunWith(context.Background(), deps, []string{"list"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "pass --dlq-url or --stack") {
		t.Errorf("missing DLQ: %v", err)
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"help", "replay"}, {"replay", "-h"}, {"redrive", "--help"}} {
		out.Reset()
		if err := RunWith(context.Background(), deps, args, &out, &errb); err != nil || !strings.Contains(out.String(), "slackrelay-dlq") {
			t.Errorf("%q: %v, %q", args, err, out.String())
		}
	}
	out.Reset()
	_ = RunWith(context.Background(), deps, []string{"replay", "-h"}, &out, &errb)
	mustContain(t, out.String(), "Examples:", "--yes", "-allow-stale", "receive count")
	out.Reset()
	_ = RunWith(context.Background(), deps, []string{"redrive", "-h"}, &out, &errb)
	mustContain(t, out.String(), "cannot filter", "NO STALE GUARD", "DLQ_RETENTION + REPLAY_WINDOW", "replay (with --max-age)")

	if ExitCode(nil) != 0 || ExitCode(errors.New("x")) != 1 || ExitCode(&PartialError{}) != 3 || ExitCode(fmt.Errorf("w: %w", &UsageError{})) != 2 {
		t.Error("ExitCode mapping")
	}
}

func TestDurationsAndAges(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "2h": 2 * time.Hour, "3d": 72 * time.Hour, "0.5d": 12 * time.Hour} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "-1h", "d"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) accepted", bad)
		}
	}
	for d, want := range map[time.Duration]string{5 * time.Second: "5s", 125 * time.Second: "2m05s", 3*time.Hour + 5*time.Minute: "3h05m", 50 * time.Hour: "2d02h"} {
		if got := fmtAge(d); got != want {
			t.Errorf("fmtAge(%v) = %q, want %q", d, got, want)
		}
	}
}

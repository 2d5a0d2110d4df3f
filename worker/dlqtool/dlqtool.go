// Package dlqtool is the operators' tool for the dead-letter queue: slackrelay-dlq. It shows
// what failed and why (stats, list, show), puts messages back on the events queue (replay one
// by one, redrive in bulk with an SQS message move task), and saves, restores or empties the
// DLQ (export, import, purge).
//
// Every command that looks at DLQ messages "peeks": it receives them with a short visibility
// timeout and makes them visible again straight away (also on errors and interrupts). Real SQS
// counts each such receive in ApproximateReceiveCount; the DLQ has no redrive policy of its
// own, so that count is informational only.
package dlqtool

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/term"
)

// SQSAPI is the part of the SQS client the tool uses; *sqs.Client satisfies it.
type SQSAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	PurgeQueue(ctx context.Context, in *sqs.PurgeQueueInput, optFns ...func(*sqs.Options)) (*sqs.PurgeQueueOutput, error)
	StartMessageMoveTask(ctx context.Context, in *sqs.StartMessageMoveTaskInput, optFns ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error)
	ListMessageMoveTasks(ctx context.Context, in *sqs.ListMessageMoveTasksInput, optFns ...func(*sqs.Options)) (*sqs.ListMessageMoveTasksOutput, error)
	CancelMessageMoveTask(ctx context.Context, in *sqs.CancelMessageMoveTaskInput, optFns ...func(*sqs.Options)) (*sqs.CancelMessageMoveTaskOutput, error)
}

// CFNAPI is the part of the CloudFormation client the tool uses (--stack).
type CFNAPI interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// Deps are the tool's connections to the outside world. Tests fill SQS (and CFN); Run leaves
// them nil and sets NewClients, which is called with the --region flag once flags are parsed.
type Deps struct {
	SQS SQSAPI
	CFN CFNAPI
	// NewClients builds SQS and CloudFormation clients for a region ("" = the SDK's default).
	NewClients func(ctx context.Context, region string) (SQSAPI, CFNAPI, error)
	// Now is the clock for ages and the stale guard (default time.Now).
	Now func() time.Time
	// Stdin answers purge's confirmation prompt (default: nothing, so purge needs --yes).
	Stdin io.Reader
	// IsTerminal selects the single-line progress bar of replay.
	IsTerminal bool
	// Getenv reads SLACKRELAY_QUEUE_URL / SLACKRELAY_DLQ_URL (default os.Getenv).
	Getenv func(string) string
	// PeekWaitSeconds is the long-poll wait of a peek's receives. Run uses 1 so that real SQS
	// looks at all its servers before a scan ends; 0 (short polling) suits local servers.
	PeekWaitSeconds int32
}

// UsageError is a mistake in the command line (exit code 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// PartialError means some messages were handled and some were not (exit code 3). The
// counts are in the message; everything not handled is still where it was.
type PartialError struct{ Msg string }

func (e *PartialError) Error() string { return e.Msg }

// ExitCode maps Run's error to the process exit code: 0 ok, 1 operational failure,
// 2 usage error, 3 partial failure.
func ExitCode(err error) int {
	var ue *UsageError
	var pe *PartialError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &pe):
		return 3
	default:
		return 1
	}
}

// Run is slackrelay-dlq's main: args without the program name.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	deps := Deps{
		NewClients:      newAWSClients,
		Stdin:           os.Stdin,
		PeekWaitSeconds: 1,
	}
	if f, ok := stdout.(*os.File); ok {
		deps.IsTerminal = term.IsTerminal(int(f.Fd()))
	}
	return RunWith(ctx, deps, args, stdout, stderr)
}

func newAWSClients(ctx context.Context, region string) (SQSAPI, CFNAPI, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, nil, errors.New("no AWS region: pass --region or set AWS_REGION")
	}
	return sqs.NewFromConfig(cfg), cloudformation.NewFromConfig(cfg), nil
}

type command struct {
	name    string
	summary string
	usage   string // synopsis and examples, printed by -h
	run     func(ctx context.Context, t *tool, args []string) error
}

var commands []*command

func init() {
	commands = []*command{
		statsCmd, listCmd, showCmd, replayCmd, redriveCmd, exportCmd, importCmd, purgeCmd,
	}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// tool is one invocation's state.
type tool struct {
	deps           Deps
	stdout, stderr io.Writer
	sqs            SQSAPI
}

// RunWith is Run with its dependencies supplied.
func RunWith(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) error {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Getenv == nil {
		deps.Getenv = os.Getenv
	}
	if deps.Stdin == nil {
		deps.Stdin = strings.NewReader("")
	}
	t := &tool{deps: deps, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printMainUsage(stderr)
		return usagef("no command given; run `slackrelay-dlq help`")
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			c := findCommand(args[1])
			if c == nil {
				return usagef("unknown command %q; run `slackrelay-dlq help`", args[1])
			}
			return c.run(ctx, t, []string{"-h"})
		}
		printMainUsage(stdout)
		return nil
	}
	c := findCommand(name)
	if c == nil {
		return usagef("unknown command %q; run `slackrelay-dlq help`", name)
	}
	return c.run(ctx, t, args[1:])
}

func printMainUsage(w io.Writer) {
	fmt.Fprint(w, `slackrelay-dlq: look at and recover the slackrelay dead-letter queue

Usage: slackrelay-dlq COMMAND [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Queues (every command): --stack NAME [--region R] reads the CloudFormation outputs
EventsQueueUrl and DeadLetterQueueUrl; --queue-url / --dlq-url name them directly;
SLACKRELAY_QUEUE_URL / SLACKRELAY_DLQ_URL are the fallbacks.

replay and redrive only say what they would do unless given --yes; purge asks you to type
the DLQ's name unless given --yes.

Run "slackrelay-dlq help COMMAND" or "slackrelay-dlq COMMAND -h" for details and examples.
Exit codes: 0 ok, 1 failure, 2 usage error, 3 partial failure (some messages not handled).
`)
}

func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "slackrelay-dlq %s: %s\n\n%s\n", c.name, c.summary, strings.TrimSpace(c.usage))
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// ---- common flags and queue resolution ----

type queueFlags struct {
	queueURL, dlqURL, stack, region string
}

func (q *queueFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&q.queueURL, "queue-url", "", "events queue URL (default $SLACKRELAY_QUEUE_URL or the stack output EventsQueueUrl)")
	fs.StringVar(&q.dlqURL, "dlq-url", "", "dead-letter queue URL (default $SLACKRELAY_DLQ_URL or the stack output DeadLetterQueueUrl)")
	fs.StringVar(&q.stack, "stack", "", "CloudFormation stack `NAME` whose outputs name the queues")
	fs.StringVar(&q.region, "region", "", "AWS region (default $AWS_REGION / the AWS profile's)")
}

// parseFlags parses args with interspersed positional arguments, prints help for -h, and
// returns the positional arguments. help is true when -h was given (the caller returns nil).
func (t *tool) parseFlags(name string, fs *flag.FlagSet, args []string) (pos []string, help bool, err error) {
	c := findCommand(name)
	fs.SetOutput(io.Discard)
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printCommandUsage(t.stdout, c, fs)
				return nil, true, nil
			}
			return nil, false, usagef("%s: %v; run `slackrelay-dlq %s -h`", c.name, err, c.name)
		}
		if fs.NArg() == 0 {
			return pos, false, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

type queues struct {
	events, dlq string
}

// resolve finds the queue URLs and connects. needEvents/needDLQ say which are required.
func (t *tool) resolve(ctx context.Context, q *queueFlags, needEvents, needDLQ bool) (queues, error) {
	var out queues
	out.events, out.dlq = q.queueURL, q.dlqURL
	if t.deps.SQS == nil || (q.stack != "" && t.deps.CFN == nil) {
		if t.deps.NewClients == nil {
			return out, errors.New("no SQS client configured")
		}
		s, c, err := t.deps.NewClients(ctx, q.region)
		if err != nil {
			return out, err
		}
		if t.deps.SQS == nil {
			t.deps.SQS = s
		}
		if t.deps.CFN == nil {
			t.deps.CFN = c
		}
	}
	t.sqs = t.deps.SQS
	if q.stack != "" && (out.events == "" || out.dlq == "") {
		ev, dl, err := t.stackOutputs(ctx, q.stack)
		if err != nil {
			return out, err
		}
		if out.events == "" {
			out.events = ev
		}
		if out.dlq == "" {
			out.dlq = dl
		}
	}
	if out.events == "" {
		out.events = t.deps.Getenv("SLACKRELAY_QUEUE_URL")
	}
	if out.dlq == "" {
		out.dlq = t.deps.Getenv("SLACKRELAY_DLQ_URL")
	}
	if needDLQ && out.dlq == "" {
		return out, usagef("no DLQ URL: pass --dlq-url or --stack (or set SLACKRELAY_DLQ_URL)")
	}
	if needEvents && out.events == "" {
		return out, usagef("no events queue URL: pass --queue-url or --stack (or set SLACKRELAY_QUEUE_URL)")
	}
	return out, nil
}

func (t *tool) stackOutputs(ctx context.Context, stack string) (events, dlq string, err error) {
	out, err := t.deps.CFN.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &stack})
	if err != nil {
		return "", "", fmt.Errorf("read stack %s: %w (check --stack and --region)", stack, err)
	}
	if len(out.Stacks) == 0 {
		return "", "", fmt.Errorf("stack %s not found (check --stack and --region)", stack)
	}
	for _, o := range out.Stacks[0].Outputs {
		if o.OutputKey == nil || o.OutputValue == nil {
			continue
		}
		switch *o.OutputKey {
		case "EventsQueueUrl":
			events = *o.OutputValue
		case "DeadLetterQueueUrl":
			dlq = *o.OutputValue
		}
	}
	if events == "" || dlq == "" {
		return events, dlq, fmt.Errorf("stack %s lacks the outputs EventsQueueUrl and DeadLetterQueueUrl; pass --queue-url and --dlq-url", stack)
	}
	return events, dlq, nil
}

// queueName is the last path element of a queue URL.
func queueName(url string) string {
	url = strings.TrimRight(url, "/")
	if i := strings.LastIndexByte(url, '/'); i >= 0 {
		return url[i+1:]
	}
	return url
}

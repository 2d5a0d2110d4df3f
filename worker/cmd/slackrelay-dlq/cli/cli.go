// Package cli is slackrelay-dlq's command line: one file and one flag set per subcommand
// (stats, list, show, replay, redrive, export, import, purge; and costs, which reads the
// journal table instead of the queues), the queue flags and the scan of the DLQ written once
// (invocation.go), the environment in one table (env.go). What the commands do to the
// queues is package deadletter.
//
// A command that acts on every DLQ message (list, export, replay with --all or a filter,
// purge) compares what its scan held with the counts the DLQ reports and, when they
// differ, says how many messages it could not see and which it could not hold, and exits
// with ExitPartial.
//
// Exit codes: ExitOK 0, ExitFailure 1, ExitUsage 2, ExitPartial 3.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/term"

	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
	"github.com/slackrelay/slackrelay/worker/internal/journal"
)

// Exit codes of slackrelay-dlq.
const (
	ExitOK      = 0 // everything done, the whole DLQ seen where the command needed it
	ExitFailure = 1 // nothing or not everything done; the error says what is where
	ExitUsage   = 2 // a mistake in the command line; nothing done
	ExitPartial = 3 // done for what the command could see or send; the rest is still in the DLQ
)

// SQSAPI is the part of the SQS client the commands use; *sqs.Client satisfies it.
type SQSAPI interface {
	deadletter.SQSAPI
	PurgeQueue(ctx context.Context, in *sqs.PurgeQueueInput, optFns ...func(*sqs.Options)) (*sqs.PurgeQueueOutput, error)
	StartMessageMoveTask(ctx context.Context, in *sqs.StartMessageMoveTaskInput, optFns ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error)
	ListMessageMoveTasks(ctx context.Context, in *sqs.ListMessageMoveTasksInput, optFns ...func(*sqs.Options)) (*sqs.ListMessageMoveTasksOutput, error)
	CancelMessageMoveTask(ctx context.Context, in *sqs.CancelMessageMoveTaskInput, optFns ...func(*sqs.Options)) (*sqs.CancelMessageMoveTaskOutput, error)
}

// CFNAPI is the part of the CloudFormation client the tool uses (--stack).
type CFNAPI interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

var (
	_ SQSAPI = (*sqs.Client)(nil)
	_ CFNAPI = (*cloudformation.Client)(nil)
)

// Deps are the tool's connections to the outside world. Tests fill SQS (and CFN); Run
// leaves them nil and sets NewClients, called with --region once the flags are parsed.
type Deps struct {
	SQS SQSAPI
	CFN CFNAPI
	// NewClients builds SQS and CloudFormation clients for a region ("" = the SDK's default).
	NewClients func(ctx context.Context, region string) (SQSAPI, CFNAPI, error)
	// DynamoDB scans the journal table (costs); when nil, NewDynamoDB builds it for the
	// region once the flags are parsed.
	DynamoDB    journal.Scanner
	NewDynamoDB func(ctx context.Context, region string) (journal.Scanner, error)
	// Now is the clock for ages and the stale guard (default time.Now).
	Now func() time.Time
	// Stdin answers purge's confirmation prompt (default: nothing, so purge needs --yes).
	Stdin io.Reader
	// IsTerminal selects the single-line progress bar of replay.
	IsTerminal bool
	// Getenv reads the variables of Vars (default os.Getenv).
	Getenv func(string) string
	// PeekWaitSeconds is the long-poll wait of a scan's receives. Run uses 1 so that real
	// SQS looks at all its servers; 0 (short polling) suits local servers.
	PeekWaitSeconds int32
	// PeekVisibility is how long a scan first hides what it receives (default
	// deadletter.DefaultVisibility); the scan extends it while the command runs.
	PeekVisibility time.Duration
	// StateDir holds the export records purge checks (default $SLACKRELAY_DLQ_STATE_DIR,
	// else slackrelay-dlq under the user's cache directory).
	StateDir string
}

// UsageError is a mistake in the command line (ExitUsage).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// PartialError means the command did its work for part of the DLQ only (ExitPartial): it
// could not see every message, or some sends failed. The message says what is where;
// everything not handled is still in the DLQ.
type PartialError struct{ Msg string }

func (e *PartialError) Error() string { return e.Msg }

// ExitCode maps Run's error to the process exit code.
func ExitCode(err error) int {
	var ue *UsageError
	var pe *PartialError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &pe):
		return ExitPartial
	default:
		return ExitFailure
	}
}

// Run is slackrelay-dlq's main: args without the program name.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	deps := Deps{NewClients: newAWSClients, NewDynamoDB: newDynamoDB, Stdin: os.Stdin, PeekWaitSeconds: 1}
	if f, ok := stdout.(*os.File); ok {
		deps.IsTerminal = term.IsTerminal(int(f.Fd()))
	}
	return RunWith(ctx, deps, args, stdout, stderr)
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
	if len(args) == 0 {
		printMainUsage(stderr)
		return usagef("no command given; run `slackrelay-dlq help`")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) == 1 {
			printMainUsage(stdout)
			return nil
		}
		c := findCommand(args[1])
		if c == nil {
			return usagef("unknown command %q; run `slackrelay-dlq help`", args[1])
		}
		args = []string{c.name, "-h"}
	}
	c := findCommand(args[0])
	if c == nil {
		return usagef("unknown command %q; run `slackrelay-dlq help`", args[0])
	}
	inv := &invocation{deps: deps, stdout: stdout, stderr: stderr, cmd: c}
	return inv.run(ctx, args[1:])
}

// commands in the order the help lists them; each is defined in its own file.
var commands []*command

func init() {
	commands = []*command{statsCmd, listCmd, showCmd, replayCmd, redriveCmd, exportCmd, importCmd, purgeCmd, costsCmd}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
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

list, export, replay and purge compare what they saw with the DLQ's own counts (visible +
in flight + delayed). When messages could not be seen (another reader holds them, they are
delayed) they say how many, and exit 3.

replay and redrive only say what they would do unless given --yes; purge refuses unless
the last export of the DLQ saw every message that is in it now (or --force), and asks you
to type the DLQ's name unless given --yes.

costs reads the worker's journal table instead (--table, or the stack output
IdempotencyTableName with --stack, or SLACKRELAY_TABLE): what a day's answers cost.

Run "slackrelay-dlq help COMMAND" or "slackrelay-dlq COMMAND -h" for details and examples.
Exit codes: 0 ok, 1 failure, 2 usage error, 3 partial result (part of the DLQ not seen or
not handled; the rest is still in the DLQ).
`)
	printEnv(w)
}

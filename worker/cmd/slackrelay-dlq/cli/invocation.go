package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

// command is one subcommand, defined in its own file.
type command struct {
	name    string
	summary string
	usage   string // synopsis and examples, printed by -h
	// scans: the command reads the DLQ with a scan and takes the scan flags.
	scans bool
	// settle is the command's default --settle (0 = deadletter.DefaultSettle).
	settle time.Duration
	// setup registers the command's own flags on its flag set and returns its body, run
	// with the positional arguments once the flags are parsed.
	setup func(fs *flag.FlagSet) runFunc
}

type runFunc func(ctx context.Context, inv *invocation, pos []string) error

// invocation is one run of one command: the common flags, the clients, the output.
type invocation struct {
	deps           Deps
	stdout, stderr io.Writer
	cmd            *command

	queueURL, dlqURL, stack, region string
	settle, scanTimeout             time.Duration

	sqs SQSAPI
	cfn CFNAPI
}

// run parses the flags (positional arguments may come between them), prints help for -h
// and runs the command.
func (inv *invocation) run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(inv.cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&inv.queueURL, "queue-url", "", "events queue URL (default $"+envQueueURL+" or the stack output EventsQueueUrl)")
	fs.StringVar(&inv.dlqURL, "dlq-url", "", "dead-letter queue URL (default $"+envDLQURL+" or the stack output DeadLetterQueueUrl)")
	fs.StringVar(&inv.stack, "stack", "", "CloudFormation stack `NAME` whose outputs name the queues")
	fs.StringVar(&inv.region, "region", "", "AWS region (default $AWS_REGION / the AWS profile's)")
	if inv.cmd.scans {
		fs.DurationVar(&inv.settle, "settle", cmp.Or(inv.cmd.settle, deadletter.DefaultSettle), "how long a scan goes on without receiving anything new while the DLQ counts messages it has not seen (in flight with another reader, delayed)")
		fs.DurationVar(&inv.scanTimeout, "scan-timeout", deadletter.DefaultScanTimeout, "end a scan after this long, seen everything or not")
	}
	body := inv.cmd.setup(fs)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(inv.stdout, "slackrelay-dlq %s: %s\n\n%s\n\nFlags:\n", inv.cmd.name, inv.cmd.summary, strings.TrimSpace(inv.cmd.usage))
				fs.SetOutput(inv.stdout)
				fs.PrintDefaults()
				return nil
			}
			return usagef("%s: %v; run `slackrelay-dlq %s -h`", inv.cmd.name, err, inv.cmd.name)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if inv.cmd.scans && (inv.settle <= 0 || inv.scanTimeout <= 0) {
		return usagef("%s: --settle and --scan-timeout must be more than 0", inv.cmd.name)
	}
	return body(ctx, inv, pos)
}

// noArgs is the check of commands without positional arguments.
func noArgs(name string, pos []string) error {
	if len(pos) > 0 {
		return usagef("%s: unexpected argument %q", name, pos[0])
	}
	return nil
}

// queues are the resolved queue URLs.
type queues struct{ events, dlq string }

// queues connects and finds the queue URLs: flags, then the stack's outputs, then the
// environment. needEvents / needDLQ say which must be known.
func (inv *invocation) queues(ctx context.Context, needEvents, needDLQ bool) (queues, error) {
	out := queues{events: inv.queueURL, dlq: inv.dlqURL}
	inv.sqs, inv.cfn = inv.deps.SQS, inv.deps.CFN
	if inv.sqs == nil || (inv.stack != "" && inv.cfn == nil) {
		if inv.deps.NewClients == nil {
			return out, errors.New("no SQS client configured")
		}
		s, c, err := inv.deps.NewClients(ctx, inv.region)
		if err != nil {
			return out, err
		}
		if inv.sqs == nil {
			inv.sqs = s
		}
		if inv.cfn == nil {
			inv.cfn = c
		}
	}
	if inv.stack != "" && (out.events == "" || out.dlq == "") {
		ev, dl, err := inv.stackOutputs(ctx)
		if err != nil {
			return out, err
		}
		out.events = cmp.Or(out.events, ev)
		out.dlq = cmp.Or(out.dlq, dl)
	}
	out.events = cmp.Or(out.events, inv.deps.Getenv(envQueueURL))
	out.dlq = cmp.Or(out.dlq, inv.deps.Getenv(envDLQURL))
	if needDLQ && out.dlq == "" {
		return out, usagef("no DLQ URL: pass --dlq-url or --stack (or set %s)", envDLQURL)
	}
	if needEvents && out.events == "" {
		return out, usagef("no events queue URL: pass --queue-url or --stack (or set %s)", envQueueURL)
	}
	return out, nil
}

func (inv *invocation) stackOutputs(ctx context.Context) (events, dlq string, err error) {
	out, err := inv.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &inv.stack})
	if err != nil {
		return "", "", fmt.Errorf("read stack %s: %w (check --stack and --region)", inv.stack, err)
	}
	if len(out.Stacks) == 0 {
		return "", "", fmt.Errorf("stack %s not found (check --stack and --region)", inv.stack)
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
		return events, dlq, fmt.Errorf("stack %s lacks the outputs EventsQueueUrl and DeadLetterQueueUrl; pass --queue-url and --dlq-url", inv.stack)
	}
	return events, dlq, nil
}

// scanned is a scan's outcome as a command body gets it.
type scanned struct {
	hold *deadletter.Hold
	res  deadletter.Result
}

// peek scans the DLQ, runs body while the scan holds the messages, and makes whatever is
// still held visible again afterwards, whatever body returned and also on Ctrl-C. max and
// enough are those of deadletter.ScanOptions.
func (inv *invocation) peek(ctx context.Context, dlq string, max int, enough func(*deadletter.Hold) bool, body func(s scanned) error) (err error) {
	h, res, err := deadletter.Scan(ctx, inv.sqs, dlq, deadletter.ScanOptions{
		Visibility: inv.deps.PeekVisibility, WaitSeconds: inv.deps.PeekWaitSeconds,
		Max: max, Enough: enough, Settle: inv.settle, Timeout: inv.scanTimeout,
	})
	if err != nil {
		return err
	}
	defer func() {
		if rerr := h.Release(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	return body(scanned{hold: h, res: res})
}

// incomplete describes, one line each, what a scan that did not see the whole DLQ missed
// and why. It is empty for a complete scan.
func (inv *invocation) incomplete(res deadletter.Result) []string {
	if res.Complete() {
		return nil
	}
	c := res.Counts
	lines := []string{fmt.Sprintf("saw %d of the %d message(s) the DLQ counts (visible + in flight + delayed); %d not seen",
		res.Held, c.Total(), res.Unseen())}
	var why []string
	if n := res.InFlightElsewhere(); n > 0 {
		why = append(why, fmt.Sprintf("%d in flight with another reader", n))
	}
	if c.Delayed > 0 {
		why = append(why, fmt.Sprintf("%d delayed", c.Delayed))
	}
	if c.Visible > 0 {
		why = append(why, fmt.Sprintf("%d visible but not received yet", c.Visible))
	}
	if len(why) > 0 {
		lines = append(lines, "not seen: "+strings.Join(why, ", "))
	}
	switch res.Stop {
	case deadletter.StopSettle:
		lines = append(lines, fmt.Sprintf("the scan stopped after %s without anything new (--settle %s)", inv.settle, inv.settle))
	case deadletter.StopTimeout:
		lines = append(lines, fmt.Sprintf("the scan stopped at --scan-timeout %s", inv.scanTimeout))
	case deadletter.StopMax:
		lines = append(lines, "the scan stopped at --max")
	}
	if len(res.Lost) > 0 {
		ids := make([]string, 0, 10)
		for _, l := range res.Lost[:min(len(res.Lost), 10)] {
			ids = append(ids, fmt.Sprintf("%s (%s)", l.ID, l.Reason))
		}
		more := ""
		if len(res.Lost) > 10 {
			more = fmt.Sprintf(" and %d more", len(res.Lost)-10)
		}
		lines = append(lines, fmt.Sprintf("also saw %d message(s) it could not keep hidden (another reader may have them now): %s%s",
			len(res.Lost), strings.Join(ids, ", "), more))
	}
	return lines
}

// partial is the error of a command that did its work (did, if it says more than the
// command printed already) on a view that was not complete.
func (inv *invocation) partial(did string, res deadletter.Result) *PartialError {
	inc := inv.incomplete(res)
	if len(inc) == 0 { // cannot happen for a result that is not complete
		inc = []string{"the scan did not see the whole DLQ"}
	}
	lines := []string{"partial view: " + inc[0]}
	if did != "" {
		lines = append(lines, did)
	}
	lines = append(lines, inc[1:]...)
	var when []string
	if res.InFlightElsewhere() > 0 {
		when = append(when, "once the other reader is done (what it holds comes back when its visibility timeout ends)")
	}
	if res.Counts.Delayed > 0 {
		when = append(when, "once the delay is over")
	}
	when = append(when, "with a longer --settle")
	lines = append(lines, "the messages not seen are still in the DLQ: run again "+strings.Join(when, ", or "))
	return &PartialError{Msg: strings.Join(lines, "\n  ")}
}

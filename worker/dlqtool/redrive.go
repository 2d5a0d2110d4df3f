package dlqtool

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

var redriveCmd = &command{
	name:    "redrive",
	summary: "move the whole DLQ back with an SQS message move task (start | status | cancel)",
	usage: `Usage: slackrelay-dlq redrive [start] [queue flags] [--rate N] [--yes]
       slackrelay-dlq redrive status [queue flags]
       slackrelay-dlq redrive cancel [queue flags]

redrive (or redrive start) starts an SQS message move task from the DLQ to the events
queue; SQS moves every message, as it is, in the background. Unlike replay it cannot
filter, does not skip stale events, keeps the failure attributes and does not set
ReplayCount. Use it for bulk recovery after an outage; use replay for anything selective.
Only one move task can run per queue at a time. Without --yes it only says what it would do.

redrive status lists the DLQ's recent move tasks: status, messages moved / to move, and
the failure reason of a failed task. redrive cancel stops the running task at once (it is
the safe direction, so it needs no --yes; messages already moved stay moved).

Examples:
  slackrelay-dlq redrive --stack slackrelay                 # dry run
  slackrelay-dlq redrive --stack slackrelay --rate 5 --yes
  slackrelay-dlq redrive status --stack slackrelay
  slackrelay-dlq redrive cancel --stack slackrelay`,
	run: runRedrive,
}

func runRedrive(ctx context.Context, t *tool, args []string) error {
	fs := flag.NewFlagSet("redrive", flag.ContinueOnError)
	var q queueFlags
	q.register(fs)
	rate := fs.Int("rate", 10, "at most N messages per second (1-500; 0 lets SQS choose)")
	yes := fs.Bool("yes", false, "really start the move task (default: dry run)")
	pos, help, err := t.parseFlags("redrive", fs, args)
	if help || err != nil {
		return err
	}
	sub := "start"
	if len(pos) > 0 {
		sub = pos[0]
	}
	if len(pos) > 1 {
		return usagef("redrive: unexpected argument %q", pos[1])
	}
	if *rate < 0 || *rate > 500 {
		return usagef("redrive: --rate must be between 0 and 500")
	}
	switch sub {
	case "start", "status", "cancel":
	default:
		return usagef("redrive: unknown subcommand %q (start, status or cancel)", sub)
	}
	qs, err := t.resolve(ctx, &q, sub == "start", true)
	if err != nil {
		return err
	}
	dlqARN, err := t.queueARN(ctx, qs.dlq)
	if err != nil {
		return err
	}
	switch sub {
	case "status":
		return t.redriveStatus(ctx, dlqARN)
	case "cancel":
		return t.redriveCancel(ctx, dlqARN)
	}
	eventsARN, err := t.queueARN(ctx, qs.events)
	if err != nil {
		return err
	}
	if running, err := t.runningTask(ctx, dlqARN); err != nil {
		return err
	} else if running != nil {
		return fmt.Errorf("a move task is already running on %s (one per queue): see `slackrelay-dlq redrive status`, or stop it with `redrive cancel`", queueName(qs.dlq))
	}
	st, err := t.queueStats(ctx, qs.dlq)
	if err != nil {
		return err
	}
	rateText := "rate chosen by SQS"
	if *rate > 0 {
		rateText = fmt.Sprintf("at most %d/s", *rate)
	}
	if !*yes {
		fmt.Fprintf(t.stdout, "would start a message move task moving about %d message(s) from %s to %s, %s\n",
			st.Visible, dlqARN, eventsARN, rateText)
		fmt.Fprintln(t.stdout, "dry run: pass --yes to start it")
		return nil
	}
	in := &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(dlqARN), DestinationArn: aws.String(eventsARN)}
	if *rate > 0 {
		in.MaxNumberOfMessagesPerSecond = aws.Int32(int32(*rate))
	}
	out, err := t.sqs.StartMessageMoveTask(ctx, in)
	if err != nil {
		return fmt.Errorf("start message move task: %w", err)
	}
	fmt.Fprintf(t.stdout, "started message move task from %s to %s (about %d message(s), %s)\ntask handle: %s\nfollow it with: slackrelay-dlq redrive status\n",
		queueName(qs.dlq), queueName(qs.events), st.Visible, rateText, aws.ToString(out.TaskHandle))
	return nil
}

func (t *tool) queueARN(ctx context.Context, url string) (string, error) {
	out, err := t.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("read the ARN of %s: %w", queueName(url), err)
	}
	arn := out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", fmt.Errorf("%s has no QueueArn attribute", queueName(url))
	}
	return arn, nil
}

func (t *tool) moveTasks(ctx context.Context, dlqARN string) ([]types.ListMessageMoveTasksResultEntry, error) {
	out, err := t.sqs.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(dlqARN), MaxResults: aws.Int32(10)})
	if err != nil {
		return nil, fmt.Errorf("list message move tasks: %w", err)
	}
	return out.Results, nil
}

func (t *tool) runningTask(ctx context.Context, dlqARN string) (*types.ListMessageMoveTasksResultEntry, error) {
	tasks, err := t.moveTasks(ctx, dlqARN)
	if err != nil {
		return nil, err
	}
	for i := range tasks {
		if aws.ToString(tasks[i].Status) == "RUNNING" {
			return &tasks[i], nil
		}
	}
	return nil, nil
}

func (t *tool) redriveStatus(ctx context.Context, dlqARN string) error {
	tasks, err := t.moveTasks(ctx, dlqARN)
	if err != nil {
		return err
	}
	if len(tasks) == 0 {
		fmt.Fprintf(t.stdout, "no message move tasks for %s\n", dlqARN)
		return nil
	}
	now := t.deps.Now()
	tw := tabwriter.NewWriter(t.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tMOVED\tSTARTED\tRATE\tDESTINATION\tFAILURE")
	for _, r := range tasks {
		total := "?"
		if r.ApproximateNumberOfMessagesToMove != nil {
			total = fmt.Sprint(*r.ApproximateNumberOfMessagesToMove)
		}
		started := "-"
		if r.StartedTimestamp > 0 {
			started = fmtAge(now.Sub(time.UnixMilli(r.StartedTimestamp))) + " ago"
		}
		rate := "auto"
		if r.MaxNumberOfMessagesPerSecond != nil {
			rate = fmt.Sprintf("%d/s", *r.MaxNumberOfMessagesPerSecond)
		}
		fmt.Fprintf(tw, "%s\t%d/%s\t%s\t%s\t%s\t%s\n", aws.ToString(r.Status), r.ApproximateNumberOfMessagesMoved, total,
			started, rate, dash(arnName(aws.ToString(r.DestinationArn))), dash(aws.ToString(r.FailureReason)))
	}
	return tw.Flush()
}

func (t *tool) redriveCancel(ctx context.Context, dlqARN string) error {
	task, err := t.runningTask(ctx, dlqARN)
	if err != nil {
		return err
	}
	if task == nil {
		return errors.New("no running message move task to cancel (see `slackrelay-dlq redrive status`)")
	}
	out, err := t.sqs.CancelMessageMoveTask(ctx, &sqs.CancelMessageMoveTaskInput{TaskHandle: task.TaskHandle})
	if err != nil {
		return fmt.Errorf("cancel message move task: %w", err)
	}
	fmt.Fprintf(t.stdout, "cancelled the move task; about %d message(s) were moved, the rest stay in the DLQ\n", out.ApproximateNumberOfMessagesMoved)
	return nil
}

// arnName is the resource name at the end of an ARN.
func arnName(arn string) string {
	if i := strings.LastIndexByte(arn, ':'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

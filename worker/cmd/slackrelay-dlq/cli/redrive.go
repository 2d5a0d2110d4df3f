package cli

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

	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

var redriveCmd = &command{
	name:    "redrive",
	summary: "move the whole DLQ back with an SQS message move task, no filter, no stale guard (start | status | cancel)",
	usage: `Usage: slackrelay-dlq redrive [start] [queue flags] [--rate N] [--yes]
       slackrelay-dlq redrive status [queue flags]
       slackrelay-dlq redrive cancel [queue flags]

redrive (or redrive start) starts an SQS message move task from the DLQ to the events
queue; SQS moves every message, as it is, in the background. Only one move task can run
per queue at a time. Without --yes it only says what it would do.

A move task cannot filter: it has NO STALE GUARD. Every message goes back however old it
is (up to the DLQ's 14-day retention), with its failure attributes and without a
ReplayCount. replay and import --to events skip events older than --max-age; here the only
protection is the worker's own: the worker dead-letters events older than its record
retention (DLQ_RETENTION + REPLAY_WINDOW) instead of answering them. Anything younger is
answered now, however late. Use redrive for bulk recovery right after an outage; use
replay (with --max-age) for anything older or selective.

redrive status lists the DLQ's recent move tasks: status, messages moved / to move, and
the failure reason of a failed task. redrive cancel stops the running task at once (it is
the safe direction, so it needs no --yes; messages already moved stay moved).

Examples:
  slackrelay-dlq redrive --stack slackrelay                 # dry run
  slackrelay-dlq redrive --stack slackrelay --rate 5 --yes
  slackrelay-dlq redrive status --stack slackrelay
  slackrelay-dlq redrive cancel --stack slackrelay`,
	setup: func(fs *flag.FlagSet) runFunc {
		rate := fs.Int("rate", 10, "at most N messages per second (1-500; 0 lets SQS choose)")
		yes := fs.Bool("yes", false, "really start the move task (default: dry run)")
		return func(ctx context.Context, inv *invocation, pos []string) error {
			sub := "start"
			if len(pos) > 0 {
				sub = pos[0]
			}
			switch {
			case len(pos) > 1:
				return usagef("redrive: unexpected argument %q", pos[1])
			case *rate < 0 || *rate > 500:
				return usagef("redrive: --rate must be between 0 and 500")
			case sub != "start" && sub != "status" && sub != "cancel":
				return usagef("redrive: unknown subcommand %q (start, status or cancel)", sub)
			}
			return inv.redrive(ctx, sub, *rate, *yes)
		}
	},
}

func (inv *invocation) redrive(ctx context.Context, sub string, rate int, yes bool) error {
	qs, err := inv.queues(ctx, sub == "start", true)
	if err != nil {
		return err
	}
	dlqARN, err := inv.queueARN(ctx, qs.dlq)
	if err != nil {
		return err
	}
	switch sub {
	case "status":
		return inv.redriveStatus(ctx, dlqARN)
	case "cancel":
		return inv.redriveCancel(ctx, dlqARN)
	}
	eventsARN, err := inv.queueARN(ctx, qs.events)
	if err != nil {
		return err
	}
	if running, err := inv.runningTask(ctx, dlqARN); err != nil {
		return err
	} else if running != nil {
		return fmt.Errorf("a move task is already running on %s (one per queue): see `slackrelay-dlq redrive status`, or stop it with `redrive cancel`", deadletter.QueueName(qs.dlq))
	}
	st, err := deadletter.ReadCounts(ctx, inv.sqs, qs.dlq)
	if err != nil {
		return err
	}
	rateText := "rate chosen by SQS"
	if rate > 0 {
		rateText = fmt.Sprintf("at most %d/s", rate)
	}
	if hidden := st.InFlight + st.Delayed; hidden > 0 {
		fmt.Fprintf(inv.stderr, "warning: %d DLQ message(s) are in flight with a reader or delayed; the task moves what is visible, check `slackrelay-dlq stats` after it completed\n", hidden)
	}
	fmt.Fprintln(inv.stderr, "note: a move task has no stale guard: every message goes back however old; the worker dead-letters events older than its record retention (DLQ_RETENTION + REPLAY_WINDOW) instead of answering them (use replay --max-age to skip stale events)")
	if !yes {
		fmt.Fprintf(inv.stdout, "would start a message move task moving about %d message(s) from %s to %s, %s\n",
			st.Visible, dlqARN, eventsARN, rateText)
		fmt.Fprintln(inv.stdout, "dry run: pass --yes to start it")
		return nil
	}
	in := &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(dlqARN), DestinationArn: aws.String(eventsARN)}
	if rate > 0 {
		in.MaxNumberOfMessagesPerSecond = aws.Int32(int32(rate))
	}
	out, err := inv.sqs.StartMessageMoveTask(ctx, in)
	if err != nil {
		return fmt.Errorf("start message move task: %w", err)
	}
	fmt.Fprintf(inv.stdout, "started message move task from %s to %s (about %d message(s), %s)\ntask handle: %s\nfollow it with: slackrelay-dlq redrive status\n",
		deadletter.QueueName(qs.dlq), deadletter.QueueName(qs.events), st.Visible, rateText, aws.ToString(out.TaskHandle))
	return nil
}

func (inv *invocation) queueARN(ctx context.Context, url string) (string, error) {
	out, err := inv.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("read the ARN of %s: %w", deadletter.QueueName(url), err)
	}
	arn := out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", fmt.Errorf("%s has no QueueArn attribute", deadletter.QueueName(url))
	}
	return arn, nil
}

func (inv *invocation) moveTasks(ctx context.Context, dlqARN string) ([]types.ListMessageMoveTasksResultEntry, error) {
	out, err := inv.sqs.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(dlqARN), MaxResults: aws.Int32(10)})
	if err != nil {
		return nil, fmt.Errorf("list message move tasks: %w", err)
	}
	return out.Results, nil
}

func (inv *invocation) runningTask(ctx context.Context, dlqARN string) (*types.ListMessageMoveTasksResultEntry, error) {
	tasks, err := inv.moveTasks(ctx, dlqARN)
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

func (inv *invocation) redriveStatus(ctx context.Context, dlqARN string) error {
	tasks, err := inv.moveTasks(ctx, dlqARN)
	if err != nil {
		return err
	}
	if len(tasks) == 0 {
		fmt.Fprintf(inv.stdout, "no message move tasks for %s\n", dlqARN)
		return nil
	}
	now := inv.deps.Now()
	tw := tabwriter.NewWriter(inv.stdout, 0, 0, 2, ' ', 0)
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

func (inv *invocation) redriveCancel(ctx context.Context, dlqARN string) error {
	task, err := inv.runningTask(ctx, dlqARN)
	if err != nil {
		return err
	}
	if task == nil {
		return errors.New("no running message move task to cancel (see `slackrelay-dlq redrive status`)")
	}
	out, err := inv.sqs.CancelMessageMoveTask(ctx, &sqs.CancelMessageMoveTaskInput{TaskHandle: task.TaskHandle})
	if err != nil {
		return fmt.Errorf("cancel message move task: %w", err)
	}
	fmt.Fprintf(inv.stdout, "cancelled the move task; about %d message(s) were moved, the rest stay in the DLQ\n", out.ApproximateNumberOfMessagesMoved)
	return nil
}

// arnName is the resource name at the end of an ARN.
func arnName(arn string) string {
	if i := strings.LastIndexByte(arn, ':'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

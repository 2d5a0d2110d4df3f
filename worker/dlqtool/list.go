package dlqtool

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

var listCmd = &command{
	name:    "list",
	summary: "peek at the DLQ: one row per message, with filters",
	usage: `Usage: slackrelay-dlq list [queue flags] [filters] [--max N] [--json]

Receives every DLQ message with a short visibility timeout and makes it visible again right
after the scan (also when interrupted), so nothing is consumed. On real SQS each peek adds
one to the message's ApproximateReceiveCount (the RECEIVES column); the DLQ has no redrive
policy, so that is harmless, but it means RECEIVES counts peeks too.

EVENT AGE is measured from the envelope's event_time (or received_at).

Examples:
  slackrelay-dlq list --stack slackrelay
  slackrelay-dlq list --stack slackrelay --class permanent --reason not_in_channel
  slackrelay-dlq list --dlq-url "$DLQ" --event-type app_mention --team T0123 --newer-than 2h
  slackrelay-dlq list --stack slackrelay --json | jq .failure_reason`,
	run: runList,
}

func runList(ctx context.Context, t *tool, args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	var q queueFlags
	var f filters
	q.register(fs)
	f.register(fs)
	max := fs.Int("max", 0, "stop after peeking this many messages (0 = the whole DLQ)")
	asJSON := fs.Bool("json", false, "print one JSON object per line instead of a table")
	pos, help, err := t.parseFlags("list", fs, args)
	if help || err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("list: unexpected argument %q", pos[0])
	}
	qs, err := t.resolve(ctx, &q, false, true)
	if err != nil {
		return err
	}
	msgs, err := t.peekAll(ctx, qs.dlq, *max)
	if err != nil {
		return err
	}
	now := t.deps.Now()
	var sel []*message
	for _, m := range msgs {
		if f.match(m, now) {
			sel = append(sel, m)
		}
	}
	if *asJSON {
		for _, m := range sel {
			if err := writeJSONLine(t.stdout, m.toJSON(now)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(t.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MESSAGE ID\tRECEIVES\tKIND\tEVENT TYPE\tTEAM\tEVENT AGE\tCLASS\tREASON\tHANDLER")
	for _, m := range sel {
		age := "-"
		if at := m.eventTime(); !at.IsZero() {
			age = fmtAge(now.Sub(at))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.ReceiveCount, dash(m.kind()), dash(m.eventType()),
			dash(m.team()), age, dash(m.attr(envelope.AttrFailureClass)),
			dash(truncate(redactText(m.attr(envelope.AttrFailureReason)), 48)), dash(m.attr(envelope.AttrFailedHandler)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(t.stderr, "%d of %d peeked message(s) shown\n", len(sel), len(msgs))
	return nil
}

var statsCmd = &command{
	name:    "stats",
	summary: "message counts of the events queue and the DLQ, age of the oldest DLQ message",
	usage: `Usage: slackrelay-dlq stats [queue flags] [--peek N] [--json]

Prints ApproximateNumberOfMessages (visible) and ApproximateNumberOfMessagesNotVisible
(in flight) of both queues. The oldest DLQ message is found by peeking up to --peek
messages (made visible again right away; on real SQS this adds one to their receive
count); with more messages in the DLQ than that, the age is "at least".

Examples:
  slackrelay-dlq stats --stack slackrelay
  slackrelay-dlq stats --queue-url "$QUEUE" --dlq-url "$DLQ" --json`,
	run: runStats,
}

type queueStats struct {
	URL        string `json:"url"`
	Visible    int    `json:"visible"`
	NotVisible int    `json:"not_visible"`
	Delayed    int    `json:"delayed"`
}

type statsJSON struct {
	Events *queueStats `json:"events,omitempty"`
	DLQ    *queueStats `json:"dlq"`
	// Oldest DLQ message among those peeked: by the time it reached the DLQ and by its event time.
	OldestInDLQSeconds *int64 `json:"oldest_in_dlq_seconds,omitempty"`
	OldestEventSeconds *int64 `json:"oldest_event_seconds,omitempty"`
	Peeked             int    `json:"peeked"`
	PeekComplete       bool   `json:"peek_complete"`
}

func (t *tool) queueStats(ctx context.Context, url string) (*queueStats, error) {
	out, err := t.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("read attributes of %s: %w", queueName(url), err)
	}
	s := &queueStats{URL: url}
	s.Visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	s.NotVisible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	s.Delayed, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)])
	return s, nil
}

func runStats(ctx context.Context, t *tool, args []string) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	var q queueFlags
	q.register(fs)
	peek := fs.Int("peek", 100, "peek at most this many DLQ messages for the oldest age (0 = do not peek)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, help, err := t.parseFlags("stats", fs, args)
	if help || err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("stats: unexpected argument %q", pos[0])
	}
	qs, err := t.resolve(ctx, &q, false, true)
	if err != nil {
		return err
	}
	var out statsJSON
	if qs.events != "" {
		if out.Events, err = t.queueStats(ctx, qs.events); err != nil {
			return err
		}
	}
	if out.DLQ, err = t.queueStats(ctx, qs.dlq); err != nil {
		return err
	}
	now := t.deps.Now()
	if *peek > 0 && out.DLQ.Visible > 0 {
		msgs, err := t.peekAll(ctx, qs.dlq, *peek)
		if err != nil {
			return err
		}
		out.Peeked = len(msgs)
		out.PeekComplete = len(msgs) < *peek
		var oldestSent, oldestEvent time.Time
		for _, m := range msgs {
			if !m.SentAt.IsZero() && (oldestSent.IsZero() || m.SentAt.Before(oldestSent)) {
				oldestSent = m.SentAt
			}
			if at := m.eventTime(); !at.IsZero() && (oldestEvent.IsZero() || at.Before(oldestEvent)) {
				oldestEvent = at
			}
		}
		if !oldestSent.IsZero() {
			s := int64(now.Sub(oldestSent) / time.Second)
			out.OldestInDLQSeconds = &s
		}
		if !oldestEvent.IsZero() {
			s := int64(now.Sub(oldestEvent) / time.Second)
			out.OldestEventSeconds = &s
		}
	} else {
		out.PeekComplete = out.DLQ.Visible == 0
	}
	if *asJSON {
		return writeJSONLine(t.stdout, out)
	}
	tw := tabwriter.NewWriter(t.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tVISIBLE\tIN FLIGHT\tDELAYED\tURL")
	if out.Events != nil {
		fmt.Fprintf(tw, "events\t%d\t%d\t%d\t%s\n", out.Events.Visible, out.Events.NotVisible, out.Events.Delayed, out.Events.URL)
	}
	fmt.Fprintf(tw, "dlq\t%d\t%d\t%d\t%s\n", out.DLQ.Visible, out.DLQ.NotVisible, out.DLQ.Delayed, out.DLQ.URL)
	if err := tw.Flush(); err != nil {
		return err
	}
	atLeast := ""
	if !out.PeekComplete {
		atLeast = "at least "
	}
	switch {
	case out.OldestInDLQSeconds != nil:
		fmt.Fprintf(t.stdout, "oldest DLQ message: in the DLQ %s%s", atLeast, fmtAge(time.Duration(*out.OldestInDLQSeconds)*time.Second))
		if out.OldestEventSeconds != nil {
			fmt.Fprintf(t.stdout, ", event %s%s old", atLeast, fmtAge(time.Duration(*out.OldestEventSeconds)*time.Second))
		}
		fmt.Fprintf(t.stdout, " (%d peeked)\n", out.Peeked)
	case out.DLQ.Visible == 0 && out.DLQ.NotVisible == 0:
		fmt.Fprintln(t.stdout, "DLQ is empty")
	}
	return nil
}

var errNotFound = errors.New("not found")

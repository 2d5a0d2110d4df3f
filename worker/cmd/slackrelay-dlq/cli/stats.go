package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

var statsCmd = &command{
	name:    "stats",
	summary: "message counts of the events queue and the DLQ, age of the oldest DLQ message",
	usage: `Usage: slackrelay-dlq stats [queue flags] [--peek N] [--json]

Prints the visible, in-flight and delayed message counts of both queues (SQS's
approximate counts). The oldest DLQ message is found by peeking up to --peek messages
(made visible again right away; on real SQS this adds one to their receive count); when
the peek did not see the whole DLQ, the age is "at least".

Examples:
  slackrelay-dlq stats --stack slackrelay
  slackrelay-dlq stats --queue-url "$QUEUE" --dlq-url "$DLQ" --json`,
	scans:  true,
	settle: 3 * time.Second, // a quick look: what another reader holds is only "at least"
	setup: func(fs *flag.FlagSet) runFunc {
		peek := fs.Int("peek", 100, "peek at most this many DLQ messages for the oldest age (0 = do not peek)")
		asJSON := fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, inv *invocation, pos []string) error {
			if err := noArgs("stats", pos); err != nil {
				return err
			}
			if *peek < 0 {
				return usagef("stats: --peek must not be negative")
			}
			qs, err := inv.queues(ctx, false, true)
			if err != nil {
				return err
			}
			return inv.stats(ctx, qs, *peek, *asJSON)
		}
	},
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

func newQueueStats(url string, c deadletter.Counts) *queueStats {
	return &queueStats{URL: url, Visible: c.Visible, NotVisible: c.InFlight, Delayed: c.Delayed}
}

func (inv *invocation) stats(ctx context.Context, qs queues, peek int, asJSON bool) error {
	var out statsJSON
	if qs.events != "" {
		c, err := deadletter.ReadCounts(ctx, inv.sqs, qs.events)
		if err != nil {
			return err
		}
		out.Events = newQueueStats(qs.events, c)
	}
	dlqCounts, err := deadletter.ReadCounts(ctx, inv.sqs, qs.dlq)
	if err != nil {
		return err
	}
	out.DLQ = newQueueStats(qs.dlq, dlqCounts)
	empty := dlqCounts.Total() == 0
	now := inv.deps.Now()
	out.PeekComplete = empty
	if peek > 0 && !empty {
		err := inv.peek(ctx, qs.dlq, peek, nil, func(s scanned) error {
			msgs := s.hold.Messages()
			out.Peeked, out.PeekComplete = len(msgs), s.res.Complete()
			var oldestSent, oldestEvent time.Time
			for _, m := range msgs {
				if !m.SentAt.IsZero() && (oldestSent.IsZero() || m.SentAt.Before(oldestSent)) {
					oldestSent = m.SentAt
				}
				if at := m.EventTime(); !at.IsZero() && (oldestEvent.IsZero() || at.Before(oldestEvent)) {
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
			return nil
		})
		if err != nil {
			return err
		}
	}
	if asJSON {
		return writeJSONLine(inv.stdout, out)
	}
	tw := tabwriter.NewWriter(inv.stdout, 0, 0, 2, ' ', 0)
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
		fmt.Fprintf(inv.stdout, "oldest DLQ message: in the DLQ %s%s", atLeast, fmtAge(time.Duration(*out.OldestInDLQSeconds)*time.Second))
		if out.OldestEventSeconds != nil {
			fmt.Fprintf(inv.stdout, ", event %s%s old", atLeast, fmtAge(time.Duration(*out.OldestEventSeconds)*time.Second))
		}
		fmt.Fprintf(inv.stdout, " (%d peeked)\n", out.Peeked)
	case empty:
		fmt.Fprintln(inv.stdout, "DLQ is empty")
	}
	return nil
}

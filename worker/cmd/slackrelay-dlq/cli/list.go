package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

var listCmd = &command{
	name:    "list",
	summary: "peek at the DLQ: one row per message, with filters",
	usage: `Usage: slackrelay-dlq list [queue flags] [filters] [--max N] [--json]

Receives every DLQ message, keeps it hidden while the scan runs (so that no message is
read twice or missed because it came back) and makes it visible again right after the scan
(also when interrupted), so nothing is consumed. On real SQS each peek adds one to the
message's ApproximateReceiveCount (the RECEIVES column); the DLQ has no redrive policy, so
that is harmless, but it means RECEIVES counts peeks too.

The scan ends once it holds as many messages as the DLQ counts (visible + in flight +
delayed). Messages another reader holds, or delayed ones, cannot be received: the scan
waits --settle for them, then lists what it saw, says on stderr how many it could not see
and exits 3.

EVENT AGE is measured from the envelope's event_time (or received_at).

Examples:
  slackrelay-dlq list --stack slackrelay
  slackrelay-dlq list --stack slackrelay --class permanent --reason not_in_channel
  slackrelay-dlq list --dlq-url "$DLQ" --event-type app_mention --team T0123 --newer-than 2h
  slackrelay-dlq list --stack slackrelay --json | jq .failure_reason`,
	scans: true,
	setup: func(fs *flag.FlagSet) runFunc {
		var f deadletter.Filter
		registerFilter(fs, &f)
		max := fs.Int("max", 0, "stop after peeking this many messages (0 = the whole DLQ)")
		asJSON := fs.Bool("json", false, "print one JSON object per line instead of a table (the summary goes to stderr)")
		return func(ctx context.Context, inv *invocation, pos []string) error {
			if err := noArgs("list", pos); err != nil {
				return err
			}
			if *max < 0 {
				return usagef("list: --max must not be negative")
			}
			qs, err := inv.queues(ctx, false, true)
			if err != nil {
				return err
			}
			return inv.peek(ctx, qs.dlq, *max, nil, func(s scanned) error {
				return inv.list(s, f, *asJSON)
			})
		}
	},
}

func (inv *invocation) list(s scanned, f deadletter.Filter, asJSON bool) error {
	now := inv.deps.Now()
	msgs := s.hold.Messages()
	var sel []*deadletter.Message
	for _, m := range msgs {
		if f.Match(m, now) {
			sel = append(sel, m)
		}
	}
	if asJSON {
		for _, m := range sel {
			if err := writeJSONLine(inv.stdout, toJSON(m, now)); err != nil {
				return err
			}
		}
	} else {
		tw := tabwriter.NewWriter(inv.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MESSAGE ID\tRECEIVES\tKIND\tEVENT TYPE\tTEAM\tEVENT AGE\tCLASS\tREASON\tHANDLER")
		for _, m := range sel {
			age := "-"
			if at := m.EventTime(); !at.IsZero() {
				age = fmtAge(now.Sub(at))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.ReceiveCount, dash(m.Kind()), dash(m.EventType()),
				dash(m.Team()), age, dash(m.Attr(envelope.AttrFailureClass)),
				dash(truncate(deadletter.RedactText(m.Attr(envelope.AttrFailureReason)), 48)), dash(m.Attr(envelope.AttrFailedHandler)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	shown := fmt.Sprintf("%d of %d peeked message(s) shown", len(sel), len(msgs))
	switch s.res.Stop {
	case deadletter.StopComplete:
		fmt.Fprintf(inv.stderr, "%s; the DLQ counts %d: all seen\n", shown, s.res.Counts.Total())
		return nil
	case deadletter.StopMax:
		fmt.Fprintf(inv.stderr, "%s; stopped at --max, the DLQ counts %d\n", shown, s.res.Counts.Total())
		return nil
	}
	fmt.Fprintln(inv.stderr, shown)
	return inv.partial("", s.res)
}

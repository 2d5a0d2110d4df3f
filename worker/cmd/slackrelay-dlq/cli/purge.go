package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/slackrelay/slackrelay/worker/dlqtool"
)

var purgeCmd = &command{
	name:    "purge",
	summary: "delete every message in the DLQ, once an export saved them all (asks unless --yes)",
	usage: `Usage: slackrelay-dlq purge [queue flags] [--yes] [--force]

Deletes every message in the DLQ with PurgeQueue, but only when the last export of this
DLQ saw every message and every message in the DLQ now is in that export: purge looks at
the record export keeps (under $SLACKRELAY_DLQ_STATE_DIR), then scans the DLQ as list
does. It refuses, deleting nothing, when there is no record, when that export was partial
(another reader held messages, --max), when it cannot see the whole DLQ now, or when a
message arrived after the export. --force purges without these checks.

It asks you to type the DLQ's name to confirm, unless --yes. SQS allows one purge per
queue every 60 seconds and takes up to 60 seconds to finish; a message that arrives in the
instant between purge's last check and the purge itself is deleted unexported.

Examples:
  slackrelay-dlq export --stack slackrelay --out dlq.jsonl && slackrelay-dlq purge --stack slackrelay
  slackrelay-dlq purge --stack slackrelay --force --yes     # no export needed: messages are lost`,
	scans: true,
	setup: func(fs *flag.FlagSet) runFunc {
		yes := fs.Bool("yes", false, "do not ask for confirmation")
		force := fs.Bool("force", false, "purge even when the last export did not save every message (they are lost)")
		return func(ctx context.Context, inv *invocation, pos []string) error {
			if err := noArgs("purge", pos); err != nil {
				return err
			}
			qs, err := inv.queues(ctx, false, true)
			if err != nil {
				return err
			}
			if *force {
				c, err := dlqtool.ReadCounts(ctx, inv.sqs, qs.dlq)
				if err != nil {
					return err
				}
				if err := inv.confirmPurge(qs.dlq, c.Total(), *yes); err != nil {
					return err
				}
				return inv.purgeQueue(ctx, qs.dlq)
			}
			return inv.checkedPurge(ctx, qs.dlq, *yes)
		}
	},
}

// checkedPurge purges the DLQ when its last export holds every message it holds now.
func (inv *invocation) checkedPurge(ctx context.Context, dlq string, yes bool) error {
	name := dlqtool.QueueName(dlq)
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("refusing to purge %s: %s; nothing was deleted (export again, or pass --force to purge anyway)", name, fmt.Sprintf(format, args...))
	}
	dir, err := inv.stateDir()
	if err != nil {
		return refuse("%v", err)
	}
	rec, ok, err := dlqtool.LoadExportRecord(dir, dlq)
	switch {
	case err != nil:
		return refuse("%v", err)
	case !ok:
		return refuse("no export of it is recorded in %s", dir)
	case !rec.Complete:
		return refuse("its last export (%s, %s) saw %d of the %d message(s) the DLQ counted", rec.At.Format(time.RFC3339), rec.File, rec.Exported, rec.Counts.Total())
	}
	exported := make(map[string]bool, len(rec.IDs))
	for _, id := range rec.IDs {
		exported[id] = true
	}
	return inv.peek(ctx, dlq, 0, nil, func(s scanned) error {
		if !s.res.Complete() {
			return refuse("it cannot see the whole DLQ now:\n  %s", strings.Join(inv.incomplete(s.res), "\n  "))
		}
		var extra []string
		for _, m := range s.hold.Messages() {
			if !exported[m.ID] {
				extra = append(extra, m.ID)
			}
		}
		if len(extra) > 0 {
			return refuse("%d message(s) in it are not in its last export (%s, %s), e.g. %s", len(extra), rec.At.Format(time.RFC3339), rec.File, extra[0])
		}
		if err := inv.confirmPurge(dlq, s.res.Held, yes); err != nil {
			return err
		}
		// Anything that arrived while the prompt waited was not checked.
		c, err := dlqtool.ReadCounts(ctx, inv.sqs, dlq)
		if err != nil {
			return err
		}
		if c.Total() > s.hold.Held() {
			return refuse("%d message(s) arrived since the check", c.Total()-s.hold.Held())
		}
		if err := inv.purgeQueue(ctx, dlq); err != nil {
			return err
		}
		s.hold.Drop()
		return nil
	})
}

func (inv *invocation) confirmPurge(dlq string, n int, yes bool) error {
	if yes {
		return nil
	}
	name := dlqtool.QueueName(dlq)
	fmt.Fprintf(inv.stderr, "This deletes all %d message(s) in %s for good.\nType the DLQ name (%s) to confirm: ", n, dlq, name)
	answer, _ := bufio.NewReader(inv.deps.Stdin).ReadString('\n')
	if strings.TrimSpace(answer) != name {
		fmt.Fprintln(inv.stderr)
		return errors.New("purge not confirmed: nothing was deleted")
	}
	return nil
}

func (inv *invocation) purgeQueue(ctx context.Context, dlq string) error {
	name := dlqtool.QueueName(dlq)
	if _, err := inv.sqs.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(dlq)}); err != nil {
		return fmt.Errorf("purge %s: %w", name, err)
	}
	fmt.Fprintf(inv.stdout, "purged %s (SQS may take up to 60 s to finish; check with `slackrelay-dlq stats`)\n", name)
	return nil
}

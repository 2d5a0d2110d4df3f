package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

var purgeCmd = &command{
	name:    "purge",
	summary: "delete the DLQ messages the last export saved, one by one (asks unless --yes)",
	usage: `Usage: slackrelay-dlq purge [queue flags] [--yes] [--force]

Deletes the messages of the DLQ that its last export saved, and nothing else. purge reads
the record export keeps (under $SLACKRELAY_DLQ_STATE_DIR: the exported message ids and a
SHA-256 of each body), scans the DLQ as list does, and deletes each message it received
whose id and body are in that record, with the receipt of its own receive. Everything else
stays in the DLQ, visible again at once, and is named: messages that arrived after the
export (or during the purge), a body that differs from the exported one, messages another
reader holds. A purge that leaves anything in the DLQ, or could not delete a message,
exits 3 and says what is where; run export and purge again for the rest.

It refuses, deleting nothing, when there is no record, when that export was partial
(another reader held messages, --max), or when the record comes from a slackrelay-dlq
without body digests. It asks you to type the DLQ's name to confirm, unless --yes.

--force skips the export and calls SQS's PurgeQueue instead: everything in the DLQ is
deleted, unexported, including what reaches it during the next 60 seconds (SQS finishes a
purge within 60 s and allows one per queue per 60 s). There is no undo.

Examples:
  slackrelay-dlq export --stack slackrelay --out dlq.jsonl && slackrelay-dlq purge --stack slackrelay
  slackrelay-dlq purge --stack slackrelay --force --yes     # no export needed: messages are lost`,
	scans: true,
	setup: func(fs *flag.FlagSet) runFunc {
		yes := fs.Bool("yes", false, "do not ask for confirmation")
		force := fs.Bool("force", false, "delete everything with SQS's PurgeQueue, without an export (the messages, and any that arrive in the next 60 s, are lost)")
		return func(ctx context.Context, inv *invocation, pos []string) error {
			if err := noArgs("purge", pos); err != nil {
				return err
			}
			qs, err := inv.queues(ctx, false, true)
			if err != nil {
				return err
			}
			if *force {
				c, err := deadletter.ReadCounts(ctx, inv.sqs, qs.dlq)
				if err != nil {
					return err
				}
				prompt := fmt.Sprintf("This deletes all %d message(s) in %s, and any that arrive in the next 60 s, for good.", c.Total(), qs.dlq)
				if err := inv.confirmPurge(qs.dlq, prompt, *yes); err != nil {
					return err
				}
				return inv.purgeQueue(ctx, qs.dlq)
			}
			return inv.checkedPurge(ctx, qs.dlq, *yes)
		}
	},
}

// checkedPurge deletes, one by one, the DLQ messages its last export saved.
func (inv *invocation) checkedPurge(ctx context.Context, dlq string, yes bool) error {
	name := deadletter.QueueName(dlq)
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("refusing to purge %s: %s; nothing was deleted (export again, or pass --force to purge anyway)", name, fmt.Sprintf(format, args...))
	}
	dir, err := inv.stateDir()
	if err != nil {
		return refuse("%v", err)
	}
	rec, ok, err := deadletter.LoadExportRecord(dir, dlq)
	switch {
	case err != nil:
		return refuse("%v", err)
	case !ok:
		return refuse("no export of it is recorded in %s", dir)
	case !rec.Complete:
		return refuse("its last export (%s, %s) saw %d of the %d message(s) the DLQ counted", rec.At.Format(time.RFC3339), rec.File, rec.Exported, rec.Counts.Total())
	case rec.BodySHA256 == nil:
		return refuse("its last export (%s, %s) was recorded without body digests by an earlier slackrelay-dlq", rec.At.Format(time.RFC3339), rec.File)
	}
	export := fmt.Sprintf("its last export (%s, %s)", rec.At.Format(time.RFC3339), rec.File)
	return inv.peek(ctx, dlq, 0, nil, func(s scanned) error {
		var saved, notExported, changed []*deadletter.Message
		for _, m := range s.hold.Messages() {
			switch {
			case !s.hold.Holds(m.ID): // lost by the scan: reported with the partial view
			case rec.Saved(m):
				saved = append(saved, m)
			case rec.BodySHA256[m.ID] != "":
				changed = append(changed, m)
			default:
				notExported = append(notExported, m)
			}
		}
		// What stays is visible again at once, not when the command ends.
		if err := s.hold.ReleaseMessages(ctx, slices.Concat(notExported, changed)); err != nil {
			fmt.Fprintln(inv.stderr, "warning:", err)
		}
		var left []string
		if n := len(notExported); n > 0 {
			left = append(left, fmt.Sprintf("%d message(s) not in %s, left in the DLQ: %s (export again, then purge)", n, export, idSample(notExported)))
		}
		if n := len(changed); n > 0 {
			left = append(left, fmt.Sprintf("%d message(s) whose body differs from the exported one, left in the DLQ: %s", n, idSample(changed)))
		}
		if !s.res.Complete() {
			left = append(left, inv.incomplete(s.res)...)
		}
		if len(saved) == 0 {
			if len(left) == 0 {
				fmt.Fprintf(inv.stdout, "nothing to purge: %s is empty\n", name)
				return nil
			}
			return fmt.Errorf("nothing purged from %s: none of the messages it could see is in %s\n  %s", name, export, strings.Join(left, "\n  "))
		}
		prompt := fmt.Sprintf("This deletes the %d message(s) of %s that %s saved, for good.", len(saved), dlq, export)
		if kept := len(notExported) + len(changed); kept > 0 {
			prompt += fmt.Sprintf(" %d other message(s) stay.", kept)
		}
		if err := inv.confirmPurge(dlq, prompt, yes); err != nil {
			return err
		}
		deleted, failed := s.hold.DeleteMessages(ctx, saved)
		if deleted > 0 {
			fmt.Fprintf(inv.stdout, "purged %d message(s) from %s, each saved by %s\n", deleted, name, export)
		}
		if len(failed) > 0 {
			reasons := make([]string, 0, 5)
			for _, f := range failed[:min(len(failed), 5)] {
				reasons = append(reasons, f.ID+" ("+f.Reason+")")
			}
			more := ""
			if len(failed) > 5 {
				more = fmt.Sprintf(" and %d more", len(failed)-5)
			}
			left = append(left, fmt.Sprintf("could not delete %d message(s), left in the DLQ: %s%s", len(failed), strings.Join(reasons, ", "), more))
		}
		// What reached the DLQ after the scan was neither exported nor deleted: say so. The
		// messages the scan did not hold (lost ones included) are in Unseen.
		known := len(notExported) + len(changed) + len(failed) + s.res.Unseen()
		if c, err := deadletter.ReadCounts(ctx, inv.sqs, dlq); err != nil {
			fmt.Fprintf(inv.stderr, "warning: %v; `slackrelay-dlq stats` shows whether anything arrived during the purge\n", err)
		} else if extra := c.Total() - known; extra > 0 {
			left = append(left, fmt.Sprintf("the DLQ counts %d more message(s) than this purge left: they arrived after its scan and were not deleted (or SQS's approximate counts have not caught up; see `slackrelay-dlq stats`)", extra))
		}
		if len(left) == 0 {
			return nil
		}
		msg := fmt.Sprintf("partial purge of %s: deleted %d message(s), the DLQ is not empty", name, deleted)
		if deleted == 0 {
			msg = fmt.Sprintf("nothing purged from %s", name)
		}
		if ctx.Err() != nil {
			msg = "interrupted: " + msg
		}
		msg += "\n  " + strings.Join(left, "\n  ")
		if deleted == 0 {
			return errors.New(msg)
		}
		return &PartialError{Msg: msg}
	})
}

// idSample lists up to five message ids.
func idSample(msgs []*deadletter.Message) string {
	ids := make([]string, 0, 5)
	for _, m := range msgs[:min(len(msgs), 5)] {
		ids = append(ids, m.ID)
	}
	out := strings.Join(ids, ", ")
	if len(msgs) > 5 {
		out += fmt.Sprintf(" and %d more", len(msgs)-5)
	}
	return out
}

func (inv *invocation) confirmPurge(dlq, prompt string, yes bool) error {
	if yes {
		return nil
	}
	name := deadletter.QueueName(dlq)
	fmt.Fprintf(inv.stderr, "%s\nType the DLQ name (%s) to confirm: ", prompt, name)
	answer, _ := bufio.NewReader(inv.deps.Stdin).ReadString('\n')
	if strings.TrimSpace(answer) != name {
		fmt.Fprintln(inv.stderr)
		return errors.New("purge not confirmed: nothing was deleted")
	}
	return nil
}

func (inv *invocation) purgeQueue(ctx context.Context, dlq string) error {
	name := deadletter.QueueName(dlq)
	if _, err := inv.sqs.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(dlq)}); err != nil {
		return fmt.Errorf("purge %s: %w", name, err)
	}
	fmt.Fprintf(inv.stdout, "purged %s with PurgeQueue: SQS deletes everything in it, and what arrives in the next 60 s, unexported (check with `slackrelay-dlq stats`)\n", name)
	return nil
}

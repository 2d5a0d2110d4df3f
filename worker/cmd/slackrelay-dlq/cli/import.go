package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

var importCmd = &command{
	name:    "import",
	summary: "send the messages of an export file to the DLQ (or, stale-guarded, the events queue)",
	usage: `Usage: slackrelay-dlq import [queue flags] --in FILE [--to dlq|events]
                             [--max-age D] [--allow-stale]

Reads a file written by export and sends each line as a new message with the same body
and message attributes (message ids, receive counts and timestamps are new). Every line is
checked first; if any is bad, their line numbers are reported and nothing is sent.

--to events puts the messages straight on the events queue as they are (failure
attributes included), under replay's stale guard: events older than --max-age (by
event_time, else received_at, else when the message reached the DLQ) are skipped with a
warning unless --allow-stale. To replay selectively, import to the DLQ and use replay.

If a send fails, import stops: the lines before it that were not skipped are in the
queue, the rest are not (exit 3 once something was sent).

Examples:
  slackrelay-dlq import --stack slackrelay --in dlq-2024-05-01.jsonl
  slackrelay-dlq import --stack slackrelay --in dlq-2024-05-01.jsonl --to events --max-age 24h`,
	setup: func(fs *flag.FlagSet) runFunc {
		in := fs.String("in", "", "read this export `FILE` (- = stdin)")
		to := fs.String("to", "dlq", "send to the dlq or the events queue")
		var guard staleGuard
		guard.register(fs, "import", "with --to events: ")
		return func(ctx context.Context, inv *invocation, pos []string) error {
			switch {
			case len(pos) > 0:
				return usagef("import: unexpected argument %q (the file goes in --in)", pos[0])
			case *in == "":
				return usagef("import needs --in FILE (a file written by export)")
			case *to != "dlq" && *to != "events":
				return usagef("import: --to must be dlq or events")
			}
			if *to == "events" {
				if err := guard.check("import"); err != nil {
					return err
				}
			}
			return inv.importFile(ctx, *in, *to, &guard)
		}
	},
}

// importFile sends the lines of an export file to the DLQ, or through guard to the events
// queue.
func (inv *invocation) importFile(ctx context.Context, in, to string, guard *staleGuard) error {
	var r io.Reader = inv.deps.Stdin
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	lines, err := deadletter.ReadExport(r)
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was sent", in, err)
	}
	qs, err := inv.queues(ctx, to == "events", to == "dlq")
	if err != nil {
		return err
	}
	target := qs.dlq
	send, stale := lines, 0
	if to == "events" {
		target = qs.events
		now := inv.deps.Now()
		send = send[:0:0]
		for _, l := range lines {
			if m := l.Message(); guard.stale(m, now) {
				guard.warn(inv.stderr, m, now, "import")
				stale++
				continue
			}
			send = append(send, l)
		}
	}
	summary := func(sent, failed int) string {
		s := fmt.Sprintf("imported %d message(s) into %s", sent, deadletter.QueueName(target))
		if to == "events" {
			s += fmt.Sprintf(", skipped stale %d, failed %d", stale, failed)
		}
		return s
	}
	sent := 0
	for _, l := range send {
		_, err := inv.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(target), MessageBody: aws.String(l.Body), MessageAttributes: l.MessageAttributes()})
		if err != nil {
			fmt.Fprintln(inv.stdout, summary(sent, 1))
			msg := fmt.Sprintf("line %d: send to %s: %v; sent %d of the %d to send (the lines before %d that were not skipped are in the queue, the rest are not)",
				l.Line, deadletter.QueueName(target), err, sent, len(send), l.Line)
			if sent == 0 {
				return errors.New(msg)
			}
			return &PartialError{Msg: msg}
		}
		sent++
	}
	fmt.Fprintln(inv.stdout, summary(sent, 0))
	return nil
}

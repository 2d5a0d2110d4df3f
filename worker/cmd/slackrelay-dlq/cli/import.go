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

	"github.com/slackrelay/slackrelay/worker/dlqtool"
)

var importCmd = &command{
	name:    "import",
	summary: "send the messages of an export file to the DLQ (or the events queue)",
	usage: `Usage: slackrelay-dlq import [queue flags] --in FILE [--to dlq|events]

Reads a file written by export and sends each line as a new message with the same body
and message attributes (message ids, receive counts and timestamps are new). Every line is
checked first; if any is bad, their line numbers are reported and nothing is sent.
--to events puts the messages straight on the events queue as they are (failure
attributes included); to replay selectively, import to the DLQ and use replay.

Examples:
  slackrelay-dlq import --stack slackrelay --in dlq-2024-05-01.jsonl
  slackrelay-dlq import --stack slackrelay --in dlq-2024-05-01.jsonl --to events`,
	setup: func(fs *flag.FlagSet) runFunc {
		in := fs.String("in", "", "read this export `FILE` (- = stdin)")
		to := fs.String("to", "dlq", "send to the dlq or the events queue")
		return func(ctx context.Context, inv *invocation, pos []string) error {
			switch {
			case len(pos) > 0:
				return usagef("import: unexpected argument %q (the file goes in --in)", pos[0])
			case *in == "":
				return usagef("import needs --in FILE (a file written by export)")
			case *to != "dlq" && *to != "events":
				return usagef("import: --to must be dlq or events")
			}
			return inv.importFile(ctx, *in, *to)
		}
	},
}

func (inv *invocation) importFile(ctx context.Context, in, to string) error {
	var r io.Reader = inv.deps.Stdin
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	lines, err := dlqtool.ReadExport(r)
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was sent", in, err)
	}
	qs, err := inv.queues(ctx, to == "events", to == "dlq")
	if err != nil {
		return err
	}
	target := qs.dlq
	if to == "events" {
		target = qs.events
	}
	sent := 0
	for _, l := range lines {
		_, err := inv.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(target), MessageBody: aws.String(l.Body), MessageAttributes: l.MessageAttributes()})
		if err != nil {
			msg := fmt.Sprintf("line %d: send to %s: %v; sent %d of %d (lines before %d are in the queue)", l.Line, dlqtool.QueueName(target), err, sent, len(lines), l.Line)
			if sent == 0 {
				return errors.New(msg)
			}
			return &PartialError{Msg: msg}
		}
		sent++
	}
	fmt.Fprintf(inv.stdout, "imported %d message(s) into %s\n", sent, dlqtool.QueueName(target))
	return nil
}

package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

var exportCmd = &command{
	name:    "export",
	summary: "write every DLQ message as JSON Lines (nothing is deleted)",
	usage: `Usage: slackrelay-dlq export [queue flags] [--out FILE] [--max N]

Peeks every DLQ message (hidden while the scan runs, visible again right after; on real
SQS each export adds one to the receive counts) and writes one JSON object per line to
FILE or stdout:
  {"message_id", "body", "attributes": {NAME: {"data_type", "string_value"}},
   "receive_count", "sent_timestamp"}
The bodies hold the Slack requests unredacted (including response_url): keep the file
private and delete it when done. Run it before purge or before deleting the stack.

The export compares what it saw with the DLQ's counts (visible + in flight + delayed).
When it could not see every message (another reader holds some, some are delayed) it
still writes what it saw, says how many it missed, and exits 3. Each export is recorded
(the DLQ's URL, counts, the exported message ids and a SHA-256 of each body, under
$SLACKRELAY_DLQ_STATE_DIR): purge deletes only messages that record names with the same
body, and refuses when the export did not see every message the DLQ counted.

Examples:
  slackrelay-dlq export --stack slackrelay --out dlq-$(date +%F).jsonl
  slackrelay-dlq export --dlq-url "$DLQ" | jq -r .message_id`,
	scans: true,
	setup: func(fs *flag.FlagSet) runFunc {
		out := fs.String("out", "", "write to this `FILE` (default stdout); an existing file is replaced")
		max := fs.Int("max", 0, "export at most N messages (0 = all; such an export does not allow a purge)")
		return func(ctx context.Context, inv *invocation, pos []string) error {
			if err := noArgs("export", pos); err != nil {
				return err
			}
			if *max < 0 {
				return usagef("export: --max must not be negative")
			}
			qs, err := inv.queues(ctx, false, true)
			if err != nil {
				return err
			}
			return inv.peek(ctx, qs.dlq, *max, nil, func(s scanned) error {
				return inv.export(qs.dlq, *out, s)
			})
		}
	},
}

func (inv *invocation) export(dlq, out string, s scanned) error {
	msgs := s.hold.Messages()
	var buf bytes.Buffer
	if err := deadletter.WriteExport(&buf, msgs); err != nil {
		return err
	}
	file := "-"
	if out == "" {
		if _, err := inv.stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	} else {
		if err := deadletter.WriteFileAtomic(out, buf.Bytes()); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
		file = out
		if abs, err := filepath.Abs(out); err == nil {
			file = abs
		}
	}
	rec := deadletter.ExportRecord{QueueURL: dlq, At: inv.deps.Now().UTC(), File: file, Complete: s.res.Complete(),
		Exported: len(msgs), Counts: s.res.Counts, Unseen: s.res.Unseen()}
	rec.BodySHA256 = make(map[string]string, len(msgs))
	for _, m := range msgs {
		rec.IDs = append(rec.IDs, m.ID)
		rec.BodySHA256[m.ID] = deadletter.BodyDigest(m.Body)
	}
	if dir, err := inv.stateDir(); err != nil {
		fmt.Fprintf(inv.stderr, "warning: %v; purge will not know about this export\n", err)
	} else if err := deadletter.SaveExportRecord(dir, rec); err != nil {
		fmt.Fprintf(inv.stderr, "warning: %v; purge will not know about this export\n", err)
	}
	did := fmt.Sprintf("exported %d message(s)", len(msgs))
	if out != "" {
		did += " to " + out
	}
	switch s.res.Stop {
	case deadletter.StopComplete:
		fmt.Fprintf(inv.stderr, "%s; the DLQ counts %d: all seen\n", did, s.res.Counts.Total())
		return nil
	case deadletter.StopMax:
		fmt.Fprintf(inv.stderr, "%s; stopped at --max, the DLQ counts %d (purge will refuse on this export)\n", did, s.res.Counts.Total())
		return nil
	}
	return inv.partial(did+" (purge will refuse on this export)", s.res)
}

package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

var showCmd = &command{
	name:    "show",
	summary: "one DLQ message in full: metadata, attributes, envelope, Slack body (secrets redacted)",
	usage: `Usage: slackrelay-dlq show [queue flags] MESSAGE_ID

Finds the message by peeking the DLQ as list does (visibility restored right after), and
prints its metadata, message attributes, envelope fields and the Slack request body: JSON
indented, form bodies as key=value lines, an interactivity payload as indented JSON.
Tokens (token fields, xoxb-/xoxp-/xapp-... values) and the path of response_url are
replaced by [redacted]. When the message is not found and the scan could not see the
whole DLQ, it says so and exits 3: the message may be among those not seen.

Examples:
  slackrelay-dlq show --stack slackrelay 5c1f0c1e-8f9b-4a55-9d0e-2f1b1c0d9a11`,
	scans: true,
	setup: func(fs *flag.FlagSet) runFunc {
		return func(ctx context.Context, inv *invocation, pos []string) error {
			if len(pos) != 1 {
				return usagef("show needs exactly one MESSAGE_ID (see `slackrelay-dlq list`)")
			}
			id := pos[0]
			qs, err := inv.queues(ctx, false, true)
			if err != nil {
				return err
			}
			found := func(h *deadletter.Hold) bool { return h.Holds(id) }
			return inv.peek(ctx, qs.dlq, 0, found, func(s scanned) error {
				msgs := s.hold.Messages()
				i := slices.IndexFunc(msgs, func(m *deadletter.Message) bool { return m.ID == id })
				switch {
				case i >= 0:
					printMessage(inv.stdout, msgs[i], inv.deps.Now())
					return nil
				case s.res.Complete():
					return fmt.Errorf("message %s not found in the DLQ (all %d messages seen; ids are in `slackrelay-dlq list`)", id, len(msgs))
				}
				return inv.partial(fmt.Sprintf("message %s not found among the %d seen; it may be among those not seen", id, len(msgs)), s.res)
			})
		}
	},
}

func printMessage(w io.Writer, m *deadletter.Message, now time.Time) {
	fmt.Fprintln(w, "Message")
	fmt.Fprintf(w, "  id:        %s\n", m.ID)
	fmt.Fprintf(w, "  receives:  %d\n", m.ReceiveCount)
	if !m.SentAt.IsZero() {
		fmt.Fprintf(w, "  sent:      %s (%s ago)\n", m.SentAt.Format(time.RFC3339), fmtAge(now.Sub(m.SentAt)))
	}
	for _, k := range slices.Sorted(maps.Keys(m.SysAttrs)) {
		fmt.Fprintf(w, "  %s: %s\n", k, m.SysAttrs[k])
	}
	fmt.Fprintln(w, "\nAttributes")
	for _, k := range slices.Sorted(maps.Keys(m.Attrs)) {
		v := m.Attrs[k]
		val := deadletter.RedactText(aws.ToString(v.StringValue))
		if v.BinaryValue != nil {
			val = fmt.Sprintf("(%d bytes)", len(v.BinaryValue))
		}
		fmt.Fprintf(w, "  %s (%s): %s\n", k, aws.ToString(v.DataType), val)
	}
	fmt.Fprintln(w, "\nEnvelope")
	if m.Env == nil {
		fmt.Fprintf(w, "  not a valid envelope: %v\n\nBody (raw)\n", m.EnvErr)
		fmt.Fprintln(w, deadletter.Indent(deadletter.RedactBody(m.Body, ""), "  "))
		return
	}
	e := m.Env
	field := func(name, val string) {
		if val != "" {
			fmt.Fprintf(w, "  %-14s %s\n", name+":", val)
		}
	}
	field("v", fmt.Sprint(e.Version))
	field("id", e.ID)
	field("kind", string(e.Kind))
	field("team_id", e.TeamID)
	field("enterprise_id", e.EnterpriseID)
	field("api_app_id", e.APIAppID)
	field("event_type", e.EventType)
	field("event_id", e.EventID)
	if e.EventTime > 0 {
		at := time.Unix(e.EventTime, 0).UTC()
		field("event_time", fmt.Sprintf("%d (%s, %s ago)", e.EventTime, at.Format(time.RFC3339), fmtAge(now.Sub(at))))
	}
	field("dedupe_key", e.DedupeKey)
	if !e.ReceivedAt.IsZero() {
		field("received_at", e.ReceivedAt.Format(time.RFC3339Nano))
	}
	if e.RetryNum > 0 {
		field("retry_num", fmt.Sprint(e.RetryNum))
	}
	field("retry_reason", e.RetryReason)
	field("content_type", e.ContentType)
	fmt.Fprintf(w, "\nBody (%s)\n", e.ContentType)
	fmt.Fprintln(w, deadletter.Indent(deadletter.RedactBody(e.Body, e.ContentType), "  "))
}

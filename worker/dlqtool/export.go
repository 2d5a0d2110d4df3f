package dlqtool

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

var exportCmd = &command{
	name:    "export",
	summary: "write every DLQ message as JSON Lines (nothing is deleted)",
	usage: `Usage: slackrelay-dlq export [queue flags] [--out FILE] [--max N]

Peeks every DLQ message (visibility restored right after; on real SQS each export adds one
to the receive counts) and writes one JSON object per line to FILE or stdout:
  {"message_id", "body", "attributes": {NAME: {"data_type", "string_value"}},
   "receive_count", "sent_timestamp"}
The bodies hold the Slack requests unredacted (including response_url): keep the file
private and delete it when done. Run it before purge or before deleting the stack.

Examples:
  slackrelay-dlq export --stack slackrelay --out dlq-$(date +%F).jsonl
  slackrelay-dlq export --dlq-url "$DLQ" | jq -r .message_id`,
	run: runExport,
}

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
	run: runImport,
}

// exported is one line of an export file.
type exported struct {
	MessageID     string                  `json:"message_id"`
	Body          string                  `json:"body"`
	Attributes    map[string]exportedAttr `json:"attributes"`
	ReceiveCount  int                     `json:"receive_count"`
	SentTimestamp int64                   `json:"sent_timestamp"`
}

type exportedAttr struct {
	DataType    string  `json:"data_type"`
	StringValue *string `json:"string_value,omitempty"`
	BinaryValue []byte  `json:"binary_value,omitempty"`
}

func runExport(ctx context.Context, t *tool, args []string) (err error) {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	var q queueFlags
	q.register(fs)
	out := fs.String("out", "", "write to this `FILE` (default stdout); an existing file is replaced")
	max := fs.Int("max", 0, "export at most N messages (0 = all)")
	pos, help, err := t.parseFlags("export", fs, args)
	if help || err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("export: unexpected argument %q", pos[0])
	}
	qs, err := t.resolve(ctx, &q, false, true)
	if err != nil {
		return err
	}
	msgs, err := t.peekAll(ctx, qs.dlq, *max)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		line := exported{MessageID: m.ID, Body: m.Body, ReceiveCount: m.ReceiveCount, Attributes: map[string]exportedAttr{}}
		if !m.SentAt.IsZero() {
			line.SentTimestamp = m.SentAt.UnixMilli()
		}
		for k, v := range m.Attrs {
			line.Attributes[k] = exportedAttr{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
		}
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	if *out == "" {
		_, err := t.stdout.Write(buf.Bytes())
		return err
	}
	if err := writeFileAtomic(*out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(t.stderr, "exported %d message(s) to %s\n", len(msgs), *out)
	return nil
}

// writeFileAtomic writes data to a temporary file next to path (mode 0600: the bodies are
// Slack requests) and renames it into place.
func writeFileAtomic(path string, data []byte) error {
	dir := "."
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		dir = path[:i+1]
	}
	f, err := os.CreateTemp(dir, ".slackrelay-dlq-export-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func runImport(ctx context.Context, t *tool, args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	var q queueFlags
	q.register(fs)
	in := fs.String("in", "", "read this export `FILE` (- = stdin)")
	to := fs.String("to", "dlq", "send to the dlq or the events queue")
	pos, help, err := t.parseFlags("import", fs, args)
	if help || err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("import: unexpected argument %q (the file goes in --in)", pos[0])
	case *in == "":
		return usagef("import needs --in FILE (a file written by export)")
	case *to != "dlq" && *to != "events":
		return usagef("import: --to must be dlq or events")
	}
	var r io.Reader
	if *in == "-" {
		r = t.deps.Stdin
	} else {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	lines, err := readExport(r)
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was sent", *in, err)
	}
	qs, err := t.resolve(ctx, &q, *to == "events", *to == "dlq")
	if err != nil {
		return err
	}
	target := qs.dlq
	if *to == "events" {
		target = qs.events
	}
	sent := 0
	for _, l := range lines {
		attrs := make(map[string]types.MessageAttributeValue, len(l.Attributes))
		for k, v := range l.Attributes {
			attrs[k] = types.MessageAttributeValue{DataType: aws.String(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
		}
		if len(attrs) == 0 {
			attrs = nil
		}
		_, err := t.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(target), MessageBody: aws.String(l.Body), MessageAttributes: attrs})
		if err != nil {
			msg := fmt.Sprintf("line %d: send to %s: %v; sent %d of %d (lines before %d are in the queue)", l.line, queueName(target), err, sent, len(lines), l.line)
			if sent == 0 {
				return errors.New(msg)
			}
			return &PartialError{Msg: msg}
		}
		sent++
	}
	fmt.Fprintf(t.stdout, "imported %d message(s) into %s\n", sent, queueName(target))
	return nil
}

type importLine struct {
	exported
	line int
}

// readExport parses and checks every line; it reports all bad lines at once.
func readExport(r io.Reader) ([]importLine, error) {
	br := bufio.NewReader(r)
	var out []importLine
	var bad []string
	for n := 1; ; n++ {
		raw, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(raw)) > 0 {
			var e exported
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if derr := dec.Decode(&e); derr != nil {
				bad = append(bad, fmt.Sprintf("line %d: not an export line: %v", n, derr))
			} else if problem := checkExported(&e); problem != "" {
				bad = append(bad, fmt.Sprintf("line %d: %s", n, problem))
			} else {
				out = append(out, importLine{exported: e, line: n})
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%d bad line(s):\n  %s\n", len(bad), strings.Join(bad, "\n  "))
	}
	if len(out) == 0 {
		return nil, errors.New("no messages in the file")
	}
	return out, nil
}

func checkExported(e *exported) string {
	if e.Body == "" {
		return "empty body"
	}
	if len(e.Attributes) > 10 {
		return fmt.Sprintf("%d attributes (SQS allows 10)", len(e.Attributes))
	}
	names := make([]string, 0, len(e.Attributes))
	for k := range e.Attributes {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := e.Attributes[k]
		base, _, _ := strings.Cut(v.DataType, ".")
		switch base {
		case "String", "Number":
			if v.StringValue == nil {
				return fmt.Sprintf("attribute %s: %s without string_value", k, v.DataType)
			}
		case "Binary":
			if v.BinaryValue == nil {
				return fmt.Sprintf("attribute %s: Binary without binary_value", k)
			}
		default:
			return fmt.Sprintf("attribute %s: data_type %q is not String, Number or Binary", k, v.DataType)
		}
	}
	return ""
}

var purgeCmd = &command{
	name:    "purge",
	summary: "delete every message in the DLQ (asks for the queue name unless --yes)",
	usage: `Usage: slackrelay-dlq purge [queue flags] [--yes]

Deletes every message in the DLQ with PurgeQueue. It asks you to type the DLQ's name to
confirm, unless --yes. Export first if the messages might still matter. SQS allows one
purge per queue every 60 seconds and takes up to 60 seconds to finish.

Examples:
  slackrelay-dlq export --stack slackrelay --out dlq.jsonl && slackrelay-dlq purge --stack slackrelay`,
	run: runPurge,
}

func runPurge(ctx context.Context, t *tool, args []string) error {
	fs := flag.NewFlagSet("purge", flag.ContinueOnError)
	var q queueFlags
	q.register(fs)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	pos, help, err := t.parseFlags("purge", fs, args)
	if help || err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("purge: unexpected argument %q", pos[0])
	}
	qs, err := t.resolve(ctx, &q, false, true)
	if err != nil {
		return err
	}
	name := queueName(qs.dlq)
	if !*yes {
		st, err := t.queueStats(ctx, qs.dlq)
		if err != nil {
			return err
		}
		fmt.Fprintf(t.stderr, "This deletes all %d message(s) in %s for good (export them first if they matter).\nType the DLQ name (%s) to confirm: ",
			st.Visible+st.NotVisible, qs.dlq, name)
		answer, _ := bufio.NewReader(t.deps.Stdin).ReadString('\n')
		if strings.TrimSpace(answer) != name {
			fmt.Fprintln(t.stderr)
			return errors.New("purge not confirmed: nothing was deleted")
		}
	}
	if _, err := t.sqs.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(qs.dlq)}); err != nil {
		return fmt.Errorf("purge %s: %w", name, err)
	}
	fmt.Fprintf(t.stdout, "purged %s (SQS may take up to 60 s to finish; check with `slackrelay-dlq stats`)\n", name)
	return nil
}

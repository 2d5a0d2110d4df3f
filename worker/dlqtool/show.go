package dlqtool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

var showCmd = &command{
	name:    "show",
	summary: "one DLQ message in full: metadata, attributes, envelope, Slack body (secrets redacted)",
	usage: `Usage: slackrelay-dlq show [queue flags] MESSAGE_ID

Finds the message by peeking the DLQ as list does (visibility restored right after), and
prints its metadata, message attributes, envelope fields and the Slack request body: JSON
indented, form bodies as key=value lines, an interactivity payload as indented JSON.
Tokens (token fields, xoxb-/xoxp-/xapp-... values) and the path of response_url are
replaced by [redacted].

Examples:
  slackrelay-dlq show --stack slackrelay 5c1f0c1e-8f9b-4a55-9d0e-2f1b1c0d9a11`,
	run: runShow,
}

func runShow(ctx context.Context, t *tool, args []string) error {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	var q queueFlags
	q.register(fs)
	pos, help, err := t.parseFlags("show", fs, args)
	if help || err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("show needs exactly one MESSAGE_ID (see `slackrelay-dlq list`)")
	}
	id := pos[0]
	qs, err := t.resolve(ctx, &q, false, true)
	if err != nil {
		return err
	}
	p := newPeeker(t.sqs, qs.dlq, t.deps.PeekWaitSeconds)
	defer func() {
		if rerr := p.release(ctx); rerr != nil {
			fmt.Fprintln(t.stderr, "warning:", rerr)
		}
	}()
	if err := p.scan(ctx, 0, func() bool { _, ok := p.held[id]; return ok }); err != nil {
		return err
	}
	m, ok := p.held[id]
	if !ok {
		return fmt.Errorf("message %s %w in the DLQ (%d messages peeked; ids are in `slackrelay-dlq list`)", id, errNotFound, len(p.order))
	}
	printMessage(t.stdout, m, t.deps.Now())
	return nil
}

func printMessage(w io.Writer, m *message, now time.Time) {
	fmt.Fprintln(w, "Message")
	fmt.Fprintf(w, "  id:        %s\n", m.ID)
	fmt.Fprintf(w, "  receives:  %d\n", m.ReceiveCount)
	if !m.SentAt.IsZero() {
		fmt.Fprintf(w, "  sent:      %s (%s ago)\n", m.SentAt.Format(time.RFC3339), fmtAge(now.Sub(m.SentAt)))
	}
	sys := make([]string, 0, len(m.SysAttrs))
	for k := range m.SysAttrs {
		sys = append(sys, k)
	}
	sort.Strings(sys)
	for _, k := range sys {
		fmt.Fprintf(w, "  %s: %s\n", k, m.SysAttrs[k])
	}
	fmt.Fprintln(w, "\nAttributes")
	names := make([]string, 0, len(m.Attrs))
	for k := range m.Attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := m.Attrs[k]
		val := redactText(aws.ToString(v.StringValue))
		if v.BinaryValue != nil {
			val = fmt.Sprintf("(%d bytes)", len(v.BinaryValue))
		}
		fmt.Fprintf(w, "  %s (%s): %s\n", k, aws.ToString(v.DataType), val)
	}
	fmt.Fprintln(w, "\nEnvelope")
	if m.Env == nil {
		fmt.Fprintf(w, "  not a valid envelope: %v\n\nBody (raw)\n", m.EnvErr)
		fmt.Fprintln(w, indent(redactBody(m.Body, ""), "  "))
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
	fmt.Fprintln(w, indent(redactBody(e.Body, e.ContentType), "  "))
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// ---- redaction ----

const redacted = "[redacted]"

// tokenRE matches Slack tokens: bot, user, app-level, refresh, config and legacy workspace tokens.
var tokenRE = regexp.MustCompile(`\bx(?:ox[abpesr]|app)-[A-Za-z0-9-]+`)

// redactText replaces anything that looks like a Slack token.
func redactText(s string) string { return tokenRE.ReplaceAllString(s, redacted) }

// secretKeys are body fields whose value is a secret wherever they appear.
var secretKeys = map[string]bool{"token": true, "bot_token": true, "access_token": true, "client_secret": true}

// redactValue redacts one field's value by its key.
func redactValue(key, val string) string {
	switch {
	case secretKeys[strings.ToLower(key)]:
		return redacted
	case strings.EqualFold(key, "response_url"):
		return redactURL(val)
	}
	return redactText(val)
}

// redactURL keeps scheme and host (so it is clear where it points) and hides the path, which
// is the credential of a response_url.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return redacted
	}
	return u.Scheme + "://" + u.Host + "/" + redacted
}

// redactBody pretty-prints a Slack request body with its secrets redacted. contentType ""
// means: guess (JSON if it parses).
func redactBody(body, contentType string) string {
	trimmed := strings.TrimSpace(body)
	isJSON := contentType == envelope.ContentTypeJSON ||
		(contentType == "" && (strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[")))
	if isJSON {
		if out, err := prettyJSON(body, "  "); err == nil {
			return out
		}
		return redactText(body)
	}
	if contentType == envelope.ContentTypeForm {
		return formLines(body)
	}
	return redactText(body)
}

// formLines prints a form body as key=value lines in their original order; a "payload" field
// holding JSON (interactivity) is printed as indented JSON.
func formLines(body string) string {
	var b strings.Builder
	for _, pair := range strings.Split(body, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			key, val = k, v
		}
		if key == "payload" {
			if pj, err := prettyJSON(val, "  "); err == nil {
				fmt.Fprintf(&b, "payload=\n%s\n", indent(pj, "  "))
				continue
			}
		}
		fmt.Fprintf(&b, "%s=%s\n", key, redactValue(key, val))
	}
	return b.String()
}

// prettyJSON indents a JSON document keeping its key order, redacting secret fields.
func prettyJSON(doc, ind string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var b bytes.Buffer
	if err := writePretty(&b, dec, "", ind, "", 0); err != nil {
		return "", err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", errors.New("trailing data after JSON value")
	}
	return b.String(), nil
}

func writePretty(b *bytes.Buffer, dec *json.Decoder, key, ind, prefix string, depth int) error {
	if depth > 200 {
		return errors.New("JSON nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		open, close := "{", "}"
		if v == '[' {
			open, close = "[", "]"
		}
		b.WriteString(open)
		n := 0
		for dec.More() {
			if n > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n" + prefix + ind)
			childKey := ""
			if v == '{' {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				childKey, _ = kt.(string)
				writeJSONString(b, childKey)
				b.WriteString(": ")
			}
			if err := writePretty(b, dec, childKey, ind, prefix+ind, depth+1); err != nil {
				return err
			}
			n++
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return err
		}
		if n > 0 {
			b.WriteString("\n" + prefix)
		}
		b.WriteString(close)
	case string:
		writeJSONString(b, redactValue(key, v))
	case json.Number:
		if secretKeys[strings.ToLower(key)] {
			b.WriteString(`"` + redacted + `"`)
		} else {
			b.WriteString(v.String())
		}
	case bool:
		fmt.Fprint(b, v)
	case nil:
		b.WriteString("null")
	}
	return nil
}

// writeJSONString writes s as a JSON string without HTML escaping (Slack's <@U123> stays
// readable).
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode's newline
}

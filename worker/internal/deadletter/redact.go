package deadletter

// Redaction of what the tool prints: a DLQ message carries the Slack request whole, with
// verification tokens, response_url (a credential for 30 minutes) and whatever users
// typed. The pretty-printer below is hand-written because encoding/json's Indent keeps
// values as they are, and decoding into maps loses Slack's key order; this one walks the
// token stream once, keeps the order and redacts by key.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"github.com/slackrelay/slackrelay/shared/envelope"
)

// redacted replaces a secret in the tool's output.
const redacted = "[redacted]"

// tokenRE matches Slack tokens: bot, user, app-level, refresh, config and legacy workspace tokens.
var tokenRE = regexp.MustCompile(`\bx(?:ox[abpesr]|app)-[A-Za-z0-9-]+`)

// RedactText replaces anything that looks like a Slack token.
func RedactText(s string) string { return tokenRE.ReplaceAllString(s, redacted) }

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
	return RedactText(val)
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

// RedactBody pretty-prints a Slack request body with its secrets redacted. contentType ""
// means: guess (JSON if it parses).
func RedactBody(body, contentType string) string {
	trimmed := strings.TrimSpace(body)
	isJSON := contentType == envelope.ContentTypeJSON ||
		(contentType == "" && (strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[")))
	if isJSON {
		if out, err := prettyJSON(body, "  "); err == nil {
			return out
		}
		return RedactText(body)
	}
	if contentType == envelope.ContentTypeForm {
		return formLines(body)
	}
	return RedactText(body)
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
				fmt.Fprintf(&b, "payload=\n%s\n", Indent(pj, "  "))
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

// Indent puts prefix before every line of s.
func Indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

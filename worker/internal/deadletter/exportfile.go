package deadletter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

// ExportLine is one line of an export file (JSON Lines).
type ExportLine struct {
	MessageID     string                `json:"message_id"`
	Body          string                `json:"body"`
	Attributes    map[string]ExportAttr `json:"attributes"`
	ReceiveCount  int                   `json:"receive_count"`
	SentTimestamp int64                 `json:"sent_timestamp"`
}

// ExportAttr is a message attribute in an export file.
type ExportAttr struct {
	DataType    string  `json:"data_type"`
	StringValue *string `json:"string_value,omitempty"`
	BinaryValue []byte  `json:"binary_value,omitempty"`
}

// WriteExport writes one ExportLine per message to w.
func WriteExport(w io.Writer, msgs []*Message) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, m := range msgs {
		line := ExportLine{MessageID: m.ID, Body: m.Body, ReceiveCount: m.ReceiveCount, Attributes: map[string]ExportAttr{}}
		if !m.SentAt.IsZero() {
			line.SentTimestamp = m.SentAt.UnixMilli()
		}
		for k, v := range m.Attrs {
			line.Attributes[k] = ExportAttr{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}

// MessageAttributes are the line's attributes as SQS takes them (nil when there are none).
func (l *ExportLine) MessageAttributes() map[string]types.MessageAttributeValue {
	if len(l.Attributes) == 0 {
		return nil
	}
	attrs := make(map[string]types.MessageAttributeValue, len(l.Attributes))
	for k, v := range l.Attributes {
		attrs[k] = types.MessageAttributeValue{DataType: aws.String(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	return attrs
}

// Message is the line read as a scanned message is (its envelope decoded, SentAt from
// sent_timestamp), for the same checks: kind, event type, event time. It has no receipt:
// it cannot be held or deleted.
func (l *ExportLine) Message() *Message {
	m := &Message{ID: l.MessageID, Body: l.Body, Attrs: l.MessageAttributes(), ReceiveCount: l.ReceiveCount}
	if m.Attrs == nil {
		m.Attrs = map[string]types.MessageAttributeValue{}
	}
	if l.SentTimestamp > 0 {
		m.SentAt = time.UnixMilli(l.SentTimestamp).UTC()
	}
	m.Env, m.EnvErr = envelope.Decode([]byte(l.Body))
	return m
}

// NumberedLine is an ExportLine with its line number in the file.
type NumberedLine struct {
	ExportLine
	Line int
}

// ReadExport parses and checks every line of an export file and reports all bad lines at
// once, so that an import sends either the whole file or nothing.
func ReadExport(r io.Reader) ([]NumberedLine, error) {
	br := bufio.NewReader(r)
	var out []NumberedLine
	var bad []string
	for n := 1; ; n++ {
		raw, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(raw)) > 0 {
			var e ExportLine
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if derr := dec.Decode(&e); derr != nil {
				bad = append(bad, fmt.Sprintf("line %d: not an export line: %v", n, derr))
			} else if problem := checkLine(&e); problem != "" {
				bad = append(bad, fmt.Sprintf("line %d: %s", n, problem))
			} else {
				out = append(out, NumberedLine{ExportLine: e, Line: n})
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

func checkLine(e *ExportLine) string {
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
	slices.Sort(names)
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

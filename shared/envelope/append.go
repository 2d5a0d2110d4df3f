package envelope

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the envelope's JSON encoding to dst. It produces the same value as
// encoding/json (fields in the same order, the same omitempty rules) without reflection and,
// when dst has room, without allocating.
func (e *Envelope) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(e.Version), 10)
	dst = appendField(dst, "id", e.ID, false)
	dst = appendField(dst, "kind", string(e.Kind), false)
	dst = appendField(dst, "team_id", e.TeamID, true)
	dst = appendField(dst, "enterprise_id", e.EnterpriseID, true)
	dst = appendField(dst, "api_app_id", e.APIAppID, true)
	dst = appendField(dst, "event_type", e.EventType, true)
	dst = appendField(dst, "event_id", e.EventID, true)
	if e.EventTime != 0 {
		dst = append(dst, `,"event_time":`...)
		dst = strconv.AppendInt(dst, e.EventTime, 10)
	}
	dst = appendField(dst, "dedupe_key", e.DedupeKey, false)
	dst = append(dst, `,"received_at":"`...)
	dst = e.ReceivedAt.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	if e.RetryNum != 0 {
		dst = append(dst, `,"retry_num":`...)
		dst = strconv.AppendInt(dst, int64(e.RetryNum), 10)
	}
	dst = appendField(dst, "retry_reason", e.RetryReason, true)
	dst = appendField(dst, "content_type", e.ContentType, false)
	dst = appendField(dst, "body", e.Body, false)
	return append(dst, '}')
}

func appendField(dst []byte, name, value string, omitEmpty bool) []byte {
	if omitEmpty && value == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return AppendString(dst, value)
}

const hexDigits = "0123456789abcdef"

// safeASCII marks the ASCII bytes that encoding/json copies into a string unescaped.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendString appends s as a JSON string. Like encoding/json it escapes quotes, backslashes,
// control characters, <, >, &, U+2028 and U+2029, and replaces invalid UTF-8 with U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

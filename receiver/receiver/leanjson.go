package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The Events API decoder of the hot path. It walks the body once, validating it as JSON the
// way encoding/json does, and copies out only the few fields the envelope needs; everything
// else (blocks, attachments, authorizations) is skipped without being built. Keys match
// exactly (Slack sends lower case). FuzzLeanDecode checks it against encoding/json.

const maxDepth = 10000 // encoding/json's nesting limit

var errSyntax = errors.New("invalid JSON")

type scanner struct {
	b []byte
	i int
}

func (s *scanner) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errSyntax, what, s.i)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str reads a string at s.i and returns its raw contents and whether it holds escapes.
func (s *scanner) str() ([]byte, bool, error) {
	if s.peek() != '"' {
		return nil, false, s.fail("expected string")
	}
	s.i++
	start, esc := s.i, false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			return raw, esc, nil
		case c == '\\':
			esc = true
			s.i++
			if s.i >= len(s.b) {
				return nil, false, s.fail("unterminated escape")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(s.b) {
					return nil, false, s.fail("short \\u escape")
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return nil, false, s.fail("bad \\u escape")
					}
				}
				s.i += 5
			default:
				return nil, false, s.fail("bad escape")
			}
		case c < 0x20:
			return nil, false, s.fail("control character in string")
		default:
			s.i++
		}
	}
	return nil, false, s.fail("unterminated string")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number reads a JSON number and returns its text.
func (s *scanner) number() ([]byte, error) {
	start := s.i
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		for isDigit(s.peek()) {
			s.i++
		}
	default:
		return nil, s.fail("bad number")
	}
	if s.peek() == '.' {
		s.i++
		if !isDigit(s.peek()) {
			return nil, s.fail("bad fraction")
		}
		for isDigit(s.peek()) {
			s.i++
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !isDigit(s.peek()) {
			return nil, s.fail("bad exponent")
		}
		for isDigit(s.peek()) {
			s.i++
		}
	}
	return s.b[start:s.i], nil
}

func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.fail("bad literal")
	}
	s.i += len(word)
	return nil
}

// skip validates and steps over one value.
func (s *scanner) skip(depth int) error {
	s.ws()
	switch c := s.peek(); {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '{':
		return s.object(depth, func(_ string) error { return s.skip(depth + 1) })
	case c == '[':
		return s.array(depth)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || isDigit(c):
		_, err := s.number()
		return err
	}
	return s.fail("unexpected character")
}

func (s *scanner) array(depth int) error {
	if depth >= maxDepth {
		return s.fail("nested too deeply")
	}
	s.i++ // [
	s.ws()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.skip(depth + 1); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("expected , or ]")
		}
	}
}

// object walks an object at s.i, calling field for each key with s.i at the value; field
// must consume the value.
func (s *scanner) object(depth int, field func(key string) error) error {
	if depth >= maxDepth {
		return s.fail("nested too deeply")
	}
	if s.peek() != '{' {
		return s.fail("expected object")
	}
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		raw, esc, err := s.str()
		if err != nil {
			return err
		}
		key := bytesToString(raw) // compared, never kept
		if esc {
			if key, err = unquote(raw); err != nil {
				return err
			}
		}
		s.ws()
		if s.peek() != ':' {
			return s.fail("expected :")
		}
		s.i++
		s.ws()
		if err := field(key); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail("expected , or }")
		}
	}
}

func unquote(raw []byte) (string, error) {
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var out string
	if err := json.Unmarshal(quoted, &out); err != nil {
		return "", fmt.Errorf("%w: %v", errSyntax, err)
	}
	return out, nil
}

// stringField reads a string (or null) into *dst.
func (s *scanner) stringField(dst *string) error {
	if s.peek() == 'n' {
		return s.literal("null") // encoding/json leaves the field as it was
	}
	raw, esc, err := s.str()
	if err != nil {
		return err
	}
	if esc {
		*dst, err = unquote(raw)
		return err
	}
	*dst = string(raw)
	return nil
}

// intField reads an integer (or null) into *dst.
func (s *scanner) intField(dst *int64, name string) error {
	if s.peek() == 'n' {
		return s.literal("null")
	}
	if c := s.peek(); c != '-' && !isDigit(c) {
		if err := s.skip(0); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s is not a number", errSyntax, name)
	}
	num, err := s.number()
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(bytesToString(num), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not an int64", errSyntax, name)
	}
	*dst = n
	return nil
}

// decodeOuterEvent fills o from an Events API body, as json.Unmarshal(body, o) would with
// exact key matching, in one pass.
func decodeOuterEvent(body []byte, o *outerEvent) error {
	s := scanner{b: body}
	s.ws()
	var err error
	if s.peek() == 'n' {
		err = s.literal("null") // as encoding/json: nothing set
	} else {
		err = s.object(0, func(key string) error {
			switch key {
			case "type":
				return s.stringField(&o.Type)
			case "challenge":
				return s.stringField(&o.Challenge)
			case "team_id":
				return s.stringField(&o.TeamID)
			case "enterprise_id":
				return s.stringField(&o.EnterpriseID)
			case "api_app_id":
				return s.stringField(&o.APIAppID)
			case "event_id":
				return s.stringField(&o.EventID)
			case "event_time":
				return s.intField(&o.EventTime, "event_time")
			case "event":
				if s.peek() == 'n' {
					return s.literal("null")
				}
				return s.object(1, func(key string) error {
					switch key {
					case "type":
						return s.stringField(&o.Event.Type)
					case "channel":
						return s.stringField(&o.Event.Channel)
					case "ts":
						return s.stringField(&o.Event.TS)
					}
					return s.skip(2)
				})
			}
			return s.skip(1)
		})
	}
	if err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return s.fail("data after the top-level value")
	}
	return nil
}

package receiver

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// oracle decodes the same fields with encoding/json, matching keys exactly.
func oracle(body []byte) (outerEvent, error) {
	var o outerEvent
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return o, err
	}
	if top == nil {
		return o, nil
	}
	fields := map[string]any{"type": &o.Type, "challenge": &o.Challenge, "team_id": &o.TeamID, "enterprise_id": &o.EnterpriseID,
		"api_app_id": &o.APIAppID, "event_id": &o.EventID, "event_time": &o.EventTime}
	for k, dst := range fields {
		if raw, ok := top[k]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return o, err
			}
		}
	}
	if raw, ok := top["event"]; ok && string(raw) != "null" {
		var ev map[string]json.RawMessage
		if err := json.Unmarshal(raw, &ev); err != nil {
			return o, err
		}
		for k, dst := range map[string]*string{"type": &o.Event.Type, "channel": &o.Event.Channel, "ts": &o.Event.TS} {
			if raw, ok := ev[k]; ok {
				if err := json.Unmarshal(raw, dst); err != nil {
					return o, err
				}
			}
		}
	}
	return o, nil
}

func TestLeanDecodeMatchesEncodingJSON(t *testing.T) {
	for _, body := range leanSeeds {
		checkLean(t, []byte(body))
	}
}

func checkLean(t *testing.T, body []byte) {
	t.Helper()
	var got outerEvent
	err := decodeOuterEvent(body, &got)
	want, werr := oracle(body)
	if (err == nil) != (werr == nil) {
		t.Fatalf("body %q: lean err %v, encoding/json err %v", body, err, werr)
	}
	if err == nil && got != want {
		t.Fatalf("body %q:\n lean %+v\n json %+v", body, got, want)
	}
}

var leanSeeds = []string{
	mentionBody, realMention,
	`{"type":"url_verification","challenge":"abc"}`,
	`{"type":"event_callback","event":null,"event_id":"E"}`,
	`{"type":"a\u0062c","team_id":"T\"1","ev\u0065nt_id":"E\\1"}`,
	`{"event_time":-12,"event_time":13}`,
	`{"event_time":1.5}`, `{"event_time":"1"}`, `{"event_time":1e3}`, `{"event_time":99999999999999999999}`,
	`{"type":1}`, `{"type":true}`, `{"event":[]}`, `{"event":{"type":{"x":1}}}`,
	`{"a":[1,2,{"b":[true,false,null]}],"type":"x"}`,
	`{}`, ` { } `, `[]`, `null`, `"x"`, `{"a":1}x`, `{"a":1,}`, `{"a" 1}`, `{"a":01}`, `{"a":-}`, `{"a":1.}`,
	`{"a":"\x"}`, `{"a":"` + "\x01" + `"}`, `{"a":"\u12"}`, `{"a":tru}`, `{`, `{"a":[1,]}`, `{"a":[1 2]}`,
	strings.Repeat("[", 20) + strings.Repeat("]", 20),
	`{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
}

// FuzzLeanDecode: for any UTF-8 input the lean decoder agrees with encoding/json on validity and
// on every field it extracts.
func FuzzLeanDecode(f *testing.F) {
	for _, s := range leanSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if !utf8.ValidString(body) {
			return // Handle answers 400 before decoding; encoding/json would substitute U+FFFD
		}
		checkLean(t, []byte(body))
	})
}

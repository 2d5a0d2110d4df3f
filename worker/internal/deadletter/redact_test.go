package deadletter

import "testing"

func TestRedaction(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"invalid_auth with xoxb-123-456-abc":      "invalid_auth with [redacted]",
		"xapp-1-A1-2-ff and xoxp-1":               "[redacted] and [redacted]",
		"no token here; xoxo-not-a-token":         "no token here; xoxo-not-a-token",
		"https://hooks.slack.com/actions/T/1/SEC": "https://hooks.slack.com/actions/T/1/SEC",
	} {
		if got := RedactText(in); got != want {
			t.Errorf("RedactText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := redactValue("response_url", "https://hooks.slack.com/actions/T/1/SEC"); got != "https://hooks.slack.com/[redacted]" {
		t.Errorf("response_url: %q", got)
	}
	got, err := prettyJSON(`{"b":1,"a":[],"token":42,"o":{},"s":"<@U1>","n":null,"t":true}`, "  ")
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"b\": 1,\n  \"a\": [],\n  \"token\": \"[redacted]\",\n  \"o\": {},\n  \"s\": \"<@U1>\",\n  \"n\": null,\n  \"t\": true\n}"
	if got != want {
		t.Errorf("prettyJSON:\n%s\nwant\n%s", got, want)
	}
	if _, err := prettyJSON(`{"a":1} x`, "  "); err == nil {
		t.Error("prettyJSON accepted trailing data")
	}
}

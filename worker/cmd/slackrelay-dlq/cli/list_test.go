package cli

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

func seedThree(t *testing.T, e *env) (mention, ask, button string) {
	t.Helper()
	mention, _ = e.seed(t, dlqMsg{eventType: "app_mention", team: "T1", age: 2 * time.Hour, class: envelope.FailureClassPermanent,
		reason: "chat.postMessage: not_in_channel", handler: "mention"})
	ask, _ = e.seed(t, dlqMsg{kind: envelope.KindSlashCommand, eventType: "/ask", team: "T2", age: 5 * time.Minute,
		class: envelope.FailureClassExhausted, reason: "llm: context deadline exceeded (Timeout)", handler: "ask",
		ctype: envelope.ContentTypeForm, body: "command=%2Fask&text=hi&team_id=T2&token=verif"})
	button, _ = e.seed(t, dlqMsg{kind: envelope.KindInteraction, eventType: "block_actions", team: "T1", age: time.Minute,
		class: envelope.FailureClassPermanent, reason: "unknown action id", handler: "buttons",
		ctype: envelope.ContentTypeForm, body: "payload=%7B%22type%22%3A%22block_actions%22%7D"})
	return mention, ask, button
}

func TestListRowsFiltersAndVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mention, ask, button := seedThree(t, e)

	out, _, err := e.run(t, e.deps(), "list")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "MESSAGE ID", "RECEIVES", "EVENT AGE", mention, ask, button, "app_mention", "/ask", "block_actions",
		"not_in_channel", "permanent", "exhausted", "mention", "2h0")

	for _, tc := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"--team", "T1"}, []string{mention, button}, []string{ask}},
		{[]string{"--event-type", "/ask"}, []string{ask}, []string{mention, button}},
		{[]string{"--reason", "TIMEOUT"}, []string{ask}, []string{mention, button}},
		{[]string{"--kind", "interaction"}, []string{button}, []string{mention, ask}},
		{[]string{"--class", "permanent"}, []string{mention, button}, []string{ask}},
		{[]string{"--older-than", "1h"}, []string{mention}, []string{ask, button}},
		{[]string{"--newer-than", "3m"}, []string{button}, []string{mention, ask}},
		{[]string{"--team", "T1", "--newer-than", "1h"}, []string{button}, []string{mention, ask}},
	} {
		out, _, err := e.run(t, e.deps(), append([]string{"list"}, tc.args...)...)
		if err != nil {
			t.Fatalf("list %v: %v", tc.args, err)
		}
		mustContain(t, out, tc.want...)
		mustNotContain(t, out, tc.not...)
	}

	out, _, err = e.run(t, e.deps(), "list", "--json", "--team", "T2")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("list --json: want 1 line, got %q", out)
	}
	var j messageJSON
	if err := json.Unmarshal([]byte(lines[0]), &j); err != nil {
		t.Fatal(err)
	}
	if j.MessageID != ask || j.Kind != "slash_command" || j.EventType != "/ask" || j.TeamID != "T2" ||
		j.FailureClass != "exhausted" || j.FailedHandler != "ask" || j.EnvelopeID == "" || j.EventAgeSeconds == nil ||
		*j.EventAgeSeconds < 290 || j.Attributes[envelope.AttrRetryNum] != "0" {
		t.Errorf("list --json: %+v", j)
	}

	// Peeking consumed nothing: all three are visible at once, none in flight.
	if v, nv := counts(t, e.c, e.dlq); v != 3 || nv != 0 {
		t.Fatalf("after list: visible %d, in flight %d; want 3, 0", v, nv)
	}
	got := drain(t, e.c, e.dlq)
	if len(got) != 3 {
		t.Fatalf("after list: received %d messages at once, want 3", len(got))
	}
	// fauxqs, like SQS, counts every receive: the 10 scans above each received every message
	// once, and drain once more. So the tool does not hide that a peek is a receive; the
	// operator docs say so.
	for id, m := range got {
		n, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
		if n != 11 {
			t.Errorf("message %s: ApproximateReceiveCount %d, want 11 (10 peeks + this receive)", id, n)
		}
	}
}

func TestShowRedactsSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	eventBody := `{"token":"verification-token-123","team_id":"T1","event":{"type":"app_mention",` +
		`"text":"<@U1> my token is xoxb-1111-2222-abcdef please"},"authorizations":[{"bot_token":"xoxp-9-9"}]}`
	mention, _ := e.seed(t, dlqMsg{eventType: "app_mention", team: "T1", class: "permanent", reason: "invalid_auth for xoxb-1111-2222-abcdef",
		handler: "mention", body: eventBody})
	payload := `{"type":"block_actions","token":"verif-xyz","response_url":"https://hooks.slack.com/actions/T1/123/SECRETPATH","trigger_id":"13345.98.abc","user":{"id":"U1"}}`
	form := "payload=" + url.QueryEscape(payload)
	button, _ := e.seed(t, dlqMsg{kind: envelope.KindInteraction, eventType: "block_actions", team: "T1", class: "permanent",
		reason: "boom", handler: "buttons", ctype: envelope.ContentTypeForm, body: form})
	ask, _ := e.seed(t, dlqMsg{kind: envelope.KindSlashCommand, eventType: "/ask", team: "T1", class: "permanent", reason: "x",
		handler: "ask", ctype: envelope.ContentTypeForm,
		body: "token=verif&team_id=T1&command=%2Fask&text=what%27s+up&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1%2F1%2FSECRETCMD&trigger_id=1.2.3"})

	out, _, err := e.run(t, e.deps(), "show", mention)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "Message", mention, "Attributes", "FailureReason (String): invalid_auth for [redacted]", "Envelope",
		"app_mention", "dedupe_key:", `"token": "[redacted]"`, `"text": "<@U1> my token is [redacted] please"`,
		`"bot_token": "[redacted]"`, "\n    \"event\": {")
	mustNotContain(t, out, "xoxb-", "xoxp-", "verification-token-123")

	out, _, err = e.run(t, e.deps(), "show", button)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "payload=", `"type": "block_actions"`, `"response_url": "https://hooks.slack.com/[redacted]"`,
		`"trigger_id": "13345.98.abc"`, `"token": "[redacted]"`)
	mustNotContain(t, out, "SECRETPATH", "verif-xyz")

	out, _, err = e.run(t, e.deps(), "show", ask)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "command=/ask", "text=what's up", "token=[redacted]", "response_url=https://hooks.slack.com/[redacted]", "trigger_id=1.2.3")
	mustNotContain(t, out, "SECRETCMD", "token=verif")

	_, _, err = e.run(t, e.deps(), "show", "no-such-id")
	if err == nil || ExitCode(err) != 1 || !strings.Contains(err.Error(), "not found") {
		t.Errorf("show unknown id: %v", err)
	}
	if v, nv := counts(t, e.c, e.dlq); v != 3 || nv != 0 {
		t.Errorf("after show: visible %d, in flight %d; want 3, 0", v, nv)
	}
}

func TestStatsAndStackOutputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedThree(t, e)
	deps := e.deps()
	deps.CFN = fakeCFN{"slackrelay": {"EventsQueueUrl": e.queue, "DeadLetterQueueUrl": e.dlq}}
	var out, errb strings.Builder
	if err := RunWith(t.Context(), deps, []string{"stats", "--stack", "slackrelay", "--json"}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	var s statsJSON
	if err := json.Unmarshal([]byte(out.String()), &s); err != nil {
		t.Fatal(err)
	}
	if s.Events == nil || s.Events.URL != e.queue || s.Events.Visible != 0 || s.DLQ.URL != e.dlq || s.DLQ.Visible != 3 ||
		s.Peeked != 3 || !s.PeekComplete || s.OldestEventSeconds == nil || *s.OldestEventSeconds < 7190 || s.OldestInDLQSeconds == nil {
		t.Errorf("stats: %s", out.String())
	}
	out.Reset()
	if err := RunWith(t.Context(), deps, []string{"stats", "--stack", "slackrelay"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	mustContain(t, out.String(), "QUEUE", "events", "dlq", "oldest DLQ message", "event 2h0")
	if v, nv := counts(t, e.c, e.dlq); v != 3 || nv != 0 {
		t.Errorf("after stats: visible %d, in flight %d; want 3, 0", v, nv)
	}

	err := RunWith(t.Context(), deps, []string{"list", "--stack", "nope"}, &out, &errb)
	if err == nil || ExitCode(err) != 1 || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown stack: %v", err)
	}
}

func TestStatsOfAnEmptyDLQ(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out, _, err := e.run(t, e.deps(), "stats")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "dlq", "DLQ is empty")
	out, _, err = e.run(t, e.deps(), "stats", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var s statsJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.DLQ == nil || s.DLQ.Visible+s.DLQ.NotVisible+s.DLQ.Delayed != 0 || s.Peeked != 0 || !s.PeekComplete || s.OldestInDLQSeconds != nil {
		t.Errorf("stats --json of an empty DLQ: got %s, want no messages, nothing peeked, peek complete", out)
	}
}

// cancellingSQS cancels the run's context during the second receive, as Ctrl-C would.
type cancellingSQS struct {
	SQSAPI
	cancel   func()
	receives int
}

func (c *cancellingSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	c.receives++
	if c.receives == 2 {
		c.cancel()
		return nil, ctx.Err()
	}
	return c.SQSAPI.ReceiveMessage(ctx, in, o...)
}

func TestListInterruptedRestoresVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for range 12 {
		e.seed(t, dlqMsg{eventType: "app_mention", team: "T1", class: "exhausted", reason: "503", handler: "mention"})
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	deps := e.deps()
	deps.SQS = &cancellingSQS{SQSAPI: e.c, cancel: cancel}
	var out, errb strings.Builder
	err := RunWith(ctx, deps, []string{"list", "--dlq-url", e.dlq}, &out, &errb)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want the cancellation, got %v", err)
	}
	if v, nv := counts(t, e.c, e.dlq); v != 12 || nv != 0 {
		t.Errorf("after an interrupted list: visible %d, in flight %d; want 12, 0", v, nv)
	}
}

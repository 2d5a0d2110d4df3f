package cli

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

func TestReplayDryRunMovesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mention, ask, button := seedThree(t, e)
	out, _, err := e.run(t, e.deps(), "replay", "--all", "--allow-stale")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "would replay "+mention, "would replay "+ask, "would replay "+button, "dry run", "pass --yes")
	if v, _ := counts(t, e.c, e.queue); v != 0 {
		t.Errorf("dry run sent %d message(s) to the events queue", v)
	}
	if v, nv := counts(t, e.c, e.dlq); v != 3 || nv != 0 {
		t.Errorf("after dry run: DLQ visible %d, in flight %d; want 3, 0", v, nv)
	}
}

func TestReplayByIDMovesExactlyThatOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, ask, _ := seedThree(t, e)
	out, _, err := e.run(t, e.deps(), "replay", "--id", ask, "--yes")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "replayed "+ask, "replayed 1, skipped stale 0, failed 0")

	got := drain(t, e.c, e.queue)
	if len(got) != 1 {
		t.Fatalf("events queue has %d messages, want 1", len(got))
	}
	for _, msg := range got {
		env, err := envelope.Decode([]byte(aws.ToString(msg.Body)))
		if err != nil || env.EventType != "/ask" || env.Body != "command=%2Fask&text=hi&team_id=T2&token=verif" {
			t.Errorf("replayed body: %v %q", err, aws.ToString(msg.Body))
		}
		for name, want := range map[string]string{envelope.AttrKind: "slash_command", envelope.AttrEventType: "/ask",
			envelope.AttrTeamID: "T2", envelope.AttrRetryNum: "0", envelope.AttrReplayCount: "1"} {
			if v, ok := attrString(msg, name); !ok || v != want {
				t.Errorf("attribute %s = %q (present %v), want %q", name, v, ok, want)
			}
		}
		if dt := aws.ToString(msg.MessageAttributes[envelope.AttrReplayCount].DataType); dt != "Number" {
			t.Errorf("ReplayCount data type %q", dt)
		}
		for name := range deadletter.FailureAttrs {
			if _, ok := msg.MessageAttributes[name]; ok {
				t.Errorf("replayed message still has %s", name)
			}
		}
		if len(msg.MessageAttributes) != 5 {
			t.Errorf("replayed attributes: %v", msg.MessageAttributes)
		}
	}
	dlq := drain(t, e.c, e.dlq)
	if len(dlq) != 2 {
		t.Fatalf("DLQ has %d messages, want 2", len(dlq))
	}
	if _, ok := dlq[ask]; ok {
		t.Error("the replayed message is still in the DLQ")
	}
}

// failingSQS fails SendMessage from call number failFrom on (1-based).
type failingSQS struct {
	SQSAPI
	calls    atomic.Int32
	failFrom int32
}

func (f *failingSQS) SendMessage(ctx context.Context, in *sqs.SendMessageInput, o ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if f.calls.Add(1) >= f.failFrom {
		return nil, errors.New("injected: service unavailable")
	}
	return f.SQSAPI.SendMessage(ctx, in, o...)
}

func TestReplayFailureHalfWayLosesNothing(t *testing.T) {
	t.Parallel()
	for _, keepGoing := range []bool{false, true} {
		t.Run(map[bool]string{false: "stop", true: "keep-going"}[keepGoing], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			bodies := map[string]bool{}
			for range 6 {
				_, body := e.seed(t, dlqMsg{eventType: "app_mention", team: "T1", class: "exhausted", reason: "503", handler: "mention"})
				bodies[body] = true
			}
			deps := e.deps()
			deps.SQS = &failingSQS{SQSAPI: e.c, failFrom: 4}
			args := []string{"replay", "--all", "--yes"}
			if keepGoing {
				args = append(args, "--keep-going")
			}
			out, _, err := e.run(t, deps, args...)
			var pe *PartialError
			if !errors.As(err, &pe) || ExitCode(err) != 3 {
				t.Fatalf("want a partial failure, got %v", err)
			}
			if keepGoing {
				mustContain(t, out, "replayed 3, skipped stale 0, failed 3")
			} else {
				mustContain(t, out, "replayed 3, skipped stale 0, failed 1, not attempted 2")
			}
			mustContain(t, err.Error(), "injected: service unavailable", "still in the DLQ")
			if v, nv := counts(t, e.c, e.dlq); v != 3 || nv != 0 {
				t.Errorf("DLQ: visible %d, in flight %d; want 3, 0", v, nv)
			}
			seen := map[string]int{}
			for _, m := range drain(t, e.c, e.queue) {
				seen[aws.ToString(m.Body)]++
			}
			for _, m := range drain(t, e.c, e.dlq) {
				seen[aws.ToString(m.Body)]++
			}
			if len(seen) != 6 {
				t.Errorf("found %d distinct bodies across both queues, want 6", len(seen))
			}
			for b, n := range seen {
				if !bodies[b] || n != 1 {
					t.Errorf("body seen %d times (seeded %v): %s", n, bodies[b], b)
				}
			}
		})
	}
}

func TestReplayStaleGuard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old, _ := e.seed(t, dlqMsg{eventType: "app_mention", team: "T1", age: 3 * time.Hour, class: "exhausted", reason: "503", handler: "mention"})
	fresh, _ := e.seed(t, dlqMsg{eventType: "app_mention", team: "T1", age: 10 * time.Minute, class: "exhausted", reason: "503", handler: "mention"})

	out, errs, err := e.run(t, e.deps(), "replay", "--team", "T1", "--yes")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "replayed "+fresh, "replayed 1, skipped stale 1, failed 0")
	mustContain(t, errs, "skipping stale "+old, "--allow-stale")
	if v, _ := counts(t, e.c, e.queue); v != 1 {
		t.Errorf("events queue: %d, want 1", v)
	}
	if v, nv := counts(t, e.c, e.dlq); v != 1 || nv != 0 {
		t.Errorf("DLQ: visible %d, in flight %d; want 1, 0", v, nv)
	}

	// A wider --max-age lets it through, and so does --allow-stale.
	out, _, err = e.run(t, e.deps(), "replay", "--id", old, "--max-age", "4h")
	if err != nil || !strings.Contains(out, "would replay "+old) {
		t.Errorf("--max-age 4h dry run: %v\n%s", err, out)
	}
	out, _, err = e.run(t, e.deps(), "replay", "--id", old, "--allow-stale", "--yes")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "replayed 1, skipped stale 0, failed 0")
	if v, nv := counts(t, e.c, e.dlq); v != 0 || nv != 0 {
		t.Errorf("DLQ after --allow-stale: visible %d, in flight %d", v, nv)
	}
	if v, _ := counts(t, e.c, e.queue); v != 2 {
		t.Errorf("events queue: %d, want 2", v)
	}
}

func TestReplayTwiceCountsAndProgressBar(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id, _ := e.seed(t, dlqMsg{eventType: "app_mention", team: "T1", class: "permanent", reason: "x", handler: "mention"})
	// A message that was replayed before and failed again carries ReplayCount 1.
	if _, _, err := e.run(t, e.deps(), "replay", "--id", id, "--yes"); err != nil {
		t.Fatal(err)
	}
	for _, m := range drain(t, e.c, e.queue) {
		attrs := m.MessageAttributes
		attrs[envelope.AttrFailureReason] = strAttr("again")
		if _, err := e.c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(e.dlq), MessageBody: m.Body, MessageAttributes: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	deps := e.deps()
	deps.IsTerminal = true
	out, _, err := e.run(t, deps, "replay", "--reason", "again", "--yes")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "\r[##############################] 1/1\n", "replayed 1, skipped stale 0, failed 0")
	for _, m := range drain(t, e.c, e.queue) {
		if v, _ := attrString(m, envelope.AttrReplayCount); v != "2" {
			t.Errorf("ReplayCount %q, want 2", v)
		}
	}
}

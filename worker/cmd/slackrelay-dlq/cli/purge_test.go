package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

// arrivingSQS sends one more dead letter to the DLQ the first time the tool deletes
// anything (PurgeQueue, DeleteMessage, DeleteMessageBatch), before that call runs: a message
// the worker dead-letters while purge is at work. SQS's PurgeQueue deletes messages that
// arrive up to 60 seconds after it is called, so such a message was deleted unexported.
type arrivingSQS struct {
	SQSAPI
	dlq, body string
	once      sync.Once
	id        string
}

func (a *arrivingSQS) arrive(ctx context.Context) {
	a.once.Do(func() {
		out, err := a.SQSAPI.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(a.dlq), MessageBody: aws.String(a.body)})
		if err == nil {
			a.id = aws.ToString(out.MessageId)
		}
	})
}

func (a *arrivingSQS) PurgeQueue(ctx context.Context, in *sqs.PurgeQueueInput, o ...func(*sqs.Options)) (*sqs.PurgeQueueOutput, error) {
	a.arrive(ctx)
	return a.SQSAPI.PurgeQueue(ctx, in, o...)
}

func (a *arrivingSQS) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	a.arrive(ctx)
	return a.SQSAPI.DeleteMessage(ctx, in, o...)
}

func (a *arrivingSQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	a.arrive(ctx)
	return a.SQSAPI.DeleteMessageBatch(ctx, in, o...)
}

// visibleBodies drains the DLQ and returns the bodies it held, sorted.
func visibleBodies(t *testing.T, e *env) []string {
	t.Helper()
	var out []string
	for _, m := range drain(t, e.c, e.dlq) {
		out = append(out, aws.ToString(m.Body))
	}
	slices.Sort(out)
	return out
}

// export exports the DLQ to a temporary file and returns its path.
func (e *env) export(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "dlq.jsonl")
	if _, _, err := e.run(t, e.deps(), "export", "--out", file); err != nil {
		t.Fatal(err)
	}
	return file
}

// A dead letter that arrives while purge deletes is not deleted: purge deletes message by
// message what its scan received and the export saved, and says that the DLQ is not empty.
func TestPurgeKeepsADeadLetterThatArrivesDuringIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedThree(t, e)
	e.export(t)
	deps := e.deps()
	late := &arrivingSQS{SQSAPI: e.c, dlq: e.dlq, body: `{"late":true}`}
	deps.SQS = late
	out, _, err := e.run(t, deps, "purge", "--yes")
	if late.id == "" {
		t.Fatal("the late dead letter was not sent")
	}
	if got := visibleBodies(t, e); !slices.Equal(got, []string{late.body}) {
		t.Fatalf("DLQ after the purge holds %q, want only the dead letter that arrived during it", got)
	}
	if ExitCode(err) != ExitPartial {
		t.Fatalf("purge with a dead letter arriving: got %v (exit %d), want exit 3", err, ExitCode(err))
	}
	mustContain(t, out, "purged 3 message(s)")
	mustContain(t, err.Error(), "partial purge", "1 more message(s) than this purge left", "not deleted")
}

// Messages the export did not save stay in the DLQ, visible at once, and are named; the
// rest is deleted; the purge is reported as partial (exit 3), never as complete.
func TestPurgeLeavesWhatTheExportDidNotSave(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedThree(t, e)
	e.export(t)
	var lateIDs, lateBodies []string
	for _, team := range []string{"T8", "T9"} {
		id, body := e.seed(t, dlqMsg{eventType: "app_mention", team: team, class: "exhausted", reason: "503", handler: "mention"})
		lateIDs, lateBodies = append(lateIDs, id), append(lateBodies, body)
	}
	slices.Sort(lateBodies)
	out, _, err := e.run(t, e.deps(), "purge", "--yes")
	if ExitCode(err) != ExitPartial {
		t.Fatalf("purge with 2 messages newer than the export: got %v (exit %d), want exit 3", err, ExitCode(err))
	}
	mustContain(t, out, "purged 3 message(s)")
	mustContain(t, err.Error(), "partial purge", "2 message(s) not in its last export", lateIDs[0], lateIDs[1], "export again")
	if v, nv := counts(t, e.c, e.dlq); v != 2 || nv != 0 {
		t.Errorf("DLQ after the purge: visible %d, in flight %d; want the 2 late ones visible at once", v, nv)
	}
	if got := visibleBodies(t, e); !slices.Equal(got, lateBodies) {
		t.Errorf("DLQ after the purge holds %q, want the 2 late ones", got)
	}
}

// A message whose id is in the export but whose body is not the one exported is not deleted.
func TestPurgeMatchesTheBodyDigestToo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mention, _, _ := seedThree(t, e)
	e.export(t)
	// The record now names another body for the mention.
	path := recordPath(t, e)
	var rec map[string]any
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	rec["body_sha256"].(map[string]any)[mention] = deadletter.BodyDigest("another body")
	raw, _ = json.Marshal(rec)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := e.run(t, e.deps(), "purge", "--yes")
	if ExitCode(err) != ExitPartial {
		t.Fatalf("got %v (exit %d), want exit 3", err, ExitCode(err))
	}
	mustContain(t, out, "purged 2 message(s)")
	mustContain(t, err.Error(), "1 message(s) whose body differs from the exported one", mention)
	if v, _ := counts(t, e.c, e.dlq); v != 1 {
		t.Errorf("DLQ after the purge: %d visible, want the mention", v)
	}
}

// recordPath is the one export record under e's state directory.
func recordPath(t *testing.T, e *env) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(e.stateDir, "exports", "*.json"))
	if err != nil || len(files) != 1 {
		t.Fatalf("export records: %v, %v; want one", files, err)
	}
	return files[0]
}

// An export record from an earlier slackrelay-dlq names ids only: purge refuses on it.
func TestPurgeRefusesARecordWithoutDigests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedThree(t, e)
	e.export(t)
	path := recordPath(t, e)
	var rec map[string]any
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	delete(rec, "body_sha256")
	raw, _ = json.Marshal(rec)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.run(t, e.deps(), "purge", "--yes")
	if ExitCode(err) != ExitFailure {
		t.Fatalf("got %v (exit %d), want a refusal (exit 1)", err, ExitCode(err))
	}
	mustContain(t, err.Error(), "refusing to purge", "body digests", "export again", "nothing was deleted")
	if v, nv := counts(t, e.c, e.dlq); v != 3 || nv != 0 {
		t.Errorf("refused purge changed the DLQ: visible %d, in flight %d", v, nv)
	}
}

// Another reader holds an exported message during the purge: purge deletes what it holds,
// says what it could not see, and exits 3; the held message is still there.
func TestPurgeWithAMessageHeldElsewhereIsPartial(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedThree(t, e)
	e.export(t)
	held, err := e.c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.dlq), MaxNumberOfMessages: 1, VisibilityTimeout: 60})
	if err != nil || len(held.Messages) != 1 {
		t.Fatalf("other reader: %v", err)
	}
	out, _, err := e.run(t, e.deps(), "purge", "--yes", "--settle", "1s")
	if ExitCode(err) != ExitPartial {
		t.Fatalf("got %v (exit %d), want exit 3", err, ExitCode(err))
	}
	mustContain(t, out, "purged 2 message(s)")
	mustContain(t, err.Error(), "partial purge", "1 in flight with another reader")
	if v, nv := counts(t, e.c, e.dlq); v != 0 || nv != 1 {
		t.Errorf("DLQ after the purge: visible %d, in flight %d; want the held one only", v, nv)
	}
}

// lastBatchFailingSQS fails every DeleteMessageBatch call of fewer than ten messages (the
// last batch of a purge), whatever order the calls run in.
type lastBatchFailingSQS struct{ SQSAPI }

func (f lastBatchFailingSQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	if len(in.Entries) < 10 {
		return nil, errors.New("injected: service unavailable")
	}
	return f.SQSAPI.DeleteMessageBatch(ctx, in, o...)
}

// Deletes that fail leave their messages in the DLQ, visible again at once, and make the
// purge partial.
func TestPurgeWithFailedDeletesIsPartial(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.seedMany(t, "dead", 15)
	e.export(t)
	deps := e.deps()
	deps.SQS = lastBatchFailingSQS{e.c}
	out, _, err := e.run(t, deps, "purge", "--yes")
	if ExitCode(err) != ExitPartial {
		t.Fatalf("got %v (exit %d), want exit 3", err, ExitCode(err))
	}
	mustContain(t, out, "purged 10 message(s)")
	mustContain(t, err.Error(), "partial purge", "could not delete 5 message(s)", "injected: service unavailable")
	if v, nv := counts(t, e.c, e.dlq); v != 5 || nv != 0 {
		t.Errorf("DLQ after the purge: visible %d, in flight %d; want the 5 not deleted, visible at once", v, nv)
	}
	// Once SQS is back, the same export lets the rest go.
	if out, _, err := e.run(t, e.deps(), "purge", "--yes"); err != nil {
		t.Fatal(err)
	} else {
		mustContain(t, out, "purged 5 message(s)")
	}
	waitEmpty(t, e)
}

// An empty DLQ: nothing to do, exit 0.
func TestPurgeOfAnEmptyDLQ(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.export(t)
	out, _, err := e.run(t, e.deps(), "purge", "--yes")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "nothing to purge")
	if strings.Contains(out, "purged") {
		t.Errorf("reports a purge of an empty DLQ: %s", out)
	}
}

// A large DLQ is purged message by message in batches of ten: all of it, exit 0, and a
// dead letter sent right after the scan is still there.
func TestLargeQueuePurge(t *testing.T) {
	t.Parallel()
	const n = 2000
	e := newEnv(t)
	e.seedMany(t, "dead", n)
	e.export(t)
	deps := e.deps()
	late := &arrivingSQS{SQSAPI: e.c, dlq: e.dlq, body: "late"}
	deps.SQS = late
	start := time.Now()
	out, _, err := e.run(t, deps, "purge", "--yes")
	t.Logf("purge of %d messages: %.2f s", n, time.Since(start).Seconds())
	if ExitCode(err) != ExitPartial {
		t.Fatalf("got %v (exit %d), want exit 3 for the late dead letter", err, ExitCode(err))
	}
	mustContain(t, out, "purged 2000 message(s)")
	if got := visibleBodies(t, e); !slices.Equal(got, []string{"late"}) {
		t.Fatalf("DLQ after the purge holds %d message(s), want only the late one", len(got))
	}
}

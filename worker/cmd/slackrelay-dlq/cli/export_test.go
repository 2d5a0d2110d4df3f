package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/internal/deadletter"
)

// snapshot is a queue's content as sorted "body|attributes" strings.
func snapshot(t *testing.T, msgs map[string]types.Message) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		var attrs []string
		for k, v := range m.MessageAttributes {
			attrs = append(attrs, k+"("+aws.ToString(v.DataType)+")="+aws.ToString(v.StringValue))
		}
		sort.Strings(attrs)
		out = append(out, aws.ToString(m.Body)+"|"+strings.Join(attrs, ","))
	}
	sort.Strings(out)
	return out
}

func TestExportPurgeImportRestores(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedThree(t, e)
	before := drain(t, e.c, e.dlq)
	// Make them visible again for the export.
	for _, m := range before {
		if _, err := e.c.ChangeMessageVisibility(t.Context(), changeVis(e.dlq, m.ReceiptHandle)); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "dlq.jsonl")
	if _, errs, err := e.run(t, e.deps(), "export", "--out", file); err != nil {
		t.Fatal(err)
	} else {
		mustContain(t, errs, "exported 3 message(s)")
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"message_id", "body", "attributes", "receive_count", "sent_timestamp"} {
			if _, ok := line[k]; !ok {
				t.Errorf("export line lacks %s: %s", k, sc.Text())
			}
		}
		attr := line["attributes"].(map[string]any)[envelope.AttrRetryNum].(map[string]any)
		if attr["data_type"] != "Number" || attr["string_value"] != "0" {
			t.Errorf("RetryNum exported as %v", attr)
		}
		n++
	}
	f.Close()
	if n != 3 {
		t.Fatalf("export wrote %d lines, want 3", n)
	}
	if v, nv := counts(t, e.c, e.dlq); v != 3 || nv != 0 {
		t.Fatalf("export changed the DLQ: visible %d, in flight %d", v, nv)
	}

	if out, _, err := e.run(t, e.deps(), "purge", "--yes"); err != nil {
		t.Fatal(err)
	} else {
		mustContain(t, out, "purged")
	}
	waitEmpty(t, e)

	out, _, err := e.run(t, e.deps(), "import", "--in", file)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "imported 3 message(s)")
	after := drain(t, e.c, e.dlq)
	b, a := snapshot(t, before), snapshot(t, after)
	if strings.Join(b, "\n") != strings.Join(a, "\n") {
		t.Errorf("import did not restore the messages:\nbefore %q\nafter  %q", b, a)
	}
}

func waitEmpty(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, nv := counts(t, e.c, e.dlq)
		if v == 0 && nv == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("DLQ not empty after purge: %d, %d", v, nv)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestImportRejectsBadFileAndSendsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "bad.jsonl")
	good := `{"message_id":"a","body":"{}","attributes":{"Kind":{"data_type":"String","string_value":"event"}},"receive_count":1,"sent_timestamp":1}`
	content := good + "\n" +
		"not json\n" +
		"\n" +
		good + "\n" +
		`{"message_id":"b","body":"","attributes":{}}` + "\n" +
		`{"message_id":"c","body":"x","attributes":{"A":{"data_type":"Blob","string_value":"1"}}}` + "\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.run(t, e.deps(), "import", "--in", file)
	if err == nil || ExitCode(err) != 1 {
		t.Fatalf("import of a bad file: %v", err)
	}
	mustContain(t, err.Error(), "3 bad line(s)", "line 2:", "line 5: empty body", "line 6: attribute A", "nothing was sent")
	mustNotContain(t, err.Error(), "line 1:", "line 4:")
	if v, _ := counts(t, e.c, e.dlq); v != 0 {
		t.Errorf("a bad file sent %d message(s)", v)
	}
	// --to events sends to the events queue, stale-guarded: the line reached the DLQ in 1970.
	if err := os.WriteFile(file, []byte(good+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, err := e.run(t, e.deps(), "import", "--in", file, "--to", "events"); err != nil {
		t.Fatal(err)
	} else {
		mustContain(t, out, "imported 0 message(s)", "skipped stale 1")
	}
	if _, _, err := e.run(t, e.deps(), "import", "--in", file, "--to", "events", "--allow-stale"); err != nil {
		t.Fatal(err)
	}
	if v, _ := counts(t, e.c, e.queue); v != 1 {
		t.Errorf("events queue: %d, want 1", v)
	}
}

func TestPurgeNeedsExportAndConfirmation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedThree(t, e)
	deps := e.deps()
	// Without an export, purge refuses before it asks anything.
	_, errs, err := e.run(t, deps, "purge", "--yes")
	if err == nil || ExitCode(err) != ExitFailure {
		t.Fatalf("purge without an export: got %v (exit %d), want a refusal (exit 1)", err, ExitCode(err))
	}
	mustContain(t, err.Error(), "refusing to purge", "no export of it is recorded", "nothing was deleted", "--force")
	mustNotContain(t, errs, "Type the DLQ name")
	if v, nv := counts(t, e.c, e.dlq); v != 3 || nv != 0 {
		t.Fatalf("refused purge changed the DLQ: visible %d, in flight %d; want 3, 0", v, nv)
	}
	if _, _, err := e.run(t, deps, "export", "--out", filepath.Join(t.TempDir(), "dlq.jsonl")); err != nil {
		t.Fatal(err)
	}

	deps.Stdin = strings.NewReader("no\n")
	_, errs, err = e.run(t, deps, "purge")
	if err == nil || !strings.Contains(err.Error(), "nothing was deleted") {
		t.Fatalf("purge answered no: got %v, want not confirmed", err)
	}
	mustContain(t, errs, "Type the DLQ name ("+deadletter.QueueName(e.dlq)+") to confirm")
	if v, nv := counts(t, e.c, e.dlq); v != 3 || nv != 0 {
		t.Fatalf("purge without confirmation deleted messages: visible %d, in flight %d; want 3, 0", v, nv)
	}
	deps.Stdin = strings.NewReader("")
	if _, _, err := e.run(t, deps, "purge"); err == nil {
		t.Fatal("purge with no answer went ahead")
	}
	deps.Stdin = strings.NewReader(deadletter.QueueName(e.dlq) + "\n")
	if _, _, err := e.run(t, deps, "purge"); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, e)
}

func TestPurgeForceNeedsNoExport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedThree(t, e)
	out, _, err := e.run(t, e.deps(), "purge", "--force", "--yes")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "purged")
	waitEmpty(t, e)
}

// TestRedriveMoveTask runs against local-aws-sqs (awstest.NewMoveTaskQueues): fauxqs has no
// StartMessageMoveTask / ListMessageMoveTasks / CancelMessageMoveTask ("Unknown action").
func TestRedriveMoveTask(t *testing.T) {
	t.Parallel()
	e := envOf(t, awstest.NewMoveTaskQueues(t))
	seedThree(t, e)

	out, _, err := e.run(t, e.deps(), "redrive", "status")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "no message move tasks")
	out, errs, err := e.run(t, e.deps(), "redrive")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "would start a message move task moving about 3 message(s)", "dry run: pass --yes")
	mustContain(t, errs, "no stale guard", "the worker dead-letters events older than its record retention (DLQ_RETENTION + REPLAY_WINDOW)")
	if v, _ := counts(t, e.c, e.queue); v != 0 {
		t.Fatalf("dry run moved %d message(s)", v)
	}
	if _, _, err := e.run(t, e.deps(), "redrive", "cancel"); err == nil || !strings.Contains(err.Error(), "no running") {
		t.Errorf("cancel without a task: %v", err)
	}

	out, _, err = e.run(t, e.deps(), "redrive", "--yes", "--rate", "100")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "started message move task", "task handle: ")

	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _, err = e.run(t, e.deps(), "redrive", "status")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "COMPLETED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("move task not completed:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustContain(t, out, "STATUS", "COMPLETED", "3/3", "100/s", "  "+deadletter.QueueName(e.queue)+"  ")
	// local-aws-sqs can report COMPLETED a moment before the last message is countable in
	// the destination: wait briefly rather than read the count once.
	moved := 0
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if moved, _ = counts(t, e.c, e.queue); moved == 3 {
			break
		}
	}
	if moved != 3 {
		t.Errorf("events queue after redrive: %d, want 3", moved)
	}
	if v, nv := counts(t, e.c, e.dlq); v != 0 || nv != 0 {
		t.Errorf("DLQ after redrive: %d, %d", v, nv)
	}

	// A slow task can be cancelled; what was moved stays moved, the rest stays in the DLQ.
	for range 5 {
		e.seed(t, dlqMsg{eventType: "app_mention", team: "T1", class: "exhausted", reason: "503", handler: "mention"})
	}
	if _, _, err := e.run(t, e.deps(), "redrive", "--yes", "--rate", "1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.run(t, e.deps(), "redrive", "--yes"); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second task while one runs: %v", err)
	}
	out, _, err = e.run(t, e.deps(), "redrive", "cancel")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "cancelled the move task")
	out, _, err = e.run(t, e.deps(), "redrive", "status")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, "CANCEL", "COMPLETED")
	v, _ := counts(t, e.c, e.queue)
	dv, dnv := counts(t, e.c, e.dlq)
	if v+dv+dnv != 8 || dv == 0 {
		t.Errorf("after cancel: events %d, DLQ %d+%d; want 8 in all, some left in the DLQ", v, dv, dnv)
	}
}

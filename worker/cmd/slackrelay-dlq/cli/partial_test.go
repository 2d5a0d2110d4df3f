package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// fileIDs returns the message ids of the lines of an export file.
func fileIDs(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			MessageID string `json:"message_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		ids[l.MessageID] = true
	}
	return ids
}

// Another reader holds one of three DLQ messages. list and export show what they can see
// and exit 3 saying one was not seen; purge refuses on that export; once the reader lets
// go, a new export sees all three and purge deletes them. (Before, export said nothing and
// purge --yes deleted the held message unexported: 3 in the DLQ, 2 exported, 0 left.)
func TestInFlightMessagesMakeAPartialViewAndPurgeRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mention, ask, button := seedThree(t, e)
	held, err := e.c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.dlq), MaxNumberOfMessages: 1, VisibilityTimeout: 60})
	if err != nil || len(held.Messages) != 1 {
		t.Fatalf("other reader: %v, %d messages", err, len(held.Messages))
	}
	heldID := aws.ToString(held.Messages[0].MessageId)
	t.Logf("the other reader holds %s", heldID)

	out, errs, err := e.run(t, e.deps(), "list", "--settle", "1s")
	if ExitCode(err) != ExitPartial {
		t.Fatalf("list: got %v (exit %d), want a partial view (exit 3)", err, ExitCode(err))
	}
	if rows := lines(out); len(rows) != 3 || strings.Contains(out, heldID) {
		t.Errorf("list: got %d lines, want the header and the 2 visible messages, not %s:\n%s", len(rows), heldID, out)
	}
	mustContain(t, errs, "2 of 2 peeked message(s) shown")
	mustContain(t, err.Error(), "partial view: saw 2 of the 3 message(s) the DLQ counts", "1 not seen",
		"1 in flight with another reader", "--settle 1s")

	file := filepath.Join(t.TempDir(), "dlq.jsonl")
	_, _, err = e.run(t, e.deps(), "export", "--out", file, "--settle", "1s")
	if ExitCode(err) != ExitPartial {
		t.Fatalf("export: got %v (exit %d), want a partial view (exit 3)", err, ExitCode(err))
	}
	mustContain(t, err.Error(), "exported 2 message(s) to "+file, "purge will refuse", "1 in flight with another reader")
	if ids := fileIDs(t, file); len(ids) != 2 || ids[heldID] {
		t.Errorf("export file: got ids %v, want the 2 not held elsewhere", ids)
	}

	_, _, err = e.run(t, e.deps(), "purge", "--yes")
	if err == nil || ExitCode(err) != ExitFailure {
		t.Fatalf("purge after a partial export: got %v (exit %d), want a refusal", err, ExitCode(err))
	}
	mustContain(t, err.Error(), "refusing to purge", "saw 2 of the 3 message(s)", "nothing was deleted")
	if v, nv := counts(t, e.c, e.dlq); v != 2 || nv != 1 {
		t.Fatalf("after the refused purge: visible %d, in flight %d; want 2, 1", v, nv)
	}

	// replay --all acts on what it sees and says what it could not see.
	out, _, err = e.run(t, e.deps(), "replay", "--all", "--allow-stale", "--settle", "1s")
	if ExitCode(err) != ExitPartial {
		t.Fatalf("replay --all dry run: got %v (exit %d), want a partial view", err, ExitCode(err))
	}
	mustContain(t, out, "would replay 2 message(s)")
	mustContain(t, err.Error(), "1 in flight with another reader")

	// The other reader lets go: everything is seen, exported, and may be purged.
	if _, err := e.c.ChangeMessageVisibility(t.Context(), changeVis(e.dlq, held.Messages[0].ReceiptHandle)); err != nil {
		t.Fatal(err)
	}
	_, errs, err = e.run(t, e.deps(), "export", "--out", file, "--settle", "1s")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, errs, "exported 3 message(s)", "the DLQ counts 3: all seen")
	if ids := fileIDs(t, file); len(ids) != 3 || !ids[mention] || !ids[ask] || !ids[button] {
		t.Errorf("export file: got ids %v, want all 3", ids)
	}
	// A message that arrives after the export is not purged unexported: the purge deletes
	// the 3 exported, leaves it, names it and exits 3; a new export lets it go too.
	late, _ := e.seed(t, dlqMsg{eventType: "app_mention", team: "T9", class: "exhausted", reason: "503", handler: "mention"})
	out, _, err = e.run(t, e.deps(), "purge", "--yes")
	if ExitCode(err) != ExitPartial || !strings.Contains(err.Error(), "1 message(s) not in its last export") || !strings.Contains(err.Error(), late) {
		t.Fatalf("purge with a message newer than the export: got %v (exit %d), want a partial purge naming %s", err, ExitCode(err), late)
	}
	mustContain(t, out, "purged 3 message(s)")
	if v, nv := counts(t, e.c, e.dlq); v != 1 || nv != 0 {
		t.Fatalf("after the partial purge: visible %d, in flight %d; want the late one visible", v, nv)
	}
	if _, _, err := e.run(t, e.deps(), "export", "--out", file); err != nil {
		t.Fatal(err)
	}
	if out, _, err := e.run(t, e.deps(), "purge", "--yes"); err != nil {
		t.Fatal(err)
	} else {
		mustContain(t, out, "purged 1 message(s)")
	}
	waitEmpty(t, e)
}

// A message another reader gives up on comes back during the scan's --settle: the view is
// complete, and nothing is missed.
func TestListWaitsForAMessageAnotherReaderReturns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mention, ask, button := seedThree(t, e)
	if _, err := e.c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.dlq), MaxNumberOfMessages: 1, VisibilityTimeout: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, errs, err := e.run(t, e.deps(), "list", "--settle", "10s")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, out, mention, ask, button)
	mustContain(t, errs, "3 of 3 peeked message(s) shown; the DLQ counts 3: all seen")
	t.Logf("list waited %.1f s for the returned message", time.Since(start).Seconds())
}

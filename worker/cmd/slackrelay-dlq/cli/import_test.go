package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

// TestImportToEventsIsStaleGuarded: import --to events skips events older than --max-age
// (default 1h) unless --allow-stale, with replay's warning lines and counts, exactly as
// replay does; --to dlq puts everything back (the guard applies on the way to the worker).
func TestImportToEventsIsStaleGuarded(t *testing.T) {
	t.Parallel()
	// An export of a 2-hour-old mention, a 5-minute-old /ask and a 1-minute-old click (ages
	// checked to the minute: a loaded machine takes seconds between the seeding and the run), and
	// a line that is not an envelope, sent to the DLQ in 1970 (its only time).
	src := newEnv(t)
	mention, _, _ := seedThree(t, src)
	file := src.export(t)
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const notEnvelope = `{"message_id":"not-an-envelope","body":"{}","attributes":{},"receive_count":1,"sent_timestamp":1}`
	if err := os.WriteFile(file, append(raw, []byte(notEnvelope+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		args      []string
		to        string // queue the messages must reach: events or dlq
		types     []string
		warnings  []string
		summary   string
		noWarning bool
	}{
		{name: "default max age 1h", args: []string{"--to", "events"}, to: "events", types: []string{"/ask", "block_actions"},
			warnings: []string{"warning: skipping stale " + mention + " event app_mention: event is 2h00m old (--max-age 1h0m0s; pass --allow-stale to import it)",
				"warning: skipping stale not-an-envelope - -: event is "},
			summary: "imported 2 message(s) into %s, skipped stale 2, failed 0"},
		{name: "max age 3m", args: []string{"--to", "events", "--max-age", "3m"}, to: "events", types: []string{"block_actions"},
			warnings: []string{"skipping stale " + mention, "/ask: event is 5m", "(--max-age 3m0s; pass --allow-stale to import it)"},
			summary:  "imported 1 message(s) into %s, skipped stale 3, failed 0"},
		{name: "allow stale", args: []string{"--to", "events", "--allow-stale"}, to: "events", types: []string{"", "/ask", "app_mention", "block_actions"},
			summary: "imported 4 message(s) into %s, skipped stale 0, failed 0", noWarning: true},
		{name: "to the dlq, unguarded", args: []string{"--to", "dlq"}, to: "dlq", types: []string{"", "/ask", "app_mention", "block_actions"},
			summary: "imported 4 message(s) into %s", noWarning: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			out, errs, err := e.run(t, e.deps(), append([]string{"import", "--in", file}, tc.args...)...)
			if err != nil {
				t.Fatalf("import: %v\n%s", err, errs)
			}
			target, other := e.queue, e.dlq
			if tc.to == "dlq" {
				target, other = e.dlq, e.queue
			}
			mustContain(t, out, strings.ReplaceAll(tc.summary, "%s", filepath.Base(target)))
			mustContain(t, errs, tc.warnings...)
			if tc.noWarning {
				mustNotContain(t, errs, "warning")
			}
			var got []string
			for _, m := range drain(t, e.c, target) {
				var typ string
				if env, err := envelope.Decode([]byte(aws.ToString(m.Body))); err == nil {
					typ = env.EventType
				}
				got = append(got, typ)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.types) {
				t.Errorf("%s queue holds event types %q, want %q", tc.to, got, tc.types)
			}
			if n := len(drain(t, e.c, other)); n != 0 {
				t.Errorf("the other queue holds %d message(s)", n)
			}
		})
	}
}

// The guard's flags are checked like replay's.
func TestImportStaleGuardUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, _, err := e.run(t, e.deps(), "import", "--in", "x.jsonl", "--to", "events", "--max-age", "0s")
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "--max-age must be more than 0 (or pass --allow-stale)") {
		t.Fatalf("--max-age 0: got %v (exit %d), want a usage error", err, ExitCode(err))
	}
}

// A failed send stops the import: what was sent is in the queue and counted, the summary
// keeps the stale count, and the exit code is 3.
func TestImportToEventsStopsAtAFailedSend(t *testing.T) {
	t.Parallel()
	src := newEnv(t)
	seedThree(t, src)
	file := src.export(t)
	e := newEnv(t)
	deps := e.deps()
	deps.SQS = &failingSQS{SQSAPI: e.c, failFrom: 2}
	out, _, err := e.run(t, deps, "import", "--in", file, "--to", "events", "--max-age", "1h")
	if ExitCode(err) != ExitPartial {
		t.Fatalf("got %v (exit %d), want exit 3", err, ExitCode(err))
	}
	mustContain(t, out, "imported 1 message(s) into "+filepath.Base(e.queue)+", skipped stale 1, failed 1")
	mustContain(t, err.Error(), "injected: service unavailable", "sent 1 of the 2 to send")
	if v, _ := counts(t, e.c, e.queue); v != 1 {
		t.Errorf("events queue: %d, want the 1 sent", v)
	}
}

// import -h documents the guard.
func TestImportHelpNamesTheGuard(t *testing.T) {
	t.Parallel()
	var out, errb strings.Builder
	if err := RunWith(t.Context(), Deps{Getenv: func(string) string { return "" }}, []string{"import", "-h"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	mustContain(t, out.String(), "stale guard", "-max-age", "-allow-stale", "with --to events")
}

package deadletter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExportRecordRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const a, b = "http://127.0.0.1:1/000000000000/a-dlq", "http://127.0.0.1:1/000000000000/b-dlq"
	if _, ok, err := LoadExportRecord(dir, a); ok || err != nil {
		t.Fatalf("no record yet: got ok %v, err %v; want neither", ok, err)
	}
	want := ExportRecord{QueueURL: a, At: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), File: "/tmp/x.jsonl",
		Complete: true, Exported: 2, Counts: Counts{InFlight: 2}, IDs: []string{"m1", "m2"},
		BodySHA256: map[string]string{"m1": BodyDigest("one"), "m2": BodyDigest("two")}}
	if err := SaveExportRecord(dir, want); err != nil {
		t.Fatal(err)
	}
	if err := SaveExportRecord(dir, ExportRecord{QueueURL: b, Exported: 1, Unseen: 3}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := LoadExportRecord(dir, a)
	if err != nil || !ok {
		t.Fatalf("load: ok %v, err %v", ok, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record of %s (-want +got):\n%s", a, diff)
	}
	if got, _, _ := LoadExportRecord(dir, b); got.Complete || got.Unseen != 3 {
		t.Errorf("record of %s: got %+v, want its own (incomplete, 3 unseen)", b, got)
	}
	info, err := os.Stat(exportRecordPath(dir, a))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("record file mode: got %v (%v), want 0600", info.Mode().Perm(), err)
	}

	// A damaged record is an error, not "no export".
	if err := os.WriteFile(exportRecordPath(dir, a), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := LoadExportRecord(dir, a); ok || err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged record: got ok %v, err %v; want a damaged error", ok, err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "exports", ".slackrelay-dlq-*")); len(matches) != 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
}

// Saved matches a message by its id and the digest of its body: a message with an exported
// id but another body, or with an exported body but another id, was not saved.
func TestExportRecordSaved(t *testing.T) {
	t.Parallel()
	rec := ExportRecord{BodySHA256: map[string]string{"m1": BodyDigest("one")}}
	for _, tc := range []struct {
		m    Message
		want bool
	}{
		{Message{ID: "m1", Body: "one"}, true},
		{Message{ID: "m1", Body: "one "}, false},
		{Message{ID: "m2", Body: "one"}, false},
	} {
		if got := rec.Saved(&tc.m); got != tc.want {
			t.Errorf("Saved(%s, %q) = %v, want %v", tc.m.ID, tc.m.Body, got, tc.want)
		}
	}
	if (&ExportRecord{IDs: []string{"m1"}}).Saved(&Message{ID: "m1", Body: "one"}) {
		t.Error("a record without digests (an older export) saved a message")
	}
	if got := BodyDigest("one"); len(got) != 64 {
		t.Errorf("BodyDigest = %q, want 64 hex characters", got)
	}
}

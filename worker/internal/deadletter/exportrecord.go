package deadletter

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ExportRecord is what an export remembers about a queue, so that purge can tell whether
// what it is about to delete was saved. One small JSON file per queue URL under the state
// directory (see the CLI's SLACKRELAY_DLQ_STATE_DIR): purge must find it without being told
// where the export went, and a lost record (a cleared cache) only makes purge refuse, which
// is the safe direction.
type ExportRecord struct {
	QueueURL string    `json:"queue_url"`
	At       time.Time `json:"exported_at"`
	File     string    `json:"file"` // "-" for stdout
	Complete bool      `json:"complete"`
	Exported int       `json:"exported"`
	// Counts are the queue's counts when the export's scan ended; Unseen how many of them
	// the export did not hold.
	Counts Counts `json:"counts"`
	Unseen int    `json:"unseen"`
	// IDs are the exported message ids.
	IDs []string `json:"message_ids"`
	// BodySHA256 maps each exported message id to BodyDigest of its body: purge deletes a
	// message only when both match, so it deletes nothing the export did not write. Records
	// written before it existed have none, and purge refuses on them.
	BodySHA256 map[string]string `json:"body_sha256"`
}

// BodyDigest is the hex SHA-256 of a message body, as ExportRecord.BodySHA256 keeps it.
func BodyDigest(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}

// Saved reports whether the export saved m: its id is in the record with the digest of
// the same body.
func (r *ExportRecord) Saved(m *Message) bool {
	d, ok := r.BodySHA256[m.ID]
	return ok && d == BodyDigest(m.Body)
}

// exportRecordPath is the record's file: a hash of the URL, so any URL makes a safe name.
func exportRecordPath(dir, queueURL string) string {
	sum := sha256.Sum256([]byte(queueURL))
	return filepath.Join(dir, "exports", hex.EncodeToString(sum[:12])+".json")
}

// SaveExportRecord writes r under dir, replacing the queue's previous record.
func SaveExportRecord(dir string, r ExportRecord) error {
	path := exportRecordPath(dir, r.QueueURL)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save the export record: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(path, append(data, '\n')); err != nil {
		return fmt.Errorf("save the export record: %w", err)
	}
	return nil
}

// LoadExportRecord reads the record of the last export of queueURL; ok is false when there
// is none.
func LoadExportRecord(dir, queueURL string) (r ExportRecord, ok bool, err error) {
	path := exportRecordPath(dir, queueURL)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("read the export record: %w", err)
	}
	if err := json.Unmarshal(data, &r); err != nil || r.QueueURL != queueURL {
		return r, false, fmt.Errorf("export record %s is damaged (delete it and export again)", path)
	}
	return r, true, nil
}

// WriteFileAtomic writes data to a temporary file (mode 0600: DLQ bodies are Slack requests)
// next to path and renames it into place, so a reader never sees half a file.
func WriteFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".slackrelay-dlq-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Package golden compares generated files with their committed copies in tests, and rewrites
// them when the test runs with -update. It is test support: only tests import it (it
// registers the -update flag).
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
)

var update = flag.Bool("update", false, "rewrite golden files with what the code generates")

// Updating reports whether the test runs with -update.
func Updating() bool { return *update }

// Check compares got with the file at path, or writes got there under -update. The error
// shows the first differing line and how to refresh the file.
func Check(path string, got []byte) error {
	if *update {
		return os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s (rerun the test with -update to create it): %w", path, err)
	}
	if bytes.Equal(got, want) {
		return nil
	}
	return fmt.Errorf("%s is out of date (rerun the test with -update): %s", path, FirstDiff(string(want), string(got)))
}

// FirstDiff describes the first line where file (the committed text) and generated differ.
func FirstDiff(file, generated string) string {
	a, b := strings.Split(file, "\n"), strings.Split(generated, "\n")
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y || i >= len(a) || i >= len(b) {
			return fmt.Sprintf("line %d:\n  file:      %q\n  generated: %q", i+1, x, y)
		}
	}
	return "no difference"
}

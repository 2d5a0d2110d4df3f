package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	if Updating() {
		t.Skip("-update rewrites files instead of comparing them")
	}
	path := filepath.Join(t.TempDir(), "out.txt")
	if err := Check(path, []byte("a\nb\n")); err == nil || !strings.Contains(err.Error(), "-update") {
		t.Errorf("missing file: err = %v, want one that says -update", err)
	}
	if err := os.WriteFile(path, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(path, []byte("a\nb\n")); err != nil {
		t.Errorf("same content: err = %v, want nil", err)
	}
	err := Check(path, []byte("a\nc\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), `"b"`) || !strings.Contains(err.Error(), `"c"`) {
		t.Errorf("changed content: err = %v, want line 2 with file \"b\" and generated \"c\"", err)
	}
}

func TestFirstDiff(t *testing.T) {
	t.Parallel()
	tests := []struct{ file, generated, want string }{
		{"a\nb", "a\nb", "no difference"},
		{"a\nb", "a\nx", "line 2"},
		{"a", "a\nmore", "line 2"},
		{"a\nmore", "a", "line 2"},
	}
	for _, tt := range tests {
		if got := FirstDiff(tt.file, tt.generated); !strings.HasPrefix(got, tt.want) {
			t.Errorf("FirstDiff(%q, %q) = %q, want it to start with %q", tt.file, tt.generated, got, tt.want)
		}
	}
}

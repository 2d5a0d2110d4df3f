package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReplaceSection(t *testing.T) {
	t.Parallel()
	const section = "\n## Lambda\n\nnew numbers\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"replaces the section, keeps the rest",
			"# B\n\n## A\n\nhand-written\n\n## Lambda\n\nold numbers\n\n## How to read these\n\n- x\n",
			"# B\n\n## A\n\nhand-written\n\n## Lambda\n\nnew numbers\n\n## How to read these\n\n- x\n"},
		{"replaces the last section",
			"# B\n\n## Lambda\n\nold\n",
			"# B\n\n## Lambda\n\nnew numbers\n"},
		{"inserts before the last section when missing",
			"# B\n\n## A\n\na\n\n## How to read these\n\n- x\n",
			"# B\n\n## A\n\na\n\n## Lambda\n\nnew numbers\n\n## How to read these\n\n- x\n"},
		{"inserts before How to read these, whatever follows",
			"# B\n\n## A\n\na\n\n## How to read these\n\n- x\n\n## Kept by hand\n\ny\n",
			"# B\n\n## A\n\na\n\n## Lambda\n\nnew numbers\n\n## How to read these\n\n- x\n\n## Kept by hand\n\ny\n"},
		{"appends to a file without sections",
			"# B\n",
			"# B\n\n## Lambda\n\nnew numbers\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "b.md")
			if err := os.WriteFile(path, []byte(tc.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := replaceSection(path, "## Lambda", section); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if string(got) != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

package textcut

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	t.Parallel()
	if got := Split("  ", 10); len(got) != 0 {
		t.Fatalf("blank text gave %q", got)
	}
	if got := Split("short", 10); len(got) != 1 || got[0] != "short" {
		t.Fatalf("%q", got)
	}
	para := strings.Repeat("word ", 30) + "\n\n" + strings.Repeat("more ", 30)
	got := Split(para, 160)
	if len(got) != 2 || !strings.HasPrefix(got[1], "more") {
		t.Fatalf("paragraph split = %q", got)
	}
	long := strings.Repeat("ü", 10000) // no spaces: hard cuts on rune boundaries
	parts := Split(long, 3900)
	total := 0
	for _, p := range parts {
		n := utf8.RuneCountInString(p)
		if n > 3900 || !utf8.ValidString(p) {
			t.Fatalf("part of %d runes, valid=%v", n, utf8.ValidString(p))
		}
		total += n
	}
	if total != 10000 {
		t.Fatalf("lost runes: %d", total)
	}
}

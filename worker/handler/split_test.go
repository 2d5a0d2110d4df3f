package handler

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/shared/envelope"
)

func TestSplit(t *testing.T) {
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
	parts := Split(long, MaxChunkRunes)
	total := 0
	for _, p := range parts {
		n := utf8.RuneCountInString(p)
		if n > MaxChunkRunes || !utf8.ValidString(p) {
			t.Fatalf("part of %d runes, valid=%v", n, utf8.ValidString(p))
		}
		total += n
	}
	if total != 10000 {
		t.Fatalf("lost runes: %d", total)
	}
}

func TestRouter(t *testing.T) {
	var r Router
	a := Func(nil)
	r.Register(envelope.KindEvent, "app_mention", "reply", a)
	r.Register(envelope.KindInteraction, "", "any-interaction", a)
	cases := []struct {
		kind envelope.Kind
		typ  string
		name string
		ok   bool
	}{
		{envelope.KindEvent, "app_mention", "reply", true},
		{envelope.KindEvent, "team_join", "", false},
		{envelope.KindSlashCommand, "app_mention", "", false},
		{envelope.KindInteraction, "block_actions", "any-interaction", true},
	}
	for _, c := range cases {
		rt, ok := r.Lookup(&envelope.Envelope{Kind: c.kind, EventType: c.typ})
		if ok != c.ok || rt.Name != c.name {
			t.Errorf("%s/%s: %q %v", c.kind, c.typ, rt.Name, ok)
		}
	}
}

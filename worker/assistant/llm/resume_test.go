package llm

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// chunks cuts s into pieces of about n bytes, at character boundaries, as a server's deltas
// come (JSON carries whole characters).
func chunks(s string, n int) []string {
	var out []string
	for s != "" {
		end := min(max(n, 1), len(s))
		for end < len(s) && !utf8.RuneStart(s[end]) {
			end++
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}

// resumeThrough runs pieces through a resumer and returns what it let through, failing on
// an empty piece let through.
func resumeThrough(t testing.TB, r *resumer, pieces []string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range pieces {
		b.WriteString(r.take(p))
	}
	return b.String()
}

func TestResumer(t *testing.T) {
	t.Parallel()
	const answer = "Grüße aus 東京 ✓ — the queue keeps it.\n\nThen a worker answers."
	cutAt := func(s, after string) int { return strings.Index(answer, s) + len(after) }
	tests := []struct {
		name    string
		cut     int // Partial is answer[:cut]
		prefill bool
		sent    string // prefilling, the final message sent
		differs bool
	}{
		{name: "regenerate, one character", cut: 1},
		{name: "regenerate, mid-word", cut: cutAt("queue", "qu")},
		{name: "regenerate, after ü", cut: cutAt("ü", "ü")},
		{name: "regenerate, inside 東 (1 of 3 bytes)", cut: cutAt("東", "\xe6")},
		{name: "regenerate, inside 東 (2 of 3 bytes)", cut: cutAt("東", "\xe6\x9d")},
		{name: "regenerate, inside ✓", cut: cutAt("✓", "\xe2\x9c")},
		{name: "regenerate, after the blank line", cut: cutAt("Then", "")},
		{name: "regenerate, all", cut: len(answer)},
		{name: "prefill, mid-word", cut: cutAt("queue", "qu"), prefill: true, sent: "Grüße aus 東京 ✓ — the qu"},
		{name: "prefill, after a space", cut: cutAt("aus", "aus "), prefill: true, sent: "Grüße aus"},
		{name: "prefill, after the blank line", cut: cutAt("Then", ""), prefill: true, sent: answer[:cutAt("it.", "it.")]},
		{name: "prefill, inside 東", cut: cutAt("東", "\xe6\x9d"), prefill: true, sent: "Grüße aus"},
		{name: "prefill, a space inside 東", cut: cutAt("東", "\xe6"), prefill: true, sent: "Grüße aus"},
		{name: "prefill, only a space", cut: 0, prefill: true, sent: ""},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 3, 7, 1000} {
			partial := answer[:tt.cut]
			r, sent := newResumer(partial, tt.prefill)
			if sent != tt.sent {
				t.Errorf("%s: sent %q, want %q", tt.name, sent, tt.sent)
			}
			server := answer // regenerating: the whole answer again
			if tt.prefill {
				server = answer[len(sent):] // what a server continuing sent writes
			}
			got := resumeThrough(t, r, chunks(server, size))
			r.finish(true, nil, "m")
			if partial+got != answer || r.differs != tt.differs {
				t.Errorf("%s, chunks of %d: Partial %q + continuation %q != the answer (differs %v, want %v)", tt.name, size, partial, got, r.differs, tt.differs)
			}
			if want := utf8.RuneCountInString(partial); r.dropped != want && !tt.prefill {
				t.Errorf("%s, chunks of %d: dropped %d characters, want %d", tt.name, size, r.dropped, want)
			}
		}
	}
}

// A regenerated answer that is not Partial at its beginning: exactly Partial's length in
// characters is dropped, and the difference is noted with the length they share.
func TestResumerDiffers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, partial, answer, want string
		same, dropped               int
	}{
		{"other words", "Hello there", "Hello world, again", ", again", 6, 11},
		{"other multi-byte", "Grüße", "Grusse und mehr", "e und mehr", 2, 5},
		{"shorter", "a long partial answer", "a long", "", 6, 6},
		{"a different character after a cut one", "ab\xe6", "abé and on", " and on", 2, 3},
		{"a different character, cut after a chunk", "ab\xe6", "ab", "", 2, 2},
	}
	for _, tt := range tests {
		r, _ := newResumer(tt.partial, false)
		got := resumeThrough(t, r, chunks(tt.answer, 2))
		r.finish(true, nil, "m")
		if got != tt.want || !r.differs || r.same != tt.same || r.dropped != tt.dropped {
			t.Errorf("%s: continuation %q, differs %v, same %d, dropped %d; want %q, true, %d, %d", tt.name, got, r.differs, r.same, r.dropped, tt.want, tt.same, tt.dropped)
		}
	}
}

// FuzzResume: for any answer, any cut and any chunking, Partial followed by what the
// resumer lets through is the answer, regenerating or prefilling.
func FuzzResume(f *testing.F) {
	f.Add("Grüße aus 東京 ✓ the queue", 9, 3, false)
	f.Add("word  \n\n next", 7, 1, true)
	f.Add("東京", 1, 2, true)
	f.Fuzz(func(t *testing.T, answer string, cut, size int, prefill bool) {
		if !utf8.ValidString(answer) || len(answer) == 0 {
			return
		}
		cut = (cut%len(answer) + len(answer)) % (len(answer) + 1)
		partial := answer[:cut]
		r, sent := newResumer(partial, prefill)
		server := answer
		if prefill {
			if !strings.HasPrefix(answer, sent) {
				t.Fatalf("sent %q is not a beginning of %q", sent, answer)
			}
			server = answer[len(sent):]
		}
		var got strings.Builder
		for _, p := range chunks(server, size%16) {
			got.WriteString(r.take(p))
		}
		r.finish(true, nil, "m")
		if partial+got.String() != answer || r.differs {
			t.Errorf("Partial %q + %q != %q (differs %v)", partial, got.String(), answer, r.differs)
		}
	})
}

func TestParsePrefillStyle(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want PrefillStyle
		ok   bool
	}{{"", PrefillContinue, true}, {"continue", PrefillContinue, true}, {"prefix", PrefillPrefix, true}, {"plain", PrefillPlain, true}, {"vllm", "", false}} {
		got, err := ParsePrefillStyle(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParsePrefillStyle(%q) = %q, %v; want %q (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

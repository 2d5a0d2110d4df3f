package llm

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHistory(t *testing.T) {
	t.Parallel()
	thread := []Turn{
		{Text: "first question"},                 // 14
		{Text: "first answer", FromBot: true},    // 12
		{Text: ""},                               // skipped
		{Text: "second question"},                // 15
		{Text: "second answer ✓", FromBot: true}, // 15 characters (17 bytes)
	}
	all := []Message{
		{RoleUser, "first question"}, {RoleAssistant, "first answer"}, {RoleUser, "second question"},
		{RoleAssistant, "second answer ✓"}, {RoleUser, "now?"},
	}
	tests := []struct {
		name        string
		earlier     []Turn
		prompt      string
		budget      int
		want        []Message
		wantDropped int
	}{
		{"everything fits", thread, "now?", 1000, all, 0},
		{"exactly fits", thread, "now?", 4 + 15 + 15 + 12 + 14, all, 0},
		{"oldest dropped", thread, "now?", 4 + 15 + 15 + 12 + 13, all[1:], 1},
		{"counts characters, not bytes", thread, "now?", 4 + 15, all[3:], 3},
		{"one character short of the newest", thread, "now?", 4 + 14, all[4:], 4},
		{"prompt alone over budget is kept", thread, strings.Repeat("x", 50), 10, []Message{{RoleUser, strings.Repeat("x", 50)}}, 4},
		{"no gaps: a small old turn is not taken past a big one", []Turn{{Text: "hi"}, {Text: strings.Repeat("y", 100), FromBot: true}}, "q", 10,
			[]Message{{RoleUser, "q"}}, 2},
		{"no history", nil, "hello", 0, []Message{{RoleUser, "hello"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, dropped := History(tt.earlier, tt.prompt, tt.budget)
			if diff := cmp.Diff(tt.want, got); diff != "" || dropped != tt.wantDropped {
				t.Errorf("History dropped %d, want %d; messages (-want +got):\n%s", dropped, tt.wantDropped, diff)
			}
		})
	}
}

package assistant

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCalculate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ expr, want string }{
		{"1 + 2 * 3", "7"},
		{"(1 + 2) * 3", "9"},
		{"2340 * 17.5 / 100 + 12.99", "422.49"},
		{"0.1 + 0.2", "0.3"},
		{"-2^2", "-4"},
		{"(-2)^2", "4"},
		{"2^3^2", "512"},
		{"2^-1", "0.5"},
		{"--3", "3"},
		{"+4 - -4", "8"},
		{"17 % 5", "2"},
		{"-7.5 % 2", "-1.5"},
		{"10 / 4", "2.5"},
		{"1/3", "0.333333333333333"},
		{".5 + 1.", "1.5"},
		{"1.5e3 * 2", "3000"},
		{"2^70", "1.18059162071741e+21"},
		{"999999999999999 + 0", "999999999999999"},
		{"10^15", "1e+15"},
		{"1e-9 * 3", "3e-09"},
		{" ( ( 42 ) ) ", "42"},
		{"-0", "0"},
	} {
		v, err := calculate(tt.expr)
		if err != nil {
			t.Errorf("calculate(%q): %v", tt.expr, err)
			continue
		}
		if got := formatNumber(v); got != tt.want {
			t.Errorf("calculate(%q) = %s, want %s", tt.expr, got, tt.want)
		}
	}
}

// Bad input fails with an error that says what is wrong and where, so the model can fix its
// call.
func TestCalculateRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ expr, want string }{
		{"", "the expression is empty"},
		{"   ", "the expression is empty"},
		{"1 +", "ends too early"},
		{"(1 + 2", "the parenthesis at position 1 is not closed"},
		{"1 + 2)", `unexpected ')' at position 6`},
		{"2,340 * 3", "without thousands separators"},
		{"3 x 4", "use * to multiply"},
		{"6 ÷ 2", "use * to multiply and / to divide"},
		{"sqrt(4)", `unexpected 's' at position 1`},
		{"1 / 0", "division by zero at position 3"},
		{"5 % (2 - 2)", "remainder of a division by zero"},
		{"0^-1", "zero to a negative power"},
		{"(-8)^(1/3)", "not a real number"},
		{"10^400", "too large"},
		{"1e999", "too large"},
		{"1..2", `"1..2" at position 1 is not a number`},
		{strings.Repeat("1+", 200) + "1", "at most 256"},
		{strings.Repeat("(", 40) + "1" + strings.Repeat(")", 40), "deeper than 32"},
		{strings.Repeat("-", 40) + "1", "deeper than 32"},
	} {
		_, err := calculate(tt.expr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("calculate(%q) = %v, want an error containing %q", tt.expr, err, tt.want)
		}
	}
}

// Whatever the input, calculate returns a finite number or an error, and never panics or
// recurses without bound.
func FuzzCalculate(f *testing.F) {
	for _, s := range []string{"1+2*3", "(1+2)^-3", "--1", "2,3", "1e5%3", "((((1))))", "1/0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		v, err := calculate(expr)
		if err == nil && (math.IsInf(v, 0) || math.IsNaN(v)) {
			t.Fatalf("calculate(%q) = %v without an error", expr, v)
		}
	})
}

// The tools as the model sees them: names, descriptions that say when to use them, and the
// schemas of their inputs.
func TestDefaultToolsAreOffered(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		ToolCalculate:      {`"expression"`, `"maxLength":256`, `"required":["expression"]`},
		ToolCurrentTime:    {`"time_zone"`, "IANA"},
		ToolEarlierAnswers: {`"last"`, `"contains"`, `"maximum":10`},
	}
	tools := DefaultTools()
	if len(tools) != len(want) {
		t.Fatalf("%d tools, want %d", len(tools), len(want))
	}
	for _, tool := range tools {
		spec := tool.Spec()
		for _, w := range want[spec.Name] {
			if !strings.Contains(string(spec.Schema), w) {
				t.Errorf("%s's schema %s lacks %s", spec.Name, spec.Schema, w)
			}
		}
		if !strings.Contains(spec.Description, "Use it") {
			t.Errorf("%s's description %q does not tell the model when to use it", spec.Name, spec.Description)
		}
	}
}

func TestCalculateTool(t *testing.T) {
	t.Parallel()
	got, err := runCalculate(context.Background(), calculateIn{Expression: "2340 * 17.5 / 100 + 12.99"}, "k")
	if err != nil || got != "422.49" {
		t.Errorf("calculate = %q, %v; want 422.49", got, err)
	}
	if _, err := runCalculate(context.Background(), calculateIn{Expression: "1/0"}, "k"); err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Errorf("calculate 1/0: %v, want the division by zero named", err)
	}
}

func TestCurrentTimeTool(t *testing.T) {
	t.Parallel()
	run := currentTimeAt(func() time.Time { return time.Date(2026, 12, 7, 17, 27, 5, 900, time.UTC) })
	for _, tt := range []struct {
		zone string
		want currentTime
	}{
		{"", currentTime{Time: "2026-12-07T17:27:05Z", Weekday: "Monday", TimeZone: "UTC", Abbreviation: "UTC"}},
		{"Europe/Paris", currentTime{Time: "2026-12-07T18:27:05+01:00", Weekday: "Monday", TimeZone: "Europe/Paris", Abbreviation: "CET"}},
		{" Pacific/Auckland ", currentTime{Time: "2026-12-08T06:27:05+13:00", Weekday: "Tuesday", TimeZone: "Pacific/Auckland", Abbreviation: "NZDT"}},
	} {
		got, err := run(context.Background(), currentTimeIn{TimeZone: tt.zone}, "k")
		if err != nil || got != tt.want {
			t.Errorf("current_time in %q = %+v, %v; want %+v", tt.zone, got, err, tt.want)
		}
	}
	for _, bad := range []string{"Mars/Olympus", "Local", "../../etc/passwd", strings.Repeat("x", 65)} {
		if _, err := run(context.Background(), currentTimeIn{TimeZone: bad}, "k"); err == nil || !strings.Contains(err.Error(), "is not an IANA time zone") {
			t.Errorf("current_time in %q: %v, want it refused", bad, err)
		}
	}
}

func TestPickAnswers(t *testing.T) {
	t.Parallel()
	msgs := []threadMessage{
		{TS: "1.1", Text: "what is a river?"},
		{TS: "1.2", Text: "A river is water on its way.", FromBot: true, Ours: true},
		{TS: "1.3", Text: "another bot speaking", FromBot: true},
		{TS: "1.4", Text: "and a lake?"},
		{TS: "1.5", Text: "A lake is water that stopped.", FromBot: true, Ours: true},
		{TS: "1.6", Text: strings.Repeat("long ", 1000), FromBot: true, Ours: true},
	}
	got := pickAnswers(msgs, earlierAnswersIn{Last: 2})
	want := earlierAnswers{Total: 3, Note: "the 2 most recent of 3 answers", Answers: []earlierAnswer{
		{TS: "1.5", Text: "A lake is water that stopped."},
		{TS: "1.6", Text: strings.Repeat("long ", 400), Cut: true},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the last 2 (-want +got):\n%s", diff)
	}
	got = pickAnswers(msgs, earlierAnswersIn{Contains: "RIVER"})
	if len(got.Answers) != 1 || got.Answers[0].TS != "1.2" || got.Total != 1 {
		t.Errorf("answers containing RIVER: %+v, want the first answer alone", got)
	}
	if got := pickAnswers(msgs[:1], earlierAnswersIn{}); len(got.Answers) != 0 || got.Note != "you have not answered in this thread before this question" {
		t.Errorf("no answers: %+v", got)
	}
	many := make([]threadMessage, 30)
	for i := range many {
		many[i] = threadMessage{TS: "2." + strings.Repeat("1", i+1), Text: strings.Repeat("x", 1500), FromBot: true, Ours: true}
	}
	got = pickAnswers(many, earlierAnswersIn{Last: 50})
	total := 0
	for _, a := range got.Answers {
		total += len(a.Text)
	}
	if len(got.Answers) > maxEarlierAnswers || total > maxEarlierTotalChars || got.Answers[len(got.Answers)-1].TS != many[29].TS {
		t.Errorf("%d answers of %d characters ending with %s; want at most %d of at most %d characters in all, the newest last",
			len(got.Answers), total, got.Answers[len(got.Answers)-1].TS, maxEarlierAnswers, maxEarlierTotalChars)
	}
}

// Outside an answer (no thread in its context) earlier_answers says so rather than guess.
func TestEarlierAnswersWithoutAThread(t *testing.T) {
	t.Parallel()
	if _, err := readEarlierAnswers(context.Background(), earlierAnswersIn{}, "k"); err == nil || !strings.Contains(err.Error(), "no Slack thread") {
		t.Errorf("earlier_answers without a thread: %v", err)
	}
}

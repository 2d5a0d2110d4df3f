package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// table is a small table exercising every kind, a required variable, a local-only one and
// a renamed one.
var table = []Var{
	{Name: "QUEUE_URL", Required: true},
	{Name: "TABLE", Required: true},
	{Name: "S", Default: "d"},
	{Name: "N", Kind: KindInt, Default: "3", Min: 0, Max: 10},
	{Name: "BIG", Kind: KindInt, Default: "1", Min: 0, Max: 10},
	{Name: "D", Kind: KindDuration, Default: "1s"},
	{Name: "Z", Kind: KindDuration, Default: "1s"},
	{Name: "LOCAL", LocalOnly: true, Default: "l"},
	{Name: "NEW_NAME", Kind: KindInt, Default: "5", Min: 1, Max: 9, OldNames: []string{"OLD_NAME", "OLDER_NAME"}},
}

func TestLoaderReportsEveryProblem(t *testing.T) {
	t.Parallel()
	l := NewLoader(table, env(map[string]string{"N": "x", "D": "soon", "Z": "-1s", "BIG": "99", "OLD_NAME": "0"}))
	l.String("QUEUE_URL")
	l.String("TABLE")
	l.Int("N")
	l.Int("BIG")
	l.Duration("D")
	l.Duration("Z")
	l.Int("NEW_NAME")
	err := l.Err()
	if err == nil {
		t.Fatal("Err() = nil, want every problem")
	}
	var te *TableError
	if errors.As(err, &te) {
		t.Errorf("Err() = %v: an environment problem reported as a table mistake", err)
	}
	for _, want := range []string{"QUEUE_URL is required", "TABLE is required", `N="x" is not an integer`, "BIG=99 is outside [0, 10]",
		`D="soon" is not a duration`, `Z="-1s" must be greater than zero`, "OLD_NAME=0 is outside [1, 9]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %q, missing %q", err, want)
		}
	}
}

func TestLoaderValuesAndDefaultsFromTheTable(t *testing.T) {
	t.Parallel()
	set := NewLoader(table, env(map[string]string{"S": "v", "N": "7", "D": "90s", "QUEUE_URL": "q", "LOCAL": "x", "NEW_NAME": "2"}))
	unset := NewLoader(table, env(nil))
	tests := []struct {
		name      string
		got, want any
	}{
		{"string set", set.String("S"), "v"},
		{"string default", unset.String("S"), "d"},
		{"int set", set.Int("N"), 7},
		{"int default", unset.Int("N"), 3},
		{"duration set", set.Duration("D"), 90 * time.Second},
		{"duration default", unset.Duration("D"), time.Second},
		{"required set", set.String("QUEUE_URL"), "q"},
		{"local-only in local mode", set.String("LOCAL"), "x"},
		{"renamed, new name set", set.Int("NEW_NAME"), 2},
		{"renamed, nothing set", unset.Int("NEW_NAME"), 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if err := set.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
	if d := set.Deprecations(); len(d) != 0 {
		t.Errorf("Deprecations() = %v, want none", d)
	}
}

func TestRenamedVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		want  int
		warns []Deprecation
	}{
		{"old name only", map[string]string{"OLD_NAME": "4"}, 4, []Deprecation{{Old: "OLD_NAME", New: "NEW_NAME"}}},
		{"oldest name only", map[string]string{"OLDER_NAME": "6"}, 6, []Deprecation{{Old: "OLDER_NAME", New: "NEW_NAME"}}},
		{"newer old name wins", map[string]string{"OLD_NAME": "4", "OLDER_NAME": "6"}, 4,
			[]Deprecation{{Old: "OLD_NAME", New: "NEW_NAME"}, {Old: "OLDER_NAME", New: "NEW_NAME", Ignored: true}}},
		{"new name wins", map[string]string{"NEW_NAME": "2", "OLD_NAME": "4"}, 2, []Deprecation{{Old: "OLD_NAME", New: "NEW_NAME", Ignored: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := NewLoader(table, env(tt.env))
			if got := l.Int("NEW_NAME"); got != tt.want {
				t.Errorf("Int(NEW_NAME) = %d, want %d", got, tt.want)
			}
			if err := l.Err(); err != nil {
				t.Errorf("Err() = %v, want nil", err)
			}
			if diff := cmp.Diff(tt.warns, l.Deprecations()); diff != "" {
				t.Errorf("Deprecations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeprecationMessagesNameTheNewVariable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		d    Deprecation
		want string
	}{
		{Deprecation{Old: "OLD", New: "NEW"}, "OLD is deprecated: rename it to NEW"},
		{Deprecation{Old: "OLD", New: "NEW", Ignored: true}, "OLD is ignored: it is the old name of NEW, which is also set; remove OLD"},
	} {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	var buf bytes.Buffer
	LogDeprecations(slog.New(slog.NewJSONHandler(&buf, nil)), []Deprecation{{Old: "OLD", New: "NEW"}})
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	if line["level"] != "WARN" || line["name"] != "OLD" || line["use"] != "NEW" {
		t.Errorf("log line = %v, want level WARN, name OLD, use NEW", line)
	}
}

// Mistakes in a loader or its table are errors, so a binary's tests catch them.
func TestLoaderRejectsReadsTheTableDoesNotAllow(t *testing.T) {
	t.Parallel()
	lambda := env(map[string]string{EnvLambdaRuntimeAPI: "127.0.0.1:9001", "QUEUE_URL": "q", "TABLE": "t"})
	tests := []struct {
		name string
		read func(*Loader)
		want string
	}{
		{"name outside the table", func(l *Loader) { l.String("UNLISTED") }, "UNLISTED is read but not in the variable table"},
		{"old name read directly", func(l *Loader) { l.Int("OLD_NAME") }, "OLD_NAME is read but not in the variable table"},
		{"wrong kind", func(l *Loader) { l.Duration("N") }, "N is read as duration but the table says integer"},
		{"local-only in Lambda", func(l *Loader) { l.String("LOCAL") }, "LOCAL is local-only but read in Lambda"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := NewLoader(table, lambda)
			tt.read(l)
			err := l.Err()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Err() = %v, want it to contain %q", err, tt.want)
			}
			var te *TableError
			if !errors.As(err, &te) {
				t.Errorf("Err() = %v, want a *TableError in it", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	if err := Validate(table); err != nil {
		t.Fatalf("Validate(table) = %v, want nil", err)
	}
	bad := []Var{
		{Name: "A", OldNames: []string{"B"}},
		{Name: "B"},
		{Name: "R", Required: true, Default: "x"},
		{Name: "I", Kind: KindInt, Default: "x", Min: 0, Max: 1},
		{Name: "J", Kind: KindInt, Min: 2, Max: 1},
		{Name: "D", Kind: KindDuration, Default: "0s"},
		{Name: ""},
	}
	err := Validate(bad)
	if err == nil {
		t.Fatal("Validate(bad) = nil, want every problem")
	}
	for _, want := range []string{"B is listed twice", "R is required and has a default", `default of I="x" is not an integer`,
		"J has Min 2 above Max 1", `default of D="0s" must be greater than zero`, "an entry has no name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(bad) = %q, missing %q", err, want)
		}
	}
	var te *TableError
	if !errors.As(err, &te) {
		t.Errorf("Validate(bad) = %v, want *TableError", err)
	}
	if l := NewLoader(bad, env(nil)); l.Err() == nil {
		t.Error("NewLoader with a malformed table: Err() = nil, want the table's problems")
	}
}

func TestLookupAndIsLambda(t *testing.T) {
	t.Parallel()
	vars := []Var{{Name: "B"}, {Name: "LOCAL", LocalOnly: true}, {Name: "A", Required: true}}
	if v, ok := Lookup(vars, "A"); !ok || !v.Required {
		t.Errorf("Lookup(A) = %+v, %v; want the required entry", v, ok)
	}
	if _, ok := Lookup(vars, "C"); ok {
		t.Error("Lookup(C) found an entry that is not in the table")
	}
	if IsLambda(env(nil)) || !IsLambda(env(map[string]string{EnvLambdaRuntimeAPI: "127.0.0.1:9001"})) {
		t.Error("IsLambda does not follow AWS_LAMBDA_RUNTIME_API")
	}
}

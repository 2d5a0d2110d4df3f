package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoaderReportsEveryProblem(t *testing.T) {
	t.Parallel()
	l := NewLoader(env(map[string]string{"N": "x", "D": "soon", "Z": "-1s", "BIG": "99"}))
	l.Required("QUEUE_URL")
	l.Required("TABLE")
	l.Int("N", 1, 0, 10)
	l.Int("BIG", 1, 0, 10)
	l.Duration("D", time.Second)
	l.Duration("Z", time.Second)
	err := l.Err()
	if err == nil {
		t.Fatal("Err() = nil, want every problem")
	}
	for _, want := range []string{"QUEUE_URL is required", "TABLE is required", `N="x" is not an integer`, "BIG=99 is outside [0, 10]", `D="soon" is not a duration`, `Z="-1s" must be greater than zero`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %q, missing %q", err, want)
		}
	}
}

func TestLoaderValues(t *testing.T) {
	t.Parallel()
	l := NewLoader(env(map[string]string{"S": "v", "N": "7", "D": "90s", "R": "r"}))
	tests := []struct {
		name      string
		got, want any
	}{
		{"string set", l.String("S", "d"), "v"},
		{"string default", l.String("UNSET", "d"), "d"},
		{"int set", l.Int("N", 1, 0, 10), 7},
		{"int default", l.Int("UNSET", 3, 0, 10), 3},
		{"duration set", l.Duration("D", time.Second), 90 * time.Second},
		{"duration default", l.Duration("UNSET", time.Second), time.Second},
		{"required set", l.Required("R"), "r"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if err := l.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
}

func TestLambdaNamesAndIsLambda(t *testing.T) {
	t.Parallel()
	vars := []Var{{Name: "B"}, {Name: "LOCAL", LocalOnly: true}, {Name: "A", Required: true}}
	if diff := cmp.Diff([]string{"A", "B"}, LambdaNames(vars)); diff != "" {
		t.Errorf("LambdaNames (-want +got):\n%s", diff)
	}
	if IsLambda(env(nil)) || !IsLambda(env(map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"})) {
		t.Error("IsLambda does not follow AWS_LAMBDA_RUNTIME_API")
	}
}

func TestCheckLambdaEnvGolden(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "lambda-env.json")
	vars := []Var{{Name: "B"}, {Name: "A"}, {Name: "L", LocalOnly: true}}
	if err := CheckLambdaEnvGolden(path, vars, true); err != nil {
		t.Fatalf("update: %v", err)
	}
	var names []string
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &names); err != nil || !cmp.Equal(names, []string{"A", "B"}) {
		t.Fatalf("golden = %s (%v), want [A B]", data, err)
	}
	if err := CheckLambdaEnvGolden(path, vars, false); err != nil {
		t.Errorf("unchanged: %v", err)
	}
	if err := CheckLambdaEnvGolden(path, append(vars, Var{Name: "C"}), false); err == nil {
		t.Error("a new variable did not fail the golden check")
	}
}

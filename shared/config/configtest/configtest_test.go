package configtest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slackrelay/slackrelay/shared/config"
)

var vars = []config.Var{
	{Name: "QUEUE_URL", Required: true},
	{Name: "TIMEOUT", Kind: config.KindDuration, Default: "5s", OldNames: []string{"OLD_TIMEOUT"}},
	{Name: "TOKEN", LocalOnly: true},
}

// good reads every variable of its mode, unconditionally.
func good(getenv func(string) string) error {
	l := config.NewLoader(vars, getenv)
	l.String("QUEUE_URL")
	l.Duration("TIMEOUT")
	if !l.Lambda() {
		l.String("TOKEN")
	}
	return l.Err()
}

func TestCheck(t *testing.T) {
	t.Parallel()
	if golden := filepath.Join(t.TempDir(), "lambda-env.json"); true {
		if err := os.WriteFile(golden, []byte("[\n  \"QUEUE_URL\",\n  \"TIMEOUT\"\n]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Check(vars, good, golden); err != nil {
			t.Errorf("a loader that reads its table: Check = %v, want nil", err)
		}
	}
	tests := []struct {
		name string
		load Load
		want []string
	}{
		{"reads a name outside the table", func(getenv func(string) string) error {
			getenv("STRAY")
			return good(getenv)
		}, []string{"STRAY is read but not in the table"}},
		{"asks the loader for a name outside the table", func(getenv func(string) string) error {
			l := config.NewLoader(vars, getenv)
			l.String("STRAY")
			return errors.Join(l.Err(), good(getenv))
		}, []string{"misuses its table", "STRAY is read but not in the variable table"}},
		{"skips a variable", func(getenv func(string) string) error {
			l := config.NewLoader(vars, getenv)
			l.String("QUEUE_URL")
			return l.Err()
		}, []string{"Lambda mode, no variable set: TIMEOUT is in the table but not read", "local mode, no variable set: TOKEN is in the table but not read"}},
		{"reads a local-only variable in Lambda", func(getenv func(string) string) error {
			getenv("TOKEN")
			return good(getenv)
		}, []string{"Lambda mode, no variable set: TOKEN is local-only in the table but read"}},
		{"reads a variable only when another is set", func(getenv func(string) string) error {
			l := config.NewLoader(vars, getenv)
			if l.String("QUEUE_URL") != "" {
				l.Duration("TIMEOUT")
			}
			if !l.Lambda() {
				l.String("TOKEN")
			}
			return l.Err()
		}, []string{"Lambda mode, no variable set: TIMEOUT is in the table but not read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Check(vars, tt.load, "")
			if err == nil {
				t.Fatalf("Check = nil, want an error containing %q", tt.want)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Check = %v\nwant it to contain %q", err, want)
				}
			}
		})
	}
}

func TestCheckComparesTheLambdaNames(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "lambda-env.json")
	if err := os.WriteFile(path, []byte("[\n  \"QUEUE_URL\"\n]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Check(vars, good, path)
	if err == nil || !strings.Contains(err.Error(), "infra/template.yaml") || !strings.Contains(err.Error(), "TIMEOUT") {
		t.Errorf("Check with an out-of-date file = %v, want an error naming TIMEOUT and the template", err)
	}
}

func TestReads(t *testing.T) {
	t.Parallel()
	got, err := Reads(map[string]string{"OLD_TIMEOUT": "9s"}, good)
	if err == nil || !strings.Contains(err.Error(), "QUEUE_URL is required") {
		t.Errorf("Reads err = %v, want the loader's error", err)
	}
	want := []string{config.EnvLambdaRuntimeAPI, "QUEUE_URL", "TIMEOUT", "OLD_TIMEOUT", "TOKEN"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Reads = %v, want %v", got, want)
	}
}

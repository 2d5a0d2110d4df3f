package modgraph

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestABotBuildsAndTestsOutsideTheRepository copies examples/quote into a module of its own
// in a temporary folder — as a team's repository would hold it, with replace lines standing in
// for released versions of worker and shared — and runs its tests there, without go.work: the
// framework and its test helper need nothing of this repository's layout.
func TestABotBuildsAndTestsOutsideTheRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module from scratch")
	}
	repo := root(t)
	dir := t.TempDir()
	src := filepath.Join(repo, "examples", "quote")
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".go") {
			data = []byte(strings.ReplaceAll(string(data), "github.com/slackrelay/slackrelay/examples/quote", "example.com/quotebot"))
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(repo, "examples", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(mod), "module github.com/slackrelay/slackrelay/examples", "module example.com/quotebot", 1)
	text = strings.ReplaceAll(text, "=> ../worker", "=> "+filepath.Join(repo, "worker"))
	text = strings.ReplaceAll(text, "=> ../shared", "=> "+filepath.Join(repo, "shared"))
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(repo, "examples", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	goCmd(t, dir, "mod", "tidy")
	out := goCmd(t, dir, "test", "-count=1", "./...")
	if !strings.Contains(out, "ok  \texample.com/quotebot") {
		t.Fatalf("the bot's tests did not run outside the repository:\n%s", out)
	}
}

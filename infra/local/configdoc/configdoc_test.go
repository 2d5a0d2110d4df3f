package configdoc

import (
	"os"
	"strings"
	"testing"

	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/shared/golden"
)

const docPath = "../../../docs/configuration.md"

// docs/configuration.md shows exactly the code's tables.
func TestConfigurationDocMatchesTheTables(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Apply(string(doc), Sections())
	if err != nil {
		t.Fatalf("docs/configuration.md: %v", err)
	}
	if err := golden.Check(docPath, []byte(want)); err != nil {
		t.Fatalf("docs/configuration.md differs from the variable tables in the code; edit the tables "+
			"(receiver/receiverconfig, worker/workerconfig, worker/assistant, shared/awsclient, infra/local/devenv), then "+
			"run `cd infra/local && go test ./configdoc -update`:\n%v", err)
	}
}

var sample = Section{Name: "x", Modes: true, Vars: []config.Var{
	{Name: "A", Required: true, Doc: "first | with a pipe"},
	{Name: "B", Kind: config.KindInt, Default: "3", Min: 1, Max: 9, LocalOnly: true, OldNames: []string{"OLD_B"}, Doc: "second"},
	{Name: "C", Kind: config.KindDuration, Doc: "third"},
}}

func TestRender(t *testing.T) {
	t.Parallel()
	want := "| variable | read in | type | default | meaning |\n" +
		"| --- | --- | --- | --- | --- |\n" +
		"| `A` | Lambda, local | string | required | first \\| with a pipe |\n" +
		"| `B` (formerly `OLD_B`) | local | integer 1–9 | `3` | second |\n" +
		"| `C` | Lambda, local | duration | — | third |\n"
	if got := Render(sample); got != want {
		t.Errorf("Render =\n%s\nwant\n%s", got, want)
	}
	plain := Section{Name: "y", Vars: []config.Var{{Name: "P", Doc: "plain"}}}
	if got, want := Render(plain), "| variable | meaning |\n| --- | --- |\n| `P` | plain |\n"; got != want {
		t.Errorf("Render(plain) = %q, want %q", got, want)
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	doc := "# T\n\n<!-- BEGIN GENERATED x -->\nstale\n<!-- END GENERATED x -->\n\ntext\n"
	got, err := Apply(doc, []Section{sample})
	if err != nil {
		t.Fatal(err)
	}
	if want := "# T\n\n<!-- BEGIN GENERATED x -->\n" + Render(sample) + "<!-- END GENERATED x -->\n\ntext\n"; got != want {
		t.Errorf("Apply =\n%s\nwant\n%s", got, want)
	}
	again, err := Apply(got, []Section{sample})
	if err != nil || again != got {
		t.Errorf("Apply is not idempotent: %v\n%s", err, again)
	}
	for _, bad := range []struct{ doc, want string }{
		{"no markers\n", "exactly one"},
		{"<!-- END GENERATED x -->\n<!-- BEGIN GENERATED x -->\n", "comes before"},
		{"<!-- BEGIN GENERATED x -->\n<!-- END GENERATED x -->\n<!-- BEGIN GENERATED z -->\n<!-- END GENERATED z -->\n", `"z" has no table`},
	} {
		if _, err := Apply(bad.doc, []Section{sample}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Apply(%q) = %v, want an error containing %q", bad.doc, err, bad.want)
		}
	}
}

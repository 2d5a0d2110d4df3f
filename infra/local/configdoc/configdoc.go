// Package configdoc writes the variable tables of docs/configuration.md from the code's
// tables (receiver/receiverconfig, worker/workerconfig, the shipped bot's assistant.Vars,
// shared/awsclient, the DLQ tool's cli.Vars, infra/local/devenv), so the documentation
// cannot drift from what the binaries read. Its test compares the file
// with the tables and rewrites it under -update.
//
// A generated section sits between the lines
//
//	<!-- BEGIN GENERATED name -->
//	<!-- END GENERATED name -->
//
// and everything else in the file is written by hand.
package configdoc

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/slackrelay/slackrelay/infra/local/devenv"
	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/worker/assistant"
	dlqcli "github.com/slackrelay/slackrelay/worker/cmd/slackrelay-dlq/cli"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// Section is one generated table.
type Section struct {
	// Name is the marker's name.
	Name string
	Vars []config.Var
	// Modes adds the column saying whether a variable is read in Lambda, locally or both.
	Modes bool
}

// Sections are the generated tables of docs/configuration.md.
func Sections() []Section {
	return []Section{
		{Name: "receiver", Vars: receiverconfig.Vars, Modes: true},
		{Name: "worker", Vars: workerconfig.Vars, Modes: true},
		{Name: "assistant", Vars: assistant.Vars, Modes: true},
		{Name: "aws", Vars: awsclient.Vars},
		{Name: "dlq", Vars: dlqcli.Vars},
		{Name: "slackrelay-local", Vars: devenv.Vars},
	}
}

func begin(name string) string { return "<!-- BEGIN GENERATED " + name + " -->" }
func end(name string) string   { return "<!-- END GENERATED " + name + " -->" }

// Render writes a section's table in Markdown, one row per variable in table order. The
// type column appears when some variable is not a string, the default column when some
// variable has a default or is required.
func Render(sec Section) string {
	types := slices.ContainsFunc(sec.Vars, func(v config.Var) bool { return v.Kind != config.KindString })
	defaults := slices.ContainsFunc(sec.Vars, func(v config.Var) bool { return v.Default != "" || v.Required })
	head := []string{"variable"}
	if sec.Modes {
		head = append(head, "read in")
	}
	if types {
		head = append(head, "type")
	}
	if defaults {
		head = append(head, "default")
	}
	head = append(head, "meaning")
	var b strings.Builder
	row := func(cells []string) { b.WriteString("| " + strings.Join(cells, " | ") + " |\n") }
	row(head)
	rule := make([]string, len(head))
	for i := range rule {
		rule[i] = "---"
	}
	row(rule)
	for _, v := range sec.Vars {
		name := "`" + v.Name + "`"
		if len(v.OldNames) > 0 {
			name += " (formerly `" + strings.Join(v.OldNames, "`, `") + "`)"
		}
		cells := []string{name}
		if sec.Modes {
			cells = append(cells, map[bool]string{true: "local", false: "Lambda, local"}[v.LocalOnly])
		}
		if types {
			kind := v.Kind.String()
			if v.Kind == config.KindInt {
				kind += " " + strconv.Itoa(v.Min) + "–" + strconv.Itoa(v.Max)
			}
			cells = append(cells, kind)
		}
		if defaults {
			switch {
			case v.Required:
				cells = append(cells, "required")
			case v.Default != "":
				cells = append(cells, "`"+v.Default+"`")
			default:
				cells = append(cells, "—")
			}
		}
		cells = append(cells, strings.ReplaceAll(v.Doc, "|", `\|`))
		row(cells)
	}
	return b.String()
}

// Apply returns doc with every section's table written between its markers. A missing or
// doubled marker, or a generated section that Sections does not know, is an error.
func Apply(doc string, sections []Section) (string, error) {
	known := map[string]bool{}
	for _, sec := range sections {
		known[sec.Name] = true
		b, e := begin(sec.Name), end(sec.Name)
		if strings.Count(doc, b) != 1 || strings.Count(doc, e) != 1 {
			return "", fmt.Errorf("want exactly one %q and one %q line", b, e)
		}
		i, j := strings.Index(doc, b)+len(b), strings.Index(doc, e)
		if j < i {
			return "", fmt.Errorf("%q comes before %q", e, b)
		}
		doc = doc[:i] + "\n" + Render(sec) + doc[j:]
	}
	for _, line := range strings.Split(doc, "\n") {
		if name, ok := strings.CutPrefix(line, "<!-- BEGIN GENERATED "); ok {
			if name = strings.TrimSuffix(name, " -->"); !known[name] {
				return "", fmt.Errorf("generated section %q has no table in configdoc.Sections", name)
			}
		}
	}
	return doc, nil
}

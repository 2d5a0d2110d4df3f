package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The worker's Lambda build does not link the local world (infra/local, test support), with
// and without the Lambda build tag.
func TestBuildLeavesOutLocalWorld(t *testing.T) {
	t.Parallel()
	for _, tags := range []string{"", "lambda.norpc"} {
		out, err := exec.Command("go", "list", "-tags", tags, "-deps", ".").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -tags %q -deps: %v\n%s", tags, err, out)
		}
		for _, pkg := range strings.Fields(string(out)) {
			if strings.Contains(pkg, "slackrelay/infra/local") {
				t.Errorf("tags %q: the worker links %s", tags, pkg)
			}
		}
	}
}

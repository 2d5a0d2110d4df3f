package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The receiver's Lambda build links neither the local world (infra/local, test support) nor
// DynamoDB (only the worker keeps progress), with and without the Lambda build tag.
func TestBuildLeavesOutLocalWorldAndDynamoDB(t *testing.T) {
	t.Parallel()
	for _, tags := range []string{"", "lambda.norpc"} {
		out, err := exec.Command("go", "list", "-tags", tags, "-deps", ".").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -tags %q -deps: %v\n%s", tags, err, out)
		}
		for _, pkg := range strings.Fields(string(out)) {
			if strings.Contains(pkg, "slackrelay/infra/local") || strings.Contains(pkg, "service/dynamodb") {
				t.Errorf("tags %q: the receiver links %s", tags, pkg)
			}
		}
	}
}

// Package modgraph checks the shape of the repository's module graph, as `go mod graph` and
// `go list` report it: the production modules (shared, receiver, worker) never require the
// dev world (infra/local) or the examples, the receiver and the worker require nothing of
// each other, and the Lambda build of the worker links no local poller.
package modgraph

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const prefix = "github.com/slackrelay/slackrelay/"

// root is the repository root (this package is infra/local/modgraph).
func root(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..", "..")
}

// goCmd runs go in dir without the workspace, so each module is seen as another repository
// would see it.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

func TestProductionModulesRequireOnlyShared(t *testing.T) {
	allowed := map[string][]string{
		"shared":   nil,
		"receiver": {"shared"},
		"worker":   {"shared"},
	}
	for mod, ok := range allowed {
		t.Run(mod, func(t *testing.T) {
			graph := goCmd(t, filepath.Join(root(t), mod), "mod", "graph")
			for _, line := range strings.Split(graph, "\n") {
				from, to, found := strings.Cut(line, " ")
				if !found || !strings.HasPrefix(to, prefix) {
					continue
				}
				target := strings.TrimPrefix(to, prefix)
				target, _, _ = strings.Cut(target, "@")
				if strings.HasPrefix(from, prefix) && strings.TrimPrefix(strings.Split(from, "@")[0], prefix) == target {
					continue
				}
				legal := false
				for _, a := range ok {
					if target == a {
						legal = true
					}
				}
				if !legal {
					t.Errorf("module %s: %s requires %s (production modules may require only %v of this repository)", mod, from, target, ok)
				}
			}
		})
	}
}

func TestLambdaWorkerLinksNoPoller(t *testing.T) {
	deps := goCmd(t, filepath.Join(root(t), "worker"), "list", "-deps", "-tags", "lambda.norpc", "./cmd/worker")
	for _, p := range strings.Fields(deps) {
		if p == prefix+"worker/poller" || strings.HasPrefix(p, prefix+"infra/") || strings.HasSuffix(p, "/fakeslack") || strings.HasSuffix(p, "/relaytest") {
			t.Errorf("the Lambda worker (-tags lambda.norpc) links %s", p)
		}
	}
	local := goCmd(t, filepath.Join(root(t), "worker"), "list", "-deps", "./cmd/worker")
	if !strings.Contains(local, prefix+"worker/poller\n") {
		t.Errorf("the local worker build does not link the poller: it could not run outside Lambda")
	}
}

func TestAuthorPackagesPullNoAWSStore(t *testing.T) {
	// A bot imports relay (and tests with relaytest): neither may drag in the DynamoDB or SSM
	// SDKs, which belong to the engine's wiring.
	for _, pkg := range []string{"./relay"} {
		deps := goCmd(t, filepath.Join(root(t), "worker"), "list", "-deps", pkg)
		for _, p := range strings.Fields(deps) {
			if strings.Contains(p, "service/dynamodb") || strings.Contains(p, "service/ssm") {
				t.Errorf("%s depends on %s", pkg, p)
			}
		}
	}
}

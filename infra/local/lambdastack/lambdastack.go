// Package lambdastack runs the project's Lambda functions on this machine as Lambda would:
// the real bootstrap binaries, built as `make build` builds them (for this machine's OS and
// architecture), under the Runtime API stand-in (infra/local/lambdaruntime), with the
// environment and timeout infra/template.yaml gives them (infra/local/cfnenv) and the
// template's resources standing for the local stack's queues, table, SSM and Slack servers.
// The Lambda-mode tests (infra/local/lambdatest) and `make bench` use it.
package lambdastack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/slackrelay/slackrelay/infra/local/cfnenv"
	"github.com/slackrelay/slackrelay/infra/local/lambdaruntime"
	"github.com/slackrelay/slackrelay/shared/awsclient"
)

// The functions' logical ids in infra/template.yaml.
const (
	ReceiverFunction = "ReceiverFunction"
	WorkerFunction   = "WorkerFunction"
)

// BuildFlags are the Makefile's GOFLAGS_LAMBDA, as arguments (a test keeps the two equal).
var BuildFlags = []string{"-trimpath", "-tags", "lambda.norpc", "-ldflags=-s -w -buildid=", "-buildvcs=false"}

// Bootstraps are the built binaries, each named bootstrap in a directory of its own (as in
// the zips).
type Bootstraps struct {
	Receiver, Worker string
}

// Build compiles both bootstraps into dir with BuildFlags and CGO_ENABLED=0, for this
// machine's GOOS and GOARCH.
func Build(ctx context.Context, root, dir string) (Bootstraps, error) {
	b := Bootstraps{Receiver: filepath.Join(dir, "receiver", "bootstrap"), Worker: filepath.Join(dir, "worker", "bootstrap")}
	for _, t := range []struct{ module, out string }{{"receiver", b.Receiver}, {"worker", b.Worker}} {
		args := append(append([]string{"build"}, BuildFlags...), "-o", t.out, "./cmd/"+t.module)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = filepath.Join(root, t.module)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("build the %s bootstrap: %w\n%s", t.module, err, out)
		}
	}
	return b, nil
}

// Local is what the template's resources and the functions' AWS clients stand for here.
type Local struct {
	// QueueURL, DLQURL and Table are the events queue, the dead-letter queue and the
	// idempotency table (EventsQueue, DeadLetterQueue, IdempotencyTable).
	QueueURL, DLQURL, Table string
	// SQSEndpoint, DynamoDBEndpoint and SSMEndpoint are the local servers.
	SQSEndpoint, DynamoDBEndpoint, SSMEndpoint string
}

// Spec is one function to run.
type Spec struct {
	// LogicalID is ReceiverFunction or WorkerFunction; Bin its bootstrap.
	LogicalID, Bin string
	Local          Local
	// Params replace the template's parameter defaults.
	Params map[string]string
	// Set and Unset change the template's environment for a scenario (a local Slack URL, a
	// short cache age, a variable taken away).
	Set   map[string]string
	Unset []string
	// Log receives the function's output.
	Log io.Writer
}

// Options resolves spec against the template: the function's environment and timeout as the
// template gives them, placeholder credentials (Lambda's come from the role), the local
// endpoints, then Set and Unset.
func Options(t *cfnenv.Template, spec Spec) (lambdaruntime.FunctionOptions, error) {
	f, err := t.Function(spec.LogicalID, cfnenv.Stack{
		Params: spec.Params,
		Refs: map[string]string{
			"EventsQueue": spec.Local.QueueURL, "DeadLetterQueue": spec.Local.DLQURL, "IdempotencyTable": spec.Local.Table,
		},
	})
	if err != nil {
		return lambdaruntime.FunctionOptions{}, err
	}
	env := f.Env
	env[awsclient.EnvAccessKeyID], env[awsclient.EnvSecretAccessKey], env[awsclient.EnvSessionToken] = "local", "local", "local"
	for service, url := range map[string]string{"SQS": spec.Local.SQSEndpoint, "DYNAMODB": spec.Local.DynamoDBEndpoint, "SSM": spec.Local.SSMEndpoint} {
		if url != "" {
			env[awsclient.EndpointVar(service)] = url
		}
	}
	for k, v := range spec.Set {
		env[k] = v
	}
	for _, k := range spec.Unset {
		delete(env, k)
	}
	return lambdaruntime.FunctionOptions{
		Name: "slackrelay-" + strings.TrimSuffix(strings.ToLower(spec.LogicalID), "function"),
		Bin:  spec.Bin, Env: environ(env), Timeout: f.Timeout, MemoryMB: f.MemoryMB, Log: spec.Log,
	}, nil
}

// environ turns a map into NAME=value entries, sorted.
func environ(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return slices.Clip(out)
}

// Package lambdaworld runs the project's Lambda functions on this machine as Lambda would:
// the real bootstrap binaries, built as `make build` builds them (for this machine's OS and
// architecture), under AWS's Lambda Runtime Interface Emulator (RIE, rie.go; built from
// infra/local/tools/rie), with the environment, timeout and memory infra/template.yaml gives
// them (read by goformation, template.go) and the template's resources standing for the
// local stack's queues, table, SSM and Slack servers. The Lambda-mode tests
// (infra/local/lambdamode) and `make bench` use it.
package lambdaworld

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"syscall"

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
// the zips), and the emulator that runs them.
type Bootstraps struct {
	Receiver, Worker, RIE string
}

// Build compiles both bootstraps into dir with BuildFlags and CGO_ENABLED=0, for this
// machine's GOOS and GOARCH, and gets RIE from BuildRIE.
func Build(ctx context.Context, root, dir string) (Bootstraps, error) {
	rie, err := BuildRIE(ctx, root)
	if err != nil {
		return Bootstraps{}, err
	}
	b := Bootstraps{Receiver: filepath.Join(dir, "receiver", "bootstrap"), Worker: filepath.Join(dir, "worker", "bootstrap"), RIE: rie}
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

// The emulator's module and command; infra/local/tools/rie/go.mod pins its version.
const (
	rieModule  = "github.com/aws/aws-lambda-runtime-interface-emulator"
	rieCommand = rieModule + "/cmd/aws-lambda-rie"
)

// RIEVersion is the emulator's version that infra/local/tools/rie/go.mod requires.
func RIEVersion(root string) (string, error) {
	mod, err := os.ReadFile(filepath.Join(root, "infra", "local", "tools", "rie", "go.mod"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(rieModule) + `\s+(\S+)`).FindSubmatch(mod)
	if m == nil {
		return "", fmt.Errorf("infra/local/tools/rie/go.mod does not require %s", rieModule)
	}
	return string(m[1]), nil
}

// BuildRIE returns the emulator's binary, build/rie/VERSION-GOOS-GOARCH/aws-lambda-rie under
// root, building it first when it is not there (go build in infra/local/tools/rie, outside
// the workspace: about 16 s on 2 idle cores with a cold Go build cache, 0.4 s with a warm
// one). Test processes that need it at once (lambdaworld's, lambdamode's) take turns
// on a lock file, so it is built once.
func BuildRIE(ctx context.Context, root string) (string, error) {
	if runtime.GOOS != "linux" {
		return "", fmt.Errorf("RIE runs on Linux only, not %s", runtime.GOOS)
	}
	version, err := RIEVersion(root)
	if err != nil {
		return "", err
	}
	out := filepath.Join(root, "build", "rie", version+"-"+runtime.GOOS+"-"+runtime.GOARCH, "aws-lambda-rie")
	if st, err := os.Stat(out); err == nil && st.Mode().IsRegular() {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if st, err := os.Stat(out); err == nil && st.Mode().IsRegular() {
		return out, nil // built by another process meanwhile
	}
	tmp := out + ".tmp" + strconv.Itoa(os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, rieCommand)
	cmd.Dir = filepath.Join(root, "infra", "local", "tools", "rie")
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("build RIE %s: %w\n%s", version, err, b)
	}
	return out, os.Rename(tmp, out)
}

// Local is what the template's resources and the functions' AWS clients stand for here.
type Local struct {
	// QueueURL, DLQURL and Table are the events queue, the dead-letter queue and the
	// idempotency table (EventsQueue, DeadLetterQueue, IdempotencyTable).
	QueueURL, DLQURL, Table string
	// InstallationsTable is the installations table (InstallationsTable), for Workspaces many.
	InstallationsTable string
	// SQSEndpoint, DynamoDBEndpoint and SSMEndpoint are the local servers.
	SQSEndpoint, DynamoDBEndpoint, SSMEndpoint string
}

// Spec is one function to run.
type Spec struct {
	// LogicalID is ReceiverFunction or WorkerFunction; Bin its bootstrap, RIE the emulator.
	LogicalID, Bin, RIE string
	Local               Local
	// Params replace the template's parameter defaults.
	Params map[string]string
	// Set and Unset change the template's environment for a scenario (a local Slack URL, a
	// short cache age, a variable taken away).
	Set   map[string]string
	Unset []string
	// Log receives the function's output.
	Log io.Writer
}

// Options resolves spec against the template: the function's name, environment, timeout
// and memory as the template gives them, placeholder credentials (Lambda's come from the
// role), the local endpoints, then Set and Unset.
func Options(t *Template, spec Spec) (FunctionOptions, error) {
	refs := map[string]string{
		"EventsQueue": spec.Local.QueueURL, "DeadLetterQueue": spec.Local.DLQURL, "IdempotencyTable": spec.Local.Table,
	}
	if spec.Local.InstallationsTable != "" {
		// Only when set: a Ref on it without one is an error, never an empty table name.
		refs["InstallationsTable"] = spec.Local.InstallationsTable
	}
	f, err := t.Function(spec.LogicalID, Values{Params: spec.Params, Refs: refs})
	if err != nil {
		return FunctionOptions{}, err
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
	return FunctionOptions{
		Name: f.Name, Bin: spec.Bin, RIE: spec.RIE, Env: environ(env), Timeout: f.Timeout, MemoryMB: f.MemoryMB, Log: spec.Log,
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

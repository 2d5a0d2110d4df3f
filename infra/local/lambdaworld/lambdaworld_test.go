package lambdaworld

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// BuildFlags must stay the Makefile's GOFLAGS_LAMBDA, or the tests run other binaries than
// the ones deployed.
func TestBuildFlagsAreTheMakefiles(t *testing.T) {
	t.Parallel()
	mk, err := os.ReadFile(filepath.Join("..", "..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^GOFLAGS_LAMBDA := (.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile has no GOFLAGS_LAMBDA line")
	}
	// The Makefile's one quoted argument is -ldflags='…'.
	want := strings.Join(BuildFlags, " ")
	got := strings.Replace(string(m[1]), "-ldflags='-s -w -buildid='", "-ldflags=-s -w -buildid=", 1)
	if got != want {
		t.Fatalf("GOFLAGS_LAMBDA is %q; BuildFlags say %q", m[1], want)
	}
}

func TestOptionsFromTheTemplate(t *testing.T) {
	t.Parallel()
	tmpl, err := LoadTemplate(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	local := Local{QueueURL: "http://sqs/q", DLQURL: "http://sqs/dlq", Table: "t", SQSEndpoint: "http://sqs", DynamoDBEndpoint: "http://ddb", SSMEndpoint: "http://ssm"}
	o, err := Options(tmpl, Spec{LogicalID: WorkerFunction, Bin: "/x/bootstrap", Local: local,
		Set: map[string]string{"SLACK_API_URL": "http://slack/api/"}, Unset: []string{"DEMO_DELAY"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"EVENTS_QUEUE_URL=http://sqs/q", "DLQ_URL=http://sqs/dlq", "IDEMPOTENCY_TABLE=t", "BOT_TOKEN_PARAM=/slackrelay/prod/bot-token",
		"AWS_ENDPOINT_URL_SSM=http://ssm", "AWS_ENDPOINT_URL_DYNAMODB=http://ddb", "SLACK_API_URL=http://slack/api/", "AWS_ACCESS_KEY_ID=local"} {
		if !slices.Contains(o.Env, want) {
			t.Errorf("environment lacks %s: %v", want, o.Env)
		}
	}
	for _, e := range o.Env {
		if strings.HasPrefix(e, "DEMO_DELAY=") {
			t.Errorf("DEMO_DELAY was unset, yet %s", e)
		}
	}
	if o.Timeout != 120*time.Second || o.Name != "slackrelay-worker" || o.MemoryMB != 256 {
		t.Errorf("options %+v; want the template's 120s timeout and 256 MB", o)
	}
}

// The bootstraps link none of the local world (this module), with the build's tags and
// without them. (The receiver links DynamoDB since the install pages of many-workspace mode
// record used states and save installations, receiver/installflow.)
func TestBootstrapsLeaveOutTheLocalWorld(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..", "..")
	for _, fn := range []struct {
		module    string
		forbidden []string
	}{
		{"receiver", []string{"slackrelay/infra/local"}},
		{"worker", []string{"slackrelay/infra/local"}},
	} {
		for _, tags := range []string{"", "lambda.norpc"} {
			cmd := exec.Command("go", "list", "-tags", tags, "-deps", "./cmd/"+fn.module)
			cmd.Dir = filepath.Join(root, fn.module)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: go list -tags %q -deps: %v\n%s", fn.module, tags, err, out)
			}
			for _, pkg := range strings.Fields(string(out)) {
				for _, f := range fn.forbidden {
					if strings.Contains(pkg, f) {
						t.Errorf("%s (tags %q) links %s", fn.module, tags, pkg)
					}
				}
			}
		}
	}
}

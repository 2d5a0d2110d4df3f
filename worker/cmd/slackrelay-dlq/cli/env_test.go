package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/shared/awsclient"
)

func TestVarsTable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, v := range Vars {
		if v.Name == "" || v.Doc == "" || seen[v.Name] {
			t.Errorf("Vars entry %+v: want a unique name and a doc", v)
		}
		seen[v.Name] = true
	}
	for _, name := range []string{envQueueURL, envDLQURL, envStateDir, "AWS_REGION", "AWS_ENDPOINT_URL_SQS"} {
		if !seen[name] {
			t.Errorf("Vars lacks %s", name)
		}
	}
	var out strings.Builder
	if err := RunWith(t.Context(), Deps{}, []string{"help"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for name := range seen {
		mustContain(t, out.String(), "  "+name+" ")
	}
}

// The queue URLs and the state directory come from the environment when no flag names them.
func TestEnvironmentFallbacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedThree(t, e)
	state := t.TempDir()
	env := map[string]string{envQueueURL: e.queue, envDLQURL: e.dlq, envStateDir: state}
	deps := Deps{SQS: e.c, Getenv: func(k string) string { return env[k] }}
	var out, errb strings.Builder
	if err := RunWith(t.Context(), deps, []string{"export", "--out", filepath.Join(t.TempDir(), "x.jsonl")}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	mustContain(t, errb.String(), "exported 3 message(s)")
	records, _ := filepath.Glob(filepath.Join(state, "exports", "*.json"))
	if len(records) != 1 {
		t.Fatalf("export records in $%s: got %v, want one", envStateDir, records)
	}
	data, err := os.ReadFile(records[0])
	if err != nil || !strings.Contains(string(data), e.dlq) {
		t.Errorf("export record: %v %s, want the DLQ's URL in it", err, data)
	}
	out.Reset()
	if err := RunWith(t.Context(), deps, []string{"replay", "--all", "--allow-stale"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	mustContain(t, out.String(), "would replay 3 message(s) to "+e.queue[strings.LastIndexByte(e.queue, '/')+1:])
}

// The tool's real AWS clients send through awsclient.HTTPClient, which keeps the SDK from
// losing a response SQS acted on (a receive whose batch nobody sees, a send made twice).
func TestAWSClientsUseTheToolsHTTPClient(t *testing.T) {
	t.Parallel()
	s, c, err := newAWSClients(t.Context(), "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]aws.HTTPClient{
		"SQS":            s.(*sqs.Client).Options().HTTPClient,
		"CloudFormation": c.(*cloudformation.Client).Options().HTTPClient,
	} {
		if _, ok := h.(*awsclient.HTTPClient); !ok {
			t.Errorf("%s client's HTTP client: got %T, want *awsclient.HTTPClient", name, h)
		}
	}
}

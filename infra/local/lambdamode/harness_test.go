package lambdamode

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/awstest"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/infra/local/lambdaworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/fakessm"
)

var (
	bins     lambdaworld.Bootstraps
	tmpl     *lambdaworld.Template
	setupErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slackrelay-lambdamode-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	setupErr = setup(dir)
	code := localawstest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

func setup(dir string) error {
	root, err := localaws.RepoRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if bins, err = lambdaworld.Build(ctx, root, dir); err != nil {
		return err
	}
	tmpl, err = lambdaworld.LoadTemplate(filepath.Join(root, "infra", "template.yaml"))
	return err
}

// world is one test's share of the local stack: its own queues, table and SSM server.
type world struct {
	t     *testing.T
	stack *localaws.Servers
	ssm   *fakessm.Server
	local lambdaworld.Local
}

var seq atomic.Int64

func newWorld(t *testing.T) *world {
	t.Helper()
	if setupErr != nil {
		t.Fatalf("setup: %v", setupErr)
	}
	stack := localawstest.Stack(t)
	name := fmt.Sprintf("lambda-%d", seq.Add(1))
	q, dlq := localawstest.QueueURLs(t, stack, name, 5)
	if err := awstest.CreateTable(context.Background(), stack.DynamoDB(), name); err != nil {
		t.Fatal(err)
	}
	srv, err := fakessm.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &world{t: t, stack: stack, ssm: srv, local: lambdaworld.Local{
		QueueURL: q, DLQURL: dlq, Table: name,
		SQSEndpoint: stack.SQSEndpoint, DynamoDBEndpoint: stack.DynamoDBEndpoint, SSMEndpoint: srv.URL(),
	}}
}

// start runs a function of the template under RIE; spec's LogicalID, Set and Unset say which
// and how it differs, the world fills in the rest. Its runtime starts (init) at the first
// invocation. RIE's and the function's output is shown when the test fails.
func (w *world) start(spec lambdaworld.Spec) (*lambdaworld.Function, lambdaworld.FunctionOptions) {
	w.t.Helper()
	spec.Bin = map[string]string{lambdaworld.ReceiverFunction: bins.Receiver, lambdaworld.WorkerFunction: bins.Worker}[spec.LogicalID]
	spec.RIE = bins.RIE
	if spec.Local == (lambdaworld.Local{}) {
		spec.Local = w.local
	}
	opts, err := lambdaworld.Options(tmpl, spec)
	if err != nil {
		w.t.Fatal(err)
	}
	f, err := lambdaworld.Start(context.Background(), opts)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(f.Stop)
	w.t.Cleanup(func() {
		if w.t.Failed() {
			w.t.Logf("%s output:\n%s", opts.Name, f.Logs())
		}
	})
	return f, opts
}

// The receiver's signing secret, stored in the local SSM under the template's parameter.
const signingSecret = "lambda-test-signing-secret"

// call invokes the receiver with an HTTP event and decodes its answer.
func call(t *testing.T, f *lambdaworld.Function, event []byte) (events.APIGatewayV2HTTPResponse, lambdaworld.Result) {
	t.Helper()
	r, err := f.Invoke(context.Background(), event)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if !r.TimedOut && r.Error == nil {
		if err := json.Unmarshal(r.Response, &resp); err != nil {
			t.Fatalf("response %s: %v", r.Response, err)
		}
	}
	return resp, r
}

// receive takes what is on queue (waiting up to a second for the first message).
func receive(t *testing.T, client *sqs.Client, queue string) []sqstypes.Message {
	t.Helper()
	var all []sqstypes.Message
	for {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queue), MaxNumberOfMessages: 10, WaitTimeSeconds: map[bool]int32{true: 1, false: 0}[len(all) == 0],
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		all = append(all, out.Messages...)
	}
}

// hasLogLine reports whether out (a function's output) has a JSON line with every key/value given.
func hasLogLine(out string, kv map[string]string) bool {
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		ok := true
		for k, v := range kv {
			if fmt.Sprint(m[k]) != v {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// logged reports whether the function logs a JSON line holding every key/value of kv
// within a few seconds: its output is read from a pipe, so a line written just before the
// invocation's result may reach the test just after it.
func logged(f interface{ Logs() string }, kv map[string]string) bool {
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if hasLogLine(f.Logs(), kv) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// signedBody is the body Slack signed in an HTTP event (decoded when base64).
func signedBody(t *testing.T, event []byte) string {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(event, &ev); err != nil {
		t.Fatal(err)
	}
	if !ev.IsBase64Encoded {
		return ev.Body
	}
	b, err := base64.StdEncoding.DecodeString(ev.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

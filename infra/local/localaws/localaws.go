// Package localaws starts the local stand-ins for AWS that the tests, `make demo` and
// `make dev` use: an SQS-protocol server (fauxqs, or local-aws-sqs where StartMessageMoveTask
// is needed) and a DynamoDB-protocol server (dynalite). They are the npm packages pinned in
// infra/local, started through its launchers, bound to 127.0.0.1 on free ports, each in its
// own process group so Stop removes everything that was started.
package localaws

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slackrelay/slackrelay/shared/awstest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/awsclient"
)

// SQS server implementations.
const (
	ImplFauxqs      = "fauxqs"
	ImplLocalAWSSQS = "local-aws-sqs"
)

// Options choose what to start. The zero value starts fauxqs with an "events" queue pair
// and dynalite with the idempotency table.
type Options struct {
	// Dir is infra/local; empty means found from the working directory upwards.
	Dir string
	// QueueName is the events queue; its DLQ is QueueName + "-dlq". Default "events".
	QueueName string
	// MaxReceiveCount of the queue's RedrivePolicy. Default 5.
	MaxReceiveCount int
	// VisibilityTimeout of the events queue in seconds. Default 30.
	VisibilityTimeout int
	// SQSImpl is ImplFauxqs (default) or ImplLocalAWSSQS.
	SQSImpl string
	// PlainQueues turns off fauxqs's fair-queue delivery (fair-queues.mjs): messages come in
	// the order sent, whatever their MessageGroupId, as on a queue without fair queues.
	PlainQueues bool
	// NoDynamoDB skips dynalite.
	NoDynamoDB bool
	// TableName of the idempotency table. Default "idempotency".
	TableName string
	// Stderr receives the servers' own error output (default: discarded).
	Stderr io.Writer
}

// Stack is a running local stack.
type Servers struct {
	SQSEndpoint      string
	DynamoDBEndpoint string
	QueueURL         string
	DLQURL           string
	TableName        string

	procs []*exec.Cmd
	// One client of each server, made on first use: a client made per call would open a
	// connection per call (its own HTTP transport), which the polling loops of the tests,
	// the demo and the benchmarks call every 50 ms.
	sqsOnce, dynamoDBOnce sync.Once
	sqsClient             *sqs.Client
	dynamoDBClient        *dynamodb.Client
}

// Start launches the servers, creates the queues and the table and returns when all accept
// requests. On error everything already started is stopped.
func Start(ctx context.Context, opts Options) (*Servers, error) {
	if opts.QueueName == "" {
		opts.QueueName = "events"
	}
	if opts.MaxReceiveCount == 0 {
		opts.MaxReceiveCount = 5
	}
	if opts.VisibilityTimeout == 0 {
		opts.VisibilityTimeout = 30
	}
	if opts.SQSImpl == "" {
		opts.SQSImpl = ImplFauxqs
	}
	if opts.TableName == "" {
		opts.TableName = "idempotency"
	}
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = FindDir(); err != nil {
			return nil, err
		}
	}
	s := &Servers{TableName: opts.TableName}
	var ready struct {
		Endpoint string `json:"endpoint"`
		QueueURL string `json:"queue_url"`
		DLQURL   string `json:"dlq_url"`
	}
	fair := "on"
	if opts.PlainQueues {
		fair = "off"
	}
	err := s.launch(ctx, dir, opts.Stderr, &ready, "sqs-server.mjs",
		"--impl", opts.SQSImpl, "--queue", opts.QueueName,
		"--max-receive-count", fmt.Sprint(opts.MaxReceiveCount),
		"--visibility-timeout", fmt.Sprint(opts.VisibilityTimeout), "--fair-queues", fair)
	if err != nil {
		return nil, err
	}
	s.SQSEndpoint, s.QueueURL, s.DLQURL = ready.Endpoint, ready.QueueURL, ready.DLQURL
	if !opts.NoDynamoDB {
		ready.Endpoint = ""
		if err := s.launch(ctx, dir, opts.Stderr, &ready, "dynamodb-server.mjs"); err != nil {
			s.Stop()
			return nil, err
		}
		s.DynamoDBEndpoint = ready.Endpoint
		if err := awstest.CreateTable(ctx, s.DynamoDB(), opts.TableName); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// RepoRoot returns the repository root: the first folder holding go.work, walking up from
// the working directory.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work above %s: run from inside the slackrelay repository", wd)
		}
	}
}

// FindDir returns infra/local: $SLACKRELAY_LOCAL_DIR, or below RepoRoot. It checks that the
// npm packages are installed.
func FindDir() (string, error) {
	dir := os.Getenv("SLACKRELAY_LOCAL_DIR")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", fmt.Errorf("localaws: %w (or set SLACKRELAY_LOCAL_DIR to infra/local)", err)
		}
		dir = filepath.Join(root, "infra", "local")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "fauxqs")); err != nil {
		return "", fmt.Errorf("localaws: the local servers are not installed in %s (run `make deps`)", dir)
	}
	return dir, nil
}

func (s *Servers) launch(ctx context.Context, dir string, stderr io.Writer, ready any, script string, args ...string) error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("localaws: node is not installed: %w", err)
	}
	cmd := exec.Command("node", append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SLACKRELAY_EXIT_ON_STDIN_CLOSE=1", "FAUXQS_LOGGER=false")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if stderr == nil {
		stderr = io.Discard
	}
	cmd.Stderr = stderr
	// The pipe stays open while this process lives; the server exits when it closes.
	if _, err := cmd.StdinPipe(); err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localaws: start %s: %w", script, err)
	}
	s.procs = append(s.procs, cmd)
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		l, _ := r.ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, r)
	}()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case l := <-line:
		if err := json.Unmarshal([]byte(l), ready); err != nil || !strings.Contains(l, `"ready":true`) {
			return fmt.Errorf("localaws: %s did not start (first line %q); see its stderr", script, strings.TrimSpace(l))
		}
		return nil
	case <-timeout.C:
		return fmt.Errorf("localaws: %s not ready after 30s", script)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop ends every server this stack started (SIGTERM, then SIGKILL after 3 s) and waits.
func (s *Servers) Stop() {
	for _, cmd := range s.procs {
		if cmd.Process == nil {
			continue
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	s.procs = nil
}

// SQS returns the stack's SQS client (safe for concurrent use).
func (s *Servers) SQS() *sqs.Client {
	s.sqsOnce.Do(func() {
		s.sqsClient = sqs.NewFromConfig(awsclient.Local(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(s.SQSEndpoint) })
	})
	return s.sqsClient
}

// DynamoDB returns the stack's DynamoDB client (safe for concurrent use).
func (s *Servers) DynamoDB() *dynamodb.Client {
	s.dynamoDBOnce.Do(func() {
		s.dynamoDBClient = dynamodb.NewFromConfig(awsclient.Local(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(s.DynamoDBEndpoint) })
	})
	return s.dynamoDBClient
}

// Depth returns the messages a queue holds: visible, in flight and delayed.
func (s *Servers) Depth(ctx context.Context, queueURL string) (int, error) {
	out, err := s.SQS().GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		}})
	if err != nil {
		return 0, fmt.Errorf("localaws: queue attributes of %s: %w", queueURL, err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("localaws: queue attribute %q is not a number", v)
		}
		n += k
	}
	return n, nil
}

// Env returns the variables that point a binary started with them at this stack.
func (s *Servers) Env() []string {
	env := []string{
		"AWS_REGION=" + awsclient.DefaultRegion,
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_SQS=" + s.SQSEndpoint,
		"EVENTS_QUEUE_URL=" + s.QueueURL,
		"DLQ_URL=" + s.DLQURL,
	}
	if s.DynamoDBEndpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL_DYNAMODB="+s.DynamoDBEndpoint, "IDEMPOTENCY_TABLE="+s.TableName)
	}
	return env
}

// Package awstest is what the integration tests of the production modules (shared, receiver,
// worker) need of the local SQS and DynamoDB servers. It exists so that those modules never
// require the dev-world module infra/local (issue 21: the module graph stays acyclic): it
// starts nothing, it only reads where the servers are from the environment.
//
// `slackrelay-local with-aws -- go test ./...` (what `make test` runs) starts the servers
// and sets AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_DYNAMODB, and
// SLACKRELAY_SQS_MOVE_TASKS_ENDPOINT for a second SQS server that has message move tasks.
// A test that needs an endpoint that is unset is skipped, or fails when
// SLACKRELAY_REQUIRE_LOCAL_STACK=1 (make test, CI), so a missing server is never a silent pass.
//
// The servers are shared by every test binary of a run: each test gets queues and tables of
// its own, uniquely named, deleted when it ends.
package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

// The variables read. The first two are the SDK's own, as the binaries read them.
const (
	EnvSQS      = "AWS_ENDPOINT_URL_SQS"
	EnvDynamoDB = "AWS_ENDPOINT_URL_DYNAMODB"
	// EnvSQSMoveTasks is an SQS server with StartMessageMoveTask, ListMessageMoveTasks and
	// CancelMessageMoveTask, which the one at EnvSQS (fauxqs) lacks.
	EnvSQSMoveTasks = "SLACKRELAY_SQS_MOVE_TASKS_ENDPOINT"
	// EnvRequire=1 turns a missing endpoint from a skip into a failure.
	EnvRequire = "SLACKRELAY_REQUIRE_LOCAL_STACK"
)

// Endpoint returns the endpoint in the variable name, or skips the test (fails it under
// SLACKRELAY_REQUIRE_LOCAL_STACK=1) when it is unset.
func Endpoint(t testing.TB, name string) string {
	t.Helper()
	if u := os.Getenv(name); u != "" {
		return u
	}
	const how = "run the tests under `build/local/slackrelay-local with-aws -- go test ./...` (make test does)"
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s is not set and %s=1: %s", name, EnvRequire, how)
	}
	t.Skipf("%s is not set: %s, or set %s=1 to fail instead of skipping", name, how, EnvRequire)
	return ""
}

var (
	clientsMu sync.Mutex
	clients   = map[string]any{}
)

// client returns the one client of its type of endpoint, made on first use: a client made
// per call would open connections per call.
func client[C any](endpoint string, newClient func(string) C) C {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	key := fmt.Sprintf("%T %s", *new(C), endpoint)
	c, ok := clients[key].(C)
	if !ok {
		c = newClient(endpoint)
		clients[key] = c
	}
	return c
}

// SQS returns a client of the local SQS server: static credentials, us-east-1, and the
// project's HTTP client, as the binaries build theirs.
func SQS(t testing.TB) *sqs.Client {
	t.Helper()
	return client(Endpoint(t, EnvSQS), func(u string) *sqs.Client { return SQSAt(u, nil) })
}

// SQSAt returns a new SQS client of endpoint that sends through awsclient's HTTP client
// around next (nil: the SDK's default).
func SQSAt(endpoint string, next aws.HTTPClient) *sqs.Client {
	return sqs.NewFromConfig(awsclient.Local(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = awsclient.NewHTTPClient(next)
	})
}

// DynamoDB returns a client of the local DynamoDB server (static credentials, us-east-1).
func DynamoDB(t testing.TB) *dynamodb.Client {
	t.Helper()
	return client(Endpoint(t, EnvDynamoDB), DynamoDBAt)
}

// DynamoDBAt returns a new DynamoDB client of endpoint.
func DynamoDBAt(endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(awsclient.Local(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

var (
	seq         atomic.Int64
	unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]`)
	runID       = func() string {
		var b [4]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
)

// Name returns a name unique across the test binaries sharing the servers, starting with the
// test's name: usable as a queue name (with a "-dlq" suffix too) and a table name.
func Name(t testing.TB) string {
	return fmt.Sprintf("%.40s-%s-%d", unsafeChars.ReplaceAllString(t.Name(), "-"), runID, seq.Add(1))
}

// NewTable creates a fresh table with the journal's schema (worker/internal/journal) and
// returns its name; it is deleted when the test ends.
func NewTable(t testing.TB) string {
	t.Helper()
	db := DynamoDB(t)
	name := Name(t)
	if err := CreateTable(context.Background(), db, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

// CreateTable creates the journal's table as the stack's template does: key pk (S),
// on-demand, and waits until it is active. The template's TTL on expires_at is not set: the
// local server (dynalite) has none, and the journal treats expired records as absent itself.
func CreateTable(ctx context.Context, db *dynamodb.Client, name string) error {
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	var exists *ddbtypes.ResourceInUseException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 10*time.Second); err != nil {
		return fmt.Errorf("table %s did not become active: %w", name, err)
	}
	return nil
}

// Queues is one test's events queue and its DLQ, with a client of their server.
type Queues struct {
	SQS        *sqs.Client
	Endpoint   string
	Queue, DLQ string
}

// NewQueues creates a fresh queue pair on the local SQS server (maxReceiveCount 5), deleted
// when the test ends, so tests running side by side never see each other's messages.
func NewQueues(t testing.TB) *Queues {
	t.Helper()
	return newQueues(t, EnvSQS, SQS(t))
}

// NewMoveTaskQueues is NewQueues on the SQS server that has message move tasks.
func NewMoveTaskQueues(t testing.TB) *Queues {
	t.Helper()
	return newQueues(t, EnvSQSMoveTasks, client(Endpoint(t, EnvSQSMoveTasks), func(u string) *sqs.Client { return SQSAt(u, nil) }))
}

func newQueues(t testing.TB, env string, c *sqs.Client) *Queues {
	t.Helper()
	q, dlq, err := CreateQueuePair(context.Background(), c, Name(t), 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, u := range []string{q, dlq} {
			_, _ = c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(u)})
		}
	})
	return &Queues{SQS: c, Endpoint: os.Getenv(env), Queue: q, DLQ: dlq}
}

// CreateQueuePair creates name-dlq and name with a RedrivePolicy to it (maxReceive
// receives), as the stack's template does, and returns their URLs.
func CreateQueuePair(ctx context.Context, c *sqs.Client, name string, maxReceive int) (queueURL, dlqURL string, err error) {
	dlq, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq"),
		Attributes: map[string]string{"MessageRetentionPeriod": "1209600"}})
	if err != nil {
		return "", "", fmt.Errorf("create %s-dlq: %w", name, err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", "", fmt.Errorf("read %s-dlq arn: %w", name, err)
	}
	policy := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, attrs.Attributes["QueueArn"], maxReceive)
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name),
		Attributes: map[string]string{"RedrivePolicy": policy, "VisibilityTimeout": "30"}})
	if err != nil {
		return "", "", fmt.Errorf("create %s: %w", name, err)
	}
	return aws.ToString(q.QueueUrl), aws.ToString(dlq.QueueUrl), nil
}

// SlowReceives returns a client of the same server whose ReceiveMessage calls take d
// longer, as they do over a real network; the other calls are not slowed.
func (q *Queues) SlowReceives(d time.Duration) *sqs.Client {
	return SQSAt(q.Endpoint, &http.Client{Transport: delayTarget{d: d, target: "AmazonSQS.ReceiveMessage"}})
}

// delayTarget delays the requests whose X-Amz-Target is target.
type delayTarget struct {
	d      time.Duration
	target string
}

func (l delayTarget) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") == l.target {
		time.Sleep(l.d)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// SendMany sends n messages to url, 10 per batch and 8 batches at a time; entry(i) gives
// the i-th message's body and attributes (nil attributes: none); it is called from
// several goroutines at once.
func SendMany(t testing.TB, c *sqs.Client, url string, n int, entry func(i int) (string, map[string]types.MessageAttributeValue)) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i += 10 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(url)}
			for j := i; j < min(i+10, n); j++ {
				body, attrs := entry(j)
				in.Entries = append(in.Entries, types.SendMessageBatchRequestEntry{
					Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(body), MessageAttributes: attrs})
			}
			out, err := c.SendMessageBatch(context.Background(), in)
			if err != nil || len(out.Failed) > 0 {
				t.Errorf("send batch from %d: %v %v", i, err, out)
			}
		}()
	}
	wg.Wait()
}

// Drain receives every message of url (hiding each for 60 s, with all system and message
// attributes) and returns them by message id. The local server answers a short poll from
// every visible message, so two empty receives in a row mean that none is left visible.
func Drain(t testing.TB, c *sqs.Client, url string) map[string]types.Message {
	t.Helper()
	got := map[string]types.Message{}
	for empty := 0; empty < 2; {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 60,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			t.Fatalf("drain %s: %v", url, err)
		}
		if len(out.Messages) == 0 {
			empty++
		}
		for _, m := range out.Messages {
			got[aws.ToString(m.MessageId)] = m
		}
	}
	return got
}

// DeadLetterClasses drains the dead-letter queue url (Drain) and returns each dead letter's
// failure class (envelope.AttrFailureClass, "" when SQS moved it without one) by the event id
// of its envelope.
func DeadLetterClasses(t testing.TB, c *sqs.Client, url string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for id, m := range Drain(t, c, url) {
		env, err := envelope.Decode([]byte(aws.ToString(m.Body)))
		if err != nil {
			t.Fatalf("dead letter %s: %v", id, err)
		}
		out[env.EventID] = aws.ToString(m.MessageAttributes[envelope.AttrFailureClass].StringValue)
	}
	return out
}

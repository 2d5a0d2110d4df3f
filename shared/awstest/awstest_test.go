package awstest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/awsclient"
)

// recorder is a testing.TB that records how a test would have ended.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skipf(f string, args ...any)  { r.skipped = fmt.Sprintf(f, args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

func TestEndpointSkipsOrFailsWhenUnset(t *testing.T) {
	const name = "SLACKRELAY_AWSTEST_UNSET"
	t.Setenv(name, "")
	t.Setenv(EnvRequire, "")
	r := &recorder{}
	if got := Endpoint(r, name); got != "" || r.skipped == "" || r.failed != "" {
		t.Errorf("unset: %q, skipped %q, failed %q; want a skip", got, r.skipped, r.failed)
	}
	t.Setenv(EnvRequire, "1")
	r = &recorder{}
	if Endpoint(r, name); r.failed == "" || !strings.Contains(r.failed, "with-aws") {
		t.Errorf("unset under %s=1: failed %q, want a failure saying how to run", EnvRequire, r.failed)
	}
	t.Setenv(name, "http://127.0.0.1:1")
	r = &recorder{}
	if got := Endpoint(r, name); got != "http://127.0.0.1:1" || r.skipped != "" || r.failed != "" {
		t.Errorf("set: %q, skipped %q, failed %q", got, r.skipped, r.failed)
	}
}

func TestNamesAreUniqueAndValid(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]{3,76}$`) // a queue name, "-dlq" added
	seen := map[string]bool{}
	for range 3 {
		n := Name(t)
		if !valid.MatchString(n) || seen[n] || !strings.HasPrefix(n, "TestNamesAreUniqueAndValid-") {
			t.Errorf("name %q: invalid, repeated or not after the test", n)
		}
		seen[n] = true
	}
}

func TestQueuesTableAndProxy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := NewQueues(t)
	attrs, err := q.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.Queue),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy}})
	if err != nil || !strings.Contains(attrs.Attributes["RedrivePolicy"], q.DLQ[strings.LastIndexByte(q.DLQ, '/')+1:]) ||
		!strings.Contains(attrs.Attributes["RedrivePolicy"], `"maxReceiveCount":5`) {
		t.Fatalf("queue's redrive policy = %v, %v; want its DLQ after 5 receives", attrs, err)
	}
	SendMany(t, q.SQS, q.DLQ, 25, func(i int) (string, map[string]types.MessageAttributeValue) { return fmt.Sprint("m", i), nil })
	if got := Drain(t, q.SQS, q.DLQ); len(got) != 25 {
		t.Errorf("drained %d messages, want 25", len(got))
	}
	if got := Drain(t, q.SlowReceives(0), q.Queue); len(got) != 0 {
		t.Errorf("the events queue holds %d messages, want none", len(got))
	}

	table := NewTable(t)
	db := DynamoDB(t)
	key := map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "k1"}}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: key}); err != nil {
		t.Fatal(err)
	}
	if out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key}); err != nil || out.Item == nil {
		t.Fatalf("get = %v, %v", out, err)
	}

	p := NewProxy(t, Endpoint(t, EnvDynamoDB))
	via := dynamodb.NewFromConfig(awsclient.Local(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.RetryMaxAttempts = 1
	})
	get := func() error {
		_, err := via.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key})
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.SetDown(true)
	if err := get(); err == nil {
		t.Fatal("a read succeeded while the proxy was down")
	}
	p.SetDown(false)
	if err := get(); err != nil {
		t.Fatalf("after the proxy came back: %v", err)
	}
}

func TestMoveTaskQueues(t *testing.T) {
	t.Parallel()
	q := NewMoveTaskQueues(t)
	arn, err := q.SQS.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.DLQ),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.SQS.ListMessageMoveTasks(context.Background(), &sqs.ListMessageMoveTasksInput{
		SourceArn: aws.String(arn.Attributes["QueueArn"])}); err != nil {
		t.Fatalf("the move-task server does not list move tasks: %v", err)
	}
}

package localaws_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/loopback"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/awsclient"
)

func TestMain(m *testing.M) { os.Exit(localawstest.Run(m)) }

func TestStackServesSQSAndDynamoDBOnLoopback(t *testing.T) {
	t.Parallel()
	s := localawstest.Stack(t)
	ctx := context.Background()
	for _, ep := range []string{s.SQSEndpoint, s.DynamoDBEndpoint} {
		u, err := url.Parse(ep)
		if err != nil || u.Hostname() != "127.0.0.1" {
			t.Fatalf("endpoint %q is not on 127.0.0.1", ep)
		}
	}
	c := s.SQS()
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.QueueURL), MessageBody: aws.String("hello")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(s.QueueURL), WaitTimeSeconds: 1})
	if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "hello" {
		t.Fatalf("receive = %+v, %v", out, err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(s.QueueURL), AttributeNames: []sqstypes.QueueAttributeName{"RedrivePolicy"}})
	if err != nil || !strings.Contains(attrs.Attributes["RedrivePolicy"], "events-dlq") {
		t.Fatalf("events queue has no redrive policy to its DLQ: %v %v", attrs.Attributes, err)
	}
	db := s.DynamoDB()
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.TableName),
		Item: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "k1"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.TableName),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "k1"}}})
	if err != nil || got.Item == nil {
		t.Fatalf("get = %+v, %v", got, err)
	}
}

func TestCreateQueuePairIsolatesTests(t *testing.T) {
	t.Parallel()
	s := localawstest.Stack(t)
	q, dlq := localawstest.QueueURLs(t, s, "isolated", 2)
	if q == s.QueueURL || !strings.HasSuffix(dlq, "isolated-dlq") {
		t.Fatalf("urls %s %s", q, dlq)
	}
}

func TestStopEndsTheServers(t *testing.T) {
	t.Parallel()
	s := localawstest.Start(t, localaws.Options{NoDynamoDB: true, SQSImpl: localaws.ImplLocalAWSSQS})
	host := strings.TrimPrefix(s.SQSEndpoint, "http://")
	if c, err := net.Dial("tcp", host); err != nil {
		t.Fatalf("server not listening: %v", err)
	} else {
		c.Close()
	}
	s.Stop()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := net.Dial("tcp", host)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still listening after Stop")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFaultProxy(t *testing.T) {
	t.Parallel()
	s := localawstest.Stack(t)
	p, err := loopback.StartProxy(strings.TrimPrefix(s.SQSEndpoint, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := sqs.NewFromConfig(awsclient.Local(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.RetryMaxAttempts = 1
	})
	ctx := context.Background()
	// A queue of its own: the other tests of this package read the stack's default queue.
	q, _ := localawstest.QueueURLs(t, s, "faultproxy", 5)
	send := func() error {
		_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("x")})
		return err
	}
	if err := send(); err != nil {
		t.Fatalf("through proxy: %v", err)
	}
	p.SetDown(true)
	if err := send(); err == nil {
		t.Fatal("send succeeded while the proxy was down")
	}
	p.SetDown(false)
	if err := send(); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

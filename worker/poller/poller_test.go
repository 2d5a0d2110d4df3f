package poller

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func TestToEventMirrorsLambdaRecords(t *testing.T) {
	t.Parallel()
	msgs := []sqstypes.Message{{
		MessageId: aws.String("m1"), ReceiptHandle: aws.String("rh"), Body: aws.String("{}"), MD5OfBody: aws.String("99914b932bd37a50b983c5e7c90ae93b"),
		Attributes: map[string]string{"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000"},
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"Kind": {DataType: aws.String("String"), StringValue: aws.String("event")},
		},
	}}
	ev := ToEvent(msgs, "https://sqs.eu-west-1.amazonaws.com/123456789012/slackrelay-events")
	if len(ev.Records) != 1 {
		t.Fatalf("records = %d", len(ev.Records))
	}
	r := ev.Records[0]
	if r.MessageId != "m1" || r.ReceiptHandle != "rh" || r.Body != "{}" || r.Attributes["ApproximateReceiveCount"] != "3" ||
		r.EventSource != "aws:sqs" || r.AWSRegion != "eu-west-1" || r.EventSourceARN != "arn:aws:sqs:eu-west-1:123456789012:slackrelay-events" {
		t.Fatalf("record = %+v", r)
	}
	if a := r.MessageAttributes["Kind"]; a.DataType != "String" || aws.ToString(a.StringValue) != "event" {
		t.Fatalf("attribute = %+v", a)
	}
}

func TestQueueARNFromLocalURL(t *testing.T) {
	t.Parallel()
	region, arn := queueARN("http://sqs.us-east-1.localhost:4566/000000000000/events")
	if region != "us-east-1" || arn != "arn:aws:sqs:us-east-1:000000000000:events" {
		t.Fatalf("%s %s", region, arn)
	}
	for _, bad := range []string{"nonsense", "a/b", "http://host"} {
		if _, arn := queueARN(bad); arn != "" {
			t.Fatalf("arn %q for %q", arn, bad)
		}
	}
}

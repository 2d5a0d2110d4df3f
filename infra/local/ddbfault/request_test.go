package ddbfault

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// readTestdata returns a request body the SDK sent for op (testdata/<op>.json).
func readTestdata(t testing.TB, op string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", op+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The table and partition key of every operation's body as the SDK writes it: one table
// and one key when the request touches only those, empty otherwise.
func TestParseTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		op, table, pk string
	}{
		{"GetItem", "idempotency", "evt:Ev1"},
		{"PutItem", "idempotency", "msg:T1:C1:1.000001"},
		{"UpdateItem", "idempotency", "msg:T1:C1:1.000001"},
		{"DeleteItem", "idempotency", "note:x"},
		{"Query", "idempotency", ""},
		{"DescribeTable", "idempotency", ""},
		{"BatchGetItem", "idempotency", ""}, // two keys
		{"BatchWriteItem", "idempotency", "b:1"},
		{"TransactWriteItems", "", "c:1"}, // two tables
		{"TransactGetItems", "idempotency", ""},
	} {
		t.Run(tc.op, func(t *testing.T) {
			t.Parallel()
			table, pk := parseTarget(readTestdata(t, tc.op), DefaultKeyAttribute)
			if table != tc.table || pk != tc.pk {
				t.Errorf("parseTarget = %q, %q; want %q, %q", table, pk, tc.table, tc.pk)
			}
		})
	}
}

func TestParseTargetKeyAttribute(t *testing.T) {
	t.Parallel()
	if _, pk := parseTarget(readTestdata(t, "GetItem"), "id"); pk != "" {
		t.Errorf("pk with key attribute id = %q, want none (the body keys pk)", pk)
	}
	for _, tc := range []struct{ body, pk string }{
		{`{"TableName":"t","Key":{"id":{"S":"a"}}}`, "a"},
		{`{"TableName":"t","Key":{"id":{"N":"42"}}}`, "42"},
		{`{"TableName":"t","Key":{"id":{"B":"AAE="}}}`, "AAE="},
		{`{"TableName":"t","Key":{"id":{"BOOL":true}}}`, ""},
		{`not json`, ""},
	} {
		if _, pk := parseTarget([]byte(tc.body), "id"); pk != tc.pk {
			t.Errorf("parseTarget(%s) pk = %q, want %q", tc.body, pk, tc.pk)
		}
	}
}

func TestNewCallReadsTheSDKHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("X-Amz-Target", "DynamoDB_20120810.PutItem")
	h.Set("Amz-Sdk-Invocation-Id", "0b5e6c1e-1111-4f0e-9d3b-000000000001")
	h.Set("Amz-Sdk-Request", "attempt=2; max=3; ttl=20261207T100000Z")
	c := newCall(h, readTestdata(t, "PutItem"), DefaultKeyAttribute)
	want := Call{Op: "PutItem", Table: "idempotency", PK: "msg:T1:C1:1.000001",
		InvocationID: "0b5e6c1e-1111-4f0e-9d3b-000000000001", Attempt: 2, MaxAttempts: 3}
	if c != want {
		t.Errorf("newCall = %+v, want %+v", c, want)
	}
	h.Set("X-Amz-Target", "DynamoDBStreams_20120810.GetRecords")
	h.Del("Amz-Sdk-Request")
	if c := newCall(h, nil, DefaultKeyAttribute); c.Op != "" || c.Attempt != 0 || c.MaxAttempts != 0 {
		t.Errorf("another service's request = %+v, want no op and no attempt", c)
	}
}

func TestErrorType(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}`: "ConditionalCheckFailedException",
		`{"__type":"com.amazon.coral.validate#ValidationException","message":"x"}`:                                                 "ValidationException",
		`{"__type":"ResourceNotFoundException:http://internal.amazon.com/"}`:                                                       "ResourceNotFoundException",
		`{"Item":{}}`: "",
		`<html>`:      "",
	} {
		if got := errorType([]byte(body)); got != want {
			t.Errorf("errorType(%s) = %q, want %q", body, got, want)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, op := range []string{"GetItem", "PutItem", "BatchGetItem", "BatchWriteItem", "TransactWriteItems", "TransactGetItems"} {
		f.Add(readTestdata(f, op))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		t1, pk1 := parseTarget(body, DefaultKeyAttribute)
		if t2, pk2 := parseTarget(body, DefaultKeyAttribute); t1 != t2 || pk1 != pk2 {
			t.Fatalf("parseTarget is not deterministic: %q %q, then %q %q", t1, pk1, t2, pk2)
		}
		_ = errorType(body)
	})
}

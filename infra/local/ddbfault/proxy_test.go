package ddbfault_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/slackrelay/slackrelay/infra/local/ddbfault"
	"github.com/slackrelay/slackrelay/infra/local/localaws/localawstest"
	"github.com/slackrelay/slackrelay/shared/awsclient"
)

func TestMain(m *testing.M) { os.Exit(localawstest.Run(m)) }

// fixture is a proxy in front of the shared dynalite, a client through it, one straight to
// dynalite, and a key prefix of the test's own.
type fixture struct {
	proxy  *ddbfault.Proxy
	db     *dynamodb.Client // through the proxy
	direct *dynamodb.Client // to dynalite
	table  string
	prefix string
}

var prefixSeq atomic.Int64

func setup(t *testing.T) *fixture {
	t.Helper()
	s := localawstest.Stack(t)
	p, err := ddbfault.Start(ddbfault.Options{Upstream: s.DynamoDBEndpoint})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	// The binaries' configuration (awsclient: 3 attempts), with short backoffs.
	db := dynamodb.NewFromConfig(awsclient.Local(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.MaxBackoff = 20 * time.Millisecond
		})
	})
	return &fixture{proxy: p, db: db, direct: s.DynamoDB(), table: s.TableName,
		prefix: fmt.Sprintf("%s:%d:", t.Name(), prefixSeq.Add(1))}
}

func (f *fixture) key(name string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: f.prefix + name}}
}

// item is key name with attributes name=value (strings).
func (f *fixture) item(name string, attrs ...string) map[string]types.AttributeValue {
	it := f.key(name)
	for i := 0; i+1 < len(attrs); i += 2 {
		it[attrs[i]] = &types.AttributeValueMemberS{Value: attrs[i+1]}
	}
	return it
}

func (f *fixture) put(ctx context.Context, name string, attrs ...string) error {
	_, err := f.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: f.item(name, attrs...)})
	return err
}

func (f *fixture) get(ctx context.Context, name string) error {
	_, err := f.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(f.table), Key: f.key(name)})
	return err
}

// count adds one to the item's attribute n (not idempotent: a retry counts again).
func (f *fixture) count(ctx context.Context, name string) error {
	_, err := f.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(f.table), Key: f.key(name),
		UpdateExpression:          aws.String("ADD n :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}})
	return err
}

// stored reads the item straight from dynalite (nil when absent).
func (f *fixture) stored(t *testing.T, name string) map[string]types.AttributeValue {
	t.Helper()
	out, err := f.direct.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(f.table), Key: f.key(name), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func attr(it map[string]types.AttributeValue, name string) string {
	switch v := it[name].(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	}
	return ""
}

// calls returns the recorded calls of the test's keys.
func (f *fixture) calls() []ddbfault.Call {
	var out []ddbfault.Call
	for _, c := range f.proxy.Snapshot().Calls {
		if strings.HasPrefix(c.PK, f.prefix) {
			out = append(out, c)
		}
	}
	return out
}

// waitCalls waits until n calls of the test's keys are recorded (a call is recorded when
// the proxy is done with it, which can be after the client gave up).
func (f *fixture) waitCalls(t *testing.T, n int) []ddbfault.Call {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls := f.calls()
		if len(calls) >= n || time.Now().After(deadline) {
			return calls
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kinds lists each call's fault, "-" for none.
func kinds(calls []ddbfault.Call) string {
	var parts []string
	for _, c := range calls {
		k := string(c.Fault)
		if k == "" {
			k = "-"
		}
		parts = append(parts, k)
	}
	return strings.Join(parts, " ")
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestPassRecordsEveryRequest(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	if err := f.put(ctx, "a", "v", "1"); err != nil {
		t.Fatal(err)
	}
	if err := f.get(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	calls := f.calls()
	if len(calls) != 2 {
		t.Fatalf("calls = %+v, want 2", calls)
	}
	for i, op := range []string{"PutItem", "GetItem"} {
		c := calls[i]
		if c.Op != op || c.Table != f.table || c.PK != f.prefix+"a" || c.InvocationID == "" || c.Attempt != 1 || c.MaxAttempts != 3 ||
			!c.Forwarded || c.Status != 200 || c.ErrorType != "" || c.Answered != 200 || c.Fault != "" || c.Rule != 0 || c.At.IsZero() {
			t.Errorf("call %d = %+v, want a plain %s on %s, attempt 1 of 3, answered 200", i, c, op, f.prefix+"a")
		}
	}
	if calls[0].Seq >= calls[1].Seq || calls[0].InvocationID == calls[1].InvocationID {
		t.Errorf("calls %+v: want increasing Seq and two invocation ids", calls)
	}
	if got := f.stored(t, "a"); attr(got, "v") != "1" {
		t.Errorf("stored item = %v, want v=1", got)
	}
}

// Fail answers a DynamoDB error without forwarding: the SDK retries a retryable one and
// gives up after its attempts, and fails at once on a permanent one.
func TestFail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		action   ddbfault.Action
		times    int
		wantCode string // "" = the put succeeds
		faults   string
	}{
		{"retryable, once", ddbfault.FailRetryable(), 1, "", "fail -"},
		{"retryable, always", ddbfault.FailRetryable(), ddbfault.Forever, ddbfault.ErrInternalServerError, "fail fail fail"},
		{"throttled, always", ddbfault.FailThrottled(), ddbfault.Forever, ddbfault.ErrThroughputExceeded, "fail fail fail"},
		{"permanent", ddbfault.FailPermanent(), 1, ddbfault.ErrValidation, "fail"},
		{"custom", ddbfault.Fail(400, "ResourceNotFoundException", "no table"), 1, "ResourceNotFoundException", "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.proxy.Arm(ddbfault.Rule{Match: ddbfault.Match{Ops: []string{"PutItem"}}, Times: tc.times, Action: tc.action})
			err := f.put(context.Background(), "a", "v", "1")
			if got := apiCode(err); got != tc.wantCode || (tc.wantCode == "") != (err == nil) {
				t.Fatalf("put: %v (code %q), want code %q", err, got, tc.wantCode)
			}
			calls := f.calls()
			if got := kinds(calls); got != tc.faults {
				t.Errorf("faults %q, want %q", got, tc.faults)
			}
			for _, c := range calls {
				if c.Fault == ddbfault.KindFail && (c.Forwarded || c.Answered != tc.action.Status) {
					t.Errorf("failed call %+v: want not forwarded, answered %d", c, tc.action.Status)
				}
			}
			if stored := f.stored(t, "a"); (stored != nil) != (tc.wantCode == "") {
				t.Errorf("stored item %v; want it written only by a forwarded attempt", stored)
			}
		})
	}
}

// Delay waits, then forwards; a client that gives up during the delay never reaches
// DynamoDB.
func TestDelay(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.proxy.Arm(ddbfault.Rule{Match: ddbfault.Match{Ops: []string{"PutItem"}, PKPrefix: f.prefix + "slow"}, Action: ddbfault.Delay(300 * time.Millisecond)})
	start := time.Now()
	if err := f.put(context.Background(), "slow", "v", "1"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("the delayed put took %v, want at least 300ms", took)
	}

	f.proxy.Arm(ddbfault.Rule{Match: ddbfault.Match{Ops: []string{"PutItem"}, PKPrefix: f.prefix + "gone"}, Times: ddbfault.Forever, Action: ddbfault.Delay(time.Minute)})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := f.put(ctx, "gone", "v", "1"); err == nil {
		t.Fatal("a put delayed a minute succeeded within 200ms")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the cancelled put took %v", took)
	}
	calls := f.waitCalls(t, 2)
	if len(calls) != 2 {
		t.Fatalf("calls = %+v, want 2", calls)
	}
	if c := calls[0]; c.Fault != ddbfault.KindDelay || !c.Forwarded || c.Answered != 200 {
		t.Errorf("delayed call = %+v, want forwarded and answered after the delay", c)
	}
	if c := calls[1]; c.Fault != ddbfault.KindDelay || c.Forwarded || c.Answered != 0 || c.Error == "" {
		t.Errorf("abandoned call = %+v, want not forwarded, not answered, with an error", c)
	}
	if got := f.stored(t, "gone"); got != nil {
		t.Errorf("the abandoned put was written: %v", got)
	}
}

// Reset closes the connection before forwarding: the SDK sends the request again.
func TestReset(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.proxy.Arm(ddbfault.Rule{Match: ddbfault.Match{Ops: []string{"UpdateItem"}}, Action: ddbfault.Reset()})
	if err := f.count(context.Background(), "n"); err != nil {
		t.Fatal(err)
	}
	calls := f.calls()
	if got := kinds(calls); got != "reset -" {
		t.Fatalf("faults %q, want \"reset -\"", got)
	}
	if c := calls[0]; c.Forwarded || c.Answered != 0 || calls[1].InvocationID != c.InvocationID || calls[1].Attempt != 2 {
		t.Errorf("calls %+v: want the reset one not forwarded, then attempt 2 of the same operation", calls)
	}
	if n := attr(f.stored(t, "n"), "n"); n != "1" {
		t.Errorf("n = %q, want 1: a reset request never reaches DynamoDB", n)
	}
}

// Drop lets DynamoDB apply the request and loses the answer: the SDK sends it again. A
// conditional put then fails its condition against its own first attempt (the seam the
// worker's claim must survive), and a counter counts twice.
func TestDrop(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.proxy.Arm(ddbfault.Rule{Match: ddbfault.Match{Ops: []string{"PutItem"}}, Action: ddbfault.Drop()})
	_, err := f.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: f.item("claim", "owner", "w1"),
		ConditionExpression: aws.String("attribute_not_exists(pk)")})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("conditional put after a dropped answer: %v, want ConditionalCheckFailedException", err)
	}
	// (dynalite does not return the item with the failure; read it.)
	if got := f.stored(t, "claim"); attr(got, "owner") != "w1" {
		t.Errorf("the item the condition failed on is %v, want the put's own first attempt (owner w1)", got)
	}
	calls := f.calls()
	if len(calls) != 2 {
		t.Fatalf("calls = %+v, want the dropped attempt and its retry", calls)
	}
	first, retry := calls[0], calls[1]
	if first.Fault != ddbfault.KindDrop || !first.Forwarded || first.Status != 200 || first.Answered != 0 {
		t.Errorf("first attempt = %+v, want applied (200) and dropped", first)
	}
	if retry.InvocationID != first.InvocationID || retry.Attempt != 2 || retry.Status != 400 ||
		retry.ErrorType != "ConditionalCheckFailedException" || retry.Answered != 400 {
		t.Errorf("retry = %+v, want attempt 2 of the same operation answered ConditionalCheckFailedException", retry)
	}
	if got := f.proxy.Snapshot().PK(f.prefix + "claim").Writes; got != (ddbfault.Count{Operations: 1, Attempts: 2}) {
		t.Errorf("writes on the claim = %+v, want 1 operation in 2 attempts", got)
	}

	f.proxy.Arm(ddbfault.Rule{Match: ddbfault.Match{Ops: []string{"UpdateItem"}}, Action: ddbfault.Drop()})
	if err := f.count(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	if n := attr(f.stored(t, "n"), "n"); n != "2" {
		t.Errorf("n = %q after one dropped answer, want 2: the retry applies again", n)
	}
}

// The counters count per key and per prefix, operations apart from their attempts.
func TestCountersPerKey(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.proxy.Arm(ddbfault.Rule{Match: ddbfault.Match{Ops: []string{"UpdateItem"}, PKPrefix: f.prefix + "b"}, Times: 2, Action: ddbfault.FailRetryable()})
	for _, step := range []func() error{
		func() error { return f.put(ctx, "a") },
		func() error { return f.get(ctx, "a") },
		func() error { return f.get(ctx, "a") },
		func() error { return f.count(ctx, "b") }, // fails twice, passes the third time
		func() error { return f.get(ctx, "b") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	snap := f.proxy.Snapshot()
	for _, tc := range []struct {
		name string
		got  ddbfault.Counts
		want ddbfault.Counts
	}{
		{"key a", snap.PK(f.prefix + "a"), ddbfault.Counts{Reads: ddbfault.Count{Operations: 2, Attempts: 2}, Writes: ddbfault.Count{Operations: 1, Attempts: 1}}},
		{"key b", snap.PK(f.prefix + "b"), ddbfault.Counts{Reads: ddbfault.Count{Operations: 1, Attempts: 1}, Writes: ddbfault.Count{Operations: 1, Attempts: 3}}},
		{"prefix", snap.Prefix(f.prefix), ddbfault.Counts{Reads: ddbfault.Count{Operations: 3, Attempts: 3}, Writes: ddbfault.Count{Operations: 2, Attempts: 4}}},
		{"total", snap.Total, ddbfault.Counts{Reads: ddbfault.Count{Operations: 3, Attempts: 3}, Writes: ddbfault.Count{Operations: 2, Attempts: 4}}},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
	if got := snap.ByOp["UpdateItem"]; got != (ddbfault.Count{Operations: 1, Attempts: 3}) {
		t.Errorf("UpdateItem: %+v, want 1 operation in 3 attempts", got)
	}
	f.proxy.Reset()
	if snap := f.proxy.Snapshot(); len(snap.Calls) != 0 || snap.Total != (ddbfault.Counts{}) || len(snap.ByPK) != 0 {
		t.Errorf("after Reset: %+v, want nothing recorded", snap)
	}
}

// Rules count in order: the 2nd UpdateItem fails, the 1st and 3rd pass; with PerOperation
// the 2nd operation fails on every attempt.
func TestRulesByOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		rule    ddbfault.Rule
		want    []string // each UpdateItem's error code
		faults  string
		fired   int
		matched int
	}{
		{"2nd attempt, permanent", ddbfault.Rule{Nth: 2, Action: ddbfault.FailPermanent()},
			[]string{"", ddbfault.ErrValidation, ""}, "- fail -", 1, 3},
		{"2nd operation, all its retries", ddbfault.Rule{Nth: 2, PerOperation: true, Action: ddbfault.FailRetryable()},
			[]string{"", ddbfault.ErrInternalServerError, ""}, "- fail fail fail -", 3, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			ctx := context.Background()
			tc.rule.Match = ddbfault.Match{Ops: []string{"UpdateItem"}, PKPrefix: f.prefix}
			rule := f.proxy.Arm(tc.rule)
			for i, want := range tc.want {
				if err := f.get(ctx, "n"); err != nil { // reads between the writes do not count
					t.Fatal(err)
				}
				if got := apiCode(f.count(ctx, "n")); got != want {
					t.Errorf("UpdateItem %d: error code %q, want %q", i+1, got, want)
				}
			}
			var updates []ddbfault.Call
			for _, c := range f.calls() {
				if c.Op == "UpdateItem" {
					updates = append(updates, c)
				}
			}
			if got := kinds(updates); got != tc.faults {
				t.Errorf("UpdateItem faults %q, want %q", got, tc.faults)
			}
			if st := rule.Status(); st.Fired != tc.fired || st.Matched != tc.matched || st.Operations != 3 {
				t.Errorf("rule status %+v, want fired %d, matched %d, 3 operations", st, tc.fired, tc.matched)
			}
			if n := attr(f.stored(t, "n"), "n"); n != "2" {
				t.Errorf("n = %q, want 2 (the failed operation never reached DynamoDB)", n)
			}
		})
	}
}

// A hook sees the request before it is forwarded and the answer after DynamoDB applied
// it, and chooses what the caller gets.
func TestHook(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	entered, release := make(chan ddbfault.Call, 1), make(chan struct{})
	var afterSaw ddbfault.Answer
	var storedAtAfter *dynamodb.GetItemOutput
	var storedErr error
	f.proxy.Arm(ddbfault.Rule{Match: ddbfault.Match{Ops: []string{"PutItem"}, PKPrefix: f.prefix}, Action: ddbfault.Hook(
		func(ctx context.Context, c ddbfault.Call) ddbfault.Action {
			entered <- c
			select { // block the request until the test lets it go
			case <-release:
			case <-ctx.Done():
			}
			return ddbfault.Pass()
		},
		func(_ context.Context, c ddbfault.Call, a ddbfault.Answer) ddbfault.Action {
			afterSaw = a
			storedAtAfter, storedErr = f.direct.GetItem(context.Background(), &dynamodb.GetItemInput{
				TableName: aws.String(f.table), Key: f.key("h"), ConsistentRead: aws.Bool(true)})
			return ddbfault.FailPermanent() // the caller "crashes" here: applied, yet an error
		})})
	done := make(chan error, 1)
	go func() { done <- f.put(ctx, "h", "v", "1") }()
	c := <-entered
	if c.Op != "PutItem" || c.PK != f.prefix+"h" || c.Attempt != 1 || c.Forwarded {
		t.Errorf("before saw %+v, want attempt 1 of PutItem on %s, not yet forwarded", c, f.prefix+"h")
	}
	if got := f.stored(t, "h"); got != nil {
		t.Errorf("the item exists while its put is held before forwarding: %v", got)
	}
	close(release)
	if err := <-done; apiCode(err) != ddbfault.ErrValidation {
		t.Fatalf("put: %v, want the hook's ValidationException", err)
	}
	if storedErr != nil {
		t.Fatal(storedErr)
	}
	if afterSaw.Status != 200 || afterSaw.ErrorType != "" || len(afterSaw.Body) == 0 || attr(storedAtAfter.Item, "v") != "1" {
		t.Errorf("after saw %+v with the item %v, want DynamoDB's 200 with the item written", afterSaw, storedAtAfter.Item)
	}
	calls := f.calls()
	if len(calls) != 1 || calls[0].Fault != ddbfault.KindFail || !calls[0].Forwarded || calls[0].Status != 200 || calls[0].Answered != 400 {
		t.Errorf("calls = %+v, want one forwarded (200) and answered 400", calls)
	}
}

// SetDown closes the connections of DynamoDB requests and every new request's, like the
// TCP FaultProxy; the control API stays up.
func TestSetDown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	if err := f.put(ctx, "a"); err != nil { // leaves a connection in the client's pool
		t.Fatal(err)
	}
	f.proxy.SetDown(true)
	if err := f.get(ctx, "a"); err == nil {
		t.Fatal("a read succeeded while the proxy was down")
	}
	c := &ddbfault.Client{BaseURL: f.proxy.URL()}
	if down, err := c.Down(ctx); err != nil || !down {
		t.Fatalf("control while down: %v, %v; want down", down, err)
	}
	if err := c.SetDown(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := f.get(ctx, "a"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	// The attempt sent on the pooled connection SetDown closed may fail before reaching
	// the proxy; the others are closed by it.
	if got := kinds(f.calls()); got != "- down -" && got != "- down down -" && got != "- down down down -" {
		t.Errorf("faults %q, want the put, the read's attempts down, the read", got)
	}
}

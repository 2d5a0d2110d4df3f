package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// tenantRecord is an SQS record with an app_mention of team in channel: the tenant is in
// the MessageGroupId when grouped (as the receiver sends it), else only in the envelope.
func tenantRecord(t *testing.T, team, channel string, grouped bool) events.SQSMessage {
	t.Helper()
	n := ts.Add(1)
	body := fixture.AppMention(fmt.Sprint("Ev", n), channel, fmt.Sprintf("1700000000.%06d", n), "hi")
	e := envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindEvent, EventType: "app_mention", TeamID: team,
		ReceivedAt: time.Now().UTC(), ContentType: envelope.ContentTypeJSON, Body: body}
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{"ApproximateReceiveCount": "1"}
	if grouped {
		attrs["MessageGroupId"] = team
	}
	return events.SQSMessage{MessageId: fmt.Sprint("m", n), ReceiptHandle: "rh", Body: string(raw), Attributes: attrs,
		MessageAttributes: map[string]events.SQSMessageAttribute{envelope.AttrKind: {DataType: "String", StringValue: aws.String("event")}}}
}

// TestABusyTenantDoesNotHoldBackAnother: ten records of one workspace come first in a batch
// of five slots, then one of another workspace. The busy one runs at most TenantConcurrency
// at once and leaves a slot, so the other's record runs while the busy one's running records
// wait for it (without the bound they would take every slot and wait for ever).
func TestABusyTenantDoesNotHoldBackAnother(t *testing.T) {
	t.Parallel()
	const bound = 3
	var mu sync.Mutex
	running, most := map[string]int{}, map[string]int{}
	quietRan := make(chan struct{})
	h := &handlerFunc{fn: func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		ch := req.Payload.Channel
		mu.Lock()
		running[ch]++
		most[ch] = max(most[ch], running[ch])
		mu.Unlock()
		defer func() { mu.Lock(); running[ch]--; mu.Unlock() }()
		if ch == "CQUIET" {
			// Runs while the busy tenant's first records all wait on it.
			defer close(quietRan)
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				mu.Lock()
				n := running["CBUSY"]
				mu.Unlock()
				if n == bound {
					return nil
				}
			}
			return relay.Permanent(fmt.Errorf("the busy tenant never ran %d records at once", bound))
		}
		select {
		case <-quietRan:
			return nil
		case <-time.After(5 * time.Second):
			return relay.Permanent(fmt.Errorf("the quiet tenant's record did not run while the busy tenant's waited"))
		}
	}}
	q := &fakeQueue{}
	p := newEngine(t, h, q, store(t), func(c *Config) { c.Concurrency, c.TenantConcurrency = 5, bound })
	var ev events.SQSEvent
	for i := range 10 {
		ev.Records = append(ev.Records, tenantRecord(t, "TBUSY", "CBUSY", i%2 == 0)) // by group id or by envelope: one tenant
	}
	ev.Records = append(ev.Records, tenantRecord(t, "TQUIET", "CQUIET", true))
	out, err := p.HandleSQS(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.BatchItemFailures) != 0 || len(q.sent) != 0 {
		t.Fatalf("%d records failed, %d dead-lettered; want all processed", len(out.BatchItemFailures), len(q.sent))
	}
	if got := h.calls.Load(); got != 11 {
		t.Fatalf("%d handler runs, want 11", got)
	}
	if most["CBUSY"] != bound {
		t.Fatalf("the busy tenant ran %d records at once, want the bound %d", most["CBUSY"], bound)
	}
}

// TestARateLimitHoldsBackOnlyItsTenant: a batch runs one record at a time; the first record
// of workspace A meets Slack's rate limit. A's records not yet started go back for the
// Retry-After without running; workspace B's record between them runs.
func TestARateLimitHoldsBackOnlyItsTenant(t *testing.T) {
	t.Parallel()
	h := &handlerFunc{}
	var mu sync.Mutex
	var ran []string
	h.fn = func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		mu.Lock()
		ran = append(ran, req.Payload.Channel)
		mu.Unlock()
		if req.Payload.Channel == "CA" {
			return &slack.RateLimitedError{RetryAfter: 30 * time.Second}
		}
		return nil
	}
	q := &fakeQueue{}
	p := newEngine(t, h, q, store(t), func(c *Config) { c.Concurrency, c.TenantConcurrency = 1, 5 })
	ev := events.SQSEvent{Records: []events.SQSMessage{
		tenantRecord(t, "TA", "CA", true), tenantRecord(t, "TA", "CA", true), tenantRecord(t, "TB", "CB", true), tenantRecord(t, "TA", "CA", false),
	}}
	out, err := p.HandleSQS(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ran) != "[CA CB]" {
		t.Fatalf("handlers ran for %v, want [CA CB]: A's later records held back, B's run", ran)
	}
	failed := map[string]bool{}
	for _, f := range out.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for i, want := range []bool{true, true, false, true} {
		if failed[ev.Records[i].MessageId] != want {
			t.Fatalf("record %d failed = %v, want %v (failures %v)", i, !want, want, out.BatchItemFailures)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.visibility) != 3 {
		t.Fatalf("visibility set %d times (%v), want 3: A's three records", len(q.visibility), q.visibility)
	}
	for _, v := range q.visibility {
		if v < 29 || v > 30 {
			t.Fatalf("visibility %v, want about the 30 s Retry-After for each of A's records", q.visibility)
		}
	}
}

// TestABatchOfOneTenantUsesEverySlot: with one workspace (every batch one tenant) there is
// no one to make room for, so the batch runs at its full concurrency.
func TestABatchOfOneTenantUsesEverySlot(t *testing.T) {
	t.Parallel()
	const slots = 5
	h, most := untilAtOnce(slots)
	q := &fakeQueue{}
	p := newEngine(t, h, q, store(t), func(c *Config) { c.Concurrency, c.TenantConcurrency = slots, 2 })
	var ev events.SQSEvent
	for range slots {
		ev.Records = append(ev.Records, tenantRecord(t, "TONE", "CONE", true))
	}
	if out, err := p.HandleSQS(context.Background(), ev); err != nil || len(out.BatchItemFailures) != 0 || len(q.sent) != 0 {
		t.Fatalf("failures %v, %d dead letters, error %v; want all processed", out.BatchItemFailures, len(q.sent), err)
	}
	if *most != slots {
		t.Fatalf("%d records ran at once, want every slot (%d)", *most, slots)
	}
}

// TestABatchThatFitsItsSlotsRunsEveryRecordAtOnce: a batch of two tenants no larger than its
// slots has no record waiting for a slot, so the bound makes room for no one: the busy
// tenant's records all run at once with the other's (bounded, the batch would last twice as
// long and the next receive, where other tenants' messages wait, would come later).
func TestABatchThatFitsItsSlotsRunsEveryRecordAtOnce(t *testing.T) {
	t.Parallel()
	const slots = 6
	h, most := untilAtOnce(slots)
	q := &fakeQueue{}
	p := newEngine(t, h, q, store(t), func(c *Config) { c.Concurrency, c.TenantConcurrency = slots, 2 })
	var ev events.SQSEvent
	for range slots - 1 {
		ev.Records = append(ev.Records, tenantRecord(t, "TBUSY", "CBUSY", true))
	}
	ev.Records = append(ev.Records, tenantRecord(t, "TQUIET", "CQUIET", true))
	if out, err := p.HandleSQS(context.Background(), ev); err != nil || len(out.BatchItemFailures) != 0 || len(q.sent) != 0 {
		t.Fatalf("failures %v, %d dead letters, error %v; want all processed", out.BatchItemFailures, len(q.sent), err)
	}
	if *most != slots {
		t.Fatalf("%d records ran at once, want every slot (%d)", *most, slots)
	}
}

// untilAtOnce is a handler whose records each wait (up to 5 s) until n have run at once, and
// the most that did (read it once the batch is handled).
func untilAtOnce(n int) (*handlerFunc, *int) {
	var mu sync.Mutex
	running, most := 0, 0
	return &handlerFunc{fn: func(ctx context.Context, req *relay.Request[slackevents.AppMentionEvent]) error {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			mu.Lock()
			at := most
			mu.Unlock()
			if at == n {
				return nil
			}
		}
		return relay.Permanent(fmt.Errorf("the batch never ran %d records at once", n))
	}}, &most
}

package deadletter

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// A scan that outlives the peek visibility sees every message once, and the hold keeps
// them hidden until released: none comes back mid-scan (the old scan let the first ones
// return after 30 s and ended on the first receive that brought only those).
func TestScanLargeQueueOutlivesVisibility(t *testing.T) {
	t.Parallel()
	const n, vis, receiveLatency = 3000, 2 * time.Second, 8 * time.Millisecond
	q := newQueue(t)
	q.seed(t, "large", n)

	h, res, err := Scan(t.Context(), q.SlowReceives(receiveLatency), q.url, ScanOptions{Visibility: vis})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("large queue: %d messages, scan %.2f s with %v per receive and %v visibility, %d receives, %s, seen %d, held %d",
		n, res.Elapsed.Seconds(), receiveLatency, vis, res.Receives, res.Stop, res.Seen, res.Held)
	if !res.Complete() || res.Seen != n || res.Held != n || res.Counts.Total() != n || res.Unseen() != 0 || len(res.Lost) != 0 {
		t.Errorf("scan: got %+v, want complete with %d seen and held", res, n)
	}
	if res.Elapsed <= vis {
		t.Errorf("the scan took %v, not longer than the visibility %v: the test does not test the hold", res.Elapsed, vis)
	}
	for _, m := range h.Messages() {
		if m.ReceiveCount != 1 {
			t.Errorf("message %s received %d times during the scan, want once", m.ID, m.ReceiveCount)
			break
		}
	}
	// Well past the first visibility, another reader receives nothing: everything is still
	// hidden. (fauxqs ends a visibility timeout only when the queue is received from, so
	// the counts alone would not show a hold that stopped.)
	time.Sleep(vis + vis/2)
	if got := q.receiveAsAnother(t); len(got) != 0 {
		t.Errorf("%v after the scan another reader received %d message(s), want none (all held)", vis+vis/2, len(got))
	}
	if c := q.counts(t); c.Visible != 0 || c.InFlight != n {
		t.Errorf("%v after the scan: %+v, want all %d in flight (held)", vis+vis/2, c, n)
	}
	released := time.Now()
	if err := h.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("release of %d messages: %.2f s", n, time.Since(released).Seconds())
	if c := q.counts(t); c.Visible != n || c.InFlight != 0 {
		t.Errorf("after release: %+v, want all %d visible", c, n)
	}
}

func TestScanWaitsForMessagesAnotherReaderReturns(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	q.seed(t, "m", 3)
	q.grab(t, 1, time.Second) // another reader takes one and gives up on it (no delete)

	h, res, err := Scan(t.Context(), q.c, q.url, ScanOptions{Settle: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(context.Background())
	if !res.Complete() || res.Seen != 3 || res.Held != 3 {
		t.Errorf("got %+v, want complete with all 3 held", res)
	}
}

func TestScanReportsWhatAnotherReaderHolds(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	q.seed(t, "m", 3)
	q.grab(t, 1, time.Minute)

	h, res, err := Scan(t.Context(), q.c, q.url, ScanOptions{Settle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete() || res.Stop != StopSettle || res.Seen != 2 || res.Held != 2 ||
		res.Counts != (Counts{InFlight: 3}) || res.Unseen() != 1 || res.InFlightElsewhere() != 1 {
		t.Errorf("got %+v, want stopped on settle with 2 of 3 held, 1 in flight elsewhere", res)
	}
	if err := h.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := q.counts(t); c != (Counts{Visible: 2, InFlight: 1}) {
		t.Errorf("after release: %+v, want 2 visible, 1 in flight with the other reader", c)
	}
}

func TestScanWaitsForDelayedMessage(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	q.seed(t, "m", 2)
	if _, err := q.c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(q.url),
		MessageBody: aws.String("late"), DelaySeconds: 2}); err != nil {
		t.Fatal(err)
	}
	if c := q.counts(t); c.Delayed != 1 {
		t.Fatalf("counts %+v, want 1 delayed", c)
	}
	h, res, err := Scan(t.Context(), q.c, q.url, ScanOptions{Settle: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(context.Background())
	if !res.Complete() || res.Held != 3 {
		t.Errorf("got %+v, want complete with the delayed message held too", res)
	}
}

func TestScanTimeout(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	q.seed(t, "m", 2)
	q.grab(t, 1, time.Minute)
	start := time.Now()
	h, res, err := Scan(t.Context(), q.c, q.url, ScanOptions{Settle: time.Minute, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(context.Background())
	if res.Stop != StopTimeout || res.Held != 1 || res.Unseen() != 1 {
		t.Errorf("got %+v, want stopped on the timeout with 1 held, 1 unseen", res)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("scan took %v with a 1 s timeout", d)
	}
}

func TestScanMaxAndEnough(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	q.seed(t, "m", 25)
	h, res, err := Scan(t.Context(), q.c, q.url, ScanOptions{Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stop != StopMax || res.Seen != 10 || res.Complete() {
		t.Errorf("max: got %+v, want stopped at 10", res)
	}
	first := h.Messages()[0].ID
	if err := h.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	h, res, err = Scan(t.Context(), q.c, q.url, ScanOptions{Enough: func(h *Hold) bool { return h.Holds(first) }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(context.Background())
	if res.Stop != StopEnough || !h.Holds(first) {
		t.Errorf("enough: got %+v, want stopped once %s was held", res, first)
	}
}

// stealingSQS plays another reader that wins the race for one message: the scan's
// visibility extension of that message fails as on real SQS once someone else received
// it, and the scan's receives never return it again.
type stealingSQS struct {
	SQSAPI
	mu      sync.Mutex
	victim  string // message id
	receipt string
}

func (s *stealingSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out, err := s.SQSAPI.ReceiveMessage(ctx, in, o...)
	if err != nil {
		return out, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := out.Messages[:0]
	for _, m := range out.Messages {
		switch {
		case s.victim == "":
			s.victim, s.receipt = aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle)
		case aws.ToString(m.MessageId) == s.victim:
			continue // the other reader has it
		}
		kept = append(kept, m)
	}
	out.Messages = kept
	return out, nil
}

func (s *stealingSQS) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	s.mu.Lock()
	var pass []types.ChangeMessageVisibilityBatchRequestEntry
	var failed []types.BatchResultErrorEntry
	for _, e := range in.Entries {
		if aws.ToString(e.ReceiptHandle) == s.receipt && e.VisibilityTimeout > 0 {
			failed = append(failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true})
			continue
		}
		pass = append(pass, e)
	}
	s.mu.Unlock()
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	if len(pass) > 0 {
		cp := *in
		cp.Entries = pass
		var err error
		if out, err = s.SQSAPI.ChangeMessageVisibilityBatch(ctx, &cp, o...); err != nil {
			return nil, err
		}
	}
	out.Failed = append(out.Failed, failed...)
	return out, nil
}

func TestScanReportsMessagesItCouldNotHold(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	q.seed(t, "m", 5)
	q.grab(t, 1, time.Minute) // keeps the scan waiting for settle
	steal := &stealingSQS{SQSAPI: q.c}
	// The scan holds the four others at first; the extension of the victim fails within a second.
	h, res, err := Scan(t.Context(), steal, q.url, ScanOptions{Visibility: time.Second, Settle: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(context.Background())
	if res.Complete() || res.Seen != 4 || res.Held != 3 || len(res.Lost) != 1 || res.Lost[0].ID != steal.victim ||
		!strings.Contains(res.Lost[0].Reason, "ReceiptHandleIsInvalid") || res.Lost[0].Receipt == "" {
		t.Fatalf("got %+v, want partial: 3 of 4 seen held, the victim %s lost with its receipt and reason", res, steal.victim)
	}
	// A lost message is never replayed: it may be with the other reader.
	var victim *Message
	for _, m := range h.Messages() {
		if m.ID == steal.victim {
			victim = m
		}
	}
	if err := h.Replay(t.Context(), q.events, victim); err == nil || !strings.Contains(err.Error(), "no longer held") {
		t.Errorf("replay of a lost message: got %v, want refused", err)
	}
	if c, _ := ReadCounts(t.Context(), q.c, q.events); c.Total() != 0 {
		t.Errorf("events queue holds %d message(s) after the refused replay, want 0", c.Total())
	}
}

func TestScanErrorReleasesWhatItHeld(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	q.seed(t, "m", 15)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, _, err := Scan(ctx, &cancellingSQS{SQSAPI: q.c, cancel: cancel}, q.url, ScanOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the cancellation", err)
	}
	if c := q.counts(t); c != (Counts{Visible: 15}) {
		t.Errorf("after an interrupted scan: %+v, want all 15 visible", c)
	}
}

// cancellingSQS cancels the scan's context during its second receive, as Ctrl-C would.
type cancellingSQS struct {
	SQSAPI
	cancel   func()
	receives int
}

func (c *cancellingSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	c.receives++
	if c.receives == 2 {
		c.cancel()
		return nil, ctx.Err()
	}
	return c.SQSAPI.ReceiveMessage(ctx, in, o...)
}

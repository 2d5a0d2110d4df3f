package deadletter

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// DeleteMessages deletes what the hold holds, with its own receipts, in batches of ten: the
// chosen messages are gone, the others stay held (and visible again after Release), a
// message sent after the scan is untouched, and a cancelled context attempts nothing.
func TestDeleteMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		cancelled  bool
		wantLeft   int // of the 25 seeded, after the delete and the release
		wantFailed int
	}{
		{"deletes the chosen", false, 2, 0},
		{"a cancelled context attempts nothing", true, 25, 23},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := newQueue(t)
			q.seed(t, "dead", 25)
			h, res, err := Scan(context.Background(), q.c, q.url, ScanOptions{Settle: time.Second})
			if err != nil || !res.Complete() {
				t.Fatalf("scan: %v, %+v", err, res)
			}
			msgs := h.Messages()
			keep := msgs[:2]
			// A message sent after the scan: not held, so never deleted.
			if _, err := q.c.SendMessage(context.Background(), sqsSend(q.url, "late")); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancelled {
				cancel()
			}
			deleted, failed := h.DeleteMessages(ctx, msgs[2:])
			cancel()
			if deleted != 23-tc.wantFailed || len(failed) != tc.wantFailed {
				t.Fatalf("deleted %d, failed %d; want %d, %d", deleted, len(failed), 23-tc.wantFailed, tc.wantFailed)
			}
			for _, f := range failed {
				if !strings.Contains(f.Reason, "not attempted") || !h.Holds(f.ID) {
					t.Errorf("failure %+v: want not attempted, and the message still held", f)
				}
			}
			for _, m := range keep {
				if !h.Holds(m.ID) {
					t.Errorf("message %s was not to be deleted but is no longer held", m.ID)
				}
			}
			if err := h.Release(context.Background()); err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, m := range drain(t, q.c, q.url) {
				left = append(left, aws.ToString(m.Body))
			}
			if !slices.Contains(left, "late") || len(left) != tc.wantLeft+1 {
				t.Errorf("queue holds %d message(s) %q; want the %d not deleted and the late one", len(left), left, tc.wantLeft)
			}
		})
	}
}

// Deleting a message the hold no longer holds fails without a call: its receipt may be
// stale and another reader may have it.
func TestDeleteMessagesSkipsWhatIsNotHeld(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	q.seed(t, "dead", 1)
	h, _, err := Scan(context.Background(), q.c, q.url, ScanOptions{Settle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := h.Messages()[0]
	if err := h.ReleaseMessages(context.Background(), []*Message{m}); err != nil {
		t.Fatal(err)
	}
	deleted, failed := h.DeleteMessages(context.Background(), []*Message{m})
	if deleted != 0 || len(failed) != 1 || !strings.Contains(failed[0].Reason, "no longer held") {
		t.Fatalf("deleted %d, failed %+v; want the message refused as not held", deleted, failed)
	}
	if c := q.counts(t); c.Visible != 1 {
		t.Errorf("queue counts %+v, want the message still there", c)
	}
	_ = h.Release(context.Background())
}

func sqsSend(url, body string) *sqs.SendMessageInput {
	return &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}
}

package deadletter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// DefaultVisibility hides a freshly received message this long. The hold extends it while
// the command runs, so this is only how soon the messages reappear if the tool is killed.
const DefaultVisibility = 30 * time.Second

// maxVisibility is SQS's limit: a message cannot stay hidden longer than 12 hours after it
// was received. The hold stops a minute short of it.
const maxVisibility = 12*time.Hour - time.Minute

// batchCalls is how many ChangeMessageVisibilityBatch calls of 10 run at once.
const batchCalls = 8

// Hold is the set of DLQ messages a scan received and keeps hidden until they are released
// or deleted: a background keeper extends their visibility before it runs out, so that no
// held message can be received by anyone else (or by the scan itself) in the meantime.
// Its methods are safe for concurrent use.
type Hold struct {
	c     SQSAPI
	url   string
	base  time.Duration
	start time.Time

	mu    sync.Mutex
	seen  []*Message             // every message received, in receive order
	byID  map[string]*Message    // the same, by message id
	held  map[string]*holdEntry  // by message id: hidden by this hold, receipt valid
	lost  map[string]LostMessage // by message id: seen, but the hold on it failed
	stop  chan struct{}
	done  chan struct{}
	ended bool
}

type holdEntry struct {
	msg      *Message
	received time.Time // of the newest receive (SQS counts the 12-hour limit from there)
	until    time.Time // hidden at least until then
}

// LostMessage is a message the scan received but could not keep hidden: its visibility
// could not be extended (another reader may have received it since), so its receipt
// handle is no longer trusted.
type LostMessage struct {
	ID      string `json:"message_id"`
	Receipt string `json:"receipt_handle"`
	Reason  string `json:"reason"`
}

func newHold(c SQSAPI, url string, visibility time.Duration) *Hold {
	h := &Hold{c: c, url: url, base: visibility, start: time.Now(),
		byID: map[string]*Message{}, held: map[string]*holdEntry{}, lost: map[string]LostMessage{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go h.keep()
	return h
}

// add records a received message. It reports whether the message is new to the hold or
// was lost and is held again; a message already held only gets its newer receipt.
func (h *Hold) add(m types.Message, receivedAt time.Time) (progress bool) {
	msg := newMessage(m)
	h.mu.Lock()
	defer h.mu.Unlock()
	until := receivedAt.Add(h.base)
	if e, ok := h.held[msg.ID]; ok {
		e.msg.receipt, e.msg.ReceiveCount, e.received, e.until = msg.receipt, msg.ReceiveCount, receivedAt, until
		return false
	}
	if old, ok := h.byID[msg.ID]; ok {
		old.receipt, old.ReceiveCount = msg.receipt, msg.ReceiveCount
		delete(h.lost, msg.ID)
		h.held[msg.ID] = &holdEntry{msg: old, received: receivedAt, until: until}
		return true
	}
	h.seen = append(h.seen, msg)
	h.byID[msg.ID] = msg
	h.held[msg.ID] = &holdEntry{msg: msg, received: receivedAt, until: until}
	return true
}

// Messages returns every message received, in receive order (held or not).
func (h *Hold) Messages() []*Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
}

// Holds reports whether the message with this id is held.
func (h *Hold) Holds(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.held[id]
	return ok
}

// Held is how many messages are held.
func (h *Hold) Held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held)
}

// Seen is how many distinct messages were received.
func (h *Hold) Seen() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

// Lost returns the messages seen but no longer held, by id.
func (h *Hold) Lost() []LostMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]LostMessage, 0, len(h.lost))
	for _, l := range h.lost {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b LostMessage) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// keep extends, until the hold ends, the visibility of every held message that would
// otherwise reappear within half the base visibility. Each extension is as long as the
// hold has lasted so far (at least the base visibility), so a message is extended about
// log2(duration / base) times however long the command runs.
func (h *Hold) keep() {
	defer close(h.done)
	tick := time.NewTicker(max(h.base/4, 50*time.Millisecond))
	defer tick.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-h.stop; cancel() }()
	for {
		select {
		case <-h.stop:
			return
		case <-tick.C:
			h.extendDue(ctx)
		}
	}
}

func (h *Hold) extendDue(ctx context.Context) {
	now := time.Now()
	ext := max(h.base, now.Sub(h.start)).Round(time.Second)
	var due []*holdEntry
	var changes []visChange
	h.mu.Lock()
	for _, e := range h.held {
		if e.until.Sub(now) >= h.base/2 {
			continue
		}
		timeout := min(ext, (maxVisibility - now.Sub(e.received)).Truncate(time.Second))
		if timeout < time.Second {
			h.loseLocked(e, "held for the 12 hours SQS allows")
			continue
		}
		due = append(due, e)
		changes = append(changes, visChange{receipt: e.msg.receipt, timeout: timeout})
	}
	h.mu.Unlock()
	if len(due) == 0 {
		return
	}
	failed := changeVisibility(ctx, h.c, h.url, changes)
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, e := range due {
		if cur, ok := h.held[e.msg.ID]; !ok || cur != e || e.msg.receipt != changes[i].receipt {
			continue // deleted, released or received again meanwhile
		}
		f, bad := failed[i]
		switch {
		case !bad:
			e.until = now.Add(changes[i].timeout)
		case !f.transient:
			h.loseLocked(e, f.reason)
		case ctx.Err() == nil && time.Now().After(e.until):
			// A failed call is tried again at the next tick, unless the message may be
			// visible to others by now.
			h.loseLocked(e, "visibility ran out while extending it failed: "+f.reason)
		}
	}
}

func (h *Hold) loseLocked(e *holdEntry, reason string) {
	delete(h.held, e.msg.ID)
	h.lost[e.msg.ID] = LostMessage{ID: e.msg.ID, Receipt: e.msg.receipt, Reason: reason}
}

// Release makes every held message visible again at once, stops holding them and ends
// the keeper. It runs even when ctx is cancelled (for 30 s at most), so an interrupted
// command leaves nothing hidden.
func (h *Hold) Release(ctx context.Context) error {
	h.end()
	return h.release(ctx, nil, true)
}

// ReleaseMessages makes the given held messages visible again at once and stops holding
// them; the others stay held.
func (h *Hold) ReleaseMessages(ctx context.Context, msgs []*Message) error {
	if len(msgs) == 0 {
		return nil
	}
	return h.release(ctx, msgs, false)
}

func (h *Hold) release(ctx context.Context, msgs []*Message, all bool) error {
	h.mu.Lock()
	if all {
		msgs = h.seen
	}
	var entries []*holdEntry
	for _, m := range msgs {
		if e, ok := h.held[m.ID]; ok {
			entries = append(entries, e)
		}
	}
	changes := make([]visChange, len(entries))
	var latest time.Time
	for i, e := range entries {
		changes[i] = visChange{receipt: e.msg.receipt}
		delete(h.held, e.msg.ID)
		if e.until.After(latest) {
			latest = e.until
		}
	}
	h.mu.Unlock()
	if len(entries) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	failed := changeVisibility(ctx, h.c, h.url, changes)
	if len(failed) == 0 {
		return nil
	}
	idx := slices.Sorted(maps.Keys(failed))
	var errs []error
	for _, i := range idx[:min(len(idx), 5)] {
		errs = append(errs, fmt.Errorf("message %s: %s", entries[i].msg.ID, failed[i].reason))
	}
	if len(idx) > 5 {
		errs = append(errs, fmt.Errorf("and %d more", len(idx)-5))
	}
	return fmt.Errorf("could not make %d peeked message(s) of %s visible again (they reappear by themselves by %s UTC): %w",
		len(failed), QueueName(h.url), latest.UTC().Format(time.TimeOnly), errors.Join(errs...))
}

func (h *Hold) end() {
	h.mu.Lock()
	ended := h.ended
	h.ended = true
	h.mu.Unlock()
	if !ended {
		close(h.stop)
		<-h.done
	}
}

// Delete deletes a held message from the queue. A message the hold lost is not deleted:
// its receipt may be stale and another reader may be working on it.
func (h *Hold) Delete(ctx context.Context, m *Message) error {
	h.mu.Lock()
	e, ok := h.held[m.ID]
	var receipt string
	if ok {
		receipt = e.msg.receipt
	}
	h.mu.Unlock()
	if !ok {
		return fmt.Errorf("message %s is no longer held (another reader may have it)", m.ID)
	}
	if _, err := h.c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(h.url), ReceiptHandle: aws.String(receipt)}); err != nil {
		return err
	}
	h.mu.Lock()
	if cur, ok := h.held[m.ID]; ok && cur == e {
		delete(h.held, m.ID)
	}
	h.mu.Unlock()
	return nil
}

// DeleteFailure is a message DeleteMessages did not delete, and why.
type DeleteFailure struct {
	ID     string
	Reason string
}

// DeleteMessages deletes the given held messages from the queue, ten to a call, batchCalls
// calls at a time, with the receipts of this hold: only what the scan received is deleted,
// never a message sent to the queue since. A message the hold lost is not deleted (its
// receipt may be stale). Once ctx ends no further call starts; the messages not attempted
// are failures too. Messages whose delete failed stay held (Release shows them again).
func (h *Hold) DeleteMessages(ctx context.Context, msgs []*Message) (deleted int, failed []DeleteFailure) {
	var jobs []deleteJob
	h.mu.Lock()
	for _, m := range msgs {
		e, ok := h.held[m.ID]
		if !ok {
			failed = append(failed, DeleteFailure{ID: m.ID, Reason: "no longer held (another reader may have it)"})
			continue
		}
		// Out of the hold while its delete runs, so the keeper does not extend a receipt
		// that is being deleted.
		delete(h.held, m.ID)
		jobs = append(jobs, deleteJob{e: e, receipt: e.msg.receipt})
	}
	h.mu.Unlock()

	var mu sync.Mutex
	sem := make(chan struct{}, batchCalls)
	var wg sync.WaitGroup
	for start := 0; start < len(jobs); start += 10 {
		batch := jobs[start:min(start+10, len(jobs))]
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			mu.Lock()
			for _, j := range jobs[start:] {
				failed = append(failed, DeleteFailure{ID: j.e.msg.ID, Reason: "not attempted: " + ctx.Err().Error()})
			}
			mu.Unlock()
			h.restore(jobs[start:])
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			in := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(h.url)}
			for i, j := range batch {
				in.Entries = append(in.Entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(j.receipt)})
			}
			out, err := h.c.DeleteMessageBatch(context.WithoutCancel(ctx), in)
			reasons := map[int]string{}
			if err != nil {
				for i := range batch {
					reasons[i] = err.Error()
				}
			} else {
				for _, f := range out.Failed {
					if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= 0 && i < len(batch) {
						reasons[i] = strings.TrimSpace(aws.ToString(f.Code) + " " + aws.ToString(f.Message))
					}
				}
			}
			var back []deleteJob
			mu.Lock()
			for i, j := range batch {
				if r, bad := reasons[i]; bad {
					failed = append(failed, DeleteFailure{ID: j.e.msg.ID, Reason: r})
					back = append(back, j)
				} else {
					deleted++
				}
			}
			mu.Unlock()
			h.restore(back)
		}()
	}
	wg.Wait()
	slices.SortFunc(failed, func(a, b DeleteFailure) int { return strings.Compare(a.ID, b.ID) })
	return deleted, failed
}

// deleteJob is one message on its way out of the queue, with the receipt it is deleted by.
type deleteJob struct {
	e       *holdEntry
	receipt string
}

// restore holds again messages whose delete did not happen, so that Release shows them
// (unless the hold has received the message again meanwhile).
func (h *Hold) restore(jobs []deleteJob) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, j := range jobs {
		if _, ok := h.held[j.e.msg.ID]; !ok && j.e.msg.receipt == j.receipt {
			h.held[j.e.msg.ID] = j.e
		}
	}
}

// visFailure is why one message's visibility was not changed.
type visFailure struct {
	reason string
	// transient: the whole call failed (network, throttling), not this message's receipt.
	transient bool
}

// visChange is one message's new visibility timeout (from now on).
type visChange struct {
	receipt string
	timeout time.Duration
}

// changeVisibility applies the changes in batches of 10, batchCalls at a time. It returns
// the failures by index of changes.
func changeVisibility(ctx context.Context, c SQSAPI, url string, changes []visChange) map[int]visFailure {
	failed := map[int]visFailure{}
	var mu sync.Mutex
	sem := make(chan struct{}, batchCalls)
	var wg sync.WaitGroup
	for start := 0; start < len(changes); start += 10 {
		end := min(start+10, len(changes))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			in := &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url)}
			for i := start; i < end; i++ {
				in.Entries = append(in.Entries, types.ChangeMessageVisibilityBatchRequestEntry{
					Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(changes[i].receipt),
					VisibilityTimeout: int32(changes[i].timeout / time.Second),
				})
			}
			out, err := c.ChangeMessageVisibilityBatch(ctx, in)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				for i := start; i < end; i++ {
					failed[i] = visFailure{reason: err.Error(), transient: true}
				}
				return
			}
			for _, f := range out.Failed {
				if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= start && i < end {
					failed[i] = visFailure{reason: strings.TrimSpace(aws.ToString(f.Code) + " " + aws.ToString(f.Message))}
				}
			}
		}()
	}
	wg.Wait()
	return failed
}

package deadletter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Defaults of ScanOptions.
const (
	DefaultSettle      = 30 * time.Second
	DefaultScanTimeout = 30 * time.Minute
)

// emptyPause is the pause after an empty short-polled receive (long polls wait in SQS).
const emptyPause = 200 * time.Millisecond

// ScanOptions steer a scan. The zero value scans the whole queue with the defaults.
type ScanOptions struct {
	// Visibility hides each received message this long at first (default
	// DefaultVisibility); the hold extends it for as long as the command runs.
	Visibility time.Duration
	// WaitSeconds is each receive's long-poll wait. Real SQS needs at least 1, so that an
	// empty answer means "nothing visible" rather than "nothing on the servers sampled";
	// 0 (short polling) suits local servers.
	WaitSeconds int32
	// Max ends the scan once this many messages were received (0 = no limit).
	Max int
	// Enough ends the scan early when it returns true (for example once given ids are held).
	Enough func(*Hold) bool
	// Settle is how long the scan goes on without receiving anything new while the queue
	// still counts messages it does not hold: in flight with another reader, delayed, or
	// counted late (default DefaultSettle).
	Settle time.Duration
	// Timeout ends the whole scan (default DefaultScanTimeout).
	Timeout time.Duration
}

// Stop says why a scan ended.
type Stop string

// Why a scan ended. Only StopComplete means that every message the queue counts is held.
const (
	StopComplete Stop = "complete" // an empty receive once every counted message was held
	StopMax      Stop = "max"      // ScanOptions.Max messages were received
	StopEnough   Stop = "enough"   // ScanOptions.Enough said so
	StopSettle   Stop = "settle"   // nothing new for ScanOptions.Settle, messages still unseen
	StopTimeout  Stop = "timeout"  // ScanOptions.Timeout passed
)

// Result compares what a scan holds with what the queue counts.
type Result struct {
	Stop Stop `json:"stop"`
	// Seen is how many distinct messages were received, Held how many of them are held.
	Seen int `json:"seen"`
	Held int `json:"held"`
	// Counts are the queue's counts read when the scan ended; InFlight includes the held.
	Counts Counts `json:"counts"`
	// Lost are messages received but no longer held (see LostMessage).
	Lost     []LostMessage `json:"lost,omitempty"`
	Receives int           `json:"receives"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// Complete reports whether the scan holds every message the queue counts.
func (r Result) Complete() bool { return r.Stop == StopComplete }

// Unseen is how many of the messages the queue counts the scan does not hold.
func (r Result) Unseen() int { return max(0, r.Counts.Total()-r.Held) }

// InFlightElsewhere is how many counted in-flight messages are not the scan's own: held
// by another reader (a consumer, another slackrelay-dlq) or lost by this scan.
func (r Result) InFlightElsewhere() int { return max(0, r.Counts.InFlight-r.Held) }

// Scan receives the queue's messages and holds them (see Hold) until the caller releases
// them. It ends on an empty receive once it holds as many messages as the queue counts
// (visible + in flight + delayed), and otherwise when a limit of opts is reached: the
// Result says which, and how much was not seen. On an error (including ctx's end) the
// messages are released again and no Hold is returned.
func Scan(ctx context.Context, c SQSAPI, url string, opts ScanOptions) (*Hold, Result, error) {
	if opts.Visibility <= 0 {
		opts.Visibility = DefaultVisibility
	}
	opts.Visibility = max(opts.Visibility.Round(time.Second), time.Second)
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultScanTimeout
	}
	h := newHold(c, url, opts.Visibility)
	res, err := h.scan(ctx, opts)
	if err != nil {
		if rerr := h.Release(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, res, err
	}
	return h, res, nil
}

func (h *Hold) scan(ctx context.Context, opts ScanOptions) (Result, error) {
	start := time.Now()
	deadline := start.Add(opts.Timeout)
	lastNew := start
	var res Result
	var counted *Counts
	finish := func(stop Stop) (Result, error) {
		if counted == nil {
			cs, err := ReadCounts(ctx, h.c, h.url)
			if err != nil {
				return res, err
			}
			counted = &cs
		}
		res.Stop, res.Counts = stop, *counted
		res.Seen, res.Held, res.Lost = h.Seen(), h.Held(), h.Lost()
		res.Elapsed = time.Since(start)
		return res, nil
	}
	for {
		switch {
		case opts.Max > 0 && h.Seen() >= opts.Max:
			return finish(StopMax)
		case opts.Enough != nil && opts.Enough(h):
			return finish(StopEnough)
		case time.Now().After(deadline):
			return finish(StopTimeout)
		}
		counted = nil
		batch := int32(10)
		if opts.Max > 0 {
			batch = int32(min(10, opts.Max-h.Seen()))
		}
		// SQS hides what it returns from the moment it handles the call: count from before it.
		asked := time.Now()
		out, err := h.c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(h.url),
			MaxNumberOfMessages:         batch,
			VisibilityTimeout:           int32(h.base / time.Second),
			WaitTimeSeconds:             opts.WaitSeconds,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			return res, fmt.Errorf("receive from %s: %w", QueueName(h.url), err)
		}
		res.Receives++
		progress := false
		for _, m := range out.Messages {
			if h.add(m, asked) {
				progress = true
			}
		}
		if progress {
			lastNew = time.Now()
			continue
		}
		// Nothing new: is everything the queue counts held?
		cs, err := ReadCounts(ctx, h.c, h.url)
		if err != nil {
			return res, err
		}
		counted = &cs
		if len(out.Messages) == 0 && h.Held() >= cs.Total() {
			return finish(StopComplete)
		}
		if time.Since(lastNew) >= opts.Settle {
			return finish(StopSettle)
		}
		if len(out.Messages) == 0 && opts.WaitSeconds == 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(emptyPause):
			}
		}
	}
}

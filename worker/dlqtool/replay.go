package dlqtool

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/envelope"
)

var replayCmd = &command{
	name:    "replay",
	summary: "send chosen DLQ messages back to the events queue, one by one (dry run unless --yes)",
	usage: `Usage: slackrelay-dlq replay [queue flags] (--id ID... | filters | --all) [--max N]
                             [--rate N] [--max-age D] [--allow-stale] [--keep-going] [--yes]

Without --yes it only prints what it would replay. With --yes, for each chosen message it
sends the same body to the events queue with the original message attributes minus the
failure attributes (FailureReason, FailureClass, FailedHandler, FailedAt) and with
ReplayCount one higher, and deletes the DLQ copy only after that send succeeded.

If a send fails, replay stops (or goes on with --keep-going); the failed message and every
message not attempted stay in the DLQ, visible again. The exit code is then 3.

Events older than --max-age (by event_time, else received_at) are skipped with a warning
unless --allow-stale: a reply to a days-old mention usually confuses more than it helps.

Peeking to find the messages adds one to their receive count on real SQS (see list -h).

Examples:
  slackrelay-dlq replay --stack slackrelay --id 5c1f0c1e-...            # dry run
  slackrelay-dlq replay --stack slackrelay --id 5c1f0c1e-... --yes
  slackrelay-dlq replay --stack slackrelay --reason rate_limited --newer-than 1h --rate 2 --yes
  slackrelay-dlq replay --stack slackrelay --all --max-age 24h --yes`,
	run: runReplay,
}

// failureAttrs are removed from a replayed message.
var failureAttrs = map[string]bool{
	envelope.AttrFailureReason: true,
	envelope.AttrFailureClass:  true,
	envelope.AttrFailedHandler: true,
	envelope.AttrFailedAt:      true,
}

func runReplay(ctx context.Context, t *tool, args []string) (err error) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	var q queueFlags
	var f filters
	var ids idList
	q.register(fs)
	f.register(fs)
	fs.Var(&ids, "id", "replay this message `ID` (repeatable, or comma separated)")
	all := fs.Bool("all", false, "replay every DLQ message (needed when neither --id nor a filter is given)")
	max := fs.Int("max", 0, "replay at most N messages (0 = no limit)")
	rate := fs.Float64("rate", 10, "at most N messages per second")
	yes := fs.Bool("yes", false, "really replay (default: dry run)")
	keepGoing := fs.Bool("keep-going", false, "after a failed send, go on with the next message instead of stopping")
	maxAge := durationFlag{d: time.Hour, set: true}
	fs.Var(&maxAge, "max-age", "skip events older than this `duration` (stale guard)")
	allowStale := fs.Bool("allow-stale", false, "replay events older than --max-age too")
	pos, help, err := t.parseFlags("replay", fs, args)
	if help || err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("replay: unexpected argument %q (message ids go in --id)", pos[0])
	case len(ids) == 0 && !f.any() && !*all:
		return usagef("replay needs --id, a filter (--event-type, --team, --reason, --kind, --class, --older-than, --newer-than) or --all")
	case *rate <= 0:
		return usagef("replay: --rate must be more than 0")
	case *max < 0:
		return usagef("replay: --max must not be negative")
	}
	qs, err := t.resolve(ctx, &q, true, true)
	if err != nil {
		return err
	}

	p := newPeeker(t.sqs, qs.dlq, t.deps.PeekWaitSeconds)
	defer func() {
		if rerr := p.release(ctx); rerr != nil {
			fmt.Fprintln(t.stderr, "warning:", rerr)
			if err == nil {
				err = rerr
			}
		}
	}()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var done func() bool
	if len(ids) > 0 {
		done = func() bool {
			for id := range want {
				if _, ok := p.held[id]; !ok {
					return false
				}
			}
			return true
		}
	}
	if err := p.scan(ctx, 0, done); err != nil {
		return err
	}
	now := t.deps.Now()
	var chosen, stale []*message
	for _, m := range p.order {
		if len(want) > 0 && !want[m.ID] {
			continue
		}
		if !f.match(m, now) {
			continue
		}
		if *max > 0 && len(chosen) >= *max {
			break
		}
		if at := m.eventTime(); !*allowStale && !at.IsZero() && now.Sub(at) > maxAge.d {
			stale = append(stale, m)
			continue
		}
		chosen = append(chosen, m)
	}
	missing := 0
	for _, id := range ids {
		if _, ok := p.held[id]; !ok {
			missing++
			fmt.Fprintf(t.stderr, "warning: message %s not found in the DLQ\n", id)
		}
	}
	for _, m := range stale {
		fmt.Fprintf(t.stderr, "warning: skipping stale %s %s %s: event is %s old (--max-age %s; pass --allow-stale to replay it)\n",
			m.ID, dash(m.kind()), dash(m.eventType()), fmtAge(now.Sub(m.eventTime())), maxAge.d)
	}

	if !*yes {
		for _, m := range chosen {
			fmt.Fprintf(t.stdout, "would replay %s  %s %s team %s, event %s old, replay #%d\n", m.ID, dash(m.kind()),
				dash(m.eventType()), dash(m.team()), ageOf(m, now), m.replayCount()+1)
		}
		fmt.Fprintf(t.stdout, "dry run: would replay %d message(s) to %s, skip %d stale; pass --yes to replay\n",
			len(chosen), queueName(qs.events), len(stale))
		if missing > 0 && len(chosen) == 0 {
			return fmt.Errorf("none of the given ids is in the DLQ")
		}
		return nil
	}
	if len(chosen) == 0 {
		fmt.Fprintf(t.stdout, "replayed 0, skipped stale %d, failed 0\n", len(stale))
		if missing > 0 {
			return fmt.Errorf("none of the given ids is in the DLQ")
		}
		return nil
	}

	// Keep the chosen messages hidden for as long as the replay can take at this rate, so
	// that their receipt handles stay valid.
	hold := time.Duration(float64(len(chosen))/(*rate)*float64(time.Second)) + time.Minute
	if hold > 12*time.Hour {
		hold = 12 * time.Hour
	}
	if err := p.setVisibility(ctx, chosen, hold); err != nil {
		return fmt.Errorf("hold the chosen messages: %w", err)
	}

	prog := &progress{w: t.stdout, tty: t.deps.IsTerminal, total: len(chosen)}
	lim := newBucket(*rate)
	replayed, failed := 0, 0
	var failures []string
	attempted := 0
	for _, m := range chosen {
		if err := lim.wait(ctx); err != nil {
			break
		}
		attempted++
		if err := t.replayOne(ctx, qs, m); err != nil {
			failed++
			failures = append(failures, fmt.Sprintf("%s: %v", m.ID, err))
			prog.fail(m.ID, err)
			if !*keepGoing {
				break
			}
			continue
		}
		p.forget(m.ID)
		replayed++
		prog.ok(m.ID, replayed+failed)
	}
	prog.finish()
	notAttempted := len(chosen) - attempted
	summary := fmt.Sprintf("replayed %d, skipped stale %d, failed %d", replayed, len(stale), failed)
	if notAttempted > 0 {
		summary += fmt.Sprintf(", not attempted %d", notAttempted)
	}
	fmt.Fprintln(t.stdout, summary)
	if failed > 0 || notAttempted > 0 {
		msg := summary + "; the messages not replayed are still in the DLQ"
		if ctx.Err() != nil {
			msg = "interrupted: " + msg
		}
		if len(failures) > 0 {
			msg += "\n  " + strings.Join(failures, "\n  ")
		}
		return &PartialError{Msg: msg}
	}
	return nil
}

func ageOf(m *message, now time.Time) string {
	if at := m.eventTime(); !at.IsZero() {
		return fmtAge(now.Sub(at))
	}
	return "?"
}

// replayOne sends m to the events queue and, once that succeeded, deletes it from the DLQ.
func (t *tool) replayOne(ctx context.Context, qs queues, m *message) error {
	_, err := t.sqs.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(qs.events),
		MessageBody:       aws.String(m.Body),
		MessageAttributes: replayAttrs(m),
	})
	if err != nil {
		return fmt.Errorf("send to %s: %w (left in the DLQ)", queueName(qs.events), err)
	}
	_, err = t.sqs.DeleteMessage(context.WithoutCancel(ctx), &sqs.DeleteMessageInput{
		QueueUrl:      aws.String(qs.dlq),
		ReceiptHandle: aws.String(m.Receipt),
	})
	if err != nil {
		return fmt.Errorf("sent to %s, but deleting it from the DLQ failed: %w (the copy left in the DLQ is a duplicate; the worker's dedupe key keeps a second replay harmless)", queueName(qs.events), err)
	}
	return nil
}

// replayAttrs are the original attributes minus the failure ones, with ReplayCount + 1.
func replayAttrs(m *message) map[string]types.MessageAttributeValue {
	out := make(map[string]types.MessageAttributeValue, len(m.Attrs)+1)
	for k, v := range m.Attrs {
		if failureAttrs[k] || k == envelope.AttrReplayCount {
			continue
		}
		out[k] = types.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	out[envelope.AttrReplayCount] = types.MessageAttributeValue{
		DataType:    aws.String("Number"),
		StringValue: aws.String(strconv.Itoa(m.replayCount() + 1)),
	}
	return out
}

// progress prints a single-line bar on a terminal, one line per message otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	done  int
	drawn bool
}

const barWidth = 30

func (p *progress) bar() {
	n := barWidth * p.done / max(p.total, 1)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("#", n), strings.Repeat(" ", barWidth-n), p.done, p.total)
	p.drawn = true
}

func (p *progress) ok(id string, n int) {
	p.done = n
	if p.tty {
		p.bar()
		return
	}
	fmt.Fprintf(p.w, "replayed %s (%d/%d)\n", id, n, p.total)
}

func (p *progress) fail(id string, err error) {
	p.done++
	if p.tty {
		fmt.Fprintf(p.w, "\rfailed %s: %v\n", id, err)
		p.bar()
		return
	}
	fmt.Fprintf(p.w, "failed %s: %v (%d/%d)\n", id, err, p.done, p.total)
}

func (p *progress) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// bucket is a token bucket: rate tokens per second, bursts up to max(1, rate).
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64) *bucket {
	b := max(1, rate)
	return &bucket{rate: rate, burst: b, tokens: b, last: time.Now()}
}

func (b *bucket) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return nil
	}
	d := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		b.tokens, b.last = 0, time.Now()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

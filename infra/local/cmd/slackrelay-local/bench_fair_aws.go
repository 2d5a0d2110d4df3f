package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/infra/local/devenv"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/slackverify"
)

// SQS fair queues' own fairness, against a deployed stack (docs/deploy.md, "Measuring SQS
// fair queues"): the noisy-tenant workload goes through the stack's receiver, so the queue
// gets the receiver's MessageGroupIds, and while the stack's event source mapping is
// disabled, consumers of this command's own take the events queue's messages as the worker
// would (batches of 10, each message held for fairWork, then deleted) and record each
// message's dwell time: from SQS's SentTimestamp to its receive. That is the figure fair
// queues are about, without Slack or a model in it.

// fairTarget is where the workload goes and whence it is consumed.
type fairTarget struct {
	EventsURL string // the receiver's Events API URL (the stack's EventsUrl output)
	QueueURL  string // the stack's events queue (EventsQueueUrl)
	Secret    string // the Slack app's signing secret the receiver verifies
	SQS       *sqs.Client
	Consumers int // concurrent batches (the event source mapping's MaximumConcurrency)
	Rate      int // the noisy tenant's events a second
}

// fairDwell is the dwell times of one run, sorted, of the quiet tenants' messages and of the
// noisy tenant's.
type fairDwell struct {
	quiet, noisy []time.Duration
}

// benchFairTarget runs the workload twice against t (the quiet tenants alone, then with the
// noisy tenant) and reports the quiet tenants' dwell times.
func benchFairTarget(ctx context.Context, t fairTarget, noisyN, quietN int) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "SQS dwell time (SentTimestamp → receive), %d consumers of 10-message batches, each message held %v. One tenant sends %d events at %d a second, %d quiet tenants %d each over %v.\n\n| run | quiet p50 | quiet p99 | quiet max | quiet p99 / alone | noisy p50 | noisy p99 |\n|---|---:|---:|---:|---:|---:|---:|\n",
		t.Consumers, fairWork, noisyN, t.Rate, fairQuietTenants, quietN, fairQuietSpread)
	var alone time.Duration
	for _, noisy := range []bool{false, true} {
		name := "quiet tenants alone"
		if noisy {
			name = "with the noisy tenant"
		}
		step("%s: sending through %s and consuming %s", name, t.EventsURL, t.QueueURL)
		d, err := fairConsume(ctx, t, noisy, noisyN, quietN)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		p99 := pct(d.quiet, 99)
		ratio, np50, np99 := "—", "—", "—"
		if noisy {
			ratio = fmt.Sprintf("%.2fx", float64(p99)/float64(max(alone, time.Millisecond)))
			np50, np99 = ms(pct(d.noisy, 50)), ms(pct(d.noisy, 99))
		} else {
			alone = p99
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", name, ms(pct(d.quiet, 50)), ms(p99), ms(d.quiet[len(d.quiet)-1]), ratio, np50, np99)
		say("%s: quiet dwell p50 %s p99 %s (%s of alone)", name, ms(pct(d.quiet, 50)), ms(p99), ratio)
	}
	return b.String(), nil
}

// fairSendAttempts is how often the workload's sender tries a request: once and Slack's 3 retries.
const fairSendAttempts = 4

// fairConsume sends the workload through the receiver while t.Consumers loops take the
// queue's messages, until every message sent has been received and deleted.
func fairConsume(ctx context.Context, t fairTarget, noisy bool, noisyN, quietN int) (fairDwell, error) {
	want := int64(fairQuietTenants * quietN)
	if noisy {
		want += int64(noisyN)
	}
	var (
		mu   sync.Mutex
		d    fairDwell
		seen atomic.Int64 // distinct events received and deleted
		wg   sync.WaitGroup
		// events are the event ids received, unique how many: a retried request can enqueue an
		// event twice.
		events = map[string]bool{}
		unique int64
	)
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, t.Consumers)
	for range t.Consumers {
		wg.Go(func() {
			for cctx.Err() == nil {
				out, err := t.SQS.ReceiveMessage(cctx, &sqs.ReceiveMessageInput{
					QueueUrl: aws.String(t.QueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
					MessageAttributeNames:       []string{envelope.AttrTeamID},
					MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameSentTimestamp},
				})
				if err != nil {
					if cctx.Err() == nil {
						errc <- fmt.Errorf("receive: %w", err)
						stop()
					}
					return
				}
				got := time.Now()
				var batch sync.WaitGroup
				var entries []sqstypes.DeleteMessageBatchRequestEntry
				for i, m := range out.Messages {
					sentMS, _ := strconv.ParseInt(m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64)
					dwell := got.Sub(time.UnixMilli(sentMS))
					team := ""
					if a, ok := m.MessageAttributes[envelope.AttrTeamID]; ok {
						team = aws.ToString(a.StringValue)
					}
					id := ""
					if env, err := envelope.Decode([]byte(aws.ToString(m.Body))); err == nil {
						id = env.EventID
					}
					mu.Lock()
					first := !events[id]
					events[id] = true
					if !first {
						team = "" // a second copy of an event (a retry): its first copy counted
					} else {
						unique++
					}
					switch {
					case strings.HasPrefix(team, "TQUIET"):
						d.quiet = append(d.quiet, dwell)
					case team == "TNOISY":
						d.noisy = append(d.noisy, dwell)
					}
					mu.Unlock()
					entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
					batch.Go(func() { time.Sleep(fairWork) })
				}
				batch.Wait()
				if len(entries) > 0 {
					if _, err := t.SQS.DeleteMessageBatch(context.WithoutCancel(cctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(t.QueueURL), Entries: entries}); err != nil {
						errc <- fmt.Errorf("delete: %w", err)
						stop()
						return
					}
					mu.Lock()
					seen.Store(unique)
					mu.Unlock()
				}
			}
		})
	}
	client := &http.Client{Timeout: 10 * time.Second}
	// As Slack does, a request not acknowledged is sent again (up to 3 retries, with Slack's
	// retry headers); a retry may enqueue an event a timed-out attempt enqueued too, so the
	// consumers count each event once.
	_, sendErr := fairWorkload(noisy, t.Rate, noisyN, quietN, func(body string) error {
		var last error
		for attempt := range fairSendAttempts {
			if attempt > 0 {
				time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
			}
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.EventsURL, bytes.NewReader([]byte(body)))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", jsonType)
			req.Header.Set(slackverify.HeaderTimestamp, ts)
			req.Header.Set(slackverify.HeaderSignature, slackverify.Sign([]byte(t.Secret), ts, []byte(body)))
			if attempt > 0 {
				req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(attempt))
				req.Header.Set("X-Slack-Retry-Reason", "http_error")
			}
			resp, err := client.Do(req)
			if err != nil {
				last = err
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				return nil
			}
			last = fmt.Errorf("status %d", resp.StatusCode)
			if resp.StatusCode < 500 {
				return last
			}
		}
		return fmt.Errorf("not acknowledged in %d attempts: %w", fairSendAttempts, last)
	})
	if sendErr != nil {
		return d, sendErr
	}
	deadline := time.Now().Add(10 * time.Minute)
	for seen.Load() < want && cctx.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	wg.Wait()
	select {
	case err := <-errc:
		return d, err
	default:
	}
	if n := seen.Load(); n < want {
		return d, fmt.Errorf("%d of the %d messages sent were received within 10 minutes", n, want)
	}
	if len(d.quiet) == 0 || (noisy && len(d.noisy) == 0) {
		return d, errors.New("no message of the workload was received (another consumer, such as the stack's event source mapping, took them?)")
	}
	sort.Slice(d.quiet, func(i, j int) bool { return d.quiet[i] < d.quiet[j] })
	sort.Slice(d.noisy, func(i, j int) bool { return d.noisy[i] < d.noisy[j] })
	return d, nil
}

// fairDeployed is `bench -fair-events-url URL -fair-queue URL`: the measurement against a
// deployed stack, printed.
func fairDeployed(ctx context.Context, settings devenv.Settings, eventsURL, queueURL string, consumers, rate, noisyN, quietN int) error {
	if settings.SigningSecret == "" {
		return errors.New("-fair-events-url needs SLACK_SIGNING_SECRET: the deployed Slack app's signing secret, which the receiver verifies")
	}
	if consumers < 1 || rate < 1 {
		return errors.New("-fair-consumers and -fair-rate must be at least 1")
	}
	cfg, err := awsclient.Load(ctx, os.Getenv)
	if err != nil {
		return err
	}
	t := fairTarget{EventsURL: eventsURL, QueueURL: queueURL, Secret: settings.SigningSecret, Consumers: consumers, Rate: rate,
		SQS: sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = awsclient.Endpoint(os.Getenv, "SQS") })}
	report, err := benchFairTarget(ctx, t, noisyN, quietN)
	if err != nil {
		return err
	}
	fmt.Print(report)
	return nil
}

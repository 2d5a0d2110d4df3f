package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// stopHeading opens the report's section on the Stop button; `bench -stop-only -out FILE`
// replaces that section of FILE and leaves the rest as it is.
const stopHeading = "## Stop (click → answer stopped)"

// stopPace is a model that writes for 20 s (400 tokens at 20 a second): every click lands
// while the answer streams.
var stopPace = fakellm.Pace{FirstToken: 200 * time.Millisecond, TokensPerSecond: 20, AnswerTokens: 400}

// benchStop measures the Stop button through the real binaries, for each provider's
// stand-in: n mentions one after another; 500 to 1,500 ms after each answer starts streaming,
// a signed click on its Stop button goes to the receiver; the time runs from the click's request to
// the local Slack server's record of chat.stopStream. Each answer must end with what was shown
// and the stopped note, and the model's request must have ended early.
func benchStop(ctx context.Context, bins devworld.Binaries, n int) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n\nMeasured %s. The real binaries (receiver → SQS → worker poller with 2 loops → DynamoDB), the worker against each provider's local stand-in writing a 20 s answer (200 ms to the first token, then 20 tokens a second). %d mentions one after another; 500 to 1,500 ms after an answer starts streaming (spread so that clicks do not line up with the stream's flushes and reads), a signed click on its Stop button goes to the receiver. The time runs from the click's request to `chat.stopStream` as the local Slack server recorded it: the click's trip through the queue, its note in the journal, the stream noticing it (a read at each flush once the button shows, and every 400 ms while the model works when no flush looked), the model's request cancelled, and the answer ended with what was shown and a note. Goal: 1.5 s.\n\n| provider | p50 | p99 | max |\n|---|---:|---:|---:|\n",
		stopHeading, time.Now().UTC().Format("2006-01-02"), n)
	for _, provider := range []string{"openai", "bedrock"} {
		d, err := stopRun(ctx, bins, n, provider)
		if err != nil {
			return "", fmt.Errorf("%s: %w", provider, err)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", provider, ms(pct(d, 50)), ms(pct(d, 99)), ms(d[len(d)-1]))
		say("stop (%s): click → stopped p50 %s p99 %s", provider, ms(pct(d, 50)), ms(pct(d, 99)))
	}
	return b.String(), nil
}

func stopRun(ctx context.Context, bins devworld.Binaries, n int, provider string) ([]time.Duration, error) {
	opts := devworld.Options{Bins: bins, HandlerTimeout: 60 * time.Second}
	if provider == "bedrock" {
		opts.LocalBedrock = &fakebedrock.Options{Pace: stopPace}
	} else {
		opts.LocalLLM = &fakellm.Options{Pace: stopPace}
	}
	s, err := devworld.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer s.Stop()
	const channel = "CSTOPBENCH"
	base := time.Now().Unix()
	var out []time.Duration
	for i := range n {
		ts := fmt.Sprintf("%d.%06d", base, 600000+i)
		if err := sent(s.Send(ctx, "/slack/events", jsonType, fixture.AppMention(fmt.Sprintf("EvStop%d-%d", base, i), channel, ts, "tell me everything"))); err != nil {
			return nil, err
		}
		var st fakeslack.Stream
		var blockID, user string
		if err := devworld.WaitFor(20*time.Second, func() bool {
			for _, x := range s.Slack.Streams() {
				if x.Channel == channel && x.ThreadTS == ts {
					if id, u, ok := relaytest.StopButton(x); ok {
						st, blockID, user = x, id, u
						return true
					}
				}
			}
			return false
		}); err != nil {
			return nil, fmt.Errorf("answer %d: no streamed answer with a Stop button within 20 s", i)
		}
		// A person clicks at any moment: a delay that does not line up with the stream's
		// flushes or reads (spread over 500–1,500 ms, the same spread on every run).
		time.Sleep(500*time.Millisecond + time.Duration(i*379%1000)*time.Millisecond)
		click := fixture.BlockActionsIn(relay.StopActionID, blockID, user, user, channel, st.TS, ts, fmt.Sprintf("%d.%06d", time.Now().Unix(), i))
		clicked := time.Now()
		if err := sent(s.Send(ctx, "/slack/interactivity", formType, click)); err != nil {
			return nil, err
		}
		if err := devworld.WaitFor(10*time.Second, func() bool {
			x, ok := s.Slack.Stream(channel, st.TS)
			st = x
			return ok && x.State == fakeslack.StreamStopped
		}); err != nil {
			return nil, fmt.Errorf("answer %d: not stopped within 10 s of the click", i)
		}
		if !strings.HasSuffix(strings.TrimSpace(st.Text), "_Stopped._") {
			return nil, fmt.Errorf("answer %d ends %q, want the stopped note", i, tail(st.Text, 40))
		}
		if took := st.StoppedAt.Sub(clicked); took > 0 {
			out = append(out, took)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	if len(out) == 0 {
		return nil, fmt.Errorf("no stop measured")
	}
	return out, nil
}

func tail(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return "…" + string(r[len(r)-n:])
	}
	return s
}

func stopOnly(ctx context.Context, out string, n int) error {
	bins, err := build(ctx)
	if err != nil {
		return err
	}
	step("the Stop button: click → answer stopped (%d answers per provider)", n)
	section, err := benchStop(ctx, bins, n)
	if err != nil {
		return err
	}
	return writeSection(out, stopHeading, section)
}

package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// streamHeading opens the report's section on streamed answers; `bench -stream-only -out FILE`
// replaces that section of FILE and leaves the rest as it is.
const streamHeading = "## Streamed answers (local LLM at a fixed pace)"

// benchPace is the model the streamed answers are measured with: 200 ms to the first token,
// then 50 tokens a second, 60-token answers (1.38 s from request to last token).
var benchPace = fakellm.Pace{FirstToken: 200 * time.Millisecond, TokensPerSecond: 50, AnswerTokens: 60}

// streamInFlight is how many events the streamed-answers measurement keeps in flight.
const streamInFlight = 10

// streamTimes are one event's moments, from the signed request to the receiver.
type streamTimes struct {
	asked, firstText, final time.Duration
}

// benchStream measures streamed answers: the real binaries, the worker against the local LLM
// server at pace, n app_mentions (inflight at a time); for each, from the request to the
// model's request, to the first Slack call that carried text (the stream's start or its
// first append) and to chat.stopStream, as the local servers recorded them. It returns the
// report's section.
func benchStream(ctx context.Context, bins devworld.Binaries, n, inflight int, pace fakellm.Pace) (string, error) {
	// One poll loop per event in flight, each taking one message, as Lambda runs one
	// invocation per batch: an event never waits for another's answer to be picked up.
	s, err := devworld.Start(ctx, devworld.Options{Bins: bins, HandlerTimeout: 10 * time.Second, LocalLLM: &fakellm.Options{Pace: pace},
		WorkerEnv: []string{workerconfig.EnvPollLoops + "=" + strconv.Itoa(inflight), workerconfig.EnvPollBatchSize + "=1"}})
	if err != nil {
		return "", err
	}
	defer s.Stop()
	const channel = "CSTREAMBENCH"
	base := time.Now().Unix()
	times := make([]streamTimes, n)
	errc := make(chan error, n)
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ts, prompt := fmt.Sprintf("%d.%06d", base, 700000+i), fmt.Sprintf("stream bench %d", i)
			sent := time.Now()
			r, err := s.Send(ctx, "/slack/events", "application/json", fixture.AppMention(fmt.Sprintf("EvS%d-%d", base, i), channel, ts, prompt))
			if err == nil && r.Status != 202 {
				err = fmt.Errorf("the receiver answered %d", r.Status)
			}
			if err != nil {
				errc <- err
				return
			}
			var st fakeslack.Stream
			err = devworld.WaitFor(30*time.Second, func() bool {
				for _, x := range s.Slack.Streams() {
					if x.Channel == channel && x.ThreadTS == ts && x.EndedBy == "chat.stopStream" {
						st = x
						return true
					}
				}
				return false
			})
			if err != nil {
				errc <- fmt.Errorf("no finished stream for %s within 30 s", ts)
				return
			}
			first, ok := firstText(st)
			req, found := requestFor(s.LLM.Requests(), prompt)
			asked := req.At
			if !ok || !found {
				errc <- fmt.Errorf("stream %s: no call with text (%v) or no model request (%v)", st.TS, ok, found)
				return
			}
			times[i] = streamTimes{asked: asked.Sub(sent), firstText: first.Sub(sent), final: st.StoppedAt.Sub(sent)}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return "", err
	}
	if len(s.Slack.Streams()) != n {
		return "", fmt.Errorf("%d streams for %d events", len(s.Slack.Streams()), n)
	}
	// Each thread as a Slack client renders it: the model's answer, once, buttons under it.
	reqs := s.LLM.Requests()
	for i := range n {
		ts, prompt := fmt.Sprintf("%d.%06d", base, 700000+i), fmt.Sprintf("stream bench %d", i)
		r, _ := requestFor(reqs, prompt)
		want := answercheck.Answer(s.LLM.AnswerText(r.Messages, r.MaxTokens))
		if err := answercheck.Judge(channel, ts, s.Slack.RenderedThread(channel, ts), want).Err(); err != nil {
			return "", err
		}
	}
	col := func(f func(streamTimes) time.Duration) []time.Duration {
		d := make([]time.Duration, n)
		for i, t := range times {
			d[i] = f(t)
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d
	}
	asked := col(func(t streamTimes) time.Duration { return t.asked })
	first := col(func(t streamTimes) time.Duration { return t.firstText })
	final := col(func(t streamTimes) time.Duration { return t.final })

	model := pace.FirstToken + time.Duration(float64(pace.AnswerTokens-1)/pace.TokensPerSecond*float64(time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n\nMeasured %s. The real binaries with the worker against the local LLM server (worker/assistant/llm/fakellm) at %d ms to the first token, then %g tokens a second, %d-token answers: the model alone takes %.2f s from request to last token. %d app_mentions in one channel, %d in flight, the worker polling with as many loops, one message each (%s in all); each time runs from the signed request to the receiver until the local server recorded the moment: the worker's request to the model (after SQS, the poller, the claim and the reaction), the first Slack call that carried text (`chat.startStream`'s `markdown_text`, else the first `chat.appendStream`), and `chat.stopStream` with the final blocks.\n\n",
		streamHeading, time.Now().UTC().Format("2006-01-02"), pace.FirstToken.Milliseconds(), pace.TokensPerSecond, pace.AnswerTokens, model.Seconds(), n, inflight, took.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "| from the request to | p50 | p99 | max |\n|---|---:|---:|---:|\n")
	for _, row := range []struct {
		what string
		d    []time.Duration
	}{{"the model asked", asked}, {"**first visible text**", first}, {"**final answer** (`chat.stopStream`)", final}} {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.what, ms(pct(row.d, 50)), ms(pct(row.d, 99)), ms(row.d[n-1]))
	}
	fmt.Fprintf(&b, "\nThe first text goes out as soon as the model sends it, so request → first visible text is the model's time to first token (%d ms here) plus the pipeline; after that, streamed text is sent every 1 s or 1,500 characters (`relay.DefaultFlushEvery`, `relay.DefaultFlushChars`), and the final answer waits for the model's last token.\n", pace.FirstToken.Milliseconds())
	say("request → model asked p50 %s; → first visible text p50 %s p99 %s; → final answer p50 %s p99 %s",
		ms(pct(asked, 50)), ms(pct(first, 50)), ms(pct(first, 99)), ms(pct(final, 50)), ms(pct(final, 99)))
	return b.String(), nil
}

// requestFor is the model's first request whose prompt (its last message) is prompt.
func requestFor(reqs []fakellm.Request, prompt string) (fakellm.Request, bool) {
	for _, r := range reqs {
		if n := len(r.Messages); n > 0 && r.Messages[n-1].Content == prompt {
			return r, true
		}
	}
	return fakellm.Request{}, false
}

// streamOnly measures only the streamed-answers section and puts it into out (replacing the
// section there) or prints it.
func streamOnly(ctx context.Context, out string, n int) error {
	bins, err := build(ctx)
	if err != nil {
		return err
	}
	step("streamed answers: the worker against the local LLM at a fixed pace (%d events)", n)
	section, err := benchStream(ctx, bins, n, streamInFlight, benchPace)
	if err != nil {
		return err
	}
	return writeSection(out, streamHeading, section)
}

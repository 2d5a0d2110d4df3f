package answercheck

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slackrelay/slackrelay/worker/assistant/llm"
)

// The demo responder's answers are asked of worker/assistant/llm.Demo itself, so they cannot
// drift from what the worker says; each takes the responder's pretend work (DEMO_DELAY)
// once, then is remembered.
var (
	demoMu      sync.Mutex
	demoAnswers = map[demoQuestion]*demoAnswer{}
)

type demoQuestion struct {
	delay    time.Duration
	prompt   string
	streamed bool
}

type demoAnswer struct {
	once sync.Once
	text string
	err  error
}

// DemoStreamed is the answer the worker's demo responder (no LLM_BASE_URL) streams to prompt
// (the mention's text without the mention) as the first message of a thread, with DEMO_DELAY
// delay: the text of the shipped bot's answer, whatever DEMO_TOKENS_PER_SECOND is. The first
// call for a prompt takes delay.
func DemoStreamed(ctx context.Context, delay time.Duration, prompt string) (string, error) {
	return demo(ctx, demoQuestion{delay: delay, prompt: prompt, streamed: true})
}

// DemoReply is the demo responder's answer to prompt when it is not streamed: what a
// Regenerate click replaces the answer with. The first call for a prompt takes delay.
func DemoReply(ctx context.Context, delay time.Duration, prompt string) (string, error) {
	return demo(ctx, demoQuestion{delay: delay, prompt: prompt})
}

// DemoStreamedAll is DemoStreamed for several prompts at once (the delays overlap), by
// prompt.
func DemoStreamedAll(ctx context.Context, delay time.Duration, prompts ...string) (map[string]string, error) {
	out := make(map[string]string, len(prompts))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for _, p := range prompts {
		wg.Go(func() {
			text, err := DemoStreamed(ctx, delay, p)
			mu.Lock()
			defer mu.Unlock()
			out[p] = text
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	wg.Wait()
	return out, firstErr
}

func demo(ctx context.Context, q demoQuestion) (string, error) {
	demoMu.Lock()
	a, ok := demoAnswers[q]
	if !ok {
		a = &demoAnswer{}
		demoAnswers[q] = a
	}
	demoMu.Unlock()
	a.once.Do(func() {
		d := llm.Demo{Delay: q.delay, TokensPerSecond: 1e6}
		if !q.streamed {
			a.text, a.err = d.Respond(ctx, q.prompt)
			return
		}
		var b strings.Builder
		res, err := d.Stream(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: q.prompt}}}, func(piece string) error {
			b.WriteString(piece)
			return nil
		})
		a.text, a.err = res.Text, err
		if err == nil && res.Text != b.String() {
			a.err = fmt.Errorf("the demo responder's text %q differs from its pieces %q", res.Text, b.String())
		}
	})
	if a.err != nil {
		// A failed answer (ctx ended) is not remembered.
		demoMu.Lock()
		if demoAnswers[q] == a {
			delete(demoAnswers, q)
		}
		demoMu.Unlock()
		return "", fmt.Errorf("the demo responder's answer to %q: %w", q.prompt, a.err)
	}
	return a.text, nil
}

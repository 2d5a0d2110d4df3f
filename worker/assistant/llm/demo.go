package llm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// DefaultDemoTokensPerSecond is the demo responder's streaming rate when none is set.
const DefaultDemoTokensPerSecond = 20

// Demo is the built-in responder: it waits Delay (or until ctx ends) and echoes. Streamed,
// it waits Delay, then sends its answer a word at a time, TokensPerSecond words a second.
type Demo struct {
	Delay time.Duration
	// TokensPerSecond is the streaming rate (0: DefaultDemoTokensPerSecond).
	TokensPerSecond float64
}

// Respond waits and answers.
func (d Demo) Respond(ctx context.Context, prompt string) (string, error) {
	if err := sleep(ctx, d.Delay); err != nil {
		return "", err
	}
	return fmt.Sprintf("You said: %s\n(This is slackrelay's demo responder after %s of pretend work; set LLM_BASE_URL for real answers.)", said(prompt), d.Delay), nil
}

// Stream waits Delay, then sends the answer in pieces of one word (with the space after
// it) at TokensPerSecond; the answer names the prompt (the last message) and how many
// earlier messages of the conversation it was given. With req.Partial it sends only what
// follows Partial's length in characters (the answer is the same every time for the same
// conversation and Delay), at once: Delay, then the first piece after Partial, without
// pretending to write Partial again. A Partial that is not the answer's beginning is logged
// as Chat logs it, and continued all the same.
func (d Demo) Stream(ctx context.Context, req Request, onDelta func(text string) error) (Result, error) {
	start := time.Now()
	prompt, earlier := "", 0
	if n := len(req.Messages); n > 0 {
		prompt, earlier = req.Messages[n-1].Content, n-1
	}
	answer := d.streamAnswer(prompt, earlier)
	rate := d.TokensPerSecond
	if rate <= 0 {
		rate = DefaultDemoTokensPerSecond
	}
	rs, _ := newResumer(req.Partial, false)
	res := Result{Model: "demo", FinishReason: "stop"}
	var text strings.Builder // Partial, then the new text
	text.WriteString(req.Partial)
	received, sent := 0, 0
	for _, piece := range strings.SplitAfter(answer, " ") {
		if piece = rs.take(piece); piece == "" {
			continue
		}
		wait := d.Delay + time.Duration(float64(sent)/rate*float64(time.Second)) - time.Since(start)
		if err := sleep(ctx, wait); err != nil {
			rs.finish(false, req.Log, res.Model)
			res.Text, res.Duration = text.String(), time.Since(start)
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w: %w", ErrDeadline, err)
			}
			return res, failure.Retryable(&StreamError{Err: err, Received: received, Dropped: rs.dropped, Elapsed: res.Duration})
		}
		if sent == 0 {
			res.FirstToken = time.Since(start)
		}
		sent++
		text.WriteString(piece)
		received += utf8.RuneCountInString(piece)
		if err := onDelta(piece); err != nil {
			rs.finish(false, req.Log, res.Model)
			res.Text, res.Duration = text.String(), time.Since(start)
			return res, fmt.Errorf("demo stream: %w", err)
		}
	}
	rs.finish(true, req.Log, res.Model)
	res.Text, res.Duration = text.String(), time.Since(start)
	return res, nil
}

func (d Demo) streamAnswer(prompt string, earlier int) string {
	history := "This is the first message of the conversation."
	switch earlier {
	case 0:
	case 1:
		history = "I was also given 1 earlier message of this thread."
	default:
		history = fmt.Sprintf("I was also given %d earlier messages of this thread.", earlier)
	}
	return fmt.Sprintf("You said: %s\n%s This is slackrelay's demo responder streaming its answer a word at a time "+
		"after %s of pretend work, so you can watch a reply grow as it would from a language model. "+
		"Set LLM_BASE_URL for real answers.", said(prompt), history, d.Delay)
}

// said is the prompt as echoed: trimmed, "(nothing)" when empty.
func said(prompt string) string {
	if prompt = strings.TrimSpace(prompt); prompt == "" {
		return "(nothing)"
	}
	return prompt
}

// sleep waits d or until ctx ends (then returning a wrapped ctx error).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("demo responder: %w", ctx.Err())
	}
}

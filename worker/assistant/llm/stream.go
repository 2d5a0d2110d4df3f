package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// What ran out or broke in a stream; a *StreamError wraps one of them (errors.Is).
var (
	// ErrFirstTokenTimeout: no text within Chat.FirstTokenTimeout of sending the request.
	ErrFirstTokenTimeout = errors.New("time to first token ran out")
	// ErrIdleTimeout: no chunk within Chat.IdleTimeout of the previous one.
	ErrIdleTimeout = errors.New("idle timeout between chunks ran out")
	// ErrDeadline: the invocation's deadline (ctx) came first; the error also matches
	// context.DeadlineExceeded.
	ErrDeadline = errors.New("invocation deadline ran out")
	// ErrStreamCut: the stream ended or broke before `data: [DONE]`.
	ErrStreamCut = errors.New("stream cut before [DONE]")
	// ErrStreamFailed: the server reported an error inside the stream.
	ErrStreamFailed = errors.New("server reported an error in the stream")
)

// StreamError is a streamed answer that stopped before its end. It is transient
// (failure.Classify); Received says how much new text had arrived, which onDelta has seen.
type StreamError struct {
	// Err is one of the Err* values above, wrapping the cause where there is one (the read
	// error of a cut, ctx's error for the deadline).
	Err error
	// Limit is the timeout that ran out (0 for a cut or the deadline).
	Limit time.Duration
	// Received is the number of characters of new text that had arrived: what onDelta got,
	// Request.Partial not counted. Zero with a Partial means the attempt added nothing.
	Received int
	// Dropped is the number of characters that had arrived as a repeat of Request.Partial
	// and were dropped (a regenerated answer's beginning).
	Dropped int
	// Elapsed is the time since the request was sent.
	Elapsed time.Duration
}

func (e *StreamError) Error() string {
	var b strings.Builder
	b.WriteString("llm stream: ")
	b.WriteString(e.Err.Error())
	if e.Limit > 0 {
		fmt.Fprintf(&b, " (limit %s)", e.Limit)
	}
	elapsed := e.Elapsed.Round(time.Millisecond)
	if elapsed == 0 {
		elapsed = e.Elapsed.Round(time.Microsecond)
	}
	fmt.Fprintf(&b, " after %s, %d characters received", elapsed, e.Received)
	if e.Dropped > 0 {
		fmt.Fprintf(&b, " (and %d repeating the partial answer, dropped)", e.Dropped)
	}
	return b.String()
}

func (e *StreamError) Unwrap() error { return e.Err }

// reason names the error for the LLMErrors metric.
func (e *StreamError) reason() string {
	switch {
	case errors.Is(e.Err, ErrFirstTokenTimeout):
		return "first_token_timeout"
	case errors.Is(e.Err, ErrIdleTimeout):
		return "idle_timeout"
	case errors.Is(e.Err, ErrDeadline):
		return "deadline"
	case errors.Is(e.Err, ErrStreamFailed):
		return "stream_error"
	case errors.Is(e.Err, context.Canceled):
		return "canceled"
	}
	return "cut"
}

// chunk is one streamed chunk; usage comes in a last chunk with no choices when
// stream_options.include_usage is sent.
type chunk struct {
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
			// ToolCalls are pieces of the calls the model makes (ChatAgent).
			ToolCalls []toolCallDelta `json:"tool_calls"`
		} `json:"delta"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *wireUsage `json:"usage"`
	Error *apiError  `json:"error"`
}

// Stream sends req with `stream: true` and calls onDelta with each piece of text as it
// arrives. It returns the whole answer with its usage and timings (also logged to req.Log
// and emitted as metrics).
//
// With req.Partial, only the continuation reaches onDelta, and Result.Text is Partial
// followed by it. Regenerating (Chat.Prefill false) the answer is asked for again and its
// first characters, as many as Partial has, are dropped, across chunks; an answer that
// ends before them continues with nothing; an answer whose beginning is not Partial (the
// model is not deterministic) is logged to req.Log at WARN (lengths, never text), and its
// text after those characters is the continuation all the same. Prefilling, Partial is sent
// as a final assistant message (trailing whitespace and a last character cut in half left
// out, and dropped from the continuation when it repeats them).
//
// The first-token timeout ends with the first text the server sends, dropped or not: it
// bounds the server's silence, and a regenerated answer takes as long to reach the end of
// Partial as it took the first time, which the idle timeout and ctx bound. Result.FirstToken
// and the LLMTimeToFirstToken metric measure the same (the model's latency); the log line of
// a resumed answer adds first_delta_ms, the time to the first new text.
//
// A server that answers JSON instead (it does not stream) is read whole, and onDelta gets
// the whole text at once.
//
// Errors: before the stream starts as Respond's (429 → failure.RateLimitError, 5xx
// transient, 4xx permanent); once started, a *StreamError (transient) for the first-token
// timeout, the idle timeout, ctx's deadline, a cut or an error event, with the partial text
// in the Result; an error from onDelta is returned as it is (its own class).
func (c *Chat) Stream(ctx context.Context, req Request, onDelta func(text string) error) (Result, error) {
	return c.stream(ctx, req, nil, onDelta)
}

// stream is Stream, with extra's messages and tools sent instead of req.Messages when extra
// is not nil (ChatAgent); the tool calls the model makes come back in Result.ToolUses.
func (c *Chat) stream(ctx context.Context, req Request, extra *wireExtra, onDelta func(text string) error) (Result, error) {
	start := time.Now()
	ctx, cancel, watch := watchStream(ctx, c.firstTokenTimeout(), c.idleTimeout())
	defer cancel(nil)
	defer watch.stop()

	rs, prefill := newResumer(req.Partial, c.Prefill)
	var res Result
	var text strings.Builder // Partial, then the new text
	text.WriteString(req.Partial)
	received := 0
	fail := func(err error) (Result, error) {
		rs.finish(false, req.Log, c.Model)
		res.Text, res.Duration = text.String(), time.Since(start)
		err = failure.Retryable(watch.streamError(ctx, err, received, rs.dropped, res.Duration))
		c.countError(err)
		return res, err
	}

	resp, err := c.post(ctx, req, extra, prefill, true)
	if err != nil {
		if ctx.Err() == nil {
			c.countError(err)
			res.Text = req.Partial
			return res, err
		}
		return fail(err)
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		return c.unstreamed(ctx, req, rs, resp, start, onDelta)
	}

	sse := newSSEReader(resp.Body)
	var ch chunk
	var calls chatToolCalls
	usageReported := false
	for {
		watch.waiting()
		data, err := sse.next()
		watch.read()
		if err != nil {
			return fail(err)
		}
		if bytes.Equal(data, doneMarker) {
			break
		}
		ch = chunk{}
		if err := json.Unmarshal(data, &ch); err != nil {
			return fail(fmt.Errorf("%w: undecodable chunk (%d bytes)", ErrStreamFailed, len(data)))
		}
		if ch.Error != nil {
			return fail(fmt.Errorf("%w: %s", ErrStreamFailed, orString(ch.Error.code(), "unnamed error")))
		}
		if ch.Model != "" {
			res.Model = ch.Model
		}
		if ch.Usage != nil {
			res.Usage, usageReported = ch.Usage.usage(), true
		}
		if len(ch.Choices) == 0 {
			continue
		}
		if fr := ch.Choices[0].FinishReason; fr != "" {
			res.FinishReason = fr
		}
		piece := ch.Choices[0].Delta.Content
		if tc := ch.Choices[0].Delta.ToolCalls; len(tc) > 0 {
			calls.add(tc...)
		} else if piece == "" {
			continue
		}
		if watch.arrive() { // text or a piece of a tool call: the model has started
			res.FirstToken = watch.firstTokenElapsed
		}
		if piece == "" {
			continue
		}
		if piece = rs.take(piece); piece == "" {
			continue
		}
		if received == 0 {
			rs.firstDelta = time.Since(start)
		}
		text.WriteString(piece)
		received += utf8.RuneCountInString(piece)
		if err := onDelta(piece); err != nil {
			rs.finish(false, req.Log, c.Model)
			res.Text, res.Duration = text.String(), time.Since(start)
			return res, fmt.Errorf("llm stream: %w", err)
		}
	}
	if res.ToolUses, err = calls.done(); err != nil {
		return fail(err)
	}
	rs.finish(true, req.Log, c.Model)
	res.Text, res.Duration = text.String(), time.Since(start)
	c.record(req, res, usageReported, rs)
	return res, nil
}

var doneMarker = []byte("[DONE]")

// unstreamed reads the answer of a server that does not stream (it answered JSON): the whole
// new text goes to onDelta at once.
func (c *Chat) unstreamed(ctx context.Context, req Request, rs *resumer, resp *http.Response, start time.Time, onDelta func(string) error) (Result, error) {
	res, usageReported, err := readCompletion(resp, start)
	if err != nil {
		rs.finish(false, req.Log, c.Model)
		if ctx.Err() != nil {
			err = failure.Retryable(c.streamError(ctx, err, 0, 0, time.Since(start)))
		}
		c.countError(err)
		res.Text = req.Partial
		return res, err
	}
	res.FirstToken = res.Duration
	text := rs.take(res.Text)
	rs.finish(true, req.Log, c.Model)
	res.Text = req.Partial + text
	if text != "" {
		rs.firstDelta = res.Duration
		if err := onDelta(text); err != nil {
			return res, fmt.Errorf("llm stream: %w", err)
		}
	}
	c.record(req, res, usageReported, rs)
	return res, nil
}

// streamError turns what stopped a stream into a *StreamError: the cause of ctx's end when
// it ended (a timeout of ours or the caller's deadline), else a cut or an error event. It is
// called only once the stream has started or ctx has ended: a status error of the request
// itself, with ctx alive, is returned by Stream as it is.
func (c *Chat) streamError(ctx context.Context, err error, received, dropped int, elapsed time.Duration) *StreamError {
	return newStreamError(ctx, err, c.firstTokenTimeout(), c.idleTimeout(), received, dropped, elapsed)
}

// streamWatch ends a streamed answer's context when the model is late: with
// ErrFirstTokenTimeout when nothing came within the first limit of the request, with
// ErrIdleTimeout when nothing came within the idle limit of the previous chunk. Both clients'
// streams use it.
type streamWatch struct {
	first, idle       time.Duration
	firstT, idleT     *time.Timer
	started           time.Time
	arrived           bool
	firstTokenElapsed time.Duration
}

// watchStream starts the first-token clock; stop ends both clocks (defer it with the cancel).
func watchStream(ctx context.Context, first, idle time.Duration) (context.Context, context.CancelCauseFunc, *streamWatch) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &streamWatch{first: first, idle: idle, started: time.Now()}
	w.firstT = time.AfterFunc(first, func() { cancel(ErrFirstTokenTimeout) })
	w.idleT = time.AfterFunc(time.Hour, func() { cancel(ErrIdleTimeout) })
	w.idleT.Stop()
	return ctx, cancel, w
}

// waiting arms the idle clock before a read, once the model has started.
func (w *streamWatch) waiting() {
	if w.arrived {
		w.idleT.Reset(w.idle)
	}
}

// read stops the idle clock after a read.
func (w *streamWatch) read() { w.idleT.Stop() }

// arrive notes that the model has started (the first text or tool call), stopping the
// first-token clock; it reports whether this was the first arrival.
func (w *streamWatch) arrive() bool {
	if w.arrived {
		return false
	}
	w.arrived = true
	w.firstT.Stop()
	w.firstTokenElapsed = time.Since(w.started)
	return true
}

// stop ends both clocks.
func (w *streamWatch) stop() {
	w.firstT.Stop()
	w.idleT.Stop()
}

// streamError is newStreamError with the watch's limits.
func (w *streamWatch) streamError(ctx context.Context, err error, received, dropped int, elapsed time.Duration) *StreamError {
	return newStreamError(ctx, err, w.first, w.idle, received, dropped, elapsed)
}

// emitAnswerMetrics emits one answer's metrics by model: its tokens when the server reported
// them (LLMTokens by kind; the cache's only when there were some), its time to first token
// and its duration.
func emitAnswerMetrics(m *metrics.Emitter, model string, res Result, usageReported bool) {
	dim := metrics.Dim{Name: "Model", Value: model}
	if usageReported {
		m.Count("LLMTokens", float64(res.Usage.PromptTokens), dim, metrics.Dim{Name: "Kind", Value: "prompt"})
		m.Count("LLMTokens", float64(res.Usage.CompletionTokens), dim, metrics.Dim{Name: "Kind", Value: "completion"})
		if res.Usage.CacheReadTokens > 0 {
			m.Count("LLMTokens", float64(res.Usage.CacheReadTokens), dim, metrics.Dim{Name: "Kind", Value: "cache_read"})
		}
		if res.Usage.CacheWriteTokens > 0 {
			m.Count("LLMTokens", float64(res.Usage.CacheWriteTokens), dim, metrics.Dim{Name: "Kind", Value: "cache_write"})
		}
	}
	if res.FirstToken > 0 {
		m.Milliseconds("LLMTimeToFirstToken", res.FirstToken, dim)
	}
	m.Milliseconds("LLMDuration", res.Duration, dim)
}

// newStreamError is Chat.streamError for any client: firstLimit and idleLimit are the
// timeouts it set.
func newStreamError(ctx context.Context, err error, firstLimit, idleLimit time.Duration, received, dropped int, elapsed time.Duration) *StreamError {
	se := &StreamError{Received: received, Dropped: dropped, Elapsed: elapsed}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, ErrFirstTokenTimeout):
		se.Err, se.Limit = ErrFirstTokenTimeout, firstLimit
	case errors.Is(cause, ErrIdleTimeout):
		se.Err, se.Limit = ErrIdleTimeout, idleLimit
	case errors.Is(cause, context.DeadlineExceeded):
		se.Err = fmt.Errorf("%w: %w", ErrDeadline, cause)
	case cause != nil:
		se.Err = fmt.Errorf("%w: %w", ErrStreamCut, cause)
	case errors.Is(err, ErrStreamFailed):
		se.Err = err
	default:
		se.Err = fmt.Errorf("%w: %w", ErrStreamCut, err)
	}
	return se
}

func (c *Chat) firstTokenTimeout() time.Duration {
	if c.FirstTokenTimeout > 0 {
		return c.FirstTokenTimeout
	}
	return DefaultFirstTokenTimeout
}

func (c *Chat) idleTimeout() time.Duration {
	if c.IdleTimeout > 0 {
		return c.IdleTimeout
	}
	return DefaultIdleTimeout
}

func orString(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/progress"
)

// Streaming limits. appendStream is rate tier 4 (about 100 calls a minute): buffering keeps
// a stream well under it. A streamed message is kept below Slack's 40,000-character message
// size; a longer answer continues in another message. One appendStream carries at most
// 12,000 characters.
const (
	DefaultFlushEvery  = time.Second
	DefaultFlushChars  = 1500
	maxStreamMessage   = 36000
	maxAppendChars     = 12000
	streamStepKind     = "stream"
	streamPostStepKind = "stream-post" // a post updated in place, when streaming is refused
)

// StreamOptions tune Stream.
type StreamOptions struct {
	// FlushEvery and FlushChars bound how long text waits in the buffer (defaults 1 s and
	// 1,500 characters).
	FlushEvery time.Duration
	FlushChars int
	// Disabled answers with a normal post updated in place instead of chat.*Stream.
	Disabled bool
}

// Stream is an answer that appears in the thread as it is written, exactly once: the
// message's ts is recorded before the first append, so a redelivery after a crash or a
// timeout mid-stream finishes that same message (with the whole new answer) instead of
// starting a second one, and a redelivery after it was finished does nothing (Done).
type Stream struct {
	s                *Session
	base             string // step id prefix: "stream#1"
	part             int    // message of the answer (1…), a step each: base+"/"+part
	channel, thread  string
	opts             StreamOptions
	st               progress.Step
	buf              strings.Builder // appended, not yet sent
	msg              strings.Builder // the current message's whole text
	skip             int             // runes of the new answer that finished messages already hold (on resume)
	lastFlush        time.Time       // zero until the first send: the first text goes out at once
	notBefore        time.Time       // after a 429, the next flush waits
	updating         bool            // the stream ended by itself: finish with chat.update
	finished, resume bool
}

// Stream starts an answer streamed into the thread of the message the delivery is about.
// Nothing is sent before the first Append.
func (s *Session) Stream(ctx context.Context, opts StreamOptions) (*Stream, error) {
	if s.about.channel == "" || s.about.replyThread() == "" {
		return nil, Permanent(errors.New("stream: this delivery is not about a message"))
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = DefaultFlushEvery
	}
	if opts.FlushChars <= 0 {
		opts.FlushChars = DefaultFlushChars
	}
	w := &Stream{s: s, base: s.nextStep(streamStepKind), channel: s.about.channel, thread: s.about.replyThread(), opts: opts}
	w.openPart(1)
	return w, nil
}

// openPart reads the record of message n of the answer.
func (w *Stream) openPart(n int) {
	w.part = n
	w.st, _ = w.s.lease.Step(w.stepID())
	w.msg.Reset()
	w.updating = false
	// A message whose ts was recorded but which was not finished: an earlier attempt
	// stopped mid-stream. Its text is replaced with this attempt's answer at Finish.
	w.resume = w.st.Value != "" && !w.st.Done
	for w.st.Done {
		// Finished by an earlier attempt: skip what it holds, go on with the next message.
		w.skip += w.st.Chars
		w.part++
		w.st, _ = w.s.lease.Step(w.stepID())
		w.resume = w.st.Value != "" && !w.st.Done
	}
}

func (w *Stream) stepID() string { return fmt.Sprintf("%s/%d", w.base, w.part) }

// Done reports whether an earlier attempt finished the whole answer: the handler may skip its
// work (Append and Finish do nothing then).
func (w *Stream) Done() bool {
	st, ok := w.s.lease.Step(w.base + "/done")
	return ok && st.Done
}

// Append adds text to the answer; it is sent when the buffer is full or has waited
// FlushEvery. A rate limit mid-stream delays the next flush instead of failing.
func (w *Stream) Append(ctx context.Context, text string) error {
	if w.finished || w.Done() {
		return nil
	}
	if w.skip > 0 {
		// Resuming after finished messages: drop the part of the answer they already hold.
		n := utf8.RuneCountInString(text)
		if n <= w.skip {
			w.skip -= n
			return nil
		}
		text = string([]rune(text)[w.skip:])
		w.skip = 0
	}
	w.buf.WriteString(text)
	if w.resume {
		return nil // the message is rewritten whole at Finish
	}
	now := time.Now()
	if now.Before(w.notBefore) {
		return nil
	}
	if w.buf.Len() >= w.opts.FlushChars || now.Sub(w.lastFlush) >= w.opts.FlushEvery {
		var rl *slack.RateLimitedError
		if err := w.flush(ctx); err != nil && !errors.As(err, &rl) {
			return err // a rate limit only delays the next flush: the text stays buffered
		}
	}
	return nil
}

// flush sends the buffer: starting the message, appending to it, or continuing in a new
// message when this one is full.
func (w *Stream) flush(ctx context.Context) error {
	for w.buf.Len() > 0 {
		chunk := w.buf.String()
		room := maxStreamMessage - utf8.RuneCountInString(w.msg.String())
		if room <= 0 {
			if err := w.finishPart(ctx, nil, false); err != nil {
				return err
			}
			w.openPart(w.part + 1)
			continue
		}
		if r := []rune(chunk); len(r) > min(room, maxAppendChars) {
			chunk = string(r[:min(room, maxAppendChars)])
		}
		if err := w.send(ctx, chunk); err != nil {
			var rl *slack.RateLimitedError
			if errors.As(err, &rl) {
				w.notBefore = time.Now().Add(rl.RetryAfter)
				w.s.Log.Warn("stream rate limited; buffering", "step", w.stepID(), "retry_after", rl.RetryAfter.String())
			}
			return err
		}
		rest := strings.TrimPrefix(w.buf.String(), chunk)
		w.buf.Reset()
		w.buf.WriteString(rest)
		w.msg.WriteString(chunk)
	}
	w.lastFlush = time.Now()
	return nil
}

// send puts chunk in the current message.
func (w *Stream) send(ctx context.Context, chunk string) error {
	s := w.s
	switch {
	case w.st.Value == "" && !w.opts.Disabled && w.st.Kind != streamPostStepKind:
		// Not after an earlier attempt fell back to a post (stream-post): the next case looks
		// for that post first. The stream starts empty and its ts is recorded before the
		// first append: a crash in between leaves an empty message that Slack ends by itself,
		// never a second copy of text.
		w.st = progress.Step{Kind: streamStepKind, Pending: true}
		if err := s.save(ctx, w.stepID(), w.st); err != nil {
			return err
		}
		opts := []slack.MsgOption{slack.MsgOptionTS(w.thread)}
		if s.about.user != "" && s.about.team != "" {
			opts = append(opts, slack.MsgOptionRecipientUserID(s.about.user), slack.MsgOptionRecipientTeamID(s.about.team))
		}
		_, ts, err := s.Slack.StartStreamContext(ctx, w.channel, opts...)
		if streamingRefused(err) {
			s.Log.Warn("streaming refused; answering with a message updated in place", "error", err.Error())
			w.opts.Disabled = true
			return w.send(ctx, chunk)
		}
		if err != nil {
			return fmt.Errorf("start stream: %w", err)
		}
		w.st = progress.Step{Kind: streamStepKind, Value: ts}
		if err := s.save(ctx, w.stepID(), w.st); err != nil {
			return err
		}
		return w.send(ctx, chunk)
	case w.st.Value == "":
		if w.st.Kind == streamPostStepKind && w.st.Pending {
			// An earlier attempt posted and may have died before recording it: look for its
			// post (its metadata names the step) before posting again.
			ts, found, err := s.findPosted(ctx, w.channel, w.thread, w.stepID(), 1)
			if err != nil {
				return failure.Retryable(fmt.Errorf("look for the answer an earlier attempt posted: %w", err))
			}
			if found {
				w.st = progress.Step{Kind: streamPostStepKind, Value: ts}
				if err := s.save(ctx, w.stepID(), w.st); err != nil {
					return err
				}
				w.updating = true
				return w.send(ctx, chunk)
			}
		}
		w.st = progress.Step{Kind: streamPostStepKind, Pending: true}
		if err := s.save(ctx, w.stepID(), w.st); err != nil {
			return err
		}
		_, ts, err := s.Slack.PostMessageContext(ctx, w.channel, slack.MsgOptionTS(w.thread), slack.MsgOptionText(chunk, false),
			slack.MsgOptionMetadata(slack.SlackMetadata{EventType: ReplyMetadataType, EventPayload: map[string]any{
				"dedupe_key": s.Key(), "step": w.stepID(), "part": 1}}))
		if err != nil {
			return fmt.Errorf("post answer: %w", err)
		}
		w.st = progress.Step{Kind: streamPostStepKind, Value: ts}
		return s.save(ctx, w.stepID(), w.st)
	case w.st.Kind == streamPostStepKind || w.updating:
		if _, _, _, err := s.Slack.UpdateMessageContext(ctx, w.channel, w.st.Value, slack.MsgOptionText(w.msg.String()+chunk, false)); err != nil {
			return fmt.Errorf("update answer: %w", err)
		}
		return nil
	default:
		_, _, err := s.Slack.AppendStreamContext(ctx, w.channel, w.st.Value, slack.MsgOptionMarkdownText(chunk))
		if isSlackError(err, "message_not_in_streaming_state") {
			// The stream ended by itself (Slack ends idle streams): go on by updating it.
			w.updating = true
			return w.send(ctx, chunk)
		}
		if err != nil {
			return fmt.Errorf("append to stream: %w", err)
		}
		return nil
	}
}

// Finish sends what is buffered and ends the answer, with blocks (buttons, feedback) under
// its last message. It returns the ts of the messages the answer took.
func (w *Stream) Finish(ctx context.Context, blocks ...slack.Block) ([]string, error) {
	if w.finished || w.Done() {
		return w.messages(), nil
	}
	if w.resume {
		if err := w.finishPart(ctx, blocks, true); err != nil {
			return nil, err
		}
	} else {
		if w.buf.Len() == 0 && w.msg.Len() == 0 && w.st.Value == "" {
			w.buf.WriteString("(no answer)")
		}
		// The last flush waits out rate limits (Retry-After) while the invocation has time.
		for {
			if err := w.waitRetryAfter(ctx); err != nil {
				return nil, err
			}
			err := w.flush(ctx)
			var rl *slack.RateLimitedError
			if err == nil {
				break
			}
			if !errors.As(err, &rl) {
				return nil, err
			}
		}
		if err := w.finishPart(ctx, blocks, false); err != nil {
			return nil, err
		}
	}
	w.finished = true
	if err := w.s.save(ctx, w.base+"/done", progress.Step{Kind: streamStepKind, Done: true}); err != nil {
		return nil, err
	}
	return w.messages(), nil
}

// waitRetryAfter waits out a rate limit met mid-stream before the final flush, as Slack's
// Retry-After asks; when the invocation cannot wait that long, the attempt ends as rate
// limited and the redelivery finishes the answer.
func (w *Stream) waitRetryAfter(ctx context.Context) error {
	wait := time.Until(w.notBefore)
	if wait <= 0 {
		return nil
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait+time.Second {
		return RetryAfter(wait, errors.New("stream rate limited near the invocation's deadline"))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		w.notBefore = time.Time{}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finishPart ends the current message. rewrite replaces its text with what this attempt has
// buffered (a message an earlier attempt left mid-stream).
func (w *Stream) finishPart(ctx context.Context, blocks []slack.Block, rewrite bool) error {
	s := w.s
	text := w.msg.String()
	if rewrite {
		text = w.buf.String()
		if n := utf8.RuneCountInString(text); n > maxStreamMessage {
			// Too long for the one message left: the rest would need messages an earlier
			// attempt never planned. Keep it whole in one message, cut with a note.
			text = string([]rune(text)[:maxStreamMessage-60]) + cutNote
		}
	}
	md := slack.MsgOptionMetadata(slack.SlackMetadata{EventType: ReplyMetadataType, EventPayload: map[string]any{"dedupe_key": s.Key(), "step": w.stepID()}})
	var opts []slack.MsgOption
	if len(blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(append([]slack.Block{slack.NewMarkdownBlock("", text)}, blocks...)...))
	}
	streaming := w.st.Kind == streamStepKind && !w.updating
	if streaming {
		_, _, err := s.Slack.StopStreamContext(ctx, w.channel, w.st.Value, append(opts, md)...)
		switch {
		case err == nil && !rewrite:
			return w.recordPart(ctx, text)
		case err == nil, isSlackError(err, "message_not_in_streaming_state"):
			// Stopped (now or by itself): the text is set with chat.update below.
		default:
			return fmt.Errorf("stop stream: %w", err)
		}
	}
	if _, _, _, err := s.Slack.UpdateMessageContext(ctx, w.channel, w.st.Value, append(opts, slack.MsgOptionText(text, false), md)...); err != nil {
		return fmt.Errorf("finish answer: %w", err)
	}
	if rewrite {
		s.Log.Info("finished an answer an earlier attempt left mid-stream", "step", w.stepID(), "ts", w.st.Value)
	}
	return w.recordPart(ctx, text)
}

func (w *Stream) recordPart(ctx context.Context, text string) error {
	w.st.Done, w.st.Pending, w.st.Chars = true, false, utf8.RuneCountInString(text)
	return w.s.save(ctx, w.stepID(), w.st)
}

// messages lists the ts of the answer's messages as recorded.
func (w *Stream) messages() []string {
	var out []string
	for n := 1; ; n++ {
		st, ok := w.s.lease.Step(fmt.Sprintf("%s/%d", w.base, n))
		if !ok || st.Value == "" {
			return out
		}
		out = append(out, st.Value)
	}
}

// streamingRefused reports a startStream error that means "not here", not "try later":
// the method is unknown or not allowed for this token, app or workspace.
func streamingRefused(err error) bool {
	for _, code := range []string{"unknown_method", "not_allowed_token_type", "not_allowed", "feature_not_enabled",
		"method_not_supported_for_channel_type", "team_not_allowed", "streaming_disabled", "missing_scope"} {
		if isSlackError(err, code) {
			return true
		}
	}
	return false
}

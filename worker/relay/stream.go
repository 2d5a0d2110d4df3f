package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
	txt "github.com/slackrelay/slackrelay/worker/internal/textcut"
)

// Streaming defaults. chat.appendStream is rate tier 4 (about 100 calls a minute): buffering
// keeps a stream well under it.
const (
	DefaultFlushEvery = time.Second
	DefaultFlushChars = 1500
	// defaultStreamLifetime is how long Slack keeps a stream open (field reports put it at
	// about 5 minutes; later calls get message_not_in_streaming_state).
	defaultStreamLifetime = 5 * time.Minute
	// DefaultYieldBefore is how close to the invocation's deadline Append stops and hands the
	// answer to the next invocation.
	DefaultYieldBefore = 3 * time.Second
)

// StreamOptions tune Stream.
type StreamOptions struct {
	// FlushEvery and FlushChars bound how long text waits in the buffer (defaults 1 s and
	// 1,500 characters).
	FlushEvery time.Duration
	FlushChars int
	// Disabled answers with a message updated in place instead of chat.*Stream.
	Disabled bool
	// Lifetime is how long Slack keeps a stream open (default: the engine's, else
	// defaultStreamLifetime). A message is stopped before then and the answer continues in a
	// new message in the thread.
	Lifetime time.Duration
	// Tasks shows task cards (Stream.Task, Stream.Plan) beside the text, as a timeline or a
	// plan. A stream with cards sends its text as markdown_text chunks (Slack's streams take
	// text one way or the other, not both); where streaming is off or refused, a message's
	// cards show as a summary under its text.
	Tasks TaskDisplay
	// Stop shows a Stop button with the answer while it is written (above the streamed
	// text; under a message set whole, until the final blocks replace it). Only the person
	// the answer is for may click it; the stream then ends with what was shown and a note
	// (see StopActionID, Watch, ErrStopped). It sends the text as chunks, as Tasks does.
	Stop bool
	// YieldBefore is how close to the invocation's deadline Append flushes and returns an
	// error wrapping failure.ErrContinue, so the answer goes on in the next invocation from
	// what was shown (default DefaultYieldBefore, or a fifth of the time left when the stream
	// opens if that is less).
	YieldBefore time.Duration
}

// streamStep is the journal entry of a streamed answer: its messages, each with the text it
// holds or is about to hold. Every call that sends text is written first (the intent), so a
// resumed attempt knows the text of every message exactly, whatever Slack did with the last
// call: a message whose last call is uncertain is set whole with chat.update.
type streamStep struct {
	Kind string      `json:"kind"`
	Msgs []streamMsg `json:"msgs,omitempty"`
	// Complete says the answer's whole text is in Msgs: the model has finished.
	Complete bool `json:"complete,omitempty"`
	// Done says the answer is finished in Slack too (the blocks under it shown).
	Done bool `json:"done,omitempty"`
	// Skip is, in a record of an earlier release, how many characters of the answer finished
	// messages hold whose text was not recorded: the regenerated answer skips them.
	Skip int `json:"skip,omitempty"`
	// Tasks are the answer's task cards, each in its last state; Plan the title over them.
	Tasks     []streamTask `json:"tasks,omitempty"`
	Plan      string       `json:"plan,omitempty"`
	PlanShown string       `json:"plan_shown,omitempty"`
	// Stopped says a person stopped the answer with its Stop button.
	Stopped bool `json:"stopped,omitempty"`
}

// streamMsg is one message of a streamed answer.
type streamMsg struct {
	TS string `json:"ts,omitempty"`
	// Text is all the text meant for this message; Shown how many of its characters Slack
	// is known to show. The rest is sent next.
	Text  string `json:"text,omitempty"`
	Shown int    `json:"shown,omitempty"`
	// Update says the message is set whole by chat.update (a post, when streaming is refused
	// or disabled; a message resumed after an uncertain call) rather than appended to.
	Update bool `json:"update,omitempty"`
	// Started is when the stream was started (unix milliseconds).
	Started int64 `json:"started,omitempty"`
	// Pending says a call carrying Text[Shown:] (or starting the message) was handed to Slack
	// and no answer came back: Slack may show it or not.
	Pending bool `json:"pending,omitempty"`
	// Closed says Slack shows exactly Text and nothing more goes in this message.
	Closed bool `json:"closed,omitempty"`
	// Legacy is the step id under which the earlier release tagged the message's post
	// ("stream#1/1"), for finding a post whose answer that release lost.
	Legacy string `json:"legacy,omitempty"`
}

func (m *streamMsg) tail() string { return m.Text[byteOffset(m.Text, m.Shown):] }

// Stream is an answer that appears in the thread as it is written, exactly once, across
// crashes, lost responses and invocations: each message's text is written to the journal
// before Slack is asked to show it, so a resumed attempt continues the same answer from what
// was shown (see Text) instead of starting over, finishes a message whose last call is
// uncertain by setting it whole with chat.update, and adopts a stream whose start was lost
// instead of starting a second one. An answer longer than a message, or streaming longer
// than Slack keeps a stream open, continues in another message in the thread.
type Stream struct {
	s               *Session
	name            string
	channel, thread string
	opts            StreamOptions
	st              streamStep
	buf             strings.Builder // text not yet given to a message
	skip            int             // runes of the answer to drop (records of an earlier release)
	recovered       bool            // the state an earlier attempt left is settled
	refused         bool            // Slack refused streaming: new messages are posts
	lastFlush       time.Time
	notBefore       time.Time // after a 429, the next flush waits
	final           []slack.Block
	finishing       bool
	finished        bool
	textBytes       int          // bytes of the answer so far: in the journal, and appended since
	cut             bool         // the answer reached maxAnswerBytes: the rest is dropped, a note added
	stopped         atomic.Bool  // a Stop click was seen (Watch's goroutine sets it too)
	buttonShown     atomic.Bool  // a message of the answer (and so its Stop button) is in Slack
	stopChecked     atomic.Int64 // when the journal was last read for a Stop click (unix ns)
}

// maxAnswerBytes bounds a streamed answer's text (its journal entry holds all of it, in one
// DynamoDB item): longer answers are cut with a note.
const maxAnswerBytes = 200 << 10

// Stream starts (or resumes) the answer streamed into the thread of the message the delivery
// is about. Nothing is sent before the first Append or Finish. Its step is named after the
// thread; a second answer in the same thread in one run needs Named.
func (s *Session) Stream(ctx context.Context, opts StreamOptions) (*Stream, error) {
	a := s.run.about
	if a.channel == "" || a.replyThread() == "" {
		return nil, Permanent(errors.New("stream: this delivery is not about a message"))
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = DefaultFlushEvery
	}
	if opts.FlushChars <= 0 {
		opts.FlushChars = DefaultFlushChars
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = s.run.rt.StreamLifetime
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = defaultStreamLifetime
	}
	if opts.YieldBefore <= 0 {
		opts.YieldBefore = DefaultYieldBefore
		if d, ok := ctx.Deadline(); ok {
			// A short invocation (a test's, a local one) yields a fifth of its time before
			// the end, not 3 s.
			opts.YieldBefore = min(opts.YieldBefore, time.Until(d)/5)
		}
	}
	name, legacyID, err := s.step("stream", a.channel+":"+a.replyThread())
	if err != nil {
		return nil, err
	}
	w := &Stream{s: s, name: name, channel: a.channel, thread: a.replyThread(), opts: opts, st: streamStep{Kind: "stream"}}
	found, err := s.run.lease.Load(name, &w.st)
	if err != nil {
		return nil, err
	}
	if !found && s.run.lease.HasLegacy() {
		w.st = legacyStream(s.run.lease, legacyID)
	}
	w.skip = w.st.Skip
	w.textBytes = len(w.Text())
	w.stopped.Store(w.st.Stopped)
	// An earlier attempt that began a message may have shown its button (a start whose
	// answer was lost included).
	w.buttonShown.Store(len(w.st.Msgs) > 0)
	if len(w.st.Msgs) > 0 && !w.st.Done && !w.st.Complete {
		w.checkStop(ctx) // a click while no attempt was running
	}
	if len(w.st.Msgs) > 0 && !w.st.Done {
		s.Log.Info("resuming an answer an earlier attempt began", "step", name, "messages", len(w.st.Msgs),
			"chars", utf8.RuneCountInString(w.Text()), "complete", w.st.Complete)
	}
	return w, nil
}

// Done reports whether an earlier attempt finished the whole answer, in Slack too: the
// handler has nothing left to do (Append and Finish do nothing).
func (w *Stream) Done() bool { return w.st.Done }

// Complete reports whether the answer's whole text is known from an earlier attempt: the
// handler must not ask the model again, only Finish.
func (w *Stream) Complete() bool { return w.st.Complete }

// Text is the answer as far as earlier attempts (and this one) wrote it: what the model
// should continue from (llm.Request.Partial). Empty for a new answer, and for an answer of an
// earlier release whose text was not recorded (the model starts over and what was shown is
// skipped by length).
func (w *Stream) Text() string {
	if w.st.Skip > 0 {
		return ""
	}
	var b strings.Builder
	for _, m := range w.st.Msgs {
		b.WriteString(m.Text)
	}
	return b.String()
}

// Append adds text to the answer; it is sent when the buffer is full or has waited
// FlushEvery. A rate limit mid-stream delays the next flush instead of failing. Near the
// invocation's deadline it sends what is buffered and returns an error wrapping
// failure.ErrContinue: return it, and the answer goes on in the next invocation.
func (w *Stream) Append(ctx context.Context, text string) error {
	if w.finished || w.st.Done || w.st.Complete || w.cut {
		return nil
	}
	if w.stopped.Load() {
		return ErrStopped
	}
	if w.skip > 0 {
		n := utf8.RuneCountInString(text)
		if n <= w.skip {
			w.skip -= n
			return nil
		}
		text = text[byteOffset(text, w.skip):]
		w.skip = 0
	}
	if w.textBytes+len(text) > maxAnswerBytes {
		// The journal keeps the whole answer: past its share of the item, the rest is cut.
		text = txt.Truncate(text, max(maxAnswerBytes-w.textBytes, 0))
		w.cut = true
	}
	w.textBytes += len(text)
	w.buf.WriteString(text)
	now := time.Now()
	if w.yieldDue(ctx, now) {
		if err := w.flushAll(ctx); err != nil {
			return err
		}
		return fmt.Errorf("answer of %d characters so far, shown: %w", utf8.RuneCountInString(w.Text()), failure.ErrContinue)
	}
	if now.Before(w.notBefore) {
		return nil
	}
	if w.buf.Len() >= w.opts.FlushChars || now.Sub(w.lastFlush) >= w.opts.FlushEvery {
		var rl *slack.RateLimitedError
		if err := w.flush(ctx); err != nil && !errors.As(err, &rl) {
			return err // a rate limit only delays the next flush: the text stays in the journal
		}
	}
	return nil
}

// yieldDue reports whether the invocation ends within YieldBefore.
func (w *Stream) yieldDue(ctx context.Context, now time.Time) bool {
	d, ok := ctx.Deadline()
	return ok && d.Sub(now) < w.opts.YieldBefore
}

// Flush sends what is buffered now (its text written to the journal first, as every send),
// waiting out a rate limit while the context allows: before a slow step or an effect outside
// Slack, so what the answer showed so far is on record.
func (w *Stream) Flush(ctx context.Context) error {
	if w.finished || w.st.Done || w.st.Complete {
		return nil
	}
	return w.flushAll(ctx)
}

// flushAll sends everything buffered, waiting out rate limits while the context allows.
func (w *Stream) flushAll(ctx context.Context) error {
	for {
		if err := w.waitRetryAfter(ctx); err != nil {
			return err
		}
		err := w.flush(ctx)
		var rl *slack.RateLimitedError
		if err == nil || !errors.As(err, &rl) {
			return err
		}
	}
}

// Finish sends what is buffered and ends the answer, with blocks (buttons, feedback) under
// its last message: as chat.stopStream's blocks, which Slack renders below the streamed
// text, or with chat.update for a message set whole. It returns the ts of the answer's
// messages. The blocks must fit in FinalBlocksChars.
func (w *Stream) Finish(ctx context.Context, blocks ...slack.Block) ([]string, error) {
	if w.finished || w.st.Done {
		return w.messages(), nil
	}
	if _, err := lastBlocksChars(blocks); err != nil {
		return nil, err
	}
	if w.buf.Len() == 0 && len(w.st.Msgs) == 0 {
		w.buf.WriteString("(no answer)")
	}
	if w.cut {
		w.buf.WriteString(cutNote)
	}
	if w.stopped.Load() && !w.st.Complete {
		// What was shown stays; what was not yet sent is dropped.
		w.buf.Reset()
		note := stoppedNote
		if len(w.st.Msgs) == 0 || w.Text() == "" {
			note = strings.TrimSpace(note)
		}
		w.buf.WriteString(note)
		w.st.Stopped = true
	}
	// The answer is marked complete by the write before the call that ends it, once all of
	// its text is in messages (finishAnswer): marked earlier, an attempt that ended between
	// would leave a record saying complete without the rest of the text.
	w.final, w.finishing = blocks, true
	if err := w.flushAll(ctx); err != nil {
		return nil, err
	}
	w.finished = true
	return w.messages(), nil
}

// Abandon ends an answer the handler cannot finish (a permanent failure: the event goes to the
// DLQ): a message still streaming is stopped with what it shows, so nothing is left spinning
// in the thread. The journal keeps the answer, so a replay of the dead letter continues it in
// a new message. Best effort: errors are logged, not returned.
func (w *Stream) Abandon(ctx context.Context) {
	if w.finished || w.st.Done {
		return
	}
	m := w.cur()
	if m == nil || m.TS == "" || m.Update {
		return
	}
	if err := w.stop(ctx, m, nil); err != nil {
		w.s.Log.Warn("could not stop the stream of an answer that cannot be finished", "step", w.name, "error", err.Error())
		return
	}
	if m.Pending {
		m.Update, m.Shown, m.Pending = true, 0, false // the next attempt sets it whole
	} else {
		w.requeueTail(m)
		m.Closed = true
	}
	w.s.settle(w.name, w.st)
	w.finished = true
}

// waitRetryAfter waits out a rate limit met mid-stream, as Slack's Retry-After asks; when
// the invocation cannot wait that long, the attempt ends as rate limited and the next
// delivery finishes the answer.
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

// cur is the message text goes into now (nil when there is none open).
func (w *Stream) cur() *streamMsg {
	if n := len(w.st.Msgs); n > 0 && !w.st.Msgs[n-1].Closed {
		return &w.st.Msgs[n-1]
	}
	return nil
}

// expiring reports whether m's stream is close to the end of Slack's window.
func (w *Stream) expiring(m *streamMsg, now time.Time) bool {
	if m.Update || m.TS == "" || m.Started == 0 {
		return false
	}
	margin := min(max(w.opts.Lifetime/10, 5*time.Second), 30*time.Second)
	return now.Sub(time.UnixMilli(m.Started)) >= w.opts.Lifetime-margin
}

// flush puts the buffer into messages and sends every message's unsent text: one journal
// write (the intent) per call to Slack. While finishing, the call that sends the last text
// also ends the answer with the final blocks.
func (w *Stream) flush(ctx context.Context) error {
	if !w.finishing {
		w.checkStop(ctx)
		if w.stopped.Load() {
			w.buf.Reset()
			return ErrStopped
		}
	}
	if !w.recovered {
		if err := w.recover(ctx); err != nil {
			return err
		}
		w.recovered = true
	}
	defer func() { w.lastFlush = time.Now() }()
	for {
		m := w.cur()
		if m != nil && w.expiring(m, time.Now()) && !(w.finishing && w.buf.Len() == 0 && m.tail() == "") {
			if err := w.closeMsg(ctx, m); err != nil {
				return err
			}
			continue
		}
		if w.buf.Len() > 0 {
			if m == nil {
				w.st.Msgs = append(w.st.Msgs, streamMsg{Update: w.refused || w.opts.Disabled})
				m = &w.st.Msgs[len(w.st.Msgs)-1]
			}
			if !w.fill(m) {
				if err := w.closeMsg(ctx, m); err != nil {
					return err
				}
				continue
			}
		}
		if m == nil && w.cardsDue() && !w.refused && !w.opts.Disabled {
			// Cards before any text (a first step that calls a tool): the stream starts with
			// them. A message set whole waits for text and shows them under it.
			w.st.Msgs = append(w.st.Msgs, streamMsg{})
			m = &w.st.Msgs[len(w.st.Msgs)-1]
		}
		last := w.buf.Len() == 0
		switch {
		case w.finishing && last && !w.st.Done:
			return w.finishAnswer(ctx)
		case m == nil || m.tail() == "" && m.TS != "" && !w.cardsDue():
			return nil
		case m.TS == "" && m.Text == "" && (m.Update || !w.cardsDue()):
			return nil // nothing to show yet
		}
		if err := w.send(ctx, m); err != nil {
			return err
		}
		if last && !w.finishing {
			return nil
		}
	}
}

// blocksReserve is what a message's blocks other than its text may take: the final blocks,
// and the cards summary of a stream with cards.
func (w *Stream) blocksReserve() int {
	if w.opts.Tasks != "" {
		return FinalBlocksChars + tasksReserve
	}
	return FinalBlocksChars
}

// fill moves as much of the buffer into m as fits in one message; false when nothing fits.
func (w *Stream) fill(m *streamMsg) bool {
	buf := w.buf.String()
	have := utf8.RuneCountInString(m.Text)
	n := fitMarkdown(m.Text+buf, MaxAnswerMessageChars, w.blocksReserve()) - have
	if n <= 0 {
		if m.Text != "" {
			return false
		}
		n = 1 // one rune always goes somewhere
	}
	cut := byteOffset(buf, n)
	m.Text += buf[:cut]
	w.buf.Reset()
	w.buf.WriteString(buf[cut:])
	return true
}

// send writes the intent to send m's unsent text, then sends it: starts the message (a
// stream, or a post when streaming is refused), appends to the stream, or sets the message
// whole with chat.update.
func (w *Stream) send(ctx context.Context, m *streamMsg) error {
	s := w.s
	m.Pending = true
	if m.TS == "" && !m.Update {
		m.Started = time.Now().UnixMilli()
	}
	if err := s.save(ctx, w.name, w.st); err != nil {
		return err
	}
	var err error
	switch {
	case m.TS == "" && m.Update:
		m.TS, err = w.post(ctx, m, w.progressBlocks())
	case m.TS == "":
		m.TS, err = w.start(ctx, m)
		if streamingRefused(err) {
			s.Log.Warn("streaming refused; answering with a message updated in place", "error", err.Error())
			w.refused, m.Update = true, true
			return w.send(ctx, m)
		}
	case m.Update:
		err = w.update(ctx, m, w.progressBlocks())
	default:
		_, _, err = s.Slack.AppendStreamContext(ctx, w.channel, m.TS, w.content(m.tail()))
		if isSlackError(err, "message_not_in_streaming_state") && len(w.st.Tasks) > 0 {
			// Slack ended the stream (its window, or while the worker was down) and the
			// message shows cards that may change yet: it is set whole from now on (its
			// text and a summary of every card), so no card is drawn in a second message.
			m.Update, m.Shown, m.Pending = true, 0, false
			s.settle(w.name, w.st)
			return w.send(ctx, m)
		}
		if ended(err) {
			// The stream ended by itself (Slack's window) or cannot grow: the message keeps
			// what it shows and the rest continues in a new one.
			w.requeueTail(m)
			m.Closed, m.Pending = true, false
			s.settle(w.name, w.st)
			return nil
		}
		if err != nil {
			err = fmt.Errorf("append to stream: %w", err)
		}
	}
	return w.sent(m, err)
}

// sent settles the answer to a call that sent m's unsent text.
func (w *Stream) sent(m *streamMsg, err error) error {
	if err != nil {
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			w.notBefore = time.Now().Add(rl.RetryAfter)
			w.s.Log.Warn("stream rate limited; waiting", "step", w.name, "retry_after", rl.RetryAfter.String())
		}
		if notSent(err) {
			m.Pending = false
			w.s.settle(w.name, w.st)
		}
		return err
	}
	m.Shown, m.Pending = utf8.RuneCountInString(m.Text), false
	if m.TS != "" {
		w.buttonShown.Store(true)
		// Every call that sends a message's text carries every card not known to be shown
		// (chunks), or the summary of all of them (a message set whole).
		w.cardsShown()
	}
	w.s.settle(w.name, w.st)
	return nil
}

// content is what a streaming call carries: text as markdown_text, or (with cards or a Stop
// button) as chunks.
func (w *Stream) content(text string) slack.MsgOption {
	if w.opts.Tasks == "" && !w.opts.Stop {
		return slack.MsgOptionMarkdownText(text)
	}
	return slack.MsgOptionChunks(w.chunks(text)...)
}

// progressBlocks go under a message set whole while the answer is written: the Stop button.
func (w *Stream) progressBlocks() []slack.Block {
	if !w.opts.Stop || w.stopped.Load() || w.s.run.about.user == "" {
		return nil
	}
	return []slack.Block{stopButton(w.stopID(), w.s.run.about.user)}
}

// requeueTail gives m's unsent text back to the buffer, ahead of what is there.
func (w *Stream) requeueTail(m *streamMsg) {
	t := m.tail()
	m.Text = m.Text[:len(m.Text)-len(t)]
	rest := w.buf.String()
	w.buf.Reset()
	w.buf.WriteString(t + rest)
}

// ended reports a stream call refused because the stream is over or full: the message can
// take nothing more.
func ended(err error) bool {
	return isSlackError(err, "message_not_in_streaming_state") || isSlackError(err, "msg_too_long") ||
		isSlackError(err, "msg_blocks_too_long")
}

// start starts m as a stream carrying its text.
func (w *Stream) start(ctx context.Context, m *streamMsg) (string, error) {
	s := w.s
	a := s.run.about
	content := w.content(m.Text)
	if w.opts.Stop && a.user != "" {
		// The Stop button comes first: chunks show in order and the text grows below it.
		content = slack.MsgOptionChunks(append([]slack.StreamChunk{slack.NewBlocksChunk(stopButton(w.stopID(), a.user))}, w.chunks(m.Text)...)...)
	}
	opts := []slack.MsgOption{slack.MsgOptionTS(w.thread), content}
	if w.opts.Tasks != "" {
		opts = append(opts, slack.MsgOptionTaskDisplayMode(slack.TaskDisplayMode(w.opts.Tasks)))
	}
	if a.user != "" && a.team != "" {
		opts = append(opts, slack.MsgOptionRecipientUserID(a.user), slack.MsgOptionRecipientTeamID(a.team))
	}
	_, ts, err := s.Slack.StartStreamContext(ctx, w.channel, opts...)
	if err != nil {
		return "", fmt.Errorf("start stream: %w", err)
	}
	return ts, nil
}

// metadata tags a message of the answer, so a delivery that lost Slack's answer finds it.
func (w *Stream) metadata(part int) slack.MsgOption {
	return slack.MsgOptionMetadata(slack.SlackMetadata{EventType: ReplyMetadataType, EventPayload: map[string]any{
		"dedupe_key": w.s.Key(), "step": w.name, "part": part}})
}

func (w *Stream) part(m *streamMsg) int {
	for i := range w.st.Msgs {
		if &w.st.Msgs[i] == m {
			return i + 1
		}
	}
	return len(w.st.Msgs)
}

// body is m's text as a markdown block, with blocks under it.
func body(text string, blocks []slack.Block) []slack.MsgOption {
	return []slack.MsgOption{slack.MsgOptionText(text, false),
		slack.MsgOptionBlocks(append([]slack.Block{slack.NewMarkdownBlock("", text)}, blocks...)...)}
}

// post posts m whole (when streaming is refused or disabled).
func (w *Stream) post(ctx context.Context, m *streamMsg, blocks []slack.Block) (string, error) {
	opts := append(body(m.Text, append(w.cardsSummary(), blocks...)), slack.MsgOptionTS(w.thread), w.metadata(w.part(m)))
	_, ts, err := w.s.Slack.PostMessageContext(ctx, w.channel, opts...)
	if err != nil {
		return "", fmt.Errorf("post answer: %w", err)
	}
	return ts, nil
}

// update sets m whole with chat.update.
func (w *Stream) update(ctx context.Context, m *streamMsg, blocks []slack.Block) error {
	opts := append(body(m.Text, append(w.cardsSummary(), blocks...)), w.metadata(w.part(m)))
	_, _, _, err := w.s.Slack.UpdateMessageContext(ctx, w.channel, m.TS, opts...)
	if isSlackError(err, "streaming_state_conflict") {
		// Still streaming (a message resumed before Slack ended it): stop it, then set it.
		if err := w.stop(ctx, m, nil); err != nil {
			return err
		}
		_, _, _, err = w.s.Slack.UpdateMessageContext(ctx, w.channel, m.TS, opts...)
	}
	if err != nil {
		return fmt.Errorf("update answer: %w", err)
	}
	return nil
}

// stop ends m's stream; a stream Slack already ended counts as stopped.
func (w *Stream) stop(ctx context.Context, m *streamMsg, opts []slack.MsgOption) error {
	_, _, err := w.s.Slack.StopStreamContext(ctx, w.channel, m.TS, append(opts, w.metadata(w.part(m)))...)
	if err != nil && !isSlackError(err, "message_not_in_streaming_state") {
		return fmt.Errorf("stop stream: %w", err)
	}
	return nil
}

// closeMsg ends m so the answer continues in a new message: a stream is stopped (its text
// is all shown); a message set whole needs nothing more.
func (w *Stream) closeMsg(ctx context.Context, m *streamMsg) error {
	if m.tail() != "" && m.TS != "" {
		if err := w.send(ctx, m); err != nil {
			return err
		}
		if m.Closed {
			return nil // the stream ended by itself meanwhile
		}
	}
	if m.TS == "" {
		// Nothing of it was sent: its text goes into the next message.
		w.requeueTail(m)
		w.st.Msgs = w.st.Msgs[:len(w.st.Msgs)-1]
		return nil
	}
	if !m.Update {
		if err := w.stop(ctx, m, nil); err != nil {
			return err
		}
		if len(w.st.Tasks) > 0 {
			// Its stream's window is closing and it shows cards that may change yet: it goes
			// on set whole (no window), so no card is drawn in a second message.
			m.Update, m.Shown = true, 0
			w.s.settle(w.name, w.st)
			return nil
		}
	}
	m.Closed = true
	w.s.settle(w.name, w.st)
	return nil
}

// finishAnswer ends the answer: the last message gets its unsent text and the final blocks
// in one call (chat.stopStream's blocks render below the streamed text; a message set whole
// gets text and blocks with chat.update), written first with the answer marked complete.
func (w *Stream) finishAnswer(ctx context.Context) error {
	s := w.s
	m := w.cur()
	if m == nil {
		// Every message is closed (the last one just rolled over): the blocks go under the
		// last one, set whole again with them.
		m = &w.st.Msgs[len(w.st.Msgs)-1]
		m.Closed, m.Update = false, true
	}
	m.Pending, w.st.Complete = true, true
	if err := s.save(ctx, w.name, w.st); err != nil {
		return err
	}
	var err error
	switch {
	case m.TS == "":
		m.Update = true // a short answer that never streamed: posted whole
		m.TS, err = w.post(ctx, m, w.final)
	case m.Update:
		err = w.update(ctx, m, w.final)
	default:
		var opts []slack.MsgOption
		if t := m.tail(); t != "" || w.cardsDue() {
			opts = append(opts, w.content(t))
		}
		if len(w.final) > 0 {
			opts = append(opts, slack.MsgOptionBlocks(w.final...))
		}
		_, _, err = s.Slack.StopStreamContext(ctx, w.channel, m.TS, append(opts, w.metadata(w.part(m)))...)
		if ended(err) {
			// Slack ended the stream before the last text: set the message whole instead.
			m.Update = true
			err = w.update(ctx, m, w.final)
		} else if err != nil {
			err = fmt.Errorf("stop stream: %w", err)
		}
	}
	if err := w.sent(m, err); err != nil {
		return err
	}
	m.Closed, w.st.Done = true, true
	s.settle(w.name, w.st)
	s.Log.Info("answer finished", "step", w.name, "messages", len(w.st.Msgs), "chars", utf8.RuneCountInString(w.Text()))
	return nil
}

// recover settles what an earlier attempt left uncertain, before anything new is sent: a
// message whose start went unanswered is looked for in the thread (and adopted) or started
// again; a message whose last call went unanswered is stopped and set whole with chat.update
// by the next send; any message but the last still open is closed.
func (w *Stream) recover(ctx context.Context) error {
	s := w.s
	changed := false
	for i := range w.st.Msgs {
		m := &w.st.Msgs[i]
		if m.Closed {
			continue
		}
		last := i == len(w.st.Msgs)-1
		switch {
		case m.TS == "" && m.Pending:
			ts, found, err := w.findLost(ctx, m, i+1)
			if err != nil {
				return failure.Retryable(fmt.Errorf("look for the message an earlier attempt started: %w", err))
			}
			if found {
				s.Log.Info("an earlier attempt started this message and lost Slack's answer; adopting it", "step", w.name, "part", i+1, "ts", ts)
				m.TS, m.Shown = ts, utf8.RuneCountInString(m.Text)
			} else {
				m.Started = 0
			}
			m.Pending = false
			changed = true
		case m.TS != "" && m.Pending && !m.Update && m.tail() == "" && !w.st.Complete && len(w.st.Tasks) > 0:
			// The last call carried cards only: sending their recorded state again draws
			// each card once (a task_update updates the card with its id).
			m.Pending = false
			changed = true
		case m.TS != "" && m.Pending && !m.Update:
			// The last append (or the final stop) may or may not have landed: stop the
			// stream and set the message whole, with exactly the text recorded for it.
			s.Log.Info("an earlier attempt's last call on this message went unanswered; setting it whole", "step", w.name, "part", i+1, "ts", m.TS)
			if err := w.stop(ctx, m, nil); err != nil {
				return err
			}
			m.Update, m.Shown, m.Pending = true, 0, false
			changed = true
		case m.TS != "" && m.Pending:
			m.Shown, m.Pending = 0, false // a message set whole is set whole again
			changed = true
		}
		if !last && m.TS != "" && !m.Closed {
			if m.tail() != "" {
				if err := w.send(ctx, m); err != nil {
					return err
				}
			}
			if !m.Update {
				if err := w.stop(ctx, m, nil); err != nil {
					return err
				}
			}
			m.Closed, changed = true, true
		}
	}
	if changed {
		s.settle(w.name, w.st)
	}
	return nil
}

// findLost looks in the thread for message part of the answer, which an earlier attempt
// started without getting Slack's answer. A post carries the answer's metadata; a stream
// cannot (chat.startStream takes none), so it is the bot's message not known to the journal,
// not tagged as another event's, whose text is exactly what it was started with (an orphan
// never grows: nothing appends to a stream whose ts nobody kept).
func (w *Stream) findLost(ctx context.Context, m *streamMsg, part int) (string, bool, error) {
	s := w.s
	if m.Update && m.Legacy != "" {
		return s.findPosted(ctx, w.channel, w.thread, m.Legacy, 1)
	}
	if m.Update {
		return s.findPosted(ctx, w.channel, w.thread, w.name, part)
	}
	known := map[string]bool{}
	for _, x := range w.st.Msgs {
		known[x.TS] = true
	}
	id, err := s.run.rt.BotIdentity(ctx, s.run.about.tenant)
	if err != nil {
		return "", false, err
	}
	want := strings.TrimSpace(m.Text)
	return s.scanThread(ctx, w.channel, w.thread, func(msg slack.Message) bool {
		mine := (id.UserID != "" && msg.User == id.UserID) || (id.BotID != "" && msg.BotID == id.BotID)
		md := msg.Metadata
		other := md.EventType == ReplyMetadataType && fmt.Sprint(md.EventPayload["dedupe_key"]) != s.Key()
		return msg.Timestamp != w.thread && mine && !known[msg.Timestamp] && !other && strings.TrimSpace(msg.Text) == want
	})
}

// messages lists the ts of the answer's messages.
func (w *Stream) messages() []string {
	var out []string
	for _, m := range w.st.Msgs {
		if m.TS != "" {
			out = append(out, m.TS)
		}
	}
	return out
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

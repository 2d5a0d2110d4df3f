package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// StopActionID is the action_id of the Stop button a streamed answer shows while it is
// written (StreamOptions.Stop). NewRouter routes its clicks: a click by the person the answer
// is for notes the stop in the journal (a note named by the button's block_id, which names
// the answer); the running stream sees the note within stopPoll and ends the answer with what
// was shown and a note that it was stopped. A click on a finished answer, or a second click,
// changes nothing.
const StopActionID = "slackrelay_stop"

// ErrStopped is what Append returns, and the cause of Watch's context, once a person stopped
// the answer with its Stop button: end the work and call Finish, which ends the answer with
// what was shown and a note.
var ErrStopped = errors.New("relay: the answer was stopped with its Stop button")

// stopPoll is how often Watch looks for a Stop click while the work runs and no flush looked
// (one read of the journal's notes each time).
const stopPoll = 400 * time.Millisecond

// stoppedNote ends an answer stopped with its Stop button.
const stoppedNote = "\n\n_Stopped._"

// stopBlockPrefix starts the block_id of a Stop button; the rest names the answer.
const stopBlockPrefix = "slackrelay_stop:"

// stopID names the answer a Stop button stops: the stream's step in this event, hashed (it
// travels in the button's block_id).
func (w *Stream) stopID() string {
	sum := sha256.Sum256([]byte(w.s.Key() + "\x00" + w.name))
	return hex.EncodeToString(sum[:16])
}

// stopNote names the note a Stop click on the answer id leaves.
func stopNote(id string) string { return "stop:" + id }

// stopButton is the Stop button of the answer id, written for user (only they may stop it).
func stopButton(id, user string) slack.Block {
	b := slack.NewButtonBlockElement(StopActionID, user, slack.NewTextBlockObject(slack.PlainTextType, "Stop", false, false))
	return slack.NewActionBlock(stopBlockPrefix+id, b)
}

// stopClicked is the route of Stop clicks.
func stopClicked(ctx context.Context, req *Request[slack.InteractionCallback]) error {
	cb := req.Payload
	var asker, id string
	for _, a := range cb.ActionCallback.BlockActions {
		if a.ActionID == StopActionID {
			asker, id = a.Value, strings.TrimPrefix(a.BlockID, stopBlockPrefix)
		}
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return Permanent(errors.New("stop: the button's block_id does not name an answer"))
	}
	if asker != "" && cb.User.ID != asker {
		req.Log.Info("stop clicked by someone the answer is not for; ignored", "user", cb.User.ID, "answer", id)
		return req.Ephemeral(ctx, cb.User.ID, "Only <@"+asker+"> can stop this answer.")
	}
	// The value is who stopped it and when (for the stream's log of how long it took).
	return req.Remember(ctx, stopNote(id), cb.User.ID+" "+strconv.FormatInt(time.Now().UnixMilli(), 10))
}

// stopRequested reports whether a Stop click was noted for the answer (one read), and how
// long ago it was made.
func (w *Stream) stopRequested(ctx context.Context) (bool, time.Duration, error) {
	v, err := w.s.Recall(ctx, stopNote(w.stopID()))
	if err != nil || v == "" {
		return false, 0, err
	}
	var ago time.Duration
	if _, at, ok := strings.Cut(v, " "); ok {
		if ms, err := strconv.ParseInt(at, 10, 64); err == nil {
			ago = time.Since(time.UnixMilli(ms))
		}
	}
	return true, ago, nil
}

// checkStop looks for a Stop click (at each flush, and from Watch) once the button is shown:
// once one is seen the answer is stopped for good.
func (w *Stream) checkStop(ctx context.Context) {
	if !w.opts.Stop || w.stopped.Load() || !w.buttonShown.Load() {
		return
	}
	w.stopChecked.Store(time.Now().UnixNano())
	stop, ago, err := w.stopRequested(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.s.Log.Warn("could not look for a Stop click", "step", w.name, "error", err.Error())
		}
		return
	}
	if stop && w.stopped.CompareAndSwap(false, true) {
		w.s.Log.Info("answer stopped with its Stop button", "step", w.name, "click_to_notice_ms", ago.Milliseconds())
	}
}

// Stopped reports whether a person stopped the answer with its Stop button (in this attempt
// or an earlier one).
func (w *Stream) Stopped() bool { return w.stopped.Load() }

// Watch returns a context for the slow work behind the answer (the model's request) that is
// cancelled, with cause ErrStopped, when a person stops the answer with its Stop button: the
// stream looks for the click every 400 ms while the work runs, as well as at each flush.
// Call the CancelFunc when the work ends. Without StreamOptions.Stop it only wraps ctx.
func (w *Stream) Watch(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancelCause(ctx)
	if !w.opts.Stop {
		return wctx, func() { cancel(nil) }
	}
	if w.stopped.Load() {
		cancel(ErrStopped)
		return wctx, func() {}
	}
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(stopPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-wctx.Done():
				return
			case <-t.C:
				if time.Since(time.Unix(0, w.stopChecked.Load())) < stopPoll {
					continue // a flush looked meanwhile
				}
				w.checkStop(wctx)
				if w.stopped.Load() {
					cancel(ErrStopped)
					return
				}
			}
		}
	}()
	return wctx, func() { once.Do(func() { close(done); cancel(nil) }) }
}

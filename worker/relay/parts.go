package relay

import (
	"context"
	"fmt"

	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/progress"
	"github.com/slackrelay/slackrelay/worker/text"
)

// maxPlannedBytes bounds the text one reply plans (it is kept in the progress record until
// the event completes). Longer answers are cut with a note.
const maxPlannedBytes = 80 << 10

// cutNote ends an answer that was cut to fit.
const cutNote = "\n\n_(The answer was too long and has been cut here.)_"

// partSink is where the parts of a planned step go: chat.postMessage for Post, the
// response_url for Respond.
type partSink struct {
	// what names the destination in logs and errors ("post", "response_url").
	what string
	// send hands parts[i] to Slack and returns its ts ("" where Slack gives none).
	send func(ctx context.Context, parts []string, i int) (string, error)
	// notSent reports whether a send error proves that Slack did not act on the call.
	notSent func(error) bool
	// find looks for part i that an earlier attempt handed over without getting an answer;
	// nil where the destination cannot be read back (the part is sent again).
	find func(ctx context.Context, i int) (ts string, found bool, err error)
}

// sendParts sends the planned parts of step id that are not sent yet, in order, recording
// each: the part about to go out is marked Pending before it is sent, and one write records it
// sent and marks the next one. A part an earlier attempt left Pending is first looked for
// with sink.find. It returns the step as far as it got.
func (s *Session) sendParts(ctx context.Context, id string, st progress.Step, resumed bool, sink partSink) (progress.Step, error) {
	uncertain := resumed && st.Pending && sink.find != nil
	for i := len(st.Sent); i < len(st.Parts); i++ {
		last := i == len(st.Parts)-1
		if uncertain {
			uncertain = false
			ts, found, err := sink.find(ctx, i)
			if err != nil {
				return st, failure.Retryable(fmt.Errorf("look for part %d/%d of an earlier attempt: %w", i+1, len(st.Parts), err))
			}
			if found {
				s.Log.Info("an earlier attempt posted this part; not posting it again", "step", id, "part", i+1, "ts", ts)
				st.Sent, st.Pending, st.Done = append(st.Sent, ts), !last, last
				if err := s.save(ctx, id, st); err != nil {
					return st, err
				}
				continue
			}
		}
		if !st.Pending {
			st.Pending = true
			if err := s.save(ctx, id, st); err != nil {
				return st, err
			}
		}
		ts, err := sink.send(ctx, st.Parts, i)
		if err != nil {
			if sink.notSent(err) {
				st.Pending = false
				_ = s.lease.Save(ctx, id, st) // best effort: only spares the next attempt a look
			}
			if i > 0 {
				s.Log.Warn(sink.what+" cut short; a retry finishes it", "step", id, "sent", i, "parts", len(st.Parts))
			}
			return st, fmt.Errorf("%s part %d/%d: %w", sink.what, i+1, len(st.Parts), err)
		}
		// One write records this part and marks the next one as about to be sent.
		st.Sent, st.Pending, st.Done = append(st.Sent, ts), !last, last
		if err := s.save(ctx, id, st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// plan splits text into the parts to post: at most maxParts when maxParts > 0, and at most
// maxPlannedBytes in all; what does not fit is cut with a note. Empty text gives one part.
func plan(body string, maxParts int) []string {
	cut := false
	if len(body) > maxPlannedBytes {
		body, cut = text.Truncate(body, maxPlannedBytes), true
	}
	parts := text.Split(body, MaxPartRunes)
	if len(parts) == 0 {
		parts = []string{"(no answer)"}
	}
	if maxParts > 0 && len(parts) > maxParts {
		parts, cut = parts[:maxParts], true
	}
	if cut {
		last := parts[len(parts)-1]
		if max := MaxPartRunes - len([]rune(cutNote)); len([]rune(last)) > max {
			last = string([]rune(last)[:max])
		}
		parts[len(parts)-1] = last + cutNote
	}
	return parts
}

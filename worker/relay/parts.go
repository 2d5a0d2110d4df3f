package relay

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/worker/internal/failure"
	"github.com/slackrelay/slackrelay/worker/internal/textcut"
)

// partsStep is the journal entry of a reply sent in planned parts (Post, Respond) or of a
// single effect (Ephemeral, Update, OpenView). Its JSON is the one records of the earlier
// release used for the same helpers, so they resume unchanged after an upgrade.
type partsStep struct {
	Kind string `json:"kind"`
	// Parts are the planned texts, written with the intent to send the first one.
	Parts []string `json:"parts,omitempty"`
	// Sent has one entry per part Slack took, in order: its ts, or "" where Slack gives none
	// (response_url) or the part may have gone out unseen (see Pending).
	Sent []string `json:"sent,omitempty"`
	// Pending says the part after the last sent one was handed to Slack and no answer came
	// back (a crash, a lost response): it may or may not be visible.
	Pending bool `json:"pending,omitempty"`
	// Value is a step's single result: a view id.
	Value string `json:"value,omitempty"`
	// Done says the step finished.
	Done bool `json:"done,omitempty"`
}

// maxPlannedBytes bounds the text one reply plans (it is kept in the journal until the event
// completes). Longer answers are cut with a note.
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
	// find looks for part i that an earlier attempt handed over without getting an answer.
	// nil where the destination cannot be read back: such a part is not sent again (at most
	// once; docs/worker.md says why that is the best Slack allows).
	find func(ctx context.Context, i int) (ts string, found bool, err error)
}

// sendParts sends the parts of step name that are not sent yet, in order. Each part costs one
// write: the intent to send it (Pending, with everything sent before), written before it goes
// out; what Slack answered is settled for the next write. A part an earlier attempt left
// Pending is first looked for with sink.find; where it cannot be looked for, it is counted as
// sent. It returns the step as far as it got.
func (s *Session) sendParts(ctx context.Context, name string, st partsStep, sink partSink) (partsStep, error) {
	if st.Pending && len(st.Sent) < len(st.Parts) {
		// An earlier attempt handed this part over and lost the answer.
		i := len(st.Sent)
		if sink.find == nil {
			s.Log.Warn("an earlier attempt may have sent this part and "+sink.what+" cannot be read back; not sending it again",
				"step", name, "part", i+1, "parts", len(st.Parts))
			st.Sent, st.Pending = append(st.Sent, ""), false
		} else {
			ts, found, err := sink.find(ctx, i)
			if err != nil {
				return st, failure.Retryable(fmt.Errorf("look for part %d/%d of an earlier attempt: %w", i+1, len(st.Parts), err))
			}
			st.Pending = false
			if found {
				s.Log.Info("an earlier attempt sent this part; not sending it again", "step", name, "part", i+1, "ts", ts)
				st.Sent = append(st.Sent, ts)
			}
		}
		st.Done = len(st.Sent) == len(st.Parts)
		s.settle(name, st)
	}
	for i := len(st.Sent); i < len(st.Parts); i++ {
		st.Pending = true
		if err := s.save(ctx, name, st); err != nil {
			return st, err
		}
		ts, err := sink.send(ctx, st.Parts, i)
		if err != nil {
			if sink.notSent(err) {
				st.Pending = false
				s.settle(name, st) // spares the next attempt a look
			}
			if i > 0 {
				s.Log.Warn(sink.what+" cut short; a retry finishes it", "step", name, "sent", i, "parts", len(st.Parts))
			}
			return st, fmt.Errorf("%s part %d/%d: %w", sink.what, i+1, len(st.Parts), err)
		}
		st.Sent, st.Pending = append(st.Sent, ts), false
		st.Done = i == len(st.Parts)-1
		s.settle(name, st)
	}
	return st, nil
}

// plan splits body into the parts to post: each at most MaxPartRunes, the last one small
// enough to sit in a markdown block next to lastBlocksChars of blocks; at most maxParts when
// maxParts > 0, and at most maxPlannedBytes in all. What does not fit is cut with a note.
// Empty text gives one part.
func plan(body string, maxParts, lastBlocksChars int) []string {
	cut := false
	if len(body) > maxPlannedBytes {
		body, cut = textcut.Truncate(body, maxPlannedBytes), true
	}
	parts := textcut.Split(body, MaxPartRunes)
	if len(parts) == 0 {
		parts = []string{"(no answer)"}
	}
	if lastBlocksChars > 0 {
		last := parts[len(parts)-1]
		parts = append(parts[:len(parts)-1], splitMarkdown(last, MaxPartRunes, lastBlocksChars)...)
	}
	if maxParts > 0 && len(parts) > maxParts {
		parts, cut = parts[:maxParts], true
	}
	if cut {
		last := parts[len(parts)-1]
		room := MaxPartRunes - utf8.RuneCountInString(cutNote)
		if lastBlocksChars > 0 {
			room = fitMarkdown(last, room, lastBlocksChars+jsonChars(cutNote))
		}
		if utf8.RuneCountInString(last) > room {
			last = string([]rune(last)[:room])
		}
		parts[len(parts)-1] = last + cutNote
	}
	return parts
}

package relay

import (
	"encoding/json"
	"fmt"
	"github.com/slackrelay/slackrelay/worker/internal/core"
)

// Records written by the release before the step journal named steps by call order
// ("post#1", "respond#1", "view#1", "stream#1/1", "stream#1/done") and kept, for a streamed
// answer, each message's ts and length but not its text. A record of that release may be
// mid-answer when the new release starts; these are read so that such an event still ends
// with one answer. The parts steps (post, respond, ephemeral, update, view) have the same
// JSON as partsStep and are read as they are (Session.load).

// legacyStreamPart is one message of a streamed answer in that release's records.
type legacyStreamPart struct {
	Kind    string `json:"kind"` // "stream", or "stream-post" for a post updated in place
	Value   string `json:"value,omitempty"`
	Pending bool   `json:"pending,omitempty"`
	Done    bool   `json:"done,omitempty"`
	Chars   int    `json:"chars,omitempty"`
}

// legacyStream reads the streamed answer base ("stream#1") of a record of the earlier release.
// Finished messages become closed messages whose length the regenerated answer skips (Skip);
// the message that was left mid-answer is set whole with the new answer's text (as that
// release did); a post whose answer was lost is looked for by its metadata and set whole; a
// stream start whose answer was lost is started again (that release's limit).
func legacyStream(l core.Lease, base string) streamStep {
	st := streamStep{Kind: "stream"}
	if raw, ok := l.Legacy(base + "/done"); ok {
		var done legacyStreamPart
		if json.Unmarshal(raw, &done) == nil && done.Done {
			st.Done, st.Complete = true, true
		}
	}
	for n := 1; ; n++ {
		raw, ok := l.Legacy(fmt.Sprintf("%s/%d", base, n))
		if !ok {
			break
		}
		var p legacyStreamPart
		if json.Unmarshal(raw, &p) != nil {
			continue
		}
		if p.Value == "" {
			if p.Kind == "stream-post" && p.Pending {
				// A post handed over whose answer was lost: found by that release's metadata
				// and set whole with the new answer, as that release did.
				st.Msgs = append(st.Msgs, streamMsg{Update: true, Pending: true, Legacy: fmt.Sprintf("%s/%d", base, n)})
			}
			// A stream start whose answer was lost left an empty message Slack ends by itself
			// (that release's limit): nothing tells it from another.
			continue
		}
		m := streamMsg{TS: p.Value, Update: p.Kind == "stream-post"}
		if p.Done {
			m.Closed = true
			st.Skip += p.Chars
		} else {
			// Its text is unknown: it is set whole with what the new attempt writes.
			m.Pending = true
		}
		st.Msgs = append(st.Msgs, m)
	}
	return st
}

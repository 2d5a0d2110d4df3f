package relaytest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// ClickStop clicks the Stop button of the answer streaming in the thread threadTS of channel
// (relay.StreamOptions.Stop), as the user it is for, and runs the click through the engine
// until it settles. Call it from another goroutine while the answer's Deliver runs, as a
// person clicks while the bot writes. It fails the test when no streamed message of that
// thread shows a Stop button.
func (h *Harness) ClickStop(t testing.TB, channel, threadTS string) Result {
	t.Helper()
	for _, st := range h.Slack.Streams() {
		if st.Channel != channel || st.ThreadTS != threadTS {
			continue
		}
		if blockID, user, ok := StopButton(st); ok {
			now := h.now()
			actionTS := strconv.FormatInt(now.Unix(), 10) + "." + fmt.Sprintf("%06d", now.Nanosecond()/1000)
			form, err := url.ParseQuery(fixture.BlockActionsIn(relay.StopActionID, blockID, user, user, channel, st.TS, threadTS, actionTS))
			if err != nil {
				t.Fatalf("relaytest: the Stop click: %v", err)
			}
			return h.DeliverBody(t, "stop.json", form.Get("payload"))
		}
	}
	t.Fatalf("relaytest: no streamed answer in thread %s of %s shows a Stop button", threadTS, channel)
	return Result{}
}

// WaitForStream waits up to d for a message to stream in the thread threadTS of channel (for
// a test that clicks while the answer is written), reporting whether one did.
func (h *Harness) WaitForStream(channel, threadTS string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, st := range h.Slack.Streams() {
			if st.Channel == channel && st.ThreadTS == threadTS {
				return true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// StopButton finds the Stop button a streamed message shows (relay.StreamOptions.Stop): its
// block_id and the user it is for, what a Slack client sends back in the click.
func StopButton(st fakeslack.Stream) (blockID, user string, ok bool) {
	for _, c := range st.Calls {
		if blockID, user, ok = stopButtonIn(c.Chunks); ok {
			return blockID, user, true
		}
	}
	return "", "", false
}

// stopButtonIn finds the Stop button in a streaming call's chunks (in a blocks chunk).
func stopButtonIn(chunks json.RawMessage) (blockID, user string, ok bool) {
	var parsed []struct {
		Blocks json.RawMessage `json:"blocks"`
	}
	if json.Unmarshal(chunks, &parsed) != nil {
		return "", "", false
	}
	for _, c := range parsed {
		if blockID, user, ok = fixture.Button(c.Blocks, relay.StopActionID); ok {
			return blockID, user, true
		}
	}
	return "", "", false
}

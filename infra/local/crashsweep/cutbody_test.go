package crashsweep

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// readCut reads body as a slow client would (a byte at a time, so an event's end falls
// between reads), through a cutBody letting events through.
func readCut(t *testing.T, body []byte, framed bool, events int) (got []byte, died bool, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inv := newInvocation(nil, cancel)
	b := &cutBody{inv: inv, body: io.NopCloser(iotest.OneByteReader(bytes.NewReader(body))), events: events, framed: framed}
	got, err = io.ReadAll(b)
	return got, inv.crashed() && ctx.Err() != nil, err
}

func TestACrashMidStreamLetsTheFirstServerSentEventsThrough(t *testing.T) {
	stream := "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: {\"c\":3}\n\ndata: [DONE]\n\n"
	got, died, err := readCut(t, []byte(stream), false, 2)
	if want := "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n"; string(got) != want || !errors.Is(err, errCrashed) || !died {
		t.Fatalf("read %q, %v, died %v; want %q, then the invocation dead", got, err, died, want)
	}
}

func TestACrashMidStreamLetsTheFirstEventStreamMessagesThrough(t *testing.T) {
	// Messages as the event-stream encoding frames them: the total length first (4 bytes,
	// big-endian, itself included); what follows is opaque to the cut. The second one holds
	// bytes that look like an SSE event's end, and a length-like prefix.
	var stream []byte
	var ends []int
	for _, payload := range []string{"messageStart", "delta\n\n\x00\x00\x00\x10Let me", "delta search"} {
		var msg [4]byte
		binary.BigEndian.PutUint32(msg[:], uint32(4+len(payload)))
		stream = append(append(stream, msg[:]...), payload...)
		ends = append(ends, len(stream))
	}
	got, died, err := readCut(t, stream, true, 2)
	if !bytes.Equal(got, stream[:ends[1]]) || !errors.Is(err, errCrashed) || !died {
		t.Fatalf("read %q, %v, died %v; want the first two messages %q, then the invocation dead", got, err, died, stream[:ends[1]])
	}
}

package llm

// The Server-Sent Events reading is written here rather than taken from an OpenAI SDK
// (openai-go's ssestream, go-openai's stream reader): both end a stream that stops without
// `data: [DONE]` as if it had finished, so a cut answer would be posted as complete, and they
// bring retries and timeouts of their own that the worker's failure classes, the stream
// timeouts and the invocation deadline already own. What is needed of the format
// (https://html.spec.whatwg.org/multipage/server-sent-events.html) is small: `data:` lines
// joined by newlines, an empty line ending an event, comments and other fields ignored.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxEventBytes bounds one event's data: a chunk of a chat completion is a few hundred bytes.
const maxEventBytes = 1 << 20

// errPartialEvent is an event the stream stopped in the middle of.
var errPartialEvent = errors.New("stream ended inside an event")

// sseReader reads the data of Server-Sent Events.
type sseReader struct {
	r    *bufio.Reader
	data []byte // the event being read; reused
	line []byte // a line longer than the reader's buffer; reused
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 16<<10)}
}

// next returns the data of the next event that has some (valid until the next call).
// At the end of the stream it returns io.EOF, or errPartialEvent when the stream stopped
// inside a line; a read error is returned as it is. Complete data lines at the end of the
// stream without the blank line that should close them still make an event (unlike the
// format's rule), so `data: [DONE]\n` then the end is a finished answer, while a cut inside a
// JSON chunk stays a cut.
func (s *sseReader) next() ([]byte, error) {
	s.data = s.data[:0]
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			switch {
			case err != io.EOF:
			case len(line) > 0:
				err = errPartialEvent // cut inside a line
			case hasData:
				return s.data, nil // whole lines without the closing blank one: taken as an event
			}
			return nil, err
		}
		if len(line) == 0 {
			if hasData {
				return s.data, nil
			}
			continue
		}
		name, value, found := bytes.Cut(line, []byte{':'})
		if len(name) == 0 || string(name) != "data" {
			continue // a comment (": keep-alive"), or a field other than data (event, id, retry)
		}
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if hasData {
			s.data = append(s.data, '\n')
		}
		if len(s.data)+len(value) > maxEventBytes {
			return nil, fmt.Errorf("stream event larger than %d bytes", maxEventBytes)
		}
		s.data = append(s.data, value...)
		hasData = true
	}
}

// readLine returns the next line without its ending (\n or \r\n). At the end of the stream
// it returns what followed the last line ending, with io.EOF.
func (s *sseReader) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.line = append(s.line[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(s.line) > maxEventBytes {
				return nil, fmt.Errorf("stream line longer than %d bytes", maxEventBytes)
			}
			line, err = s.r.ReadSlice('\n')
			s.line = append(s.line, line...)
		}
		line = s.line
	}
	if err != nil {
		return line, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

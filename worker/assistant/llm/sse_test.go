package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// events reads every event of stream, returning their data and the error that ended it.
func events(stream io.Reader) ([]string, error) {
	r := newSSEReader(stream)
	var out []string
	for {
		data, err := r.next()
		if err != nil {
			return out, err
		}
		out = append(out, string(data))
	}
}

func TestSSEReader(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 40<<10) // longer than the reader's buffer
	tests := []struct {
		name    string
		stream  string
		want    []string
		wantErr error
	}{
		{"two events", "data: a\n\ndata: b\n\n", []string{"a", "b"}, io.EOF},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}, io.EOF},
		{"no space after colon", "data:a\n\n", []string{"a"}, io.EOF},
		{"only the first space is dropped", "data:  a\n\n", []string{" a"}, io.EOF},
		{"lines joined", "data: a\ndata: b\n\n", []string{"a\nb"}, io.EOF},
		{"comments and other fields", ": keep-alive\n\nevent: message\nid: 7\nretry: 10\ndata: a\n\n", []string{"a"}, io.EOF},
		{"event without data is skipped", "event: ping\n\n\n\ndata: a\n\n", []string{"a"}, io.EOF},
		{"data without colon is empty data", "data\n\n", []string{""}, io.EOF},
		{"field names are exact", "Data: a\ndatas: b\n\n", nil, io.EOF},
		{"long line", "data: " + long + "\n\n", []string{long}, io.EOF},
		{"ends inside a line", "data: a\n\ndata: {\"cho", []string{"a"}, errPartialEvent},
		{"ends before the blank line", "data: a\n\ndata: [DONE]\n", []string{"a", "[DONE]"}, io.EOF},
		{"empty stream", "", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// one byte a read, as a slow network delivers it
			got, err := events(iotest.OneByteReader(strings.NewReader(tt.stream)))
			if diff := cmp.Diff(tt.want, got); diff != "" || !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v; events (-want +got):\n%s", err, tt.wantErr, diff)
			}
		})
	}
}

func TestSSEReaderLimits(t *testing.T) {
	t.Parallel()
	endless := "data: " + strings.Repeat("x", 2*maxEventBytes) // a line that never ends
	if _, err := events(strings.NewReader(endless)); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a line over the limit gave %v, want an error", err)
	}
	many := strings.Repeat("data: "+strings.Repeat("x", 1000)+"\n", maxEventBytes/1000+1) + "\n"
	if _, err := events(strings.NewReader(many)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("an event over the limit gave %v, want an error", err)
	}
	broken := errors.New("connection reset by peer")
	if _, err := events(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(broken))); !errors.Is(err, broken) {
		t.Errorf("a read error gave %v, want it returned", err)
	}
}

// The stream of testdata/ (OpenAI's format, with a keep-alive comment) reads as its chunks.
func TestSSEReaderOpenAIStream(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/stream_openai.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := events(bytes.NewReader(raw))
	if err != io.EOF || len(got) != 7 || got[6] != "[DONE]" || !strings.Contains(got[5], `"total_tokens":26`) {
		t.Errorf("got %d events (%v), last %q; want 7 ending in [DONE] after the usage chunk", len(got), err, got[len(got)-1])
	}
}

func FuzzSSEReader(f *testing.F) {
	raw, err := os.ReadFile("testdata/stream_openai.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte("data: a\r\ndata: b\n\n: c\n\ndata"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		got, err := events(bytes.NewReader(stream))
		if err == nil {
			t.Fatal("reading ended without an error")
		}
		total := 0
		for _, e := range got {
			total += len(e)
		}
		if total > len(stream) {
			t.Fatalf("events hold %d bytes, more than the stream's %d", total, len(stream))
		}
		// the same stream read a byte at a time gives the same events
		again, err2 := events(iotest.OneByteReader(bytes.NewReader(stream)))
		if !cmp.Equal(got, again, cmp.Comparer(func(a, b string) bool { return a == b })) || !errors.Is(err2, err) && err2.Error() != err.Error() {
			t.Fatalf("one byte at a time: %q %v, whole: %q %v", again, err2, got, err)
		}
	})
}

// benchStream is testdata's stream without its [DONE], 200 times over: 1,200 chunks.
func benchStream(b *testing.B) []byte {
	raw, err := os.ReadFile("testdata/stream_openai.txt")
	if err != nil {
		b.Fatal(err)
	}
	stream := bytes.Repeat(raw[:bytes.Index(raw, []byte("data: [DONE]"))], 200)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	return stream
}

// BenchmarkSSERead: reading a chat-completions stream of small chunks (bytes/s, allocations).
func BenchmarkSSERead(b *testing.B) {
	stream := benchStream(b)
	for b.Loop() {
		r := newSSEReader(bytes.NewReader(stream))
		for {
			if _, err := r.next(); err != nil {
				break
			}
		}
	}
}

// BenchmarkChunkDecode: reading and decoding the chunks as Stream does.
func BenchmarkChunkDecode(b *testing.B) {
	stream := benchStream(b)
	for b.Loop() {
		r := newSSEReader(bytes.NewReader(stream))
		var ch chunk
		for {
			data, err := r.next()
			if err != nil {
				break
			}
			ch = chunk{}
			if err := json.Unmarshal(data, &ch); err != nil {
				b.Fatal(err)
			}
		}
	}
}

package fakellm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slackrelay/slackrelay/shared/loopback"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"
)

const testKey = "sk-local-test-key"

// newTest starts a Server on loopback; the test's cleanup closes it.
func newTest(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	s := New(opts)
	base, err := s.Start("")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, base
}

// post sends a chat-completions request with the test key.
func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// received is a streamed answer as read off the wire.
type received struct {
	chunks  []streamChunk
	text    string
	tokens  int // chunks with content
	done    bool
	readErr error
	gaps    []time.Duration // time before each content chunk, from the request
}

// readStream reads Server-Sent Events the plain way: events end at an empty line, each
// holds one `data: ` line.
func readStream(t *testing.T, resp *http.Response, sent time.Time) received {
	t.Helper()
	var got received
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not a data line", line)
		}
		if got.done {
			t.Fatalf("data after [DONE]: %q", data)
		}
		if data == "[DONE]" {
			got.done = true
			continue
		}
		var c streamChunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		got.chunks = append(got.chunks, c)
		if len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			got.text += c.Choices[0].Delta.Content
			got.tokens++
			got.gaps = append(got.gaps, time.Since(sent))
		}
	}
	got.readErr = sc.Err()
	return got
}

func chatBody(t *testing.T, stream, usage bool, maxTokens int, msgs ...Message) string {
	t.Helper()
	body := map[string]any{"model": "m1", "messages": msgs, "stream": stream}
	if usage {
		body["stream_options"] = map[string]bool{"include_usage": true}
	}
	if maxTokens > 0 {
		body["max_tokens"] = maxTokens
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStreamWithUsage(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{APIKey: testKey, Pace: Pace{AnswerTokens: 12}})
	raw, err := os.ReadFile("testdata/chat_request.json")
	if err != nil {
		t.Fatal(err)
	}
	resp := post(t, base+"v1/chat/completions", string(raw))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q; want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got := readStream(t, resp, time.Now())
	wantMsgs := []Message{
		{Role: "system", Content: "You are a helpful assistant answering in Slack. Be concise."},
		{Role: "user", Content: "What does the events queue do?"},
		{Role: "assistant", Content: "It holds each Slack event until a worker has handled it."},
		{Role: "user", Content: "And when the worker crashes?"},
	}
	if want := s.AnswerText(wantMsgs, 0); got.text != want || got.tokens != 12 {
		t.Errorf("streamed %d tokens %q, want 12 tokens %q", got.tokens, got.text, want)
	}
	if !strings.Contains(got.text, `"And when the worker crashes?" after 4 messages`) {
		t.Errorf("answer %q does not name the prompt and the message count", got.text)
	}
	if !got.done || got.readErr != nil {
		t.Errorf("done=%v err=%v, want [DONE] and a clean end", got.done, got.readErr)
	}
	if first := got.chunks[0].Choices[0].Delta; first.Role != "assistant" {
		t.Errorf("first delta %+v, want role assistant", first)
	}
	n := len(got.chunks)
	if fin := got.chunks[n-2]; len(fin.Choices) != 1 || fin.Choices[0].FinishReason == nil || *fin.Choices[0].FinishReason != "stop" {
		t.Errorf("second to last chunk %+v, want finish_reason stop", fin)
	}
	last := got.chunks[n-1]
	wantUsage := usage{PromptTokens: 4*3 + 10 + 6 + 11 + 5, CompletionTokens: 12, TotalTokens: 44 + 12}
	if len(last.Choices) != 0 || last.Usage == nil || *last.Usage != wantUsage {
		t.Errorf("last chunk %+v, want no choices and usage %+v", last, wantUsage)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || !reqs[0].Stream || !reqs[0].IncludeUsage || reqs[0].Status != 200 || reqs[0].Model != "gpt-4o-mini" {
		t.Fatalf("recorded %+v", reqs)
	}
	if diff := cmp.Diff(wantMsgs, reqs[0].Messages); diff != "" {
		t.Errorf("recorded messages (-want +got):\n%s", diff)
	}
}

func TestAnswers(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	ask := func(prompt string, stream bool, maxTokens int) (string, string) {
		resp := post(t, base+"chat/completions", chatBody(t, stream, false, maxTokens, Message{Role: "user", Content: prompt}))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if stream {
			got := readStream(t, resp, time.Now())
			fin := got.chunks[len(got.chunks)-1].Choices[0].FinishReason
			if got.chunks[len(got.chunks)-1].Usage != nil {
				t.Errorf("usage sent without include_usage")
			}
			return got.text, *fin
		}
		var out struct {
			Object  string `json:"object"`
			Choices []struct {
				Message      Message `json:"message"`
				FinishReason string  `json:"finish_reason"`
			} `json:"choices"`
			Usage usage `json:"usage"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Object != "chat.completion" || len(out.Choices) != 1 {
			t.Fatalf("answer %+v: %v", out, err)
		}
		if out.Usage.CompletionTokens != len(fakemodel.Words(out.Choices[0].Message.Content)) {
			t.Errorf("usage %+v for %q", out.Usage, out.Choices[0].Message.Content)
		}
		return out.Choices[0].Message.Content, out.Choices[0].FinishReason
	}
	a1, fin1 := ask("first question", true, 0)
	a2, _ := ask("first question", false, 0)
	a3, _ := ask("another question", true, 0)
	short, fin4 := ask("first question", true, 5)
	shortPlain, fin5 := ask("first question", false, 5)
	if a1 != a2 || a1 != s.AnswerText([]Message{{Role: "user", Content: "first question"}}, 0) {
		t.Errorf("one prompt answered %q streamed and %q not; want the same deterministic text", a1, a2)
	}
	if a1 == a3 {
		t.Errorf("two prompts got the same answer %q", a1)
	}
	if len(fakemodel.Words(a1)) != DefaultAnswerTokens || fin1 != "stop" {
		t.Errorf("answer has %d tokens (%s), want %d (stop)", len(fakemodel.Words(a1)), fin1, DefaultAnswerTokens)
	}
	if len(fakemodel.Words(short)) != 5 || !strings.HasPrefix(a1, short) || fin4 != "length" || shortPlain != short || fin5 != "length" {
		t.Errorf("max_tokens 5 gave %q (%s) and %q (%s), want the first 5 tokens of %q, finish length", short, fin4, shortPlain, fin5, a1)
	}
}

func TestNoStreaming(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{NoStreaming: true})
	resp := post(t, base+"v1/chat/completions", chatBody(t, true, true, 0, Message{Role: "user", Content: "q"}))
	var out struct {
		Choices []struct {
			Message Message `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.Header.Get("Content-Type") != "application/json" || len(out.Choices) != 1 {
		t.Fatalf("a stream request got %s %+v (%v), want one JSON answer", resp.Header.Get("Content-Type"), out, err)
	}
	if want := s.AnswerText([]Message{{Role: "user", Content: "q"}}, 0); out.Choices[0].Message.Content != want {
		t.Errorf("answer %q, want %q", out.Choices[0].Message.Content, want)
	}
}

func TestLongAnswer(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{Pace: Pace{AnswerTokens: 5000}})
	got := readStream(t, post(t, base+"v1/chat/completions", chatBody(t, true, true, 0, Message{Role: "user", Content: "long"})), time.Now())
	if got.tokens != 5000 || len(got.text) < 20000 || got.text != s.AnswerText([]Message{{Role: "user", Content: "long"}}, 0) {
		t.Errorf("got %d tokens, %d bytes; want 5000 tokens of the server's answer", got.tokens, len(got.text))
	}
}

func TestCustomAnswer(t *testing.T) {
	t.Parallel()
	_, base := newTest(t, Options{Answer: func(m []Message) string { return "echo " + m[len(m)-1].Content }})
	got := readStream(t, post(t, base+"v1/chat/completions", chatBody(t, true, false, 0, Message{Role: "user", Content: "two words"})), time.Now())
	if got.text != "echo two words" || got.tokens != 3 {
		t.Errorf("got %d tokens %q, want 3 tokens %q", got.tokens, got.text, "echo two words")
	}
}

// The pace is a lower bound the server keeps: the first token after FirstToken, then one
// every 1/TokensPerSecond.
func TestPace(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{Pace: Pace{FirstToken: 150 * time.Millisecond, TokensPerSecond: 50, AnswerTokens: 6}})
	sent := time.Now()
	got := readStream(t, post(t, base+"v1/chat/completions", chatBody(t, true, false, 0, Message{Role: "user", Content: "q"})), sent)
	for i, at := range got.gaps {
		if want := s.Pace().Due(i); at < want {
			t.Errorf("token %d arrived after %v, before it was due (%v)", i, at, want)
		}
	}
	if len(got.gaps) != 6 {
		t.Fatalf("got %d tokens, want 6", len(got.gaps))
	}
	s.SetPace(Pace{FirstToken: 100 * time.Millisecond})
	start := time.Now()
	resp := post(t, base+"v1/chat/completions", chatBody(t, false, false, 0, Message{Role: "user", Content: "q"}))
	_, _ = io.Copy(io.Discard, resp.Body)
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("non-streamed answer after %v, before its first token was due (100ms)", took)
	}
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{APIKey: testKey})
	body := chatBody(t, false, false, 0, Message{Role: "user", Content: "q"})
	for _, tt := range []struct {
		name, auth string
		want       int
	}{
		{"none", "", 401}, {"wrong", "Bearer sk-wrong", 401}, {"not bearer", "Basic " + testKey, 401}, {"right", "Bearer " + testKey, 200},
	} {
		req, _ := http.NewRequest(http.MethodPost, base+"v1/chat/completions", strings.NewReader(body))
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
		if tt.want == 401 && (!strings.Contains(string(raw), `"code":"invalid_api_key"`) || strings.Contains(string(raw), "sk-")) {
			t.Errorf("%s: body %s, want invalid_api_key and no key", tt.name, raw)
		}
	}
	if reqs := s.Requests(); len(reqs) != 4 || reqs[0].Status != 401 || reqs[3].Status != 200 {
		t.Errorf("recorded %+v, want three 401s and a 200", reqs)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	_, base := newTest(t, Options{})
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"not json", "POST", "v1/chat/completions", `{`, 400, "not a chat-completions request"},
		{"no model", "POST", "v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, 400, "model is required"},
		{"no messages", "POST", "v1/chat/completions", `{"model":"m","messages":[]}`, 400, "messages must not be empty"},
		{"bad role", "POST", "v1/chat/completions", `{"model":"m","messages":[{"role":"bot","content":"x"}]}`, 400, `role \"bot\"`},
		{"image part", "POST", "v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, 400, "only text"},
		{"content number", "POST", "v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":3}]}`, 400, "string or an array"},
		{"get", "GET", "v1/chat/completions", ``, 405, "use POST"},
		{"unknown path", "POST", "v1/embeddings", `{}`, 404, "unknown URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(raw), tt.want) {
				t.Errorf("got %d %s, want %d containing %q", resp.StatusCode, raw, tt.status, tt.want)
			}
		})
	}
}

func TestResetAndOut(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s, base := newTest(t, Options{Out: &out, Pace: Pace{AnswerTokens: 3}})
	s.FailHTTPNext(1, 500)
	s.SetPace(Pace{AnswerTokens: 7})
	s.Reset()
	got := readStream(t, post(t, base+"v1/chat/completions", chatBody(t, true, false, 0, Message{Role: "user", Content: "q"})), time.Now())
	if got.tokens != 3 || len(s.Requests()) != 1 {
		t.Errorf("after Reset got %d tokens and %d requests, want 3 (the Options pace), no fault, 1 request", got.tokens, len(s.Requests()))
	}
	if want := "llm ▸ stream of 3 tokens after 1 messages (model m1)\n"; out.String() != want {
		t.Errorf("Out = %q, want %q", out.String(), want)
	}
}

func TestStartBindsLoopback(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	base, err := s.Start(":0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") || s.APIURL() != base+"v1" {
		t.Errorf("base %q, API URL %q; want 127.0.0.1 and base+v1", base, s.APIURL())
	}
	if _, err := s.Start(""); err == nil {
		t.Error("second Start succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The freed port may already be another test's: only this instance answering is a failure.
	if err := loopback.CheckStopped(s.srv); err != nil {
		t.Error(err)
	}
}

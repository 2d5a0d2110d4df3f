package fakellm

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"
)

// continueBody is a streamed request for msgs with the extra top-level fields given, the
// last message marked "prefix" when prefix is set.
func continueBody(t *testing.T, msgs []Message, prefix bool, extra map[string]any) string {
	t.Helper()
	wire := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		wire[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	if prefix {
		wire[len(wire)-1]["prefix"] = true
	}
	body := map[string]any{"model": "m1", "messages": wire, "stream": true}
	for k, v := range extra {
		body[k] = v
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A request whose last message is the assistant's gets the rest of the scripted answer to
// the conversation before it, from where that message ends, however it asked; unless it
// asks for a new turn.
func TestContinuation(t *testing.T) {
	t.Parallel()
	conv := []Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "how are events kept?"}}
	const script = "Grüße aus 東京: the queue keeps every event ✓ until a worker answers it."
	tests := []struct {
		name     string
		script   string
		given    string // the trailing assistant message; "" cuts the whole answer at cut bytes
		cut      int
		prefix   bool
		extra    map[string]any
		wantVia  string // "" : a new answer to the whole conversation
		notAFix  bool
		wantText func(whole string) string
	}{
		{name: "continue_final_message mid-word", cut: 30, extra: map[string]any{"continue_final_message": true, "add_generation_prompt": false},
			wantVia: ViaContinueFinalMessage},
		{name: "prefix at a word's end", cut: 26, prefix: true, wantVia: ViaPrefix},
		{name: "trailing, the first character", cut: 1, wantVia: ViaTrailing},
		{name: "trailing, all but the last character", cut: -1, wantVia: ViaTrailing},
		{name: "trailing, the whole answer", cut: -0, wantVia: ViaTrailing},
		{name: "multi-byte script after 東", script: script, cut: strings.Index(script, "京"), wantVia: ViaTrailing},
		{name: "multi-byte script after ü", script: script, cut: strings.Index(script, "ß"), extra: map[string]any{"continue_final_message": true, "add_generation_prompt": false}, wantVia: ViaContinueFinalMessage},
		{name: "not a beginning: continued from its length", given: "Somebody else's words", wantVia: ViaTrailing, notAFix: true,
			wantText: func(whole string) string { return whole[len("Somebody else's words"):] }},
		{name: "not a beginning, multi-byte: from its length in characters", script: script, given: "ÄÄÄÄÄÄÄ", wantVia: ViaTrailing, notAFix: true,
			wantText: func(whole string) string { return whole[len("Grüße a"):] }},
		{name: "longer than the answer: nothing", given: strings.Repeat("x", 1000), wantVia: ViaTrailing, notAFix: true,
			wantText: func(string) string { return "" }},
		{name: "add_generation_prompt true: a new turn", given: "It is kept.", extra: map[string]any{"add_generation_prompt": true}},
		{name: "continue_final_message false: a new turn", given: "It is kept.", extra: map[string]any{"continue_final_message": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, base := newTest(t, Options{APIKey: testKey, Pace: Pace{AnswerTokens: 20}})
			s.SetScript(tt.script)
			whole := s.AnswerText(conv, 0)
			given := tt.given
			if given == "" {
				given = whole[:(tt.cut+len(whole))%len(whole)]
				if tt.cut == 0 {
					given = whole
				}
			}
			msgs := append(append([]Message(nil), conv...), Message{Role: "assistant", Content: given})
			got := readStream(t, post(t, base+"v1/chat/completions", continueBody(t, msgs, tt.prefix, tt.extra)), time.Now())
			if !got.done {
				t.Fatalf("the stream did not end with [DONE]: %+v", got)
			}
			want := strings.TrimPrefix(whole, given)
			switch {
			case tt.wantVia == "":
				want = s.answerTextFresh(msgs)
			case tt.wantText != nil:
				want = tt.wantText(whole)
			}
			if got.text != want {
				t.Errorf("continued with %q, want %q", got.text, want)
			}
			if tt.wantVia != "" && !tt.notAFix && given+got.text != whole {
				t.Errorf("given + continuation = %q, want the whole answer %q", given+got.text, whole)
			}
			if tt.wantVia != "" && s.AnswerText(msgs, 0) != want {
				t.Errorf("AnswerText(with the trailing message) = %q, want the continuation %q", s.AnswerText(msgs, 0), want)
			}
			reqs := s.Requests()
			var wantCont *Continuation
			if tt.wantVia != "" {
				wantCont = &Continuation{Via: tt.wantVia, Chars: len([]rune(given)), NotAPrefix: tt.notAFix}
			}
			if len(reqs) != 1 || !cmp.Equal(reqs[0].Continued, wantCont) || !cmp.Equal(reqs[0].Messages, msgs) {
				t.Errorf("recorded %+v (continued %+v), want the messages sent and continued %+v", reqs, reqs[0].Continued, wantCont)
			}
		})
	}
}

// answerTextFresh is the answer to msgs taken as they are, a trailing assistant message
// included: what a request asking for a new turn gets.
func (s *Server) answerTextFresh(msgs []Message) string {
	toks, _ := s.answerTokens(msgs, s.Pace().AnswerTokens, s.Script())
	return strings.Join(toks, "")
}

// Continued answers keep the pace, max_tokens and usage of any answer: the first token of
// the continuation after FirstToken, then TokensPerSecond.
func TestContinuationPaceAndUsage(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{Pace: Pace{FirstToken: 80 * time.Millisecond, TokensPerSecond: 100, AnswerTokens: 40}})
	conv := []Message{{Role: "user", Content: "q"}}
	whole := s.AnswerText(conv, 0)
	given := strings.Join(fakemodel.Words(whole)[:30], "")
	msgs := append(conv, Message{Role: "assistant", Content: given})
	body := continueBody(t, msgs, false, map[string]any{"stream_options": map[string]bool{"include_usage": true}, "max_tokens": 6})
	sent := time.Now()
	got := readStream(t, post(t, base+"v1/chat/completions", body), sent)
	if want := strings.Join(fakemodel.Words(whole)[30:36], ""); got.text != want || got.tokens != 6 {
		t.Errorf("continued with %d tokens %q, want the 6 after the given 30: %q", got.tokens, got.text, want)
	}
	for i, at := range got.gaps {
		if want := s.Pace().Due(i); at < want {
			t.Errorf("token %d of the continuation after %v, before it was due (%v)", i, at, want)
		}
	}
	n := len(got.chunks)
	if fin := got.chunks[n-2].Choices[0].FinishReason; fin == nil || *fin != "length" {
		t.Errorf("finish %v, want length", fin)
	}
	if u := got.chunks[n-1].Usage; u == nil || u.CompletionTokens != 6 || u.PromptTokens != promptTokens(msgs) {
		t.Errorf("usage %+v, want 6 completion tokens and the prompt with the given text (%d)", u, promptTokens(msgs))
	}
}

func TestContinuationRefusals(t *testing.T) {
	t.Parallel()
	_, base := newTest(t, Options{})
	ask := []Message{{Role: "user", Content: "q"}, {Role: "assistant", Content: "Local"}}
	tests := []struct {
		name   string
		msgs   []Message
		prefix bool
		extra  map[string]any
		want   string
	}{
		{"continue_final_message without add_generation_prompt false", ask, false, map[string]any{"continue_final_message": true}, "cannot set both"},
		{"continue_final_message with add_generation_prompt true", ask, false, map[string]any{"continue_final_message": true, "add_generation_prompt": true}, "cannot set both"},
		{"continue_final_message after a user message", ask[:1], false, map[string]any{"continue_final_message": true, "add_generation_prompt": false}, "needs the last message"},
		{"prefix on a user message", ask[:1], true, nil, "only the last message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := post(t, base+"v1/chat/completions", continueBody(t, tt.msgs, tt.prefix, tt.extra))
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), tt.want) {
				t.Errorf("got %d %s, want 400 naming %q", resp.StatusCode, raw, tt.want)
			}
		})
	}
}

// Options.Answer and the script are cut to, or filled up to, Pace.AnswerTokens when it is
// set, and kept as they are when it is not; the filling is the same on every request.
func TestCustomAnswerLength(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{Answer: func([]Message) string { return "one two three" }})
	conv := []Message{{Role: "user", Content: "q"}}
	tests := []struct {
		script string
		tokens int
		want   func(string) bool
	}{
		{"", 0, func(a string) bool { return a == "one two three" }},
		{"", 2, func(a string) bool { return a == "one two" }},
		{"", 10, func(a string) bool {
			return strings.HasPrefix(a, "one two three ") && len(fakemodel.Words(a)) == 10 && !strings.HasSuffix(a, " ")
		}},
		{"ünïcödé ✓", 0, func(a string) bool { return a == "ünïcödé ✓" }},
		{"ünïcödé ✓", 5000, func(a string) bool {
			return strings.HasPrefix(a, "ünïcödé ✓ ") && len(fakemodel.Words(a)) == 5000 && len(a) > 20000
		}},
	}
	for _, tt := range tests {
		s.SetScript(tt.script)
		s.SetPace(Pace{AnswerTokens: tt.tokens})
		a := s.AnswerText(conv, 0)
		if !tt.want(a) || s.AnswerText(conv, 0) != a {
			t.Errorf("script %q, %d tokens: answer %.80q (%d tokens) is not as wanted, or not the same twice", tt.script, tt.tokens, a, len(fakemodel.Words(a)))
		}
	}
}

// An answer that spans minutes streams at a steady pace on a timer: its first tokens come
// on time, and leaving early ends it.
func TestLongSlowAnswer(t *testing.T) {
	t.Parallel()
	pace := Pace{FirstToken: 50 * time.Millisecond, TokensPerSecond: 20, AnswerTokens: 6000}
	if got := pace.Span(pace.AnswerTokens); got != 50*time.Millisecond+5*time.Minute-50*time.Millisecond {
		t.Fatalf("Span = %v, want 5 minutes (the first token after 50ms, then 5999 at 20 a second)", got)
	}
	s, base := newTest(t, Options{Pace: pace})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"v1/chat/completions", strings.NewReader(chatBody(t, true, false, 0, Message{Role: "user", Content: "long"})))
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	whole := s.AnswerText([]Message{{Role: "user", Content: "long"}}, 0)
	if len(whole) < 20000 {
		t.Fatalf("a 6000-token answer has %d bytes, want over 20000", len(whole))
	}
	dec := newLineReader(resp.Body)
	var text string
	for i := range 5 {
		c := dec.chunk(t)
		text += c.Choices[0].Delta.Content
		if at, due := time.Since(sent), pace.Due(i); at < due || at > due+time.Second {
			t.Errorf("token %d after %v, want soon after %v", i, at, due)
		}
	}
	if !strings.HasPrefix(whole, text) {
		t.Errorf("the stream began %q, want the beginning of %.60q", text, whole)
	}
}

// lineReader reads chunks off a stream one at a time.
type lineReader struct{ r *bufio.Reader }

func newLineReader(r io.Reader) *lineReader { return &lineReader{bufio.NewReader(r)} }

// chunk reads the next `data:` event (a token's chunk: the test's answers have no others
// before their end).
func (l *lineReader) chunk(t *testing.T) streamChunk {
	t.Helper()
	for {
		line, err := l.r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: ")
		if !ok {
			continue
		}
		var c streamChunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		return c
	}
}

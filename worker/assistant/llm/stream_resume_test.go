package llm

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// resumeScript is the local server's answer in the resume tests: multi-byte characters of
// 2, 3 and 4 bytes, a blank line, and words the server streams one per chunk.
const resumeScript = "Grüße aus 東京 ✓ — the queue keeps every event 🙂 until a worker has answered it.\n\nThen the thread shows the answer as it grows."

// strategies are the ways a Chat continues a Partial, each with how the local server
// should record the request.
var strategies = []struct {
	name    string
	prefill bool
	style   PrefillStyle
	via     string // fakellm.Continuation.Via; "" for a new answer (regenerate)
}{
	{"regenerate", false, "", ""},
	{"prefill continue_final_message", true, "", fakellm.ViaContinueFinalMessage},
	{"prefill prefix", true, PrefillPrefix, fakellm.ViaPrefix},
	{"prefill plain", true, PrefillPlain, fakellm.ViaTrailing},
}

// resumeConversation is the conversation the resume tests answer.
var resumeConversation = []Message{{RoleUser, "how are events kept?"}}

// resumeSetup starts a local server answering resumeScript (filled up to tokens words when
// tokens is positive) and returns it, a Chat using strategy s, the uninterrupted answer, and
// the buffer the request's logger writes to.
func resumeSetup(t *testing.T, prefill bool, style PrefillStyle, tokens int) (*fakellm.Server, *Chat, string, *logbuf.Buffer) {
	t.Helper()
	srv, c, _ := setup(t, fakellm.Options{Pace: fakellm.Pace{AnswerTokens: tokens}})
	srv.SetScript(resumeScript)
	c.Prefill, c.PrefillStyle = prefill, style
	whole := srv.AnswerText(toLocal(resumeConversation), 0)
	return srv, c, whole, &logbuf.Buffer{}
}

// TestStreamResumes cuts the answer at several points and checks that a second attempt
// with the text shown so far as Partial gives onDelta exactly the rest, for each strategy.
func TestStreamResumes(t *testing.T) {
	t.Parallel()
	at := func(s, within string) func(string) int {
		return func(whole string) int { return strings.Index(whole, s) + len(within) }
	}
	cuts := []struct {
		name   string
		tokens int // answer length (0: the script as it is)
		cut    func(whole string) int
	}{
		{"first character", 0, func(string) int { return 1 }},
		{"mid-word", 0, at("queue", "qu")},
		{"after a word and its space", 0, at("aus ", "aus ")},
		{"after ü (2 bytes)", 0, at("ü", "ü")},
		{"inside 東 (1 of 3 bytes)", 0, at("東", "\xe6")},
		{"inside 東 (2 of 3 bytes)", 0, at("東", "\xe6\x9d")},
		{"inside 🙂 (3 of 4 bytes)", 0, at("🙂", "\xf0\x9f\x99")},
		{"after the blank line", 0, at("Then", "")},
		{"all but the last character", 0, func(w string) int { return len(w) - 1 }},
		{"the whole answer", 0, func(w string) int { return len(w) }},
		{"20,000 characters into a long answer", 5000, func(w string) int {
			n := 0
			for i := range w {
				if n == 20000 {
					return i
				}
				n++
			}
			return len(w)
		}},
	}
	for _, st := range strategies {
		for _, cut := range cuts {
			t.Run(st.name+"/"+cut.name, func(t *testing.T) {
				t.Parallel()
				srv, c, whole, logs := resumeSetup(t, st.prefill, st.style, cut.tokens)
				partial := whole[:cut.cut(whole)]
				var got collect
				req := Request{Messages: resumeConversation, Partial: partial, Log: slog.New(slog.NewJSONHandler(logs, nil))}
				res, err := c.Stream(context.Background(), req, got.add)
				if err != nil {
					t.Fatalf("Stream: %v", err)
				}
				cont := strings.Join(got.pieces, "")
				if partial+cont != whole || res.Text != whole {
					t.Errorf("Partial + continuation = %.80q…, Result.Text %.80q…; want the whole answer %.80q…", partial+cont, res.Text, whole)
				}
				if cont != whole[len(partial):] {
					t.Errorf("continuation %.80q, want exactly what follows Partial, %.80q", cont, whole[len(partial):])
				}
				for i, p := range got.pieces {
					if p == "" {
						t.Errorf("piece %d is empty", i)
					}
				}
				if utf8.ValidString(partial) && !utf8.ValidString(cont) {
					t.Errorf("continuation of a Partial ending on a character boundary is not valid UTF-8: %q", cont)
				}

				reqs := srv.Requests()
				if len(reqs) != 1 {
					t.Fatalf("server saw %d requests, want 1", len(reqs))
				}
				wantMsgs, wantCont := toLocal(resumeConversation), (*fakellm.Continuation)(nil)
				if _, sent := newResumer(partial, true); st.prefill && sent != "" {
					wantMsgs = append(wantMsgs, fakellm.Message{Role: RoleAssistant, Content: sent})
					wantCont = &fakellm.Continuation{Via: st.via, Chars: utf8.RuneCountInString(sent)}
				}
				if diff := cmp.Diff(wantMsgs, reqs[0].Messages); diff != "" {
					t.Errorf("messages sent (-want +got):\n%s", diff)
				}
				if !cmp.Equal(reqs[0].Continued, wantCont) {
					t.Errorf("server took the request as continuing %+v, want %+v", reqs[0].Continued, wantCont)
				}
				// The server's usage: the tokens (words) it wrote, all of them regenerating.
				written := whole
				if _, sent := newResumer(partial, true); st.prefill {
					written = whole[len(sent):]
				}
				if want := localTokens(written); res.Usage.CompletionTokens != want {
					t.Errorf("usage %+v, want the %d tokens the server wrote", res.Usage, want)
				}
				if strings.Contains(logs.String(), "differs") {
					t.Errorf("a deterministic answer was logged as differing: %s", logs)
				}
				for _, want := range []string{`"resume":"` + map[bool]string{false: "regenerate", true: "prefill"}[st.prefill] + `"`, `"partial_chars":` + strconv.Itoa(utf8.RuneCountInString(partial))} {
					if !strings.Contains(logs.String(), want) {
						t.Errorf("log %s lacks %s", logs, want)
					}
				}
			})
		}
	}
}

// localTokens counts the tokens the local server writes for text: a word with the space
// after it, the last one without.
func localTokens(text string) int {
	n := 0
	for _, w := range strings.SplitAfter(text, " ") {
		if w != "" {
			n++
		}
	}
	return n
}

// An answer cut twice is resumed twice, each attempt taking the text shown so far as
// Partial: the pieces of the three attempts make the answer, once.
func TestStreamResumesTwice(t *testing.T) {
	t.Parallel()
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			srv, c, whole, _ := resumeSetup(t, st.prefill, st.style, 60)
			srv.DisconnectNext(1, 7)
			if st.prefill {
				srv.TruncateNext(1, 5) // 5 tokens of the continuation
			} else {
				srv.TruncateNext(1, 20) // the 7 shown again, then 13 new
			}
			var shown strings.Builder
			partial := ""
			for attempt := range 3 {
				res, err := c.Stream(context.Background(), Request{Messages: resumeConversation, Partial: partial}, func(s string) error {
					shown.WriteString(s)
					return nil
				})
				var se *StreamError
				if attempt < 2 && (!errors.As(err, &se) || !errors.Is(err, ErrStreamCut) || se.Received == 0) {
					t.Fatalf("attempt %d: error %v, want a cut after some new text", attempt, err)
				}
				if attempt == 2 && err != nil {
					t.Fatalf("attempt 3: %v", err)
				}
				if res.Text != shown.String() {
					t.Fatalf("attempt %d: Result.Text %q, want all shown so far %q", attempt, res.Text, shown.String())
				}
				partial = res.Text
			}
			if shown.String() != whole {
				t.Errorf("shown %q, want the answer once %q", shown.String(), whole)
			}
		})
	}
}

// A server that does not stream: its one answer is cut like a stream's.
func TestStreamResumesUnstreamed(t *testing.T) {
	t.Parallel()
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			srv, c, _ := setup(t, fakellm.Options{NoStreaming: true})
			srv.SetScript(resumeScript)
			c.Prefill, c.PrefillStyle = st.prefill, st.style
			whole := srv.AnswerText(toLocal(resumeConversation), 0)
			partial := whole[:strings.Index(whole, "東")+2]
			var got collect
			res, err := c.Stream(context.Background(), Request{Messages: resumeConversation, Partial: partial}, got.add)
			if err != nil || res.Text != whole || !cmp.Equal(got.pieces, []string{whole[len(partial):]}) {
				t.Errorf("got %q in %d pieces, Result.Text %q, %v; want %q in one piece", strings.Join(got.pieces, ""), len(got.pieces), res.Text, err, whole[len(partial):])
			}
		})
	}
}

// A regenerated answer that does not begin with Partial is logged (lengths, never text)
// and continued after Partial's length all the same; one shorter than Partial continues
// with nothing.
func TestStreamRegenerateDiffers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, partial string
		want          func(whole string) string
		same          int
		regenerated   func(whole string) int
	}{
		{"other words", "Grüße aus Berlin", func(w string) string { return w[len("Grüße aus 東京 ✓ —"):] }, 10,
			func(string) int { return 16 }},
		{"longer than the answer", resumeScript + " And more that the model does not say again.", func(string) string { return "" }, len([]rune(resumeScript)),
			func(w string) int { return len([]rune(w)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, c, whole, logs := resumeSetup(t, false, "", 0)
			var got collect
			res, err := c.Stream(context.Background(), Request{Messages: resumeConversation, Partial: tt.partial, Log: slog.New(slog.NewJSONHandler(logs, nil))}, got.add)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want(whole)
			if cont := strings.Join(got.pieces, ""); cont != want || res.Text != tt.partial+want {
				t.Errorf("continuation %q, Result.Text %q; want %q after Partial", cont, res.Text, want)
			}
			line := logs.String()
			for _, w := range []string{`"level":"WARN"`, `"msg":"llm regenerated answer differs from the partial answer shown (the model is not deterministic)"`,
				`"partial_chars":` + strconv.Itoa(len([]rune(tt.partial))), `"same_chars":` + strconv.Itoa(tt.same), `"regenerated_chars":` + strconv.Itoa(tt.regenerated(whole)), `"complete":true`} {
				if !strings.Contains(line, w) {
					t.Errorf("log lacks %s:\n%s", w, line)
				}
			}
			if n := strings.Count(line, "differs"); n != 1 {
				t.Errorf("the difference is logged %d times, want once", n)
			}
			for _, text := range []string{"Grüße", "Berlin", "queue"} {
				if strings.Contains(line, text) {
					t.Errorf("log holds answer text %q:\n%s", text, line)
				}
			}
		})
	}
}

// The stream's timeouts hold with a Partial. The first-token timeout ends with the first
// text the server sends, even one regenerated and dropped; the idle timeout bounds the gaps
// while the repeat is dropped; the error counts new text and dropped text apart.
func TestStreamResumeTimeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		prefill  bool
		pace     fakellm.Pace
		fault    func(*fakellm.Server)
		chat     func(*Chat)
		ctx      time.Duration
		tokens   int // tokens of the answer in Partial
		is       error
		reason   string
		received bool // new text arrived before the error
		dropped  bool // repeated text arrived (and was dropped) before it
	}{
		{name: "regenerate: first token timeout", fault: func(s *fakellm.Server) { s.StallNext(1, 0, 3*time.Second) },
			chat: func(c *Chat) { c.FirstTokenTimeout = 100 * time.Millisecond }, tokens: 10, is: ErrFirstTokenTimeout, reason: "first_token_timeout"},
		{name: "prefill: first token timeout", prefill: true, fault: func(s *fakellm.Server) { s.StallNext(1, 0, 3*time.Second) },
			chat: func(c *Chat) { c.FirstTokenTimeout = 100 * time.Millisecond }, tokens: 10, is: ErrFirstTokenTimeout, reason: "first_token_timeout"},
		{name: "regenerate: idle while dropping the repeat", fault: func(s *fakellm.Server) { s.StallNext(1, 5, 3*time.Second) },
			chat: func(c *Chat) { c.IdleTimeout = 100 * time.Millisecond }, tokens: 10, is: ErrIdleTimeout, reason: "idle_timeout", dropped: true},
		{name: "regenerate: idle after new text", fault: func(s *fakellm.Server) { s.StallNext(1, 15, 3*time.Second) },
			chat: func(c *Chat) { c.IdleTimeout = 100 * time.Millisecond }, tokens: 10, is: ErrIdleTimeout, reason: "idle_timeout", dropped: true, received: true},
		// Partial ends with a space, which a prefill does not send: the server's continuation
		// starts with it, and it is dropped.
		{name: "prefill: idle after new text", prefill: true, fault: func(s *fakellm.Server) { s.StallNext(1, 3, 3*time.Second) },
			chat: func(c *Chat) { c.IdleTimeout = 100 * time.Millisecond }, tokens: 10, is: ErrIdleTimeout, reason: "idle_timeout", received: true, dropped: true},
		{name: "regenerate: deadline while dropping the repeat", pace: fakellm.Pace{TokensPerSecond: 50, AnswerTokens: 100}, ctx: 200 * time.Millisecond,
			tokens: 50, is: ErrDeadline, reason: "deadline", dropped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c, metricsOut := setup(t, fakellm.Options{Pace: tt.pace})
			c.Prefill = tt.prefill
			if tt.chat != nil {
				tt.chat(c)
			}
			conv := toLocal(resumeConversation)
			partial := srv.AnswerText(conv, tt.tokens)
			if tt.fault != nil {
				tt.fault(srv)
			}
			ctx := context.Background()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			var got collect
			res, err := c.Stream(ctx, Request{Messages: resumeConversation, Partial: partial}, got.add)
			var se *StreamError
			if !errors.Is(err, tt.is) || !errors.As(err, &se) {
				t.Fatalf("error %v, want a StreamError %v", err, tt.is)
			}
			if class, _ := failure.Classify(err); class != failure.Transient {
				t.Errorf("classified %v, want transient", class)
			}
			cont := strings.Join(got.pieces, "")
			if res.Text != partial+cont || !strings.HasPrefix(srv.AnswerText(conv, 0), res.Text) {
				t.Errorf("Result.Text %q, want Partial %q and the new text %q, a beginning of the answer", res.Text, partial, cont)
			}
			if se.Received != utf8.RuneCountInString(cont) || (se.Received > 0) != tt.received || (se.Dropped > 0) != tt.dropped {
				t.Errorf("Received %d, Dropped %d, onDelta got %q; want new text %v, dropped text %v", se.Received, se.Dropped, cont, tt.received, tt.dropped)
			}
			if tt.dropped && !strings.Contains(err.Error(), "repeating the partial answer, dropped") {
				t.Errorf("error %q does not say text was dropped", err)
			}
			if v := metricValues(t, metricsOut, "LLMErrors", map[string]string{"Reason": tt.reason}); !cmp.Equal(v, []float64{1}) {
				t.Errorf("LLMErrors{Reason=%s} = %v, want [1]", tt.reason, v)
			}
		})
	}
}

// Regenerating, the first-token timeout is met by the first text the server sends, even
// when the first new text comes long after it; the time to the first token and the metrics
// measure the server.
func TestStreamRegenerateFirstTokenIsTheServers(t *testing.T) {
	t.Parallel()
	srv, c, metricsOut := setup(t, fakellm.Options{Pace: fakellm.Pace{FirstToken: 20 * time.Millisecond, TokensPerSecond: 100, AnswerTokens: 40}})
	c.FirstTokenTimeout = 150 * time.Millisecond
	conv := toLocal(resumeConversation)
	partial := srv.AnswerText(conv, 30) // 300 ms of regenerating before the first new text
	var logs logbuf.Buffer
	var got collect
	res, err := c.Stream(context.Background(), Request{Messages: resumeConversation, Partial: partial, Log: slog.New(slog.NewJSONHandler(&logs, nil))}, got.add)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if whole := srv.AnswerText(conv, 0); res.Text != whole || partial+strings.Join(got.pieces, "") != whole {
		t.Errorf("Result.Text %q, want %q", res.Text, whole)
	}
	if res.FirstToken < 20*time.Millisecond || res.FirstToken > 150*time.Millisecond {
		t.Errorf("FirstToken %v, want the server's first token (about 20ms), not the first new text", res.FirstToken)
	}
	if res.Usage.CompletionTokens != 40 {
		t.Errorf("usage %+v, want the 40 tokens the server wrote", res.Usage)
	}
	if v := metricValues(t, metricsOut, "LLMTokens", map[string]string{"Kind": "completion"}); !cmp.Equal(v, []float64{40}) {
		t.Errorf("LLMTokens completion = %v, want [40]", v)
	}
	if v := metricValues(t, metricsOut, "LLMTimeToFirstToken", nil); len(v) != 1 || v[0] > 150 {
		t.Errorf("LLMTimeToFirstToken = %v, want one value under 150 ms", v)
	}
	if !strings.Contains(logs.String(), `"first_delta_ms":`) || strings.Contains(logs.String(), `"first_delta_ms":0`) {
		t.Errorf("log %s, want first_delta_ms, the time to the first new text", logs.String())
	}
}

// An unknown prefill style is refused before anything is sent (permanent: configuration).
func TestStreamPrefillStyleUnknown(t *testing.T) {
	t.Parallel()
	srv, c, _ := setup(t, fakellm.Options{})
	c.Prefill, c.PrefillStyle = true, "vllm"
	res, err := c.Stream(context.Background(), Request{Messages: resumeConversation, Partial: "Local"}, func(string) error { return nil })
	if class, _ := failure.Classify(err); err == nil || class != failure.Permanent || !strings.Contains(err.Error(), `"vllm"`) {
		t.Errorf("error %v (%v), want a permanent error naming the style", err, class)
	}
	if res.Text != "Local" || len(srv.Requests()) != 0 {
		t.Errorf("Result.Text %q and %d requests sent, want Partial and none", res.Text, len(srv.Requests()))
	}
}

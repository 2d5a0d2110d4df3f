package llm

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

func TestDemoWaitsAndAnswers(t *testing.T) {
	t.Parallel()
	start := time.Now()
	out, err := Demo{Delay: 50 * time.Millisecond}.Respond(context.Background(), "hello")
	if err != nil || !strings.Contains(out, "You said: hello") || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("got %q, %v after %v; want the echo after at least 50ms", out, err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := (Demo{Delay: time.Second}).Respond(ctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
}

func TestDemoStreams(t *testing.T) {
	t.Parallel()
	d := Demo{Delay: 40 * time.Millisecond, TokensPerSecond: 1000}
	msgs, _ := History([]Turn{{Text: "earlier"}, {Text: "reply", FromBot: true}}, "and now?", 1000)
	var pieces []string
	start := time.Now()
	res, err := d.Stream(context.Background(), Request{Messages: msgs}, func(s string) error { pieces = append(pieces, s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pieces, "") != res.Text || len(pieces) < 20 {
		t.Errorf("%d pieces joining to %q, Result.Text %q; want many pieces of the text", len(pieces), strings.Join(pieces, ""), res.Text)
	}
	for _, want := range []string{"You said: and now?", "given 2 earlier messages"} {
		if !strings.Contains(res.Text, want) {
			t.Errorf("answer %q lacks %q", res.Text, want)
		}
	}
	if res.FirstToken < 40*time.Millisecond || time.Since(start) < 40*time.Millisecond+time.Duration(len(pieces)-1)*time.Millisecond {
		t.Errorf("first piece after %v, all after %v; want ≥ 40ms, then one piece a millisecond", res.FirstToken, time.Since(start))
	}
	if res.FinishReason != "stop" {
		t.Errorf("finish %q, want stop", res.FinishReason)
	}
}

func TestDemoStreamStops(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	var got string
	res, err := Demo{TokensPerSecond: 50}.Stream(ctx, Request{Messages: []Message{{RoleUser, "q"}}}, func(s string) error { got += s; return nil })
	var se *StreamError
	if !errors.Is(err, ErrDeadline) || !errors.As(err, &se) || se.Received != len([]rune(got)) || res.Text != got || got == "" {
		t.Errorf("error %v, text %q (Result %q); want ErrDeadline after some text, counted", err, got, res.Text)
	}
	if class, _ := failure.Classify(err); class != failure.Transient {
		t.Errorf("classified %v, want transient", class)
	}
	stop := errors.New("stop")
	if _, err := (Demo{}).Stream(context.Background(), Request{}, func(string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("error %v, want onDelta's", err)
	}
}

// The demo continues a Partial: onDelta gets exactly what follows it, at once (no pretend
// rewriting), wherever it was cut; a Partial that is not its answer's beginning is logged.
func TestDemoStreamResumes(t *testing.T) {
	t.Parallel()
	d := Demo{Delay: 10 * time.Millisecond, TokensPerSecond: 1000}
	req := Request{Messages: []Message{{RoleUser, "Grüße aus 東京 🙂"}}}
	whole, err := d.Stream(context.Background(), req, func(string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string, within int) int { return strings.Index(whole.Text, s) + within }
	tests := []struct {
		name string
		cut  int
	}{
		{"first character", 1}, {"mid-word", at("demo", 2)}, {"after a space", at("aus ", 4)},
		{"inside 東", at("東", 2)}, {"inside 🙂", at("🙂", 1)}, {"all", len(whole.Text)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs logbuf.Buffer
			r := req
			r.Partial, r.Log = whole.Text[:tt.cut], slog.New(slog.NewJSONHandler(&logs, nil))
			var got collect
			res, err := d.Stream(context.Background(), r, got.add)
			if err != nil {
				t.Fatal(err)
			}
			if cont := strings.Join(got.pieces, ""); cont != whole.Text[tt.cut:] || res.Text != whole.Text {
				t.Errorf("continuation %q, Result.Text %q; want %q and the whole answer", cont, res.Text, whole.Text[tt.cut:])
			}
			if logs.String() != "" {
				t.Errorf("logged %s, want nothing (the answer is the same)", logs.String())
			}
		})
	}
	var logs logbuf.Buffer
	r := req
	r.Partial, r.Log = "You said: something else", slog.New(slog.NewJSONHandler(&logs, nil))
	res, err := d.Stream(context.Background(), r, func(string) error { return nil })
	if err != nil || res.Text != r.Partial+whole.Text[len("You said: Grüße aus 東京 🙂"):] {
		t.Errorf("Result.Text %q (%v), want Partial then the answer after as many characters", res.Text, err)
	}
	if line := logs.String(); !strings.Contains(line, `"partial_chars":24`) || !strings.Contains(line, `"same_chars":10`) || strings.Contains(line, "something") {
		t.Errorf("log %s, want the difference with its lengths and no text", line)
	}
}

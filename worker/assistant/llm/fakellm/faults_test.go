package fakellm

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	stream := func(t *testing.T, base string) (received, *http.Response) {
		resp := post(t, base+"v1/chat/completions", chatBody(t, true, true, 0, Message{Role: "user", Content: "q"}))
		if resp.StatusCode != 200 {
			return received{}, resp
		}
		return readStream(t, resp, time.Now()), resp
	}
	t.Run("disconnect", func(t *testing.T) {
		t.Parallel()
		s, base := newTest(t, Options{})
		s.DisconnectNext(1, 4)
		got, _ := stream(t, base)
		if got.tokens != 4 || got.done || !errors.Is(got.readErr, io.ErrUnexpectedEOF) {
			t.Errorf("got %d tokens, done=%v, err=%v; want 4 tokens then the connection cut (unexpected EOF)", got.tokens, got.done, got.readErr)
		}
		if again, _ := stream(t, base); !again.done || again.tokens != DefaultAnswerTokens {
			t.Errorf("the request after the fault got %d tokens, done=%v; want a whole answer", again.tokens, again.done)
		}
		if reqs := s.Requests(); reqs[0].Fault != FaultDisconnect || reqs[1].Fault != "" {
			t.Errorf("recorded faults %q, %q; want disconnect, none", reqs[0].Fault, reqs[1].Fault)
		}
	})
	t.Run("disconnect unstreamed", func(t *testing.T) {
		t.Parallel()
		s, base := newTest(t, Options{})
		s.DisconnectNext(1, 0)
		req, _ := http.NewRequest(http.MethodPost, base+"v1/chat/completions", strings.NewReader(chatBody(t, false, false, 0, Message{Role: "user", Content: "q"})))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("got HTTP %d, want the connection closed", resp.StatusCode)
		}
	})
	t.Run("truncate", func(t *testing.T) {
		t.Parallel()
		s, base := newTest(t, Options{})
		s.TruncateNext(1, 3)
		got, _ := stream(t, base)
		if got.tokens != 3 || got.done || got.readErr != nil {
			t.Errorf("got %d tokens, done=%v, err=%v; want 3 tokens then a clean end without [DONE]", got.tokens, got.done, got.readErr)
		}
		for _, c := range got.chunks {
			if c.Usage != nil || c.Choices[0].FinishReason != nil {
				t.Errorf("truncated stream carries %+v", c)
			}
		}
		s.TruncateNext(1, 0)
		resp := post(t, base+"v1/chat/completions", chatBody(t, false, false, 0, Message{Role: "user", Content: "q"}))
		raw, _ := io.ReadAll(resp.Body)
		if json.Valid(raw) || len(raw) == 0 {
			t.Errorf("truncated answer %q is valid JSON or empty, want half a JSON body", raw)
		}
	})
	t.Run("stall", func(t *testing.T) {
		t.Parallel()
		s, base := newTest(t, Options{})
		s.StallNext(1, 2, 200*time.Millisecond)
		got, _ := stream(t, base)
		if !got.done || got.tokens != DefaultAnswerTokens || got.gaps[2]-got.gaps[1] < 200*time.Millisecond {
			t.Errorf("got %d tokens, done=%v, gaps %v; want a whole answer with a 200ms pause before token 3", got.tokens, got.done, got.gaps[:3])
		}
	})
	t.Run("rate limit then http", func(t *testing.T) {
		t.Parallel()
		s, base := newTest(t, Options{})
		s.RateLimitNext(1, 1500*time.Millisecond)
		s.FailHTTPNext(2, 503)
		s.FailHTTPNext(1, 99) // out of range: 500
		var statuses []int
		for range 5 {
			_, resp := stream(t, base)
			statuses = append(statuses, resp.StatusCode)
			if resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "2" {
				t.Errorf("Retry-After %q, want 2 (1.5s rounded up)", resp.Header.Get("Retry-After"))
			}
		}
		if want := []int{429, 503, 503, 500, 200}; !cmp.Equal(statuses, want) {
			t.Errorf("statuses %v, want %v (faults in order, each for its n requests)", statuses, want)
		}
		reqs := s.Requests()
		if reqs[0].Status != 429 || reqs[0].Fault != FaultRateLimit || reqs[1].Status != 503 || reqs[1].Fault != FaultHTTP {
			t.Errorf("recorded %+v", reqs[:2])
		}
	})
}

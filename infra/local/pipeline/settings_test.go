package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
)

// LLM_HISTORY_CHARS reaches the handlers as their history budget; 0 means no history, which
// a handler's config reads from a negative budget (its 0 is its default). Judged by what the
// model is sent for a follow-up in a DM thread whose earlier messages are a short one, a
// 600-character one and a short one: all of them by default, only the newest within 500
// characters, none with 0.
func TestHistoryCharsReachTheHandlers(t *testing.T) {
	t.Parallel()
	long := strings.TrimSpace(strings.Repeat("water ", 100))
	earlier := []string{"what is a river?", long, "and a sea?"}
	const question = "and a lake?"
	for _, tc := range []struct {
		env  string
		want []string // the messages the model gets, the question last
	}{
		{"", append(append([]string(nil), earlier...), question)},
		{"500", []string{"and a sea?", question}},
		{"0", []string{question}},
	} {
		t.Run("LLM_HISTORY_CHARS="+tc.env, func(t *testing.T) {
			t.Parallel()
			model := fakellm.New(fakellm.Options{APIKey: "local-llm-key", Pace: fakellm.Pace{AnswerTokens: 5}})
			if _, err := model.Start(""); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { model.Close() })
			h := newHarness(t, withEnv(assistant.EnvLLMBaseURL, model.APIURL(), assistant.EnvLLMModel, "local-model",
				assistant.EnvLLMAPIKey, "local-llm-key", assistant.EnvLLMHistoryChars, tc.env))
			n := seq.Add(1)
			channel, thread := fmt.Sprintf("D%d", n), "1700000020.000100"
			for i, text := range append(append([]string(nil), earlier...), question) {
				m := fakeslack.UserMessage{Channel: channel, User: "U1", Text: text, TS: fmt.Sprintf("1700000020.%06d", 100+i)}
				if i > 0 {
					m.ThreadTS = thread
				}
				if _, err := h.slack.AddUserMessage(m); err != nil {
					t.Fatal(err)
				}
			}
			h.send(eventEnvelope(t, fmt.Sprintf(`{"type":"event_callback","team_id":"T1","event_id":"EvHist%d","event":`+
				`{"type":"message","channel_type":"im","user":"U1","text":%q,"ts":"1700000020.%06d","thread_ts":%q,"channel":%q}}`,
				n, question, 100+len(earlier), thread, channel)))
			h.drain(10 * time.Second)
			reqs := model.Requests()
			if len(reqs) != 1 {
				t.Fatalf("the model was asked %d times, want 1", len(reqs))
			}
			var got []string
			for _, m := range reqs[0].Messages {
				if m.Role != "system" {
					got = append(got, m.Content)
				}
			}
			if strings.Join(got, " | ") != strings.Join(tc.want, " | ") {
				t.Errorf("the model got %q, want %q", got, tc.want)
			}
		})
	}
}

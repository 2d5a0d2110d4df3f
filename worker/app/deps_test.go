package app

import (
	"io"
	"log/slog"
	"testing"

	"github.com/slackrelay/slackrelay/shared/config/configtest"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

// LLM_HISTORY_CHARS reaches the handlers as their history budget; 0 means no history, which
// a handler's config reads from a negative budget (its 0 is its default).
func TestHistoryCharsReachTheHandlers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  string
		want int
	}{{"", 24000}, {"500", 500}, {"0", -1}} {
		cfg, err := workerconfig.Load(configtest.Env(workerconfig.EnvEventsQueueURL, "http://q", workerconfig.EnvDLQURL, "http://d",
			workerconfig.EnvIdempotencyTable, "t", workerconfig.EnvSlackBotToken, "xoxb-1", workerconfig.EnvLLMHistoryChars, tc.env))
		if err != nil {
			t.Fatal(err)
		}
		var got Deps
		_, err = New(cfg, awsclient.Local(), func(string) string { return "" }, slog.New(slog.DiscardHandler), io.Discard,
			func(_ *relay.Router, d Deps) { got = d })
		if err != nil {
			t.Fatal(err)
		}
		if got.HistoryChars != tc.want {
			t.Errorf("LLM_HISTORY_CHARS=%q: handlers got HistoryChars %d, want %d", tc.env, got.HistoryChars, tc.want)
		}
	}
}

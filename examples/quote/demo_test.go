package quote_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/examples/quote"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// TestDemo is the quote bot's guided tour (`make demo` in examples/, or
// `go test -run '^TestDemo$' -v ./quote`): the bot on the real engine with relaytest's
// in-memory journal and recording Slack, the price service on 127.0.0.1, one step per thing
// that goes wrong in production, printing what the worker logged, what reached Slack and what
// the channel shows afterwards. Without -v it runs silently, as a test.
//
// It is a test, not a program, because the engine runs outside a test only on its DynamoDB
// journal (engine.Config.Store takes no other implementation, and relaytest needs a
// testing.TB).
func TestDemo(t *testing.T) {
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stdout
	}
	api := newPriceAPI(t)
	h := setup(t, api)
	d := &demo{t: t, h: h, out: out, start: time.Now()}
	fmt.Fprintf(out, "\nThe quote bot on slackrelay's engine (relaytest: in-memory journal, recording Slack).\n")
	fmt.Fprintf(out, "Price service: %s (ACME only; its price goes up by one on every answer).\n", api.URL)
	fmt.Fprintf(out, "Times (+…) are on the harness's clock, which jumps over SQS delays and leases instead of waiting.\n")

	first := queueMessage(t, h, "testdata/quote.form")
	d.step("/quote acme", "the answer goes through the command's response_url, in the channel, under a Refresh button",
		func() relaytest.Result { return h.DeliverEnvelope(t, first) }, 1)
	quoteMsg := answerTS(t, h)

	d.step("the same request reaches the worker again", "SQS delivers at least once; the journal knows this command was answered",
		func() relaytest.Result { return h.DeliverEnvelope(t, first) }, 0)

	api.then(busy("30"))
	d.step("/quote acme while the price service is busy", "429 with Retry-After: 30 → relay.RetryAfter: the message comes back 30 s later",
		func() relaytest.Result { return h.Deliver(t, "testdata/quote.form") }, 1)

	api.then(hang)
	d.step("/quote acme while the price service hangs", "the client's timeout fails the attempt; it is retried with backoff",
		func() relaytest.Result { return h.Deliver(t, "testdata/quote.form") }, 1)

	h.CrashAfter("respond")
	d.step("/quote acme, and the worker is killed right after the answer went out", "the message comes back after its lease; the handler runs again, the answer is not sent again",
		func() relaytest.Result { return h.Deliver(t, "testdata/quote.form") }, 1)

	d.step("a click on Refresh under the first answer", "the price is fetched again and replaces that message (replace_original); nothing new is posted",
		func() relaytest.Result { return h.DeliverBody(t, "refresh_click.json", clickOn(t, quoteMsg)) }, 1)

	raw, err := os.ReadFile("testdata/quote.form")
	if err != nil {
		t.Fatal(err)
	}
	d.step("/quote zzzz", "the service says 404: the user alone is told, nothing is retried",
		func() relaytest.Result {
			return h.DeliverBody(t, "zzzz.form", strings.Replace(string(raw), "text=acme", "text=zzzz", 1))
		}, 1)
	fmt.Fprintf(out, "\nThe price service was called %d times; Slack got %d response_url posts, %d chat.postMessage.\n\n",
		api.Calls(), h.Slack.Calls(fakeslack.ResponseURLMethod), h.Slack.Calls("chat.postMessage"))

	// Four quotes (the first refreshed in place) and the unknown symbol, told to the user alone.
	want := []string{quoteLine("105.00"), quoteLine("101.00"), quoteLine("102.00"), quoteLine("103.00"),
		"I don't know the symbol *ZZZZ*. (only visible to " + user + ")"}
	if got := screen(h); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("#general at the end of the tour:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

type demo struct {
	t     *testing.T
	h     *relaytest.Harness
	out   io.Writer
	start time.Time
	n     int
	logs  int // how much of the harness's log was printed
}

// step delivers one request and prints what the worker logged, what reached Slack, and the
// channel as the recording Slack shows it to the user who ran /quote (its messages and the
// ephemeral ones shown to that user): what a person would see, replaced messages and all.
func (d *demo) step(title, what string, deliver func() relaytest.Result, wantPosts int) {
	d.t.Helper()
	d.n++
	fmt.Fprintf(d.out, "\n%d. %s\n   (%s)\n", d.n, title, what)
	got := deliver()
	for _, line := range strings.Split(strings.TrimSpace(d.h.Logs()[d.logs:]), "\n") {
		d.printLog(line)
	}
	d.logs = len(d.h.Logs())
	for _, p := range got.Posts {
		how := p.ResponseType
		if p.ReplaceOriginal {
			how += ", replace_original of " + p.TS
		}
		fmt.Fprintf(d.out, "   slack  ▸ %s (%s) at +%s: %s\n", p.Method, how, p.At.Sub(d.start).Round(100*time.Millisecond), p.Text)
	}
	verdict := plural(got.Deliveries, "delivery", "deliveries") + ", " + plural(got.Runs, "run", "runs")
	if got.Duplicate {
		verdict += ", a duplicate: nothing to do"
	}
	fmt.Fprintf(d.out, "   engine ▸ %s, %s\n   #general as %s sees it now:\n", verdict, plural(len(got.Posts), "answer", "answers"), user)
	for i, m := range d.h.Slack.RenderedChannel(channel, user) {
		fmt.Fprintf(d.out, "     [%d] %s %s\n", i+1, m.TS, shown(m))
	}
	if len(got.Posts) != wantPosts || got.Err != nil || len(got.DeadLetters) != 0 {
		d.t.Errorf("step %d (%s): %d posts, err %v, dead letters %v; want %d posts", d.n, title, len(got.Posts), got.Err, got.DeadLetters, wantPosts)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// shown is a rendered message as a line: its text, its buttons, and whether it is shown to
// the user alone.
func shown(m fakeslack.Rendered) string {
	text := strings.ReplaceAll(m.Text, "\n", " ")
	for _, a := range m.Actions {
		if a == quote.ActionRefresh {
			a = "Refresh"
		}
		text += "  [" + a + "]"
	}
	if m.VisibleTo != "" {
		text += "  (only visible to you)"
	}
	return text
}

// printLog prints an engine log line (JSON) as "worker ▸ message (error)".
func (d *demo) printLog(line string) {
	var l struct {
		Level, Msg, Error string
		Attempt           int
	}
	if line == "" || json.Unmarshal([]byte(line), &l) != nil || l.Level == "DEBUG" {
		return
	}
	s := fmt.Sprintf("   worker ▸ %s %s", l.Level, l.Msg)
	if l.Attempt > 0 {
		s += fmt.Sprintf(" (attempt %d)", l.Attempt)
	}
	if l.Error != "" {
		s += ": " + l.Error
	}
	fmt.Fprintln(d.out, s)
}

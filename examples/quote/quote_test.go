package quote_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/examples/quote"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
)

// priceAPI is the slow price service, on 127.0.0.1: it knows ACME, whose price goes up by
// one on every answer (100.00, 101.00, …) so a test sees which call an answer came from.
// The first calls can be scripted (busy, failing, hanging).
type priceAPI struct {
	URL string

	mu     sync.Mutex
	calls  int
	quotes int
	script []http.HandlerFunc
}

func newPriceAPI(t testing.TB) *priceAPI {
	t.Helper()
	api := &priceAPI{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(api.serve))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	api.URL = srv.URL
	return api
}

// then scripts the next calls, one handler each; later calls get the normal answer.
func (a *priceAPI) then(h ...http.HandlerFunc) {
	a.mu.Lock()
	a.script = append(a.script, h...)
	a.mu.Unlock()
}

func (a *priceAPI) Calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

func (a *priceAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.calls++
	var h http.HandlerFunc
	if len(a.script) > 0 {
		h, a.script = a.script[0], a.script[1:]
	}
	a.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	if r.URL.Path != "/quotes/ACME" {
		http.Error(w, `{"error":"unknown symbol"}`, http.StatusNotFound)
		return
	}
	a.mu.Lock()
	price := 100 + a.quotes
	a.quotes++
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"symbol":"ACME","name":"Acme Corp","price":%d.00,"currency":"USD"}`, price)
}

// busy answers 429 with Retry-After.
func busy(retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", retryAfter)
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}
}

// hang answers only after the client gave up.
func hang(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

func failing(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "oops", status) }
}

// setup is the bot on the real engine (relaytest), talking to api, with a short client
// timeout so the timeout test is quick.
func setup(t *testing.T, api *priceAPI, opts ...relaytest.Option) *relaytest.Harness {
	t.Helper()
	cfg := quote.Config{APIURL: api.URL, Timeout: 300 * time.Millisecond}
	return relaytest.New(t, func(r *relay.Router) { quote.Register(r, cfg) }, opts...)
}

// button returns the action_id and value of the first button a post carries.
func button(t testing.TB, p fakeslack.Post) (actionID, value string) {
	t.Helper()
	var blocks []struct {
		Type     string `json:"type"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if len(p.Blocks) == 0 {
		return "", ""
	}
	if err := json.Unmarshal(p.Blocks, &blocks); err != nil {
		t.Fatalf("post blocks: %v", err)
	}
	for _, b := range blocks {
		if b.Type == "actions" && len(b.Elements) > 0 {
			return b.Elements[0].ActionID, b.Elements[0].Value
		}
	}
	return "", ""
}

// wantOneQuote checks that got answered once, in the channel, with price under a Refresh
// button, and nothing went to the dead letters.
func wantOneQuote(t *testing.T, got relaytest.Result, price string) fakeslack.Post {
	t.Helper()
	if got.Err != nil || len(got.DeadLetters) != 0 {
		t.Fatalf("err=%v dead letters=%+v, want answered", got.Err, got.DeadLetters)
	}
	if len(got.Posts) != 1 {
		t.Fatalf("%d posts %+v, want one answer", len(got.Posts), got.Posts)
	}
	p := got.Posts[0]
	want := "*ACME* (Acme Corp): " + price + " USD"
	if p.Method != fakeslack.ResponseURLMethod || p.ResponseType != "in_channel" || p.Text != want {
		t.Errorf("answer %s %s %q, want %q through response_url in_channel", p.Method, p.ResponseType, p.Text, want)
	}
	if id, v := button(t, p); id != quote.ActionRefresh || v != "ACME" {
		t.Errorf("button %q value %q, want %q for ACME", id, v, quote.ActionRefresh)
	}
	return p
}

// The channel and the user of testdata/quote.form and testdata/refresh_click.json.
const (
	channel = "C0CHAN"
	user    = "U0USER"
)

// screen is the channel as the user who ran /quote sees it now, each message as one line:
// its text, its buttons, and whether it is shown to the user alone. This is what the tests
// judge the bot by, not the posts it made.
func screen(h *relaytest.Harness) []string {
	var lines []string
	for _, m := range h.Slack.RenderedChannel(channel, user) {
		lines = append(lines, line(m))
	}
	return lines
}

func line(m fakeslack.Rendered) string {
	s := m.Text
	for _, a := range m.Actions {
		s += " [" + a + "]"
	}
	if m.VisibleTo != "" {
		s += " (only visible to " + m.VisibleTo + ")"
	}
	return s
}

// quoteLine is how a quote at price shows, under its Refresh button.
func quoteLine(price string) string {
	return "*ACME* (Acme Corp): " + price + " USD [" + quote.ActionRefresh + "]"
}

// wantScreen checks what the channel shows.
func wantScreen(t *testing.T, h *relaytest.Harness, want ...string) {
	t.Helper()
	got := screen(h)
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != len(want) {
		t.Errorf("#%s as %s sees it:\n  %s\nwant:\n  %s", channel, user, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// clickOn is testdata/refresh_click.json as Slack sends it for a click on the message ts:
// the click names the message its button is on.
func clickOn(t *testing.T, ts string) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/refresh_click.json")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	p["container"].(map[string]any)["message_ts"] = ts
	p["message"].(map[string]any)["ts"] = ts
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// answerTS is the ts of the one message the channel holds.
func answerTS(t *testing.T, h *relaytest.Harness) string {
	t.Helper()
	msgs := h.Slack.Messages(channel)
	if len(msgs) != 1 {
		t.Fatalf("#%s holds %d messages, want the one answer", channel, len(msgs))
	}
	return msgs[0].TS
}

func TestQuoteAnswersOnceWithARefreshButton(t *testing.T) {
	t.Parallel()
	api := newPriceAPI(t)
	h := setup(t, api)
	got := h.Deliver(t, "testdata/quote.form")
	if got.Route != "quote" || got.Runs != 1 || got.Deliveries != 1 {
		t.Errorf("route %q runs %d deliveries %d, want quote once", got.Route, got.Runs, got.Deliveries)
	}
	wantOneQuote(t, got, "100.00")
	wantScreen(t, h, quoteLine("100.00"))
	if n := h.Slack.Calls("chat.postMessage"); n != 0 {
		t.Errorf("chat.postMessage called %d times; the answer goes through response_url", n)
	}
}

// The click fetches the price again and replaces the message it was on (replace_original
// through the click's response_url), under the same button: the channel still shows one
// quote, the same message (its ts), at the new price. Slack's retry of the click (the same
// payload) changes nothing more.
func TestRefreshReplacesTheAnswerAndPostsNothingNew(t *testing.T) {
	t.Parallel()
	api := newPriceAPI(t)
	h := setup(t, api)
	wantOneQuote(t, h.Deliver(t, "testdata/quote.form"), "100.00")
	ts := answerTS(t, h)

	click := h.DeliverBody(t, "refresh_click.json", clickOn(t, ts))
	if click.Route != "quote-refresh" {
		t.Fatalf("click went to route %q", click.Route)
	}
	wantOneQuote(t, click, "101.00")
	wantScreen(t, h, quoteLine("101.00"))
	if got := answerTS(t, h); got != ts {
		t.Errorf("the refreshed quote is message %s, want the clicked one, %s, replaced in place", got, ts)
	}
	if n := h.Slack.Calls("chat.postMessage"); n != 0 {
		t.Errorf("chat.postMessage called %d times; want none", n)
	}
	again := h.Redeliver(t, click)
	if !again.Duplicate || again.Runs != 0 || len(again.Posts) != 0 {
		t.Errorf("the click's retry: duplicate=%v runs=%d posts=%d, want a duplicate that does nothing", again.Duplicate, again.Runs, len(again.Posts))
	}
	wantScreen(t, h, quoteLine("101.00"))
	if n := api.Calls(); n != 2 {
		t.Errorf("price service called %d times, want 2 (the command, the click)", n)
	}
}

// Two quotes in the channel: a click on the first refreshes the first only.
func TestRefreshReplacesOnlyTheClickedQuote(t *testing.T) {
	t.Parallel()
	api := newPriceAPI(t)
	h := setup(t, api)
	h.Deliver(t, "testdata/quote.form")
	first := answerTS(t, h)
	h.Deliver(t, "testdata/quote.form")
	wantScreen(t, h, quoteLine("100.00"), quoteLine("101.00"))
	h.DeliverBody(t, "refresh_click.json", clickOn(t, first))
	wantScreen(t, h, quoteLine("102.00"), quoteLine("101.00"))
}

// A symbol the service stopped quoting replaces the clicked quote with a line saying so,
// without a button to click again.
func TestRefreshOfASymbolNoLongerQuoted(t *testing.T) {
	t.Parallel()
	api := newPriceAPI(t)
	h := setup(t, api)
	h.Deliver(t, "testdata/quote.form")
	api.then(failing(http.StatusNotFound))
	got := h.DeliverBody(t, "refresh_click.json", clickOn(t, answerTS(t, h)))
	if got.Err != nil || len(got.DeadLetters) != 0 {
		t.Fatalf("err=%v dead letters=%v, want answered", got.Err, got.DeadLetters)
	}
	wantScreen(t, h, "*ACME* is no longer quoted.")
}

// Slack does not retry a slash command, but its one request can reach the worker twice: SQS
// delivers at least once, and a dead letter can be replayed. Both bring the same queue
// message (the same trigger_id), which is answered once.
func TestRedeliveredCommandIsADuplicate(t *testing.T) {
	t.Parallel()
	api := newPriceAPI(t)
	h := setup(t, api)
	msg := queueMessage(t, h, "testdata/quote.form")
	wantOneQuote(t, h.DeliverEnvelope(t, msg), "100.00")
	again := h.DeliverEnvelope(t, msg)
	if !again.Duplicate || again.Runs != 0 || len(again.Posts) != 0 {
		t.Errorf("the same command again: duplicate=%v runs=%d posts=%d, want a duplicate", again.Duplicate, again.Runs, len(again.Posts))
	}
	wantScreen(t, h, quoteLine("100.00"))
	if n := api.Calls(); n != 1 {
		t.Errorf("price service called %d times, want 1", n)
	}
}

// queueMessage wraps a slash command's form as the receiver would, once, so the same queue
// message can be delivered twice (Deliver wraps it anew each time: a new command).
func queueMessage(t *testing.T, h *relaytest.Harness, file string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	env := &envelope.Envelope{Version: envelope.Version, ID: envelope.NewID(), Kind: envelope.KindSlashCommand,
		ContentType: envelope.ContentTypeForm, EventType: form.Get("command"), ReceivedAt: now.UTC(), EventTime: now.Unix()}
	form.Set("response_url", h.Slack.ResponseURLFrom(env.ID, fakeslack.Origin{Channel: form.Get("channel_id"), User: form.Get("user_id")}))
	form.Set("trigger_id", h.Slack.NewTrigger())
	env.Body = form.Encode()
	body, _, err := envelope.Encode(env, envelope.MaxSQSMessageBytes)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// A busy price service (429, Retry-After: 30) is asked again once its 30 s have passed (the
// harness's clock moves as SQS's delay would), and the command is answered once.
func TestBusyAPIIsRetriedAfterRetryAfter(t *testing.T) {
	t.Parallel()
	api := newPriceAPI(t)
	api.then(busy("30"))
	h := setup(t, api)
	start := time.Now()
	got := h.Deliver(t, "testdata/quote.form")
	if got.Runs != 2 || got.Deliveries != 2 || got.Attempt != 2 {
		t.Errorf("runs %d deliveries %d attempt %d, want 2: the 429, then the answer", got.Runs, got.Deliveries, got.Attempt)
	}
	p := wantOneQuote(t, got, "100.00")
	if waited := p.At.Sub(start); waited < 30*time.Second {
		t.Errorf("answered %s after the command, want after the service's Retry-After of 30 s", waited.Round(time.Millisecond))
	}
}

// A price service that does not answer in time (the client's timeout) fails the attempt,
// which is retried with backoff; the next call answers.
func TestAPITimeoutIsRetried(t *testing.T) {
	t.Parallel()
	api := newPriceAPI(t)
	api.then(hang)
	h := setup(t, api)
	got := h.Deliver(t, "testdata/quote.form")
	if got.Runs != 2 || api.Calls() != 2 {
		t.Errorf("runs %d, service calls %d, want 2: the timeout, then the answer", got.Runs, api.Calls())
	}
	wantOneQuote(t, got, "100.00")
	if !strings.Contains(h.Logs(), "Client.Timeout exceeded") {
		t.Errorf("the logs do not show the timeout:\n%s", h.Logs())
	}
}

// A 5xx is a retryable failure, like a timeout.
func TestAPIServerErrorIsRetried(t *testing.T) {
	t.Parallel()
	api := newPriceAPI(t)
	api.then(failing(http.StatusBadGateway), failing(http.StatusServiceUnavailable))
	h := setup(t, api)
	got := h.Deliver(t, "testdata/quote.form")
	if got.Runs != 3 {
		t.Errorf("runs %d, want 3: two 5xx, then the answer", got.Runs)
	}
	wantOneQuote(t, got, "100.00")
}

// The worker dies right after the response went out, before it could record it: the message
// comes back when its lease ends, and the handler runs again (the price service is asked
// again, and says 101.00), but the answer is not sent a second time.
func TestCrashAfterTheResponseAnswersOnce(t *testing.T) {
	t.Parallel()
	api := newPriceAPI(t)
	h := setup(t, api)
	h.CrashAfter("respond")
	got := h.Deliver(t, "testdata/quote.form")
	if got.Deliveries != 2 {
		t.Errorf("deliveries %d, want 2: the crashed one and the one after its lease", got.Deliveries)
	}
	wantOneQuote(t, got, "100.00")
	wantScreen(t, h, quoteLine("100.00"))
	if got.Runs != 2 || api.Calls() != 2 {
		t.Errorf("runs %d, service calls %d, want 2: the handler ran again after the crash", got.Runs, api.Calls())
	}
}

func TestUnknownSymbolIsToldToTheUserAlone(t *testing.T) {
	t.Parallel()
	api := newPriceAPI(t)
	h := setup(t, api)
	raw, err := os.ReadFile("testdata/quote.form")
	if err != nil {
		t.Fatal(err)
	}
	got := h.DeliverBody(t, "zzzz.form", strings.Replace(string(raw), "text=acme", "text=zzzz", 1))
	if got.Err != nil || got.Runs != 1 || len(got.DeadLetters) != 0 || len(got.Posts) != 1 {
		t.Fatalf("err=%v runs=%d dead=%v posts=%d, want one answer and no retry", got.Err, got.Runs, got.DeadLetters, len(got.Posts))
	}
	p := got.Posts[0]
	if p.ResponseType != "ephemeral" || p.Text != "I don't know the symbol *ZZZZ*." {
		t.Errorf("answer %s %q, want the unknown symbol told to the user alone", p.ResponseType, p.Text)
	}
	if id, _ := button(t, p); id != "" {
		t.Errorf("an unknown symbol's answer has a %q button", id)
	}
	wantScreen(t, h, "I don't know the symbol *ZZZZ*. (only visible to "+user+")")
	if others := h.Slack.RenderedChannel(channel, "U0OTHER"); len(others) != 0 {
		t.Errorf("another user sees %+v, want nothing", others)
	}
}

func TestNoSymbolGetsTheUsage(t *testing.T) {
	t.Parallel()
	api := newPriceAPI(t)
	h := setup(t, api)
	got := h.DeliverBody(t, "empty.form", "command=%2Fquote&text=&team_id=T0001&channel_id=C0CHAN&user_id=U0USER&trigger_id=1.2.3")
	if len(got.Posts) != 1 || !strings.HasPrefix(got.Posts[0].Text, "Usage: `/quote SYMBOL`") || api.Calls() != 0 {
		t.Errorf("posts %+v, service calls %d; want the usage and no call", got.Posts, api.Calls())
	}
	if eph := h.Slack.Ephemerals(channel, user); len(eph) != 1 || !strings.HasPrefix(eph[0].Text, "Usage:") || len(h.Slack.Messages(channel)) != 0 {
		t.Errorf("%s is shown %+v, the channel holds %d messages; want the usage shown to %s alone", user, eph, len(h.Slack.Messages(channel)), user)
	}
}

// New is what worker.Main runs: it needs QUOTE_API_URL, and says so.
func TestNewNeedsTheAPIURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ value, wantErr string }{
		{"", "QUOTE_API_URL is not set"},
		{"prices.example.com", "not an http(s) URL"},
		{"https://prices.example.com", ""},
	} {
		r := relay.NewRouter()
		s := &worker.Setup{
			Getenv: func(name string) string {
				if name == quote.EnvAPIURL {
					return tc.value
				}
				return ""
			},
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		err := quote.New(r, s)
		switch {
		case tc.wantErr == "" && (err != nil || len(r.Routes()) != 2):
			t.Errorf("QUOTE_API_URL=%q: err=%v routes=%v, want the two routes", tc.value, err, r.Routes())
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("QUOTE_API_URL=%q: err=%v, want one saying %q", tc.value, err, tc.wantErr)
		}
	}
}

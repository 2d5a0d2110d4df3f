// Package quote is a second bot on slackrelay, written against the framework's public API
// only: /quote SYMBOL asks a price service for the symbol's price and answers through the
// command's response_url, in the channel, under a Refresh button; a click on Refresh asks
// again and replaces that answer in place.
//
// The price service is slow and sometimes busy, which is what the framework is for: the
// receiver has acknowledged Slack long before the service answers, a 429 comes back after
// its Retry-After, a 5xx or a timeout is retried with backoff, and the answer is sent once
// whatever is retried (relay.Session.Respond).
//
// The service: GET {QUOTE_API_URL}/quotes/{SYMBOL} answers 200 with
// {"symbol":"ACME","name":"Acme Corp","price":123.45,"currency":"USD"}, 404 for a symbol it
// does not know, 429 (with Retry-After) when it is busy.
package quote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker"
	"github.com/slackrelay/slackrelay/worker/relay"
)

const (
	// EnvAPIURL names the bot's one setting: the price service's base URL.
	EnvAPIURL = "QUOTE_API_URL"
	// ActionRefresh is the action_id of the Refresh button under every quote.
	ActionRefresh = "quote_refresh"
	// DefaultTimeout bounds one call of the price service; a call that takes longer fails
	// and the delivery is retried with backoff.
	DefaultTimeout = 5 * time.Second
	// DefaultRetryAfter is the wait after a 429 that says nothing of how long to wait.
	DefaultRetryAfter = 5 * time.Second
)

// Config is what the bot is built with.
type Config struct {
	// APIURL is the price service's base URL (QUOTE_API_URL).
	APIURL string
	// Timeout bounds one call of the service (0: DefaultTimeout).
	Timeout time.Duration
}

// New is the bot as a worker.Bot (quote/cmd/worker runs it: worker.Main(quote.New)): it
// reads QUOTE_API_URL and registers the routes.
func New(r *relay.Router, s *worker.Setup) error {
	raw := strings.TrimSpace(s.Getenv(EnvAPIURL))
	if raw == "" {
		return errors.New("quote: " + EnvAPIURL + " is not set: it must be the price service's base URL, e.g. https://prices.example.com")
	}
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("quote: %s=%q is not an http(s) URL", EnvAPIURL, raw)
	}
	s.Log.Info("quote bot ready", "price_service", raw)
	Register(r, Config{APIURL: raw})
	return nil
}

// Register adds the bot's routes to r.
func Register(r *relay.Router, cfg Config) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	b := &bot{base: strings.TrimSuffix(cfg.APIURL, "/"), client: &http.Client{Timeout: cfg.Timeout}}
	relay.Command(r, "/quote", b.command, relay.Name("quote"))
	relay.Action(r, ActionRefresh, b.refresh, relay.Name("quote-refresh"))
}

type bot struct {
	base   string
	client *http.Client
}

// command answers /quote SYMBOL in the channel with the price and a Refresh button; a symbol
// the service does not know, or none, is answered to the user alone.
func (b *bot) command(ctx context.Context, req *relay.Request[slack.SlashCommand]) error {
	symbol, ok := parseSymbol(req.Payload.Text)
	if !ok {
		return req.Respond(ctx, "Usage: `"+req.Payload.Command+" SYMBOL`, for example `"+req.Payload.Command+" ACME`.")
	}
	q, err := b.fetch(ctx, symbol)
	if errors.Is(err, errUnknownSymbol) {
		return req.Respond(ctx, "I don't know the symbol *"+symbol+"*.")
	}
	if err != nil {
		return err
	}
	return req.Respond(ctx, q.text(), relay.InChannel(), relay.RespondBlocks(refreshButton(q.Symbol)))
}

// refresh fetches the clicked quote's price again and replaces the message the button is on
// (through the click's response_url), under the same button. It posts nothing new.
func (b *bot) refresh(ctx context.Context, req *relay.Request[slack.InteractionCallback]) error {
	actions := req.Payload.ActionCallback.BlockActions
	if len(actions) == 0 {
		return relay.Permanent(errors.New("refresh click without an action"))
	}
	symbol, ok := parseSymbol(actions[0].Value)
	if !ok {
		return relay.Permanent(fmt.Errorf("refresh button value %q is not a symbol", actions[0].Value))
	}
	q, err := b.fetch(ctx, symbol)
	if errors.Is(err, errUnknownSymbol) {
		return req.Respond(ctx, "*"+symbol+"* is no longer quoted.", relay.ReplaceOriginal(), relay.InChannel())
	}
	if err != nil {
		return err
	}
	return req.Respond(ctx, q.text(), relay.ReplaceOriginal(), relay.InChannel(), relay.RespondBlocks(refreshButton(q.Symbol)))
}

// Quote is the price service's answer.
type Quote struct {
	Symbol string `json:"symbol"`
	Name   string `json:"name"`
	// Price is kept as the service wrote it (no rounding through float64).
	Price    json.Number `json:"price"`
	Currency string      `json:"currency"`
}

func (q Quote) text() string {
	s := "*" + q.Symbol + "*"
	if q.Name != "" {
		s += " (" + q.Name + ")"
	}
	s += ": " + q.Price.String()
	if q.Currency != "" {
		s += " " + q.Currency
	}
	return s
}

var errUnknownSymbol = errors.New("unknown symbol")

// fetch asks the price service for symbol's quote. Errors steer the delivery: a 404 is
// errUnknownSymbol (an answer, not a failure), a 429 relay.RetryAfter, a 5xx, a timeout or a
// refused connection a plain error (retried with backoff), any other status permanent.
func (b *bot) fetch(ctx context.Context, symbol string) (Quote, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/quotes/"+url.PathEscape(symbol), nil)
	if err != nil {
		return Quote{}, relay.Permanent(fmt.Errorf("price service request: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return Quote{}, fmt.Errorf("price service: %w", err)
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		var q Quote
		dec := json.NewDecoder(io.LimitReader(resp.Body, 64<<10))
		dec.UseNumber()
		if err := dec.Decode(&q); err != nil || q.Price == "" {
			return Quote{}, fmt.Errorf("price service: unreadable quote for %s (%v)", symbol, err)
		}
		if q.Symbol == "" {
			q.Symbol = symbol
		}
		return q, nil
	case code == http.StatusNotFound:
		return Quote{}, errUnknownSymbol
	case code == http.StatusTooManyRequests:
		wait := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		return Quote{}, relay.RetryAfter(wait, errors.New("price service: busy (429)"))
	case code >= 500:
		return Quote{}, fmt.Errorf("price service: HTTP %d", code)
	default:
		return Quote{}, relay.Permanent(fmt.Errorf("price service: HTTP %d for %s", code, symbol))
	}
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if n, err := strconv.Atoi(h); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return DefaultRetryAfter
}

var symbolRE = regexp.MustCompile(`^[A-Z0-9][A-Z0-9.\-]{0,11}$`)

// parseSymbol reads a ticker symbol from what the user typed ("acme", "$ACME ").
func parseSymbol(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimPrefix(strings.TrimSpace(s), "$"))
	return s, symbolRE.MatchString(s)
}

func refreshButton(symbol string) slack.Block {
	btn := slack.NewButtonBlockElement(ActionRefresh, symbol, slack.NewTextBlockObject(slack.PlainTextType, "Refresh", false, false))
	return slack.NewActionBlock("quote_actions", btn)
}

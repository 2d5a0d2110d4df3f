package assistant

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Price is what a model's tokens cost, in US dollars per million tokens (LLM_PRICES).
type Price struct {
	// Input is the price of prompt tokens read without the cache, Output of tokens written.
	Input, Output float64
	// CacheRead is the price of prompt tokens read from the prompt cache, CacheWrite of
	// those written to it; each is Input when the table leaves it out (no discount assumed).
	CacheRead, CacheWrite float64
}

// Prices maps a model (a model id, an inference profile id or ARN, an OpenAI-compatible
// model name) to its price. The zero value prices nothing: every cost is unknown.
type Prices map[string]Price

// priceJSON is one entry of LLM_PRICES as written.
type priceJSON struct {
	Input      *float64 `json:"input"`
	Output     *float64 `json:"output"`
	CacheRead  *float64 `json:"cache_read"`
	CacheWrite *float64 `json:"cache_write"`
}

// ParsePrices reads LLM_PRICES: a JSON object from model to prices in US dollars per million
// tokens, input and output required, cache_read and cache_write optional (Input's when left
// out), none negative:
//
//	{"anthropic.claude-3-5-haiku-20241022-v1:0": {"input": 0.8, "output": 4, "cache_read": 0.08, "cache_write": 1},
//	 "gpt-4o-mini": {"input": 0.15, "output": 0.6, "cache_read": 0.075}}
//
// An empty text is an empty table (nil). Every mistake is reported, by model, sorted.
func ParsePrices(text string) (Prices, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object of model to prices: %w", err)
	}
	models := make([]string, 0, len(raw))
	for m := range raw {
		models = append(models, m)
	}
	sort.Strings(models)
	out := make(Prices, len(raw))
	var errs []error
	for _, model := range models {
		if strings.TrimSpace(model) == "" {
			errs = append(errs, errors.New("a model name is empty"))
			continue
		}
		var pj priceJSON
		dec := json.NewDecoder(bytes.NewReader(raw[model]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&pj); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (want {\"input\": …, \"output\": …, \"cache_read\": …, \"cache_write\": …} in USD per million tokens)", model, err))
			continue
		}
		var bad []string
		if pj.Input == nil || pj.Output == nil {
			bad = append(bad, "input and output are required")
		}
		for _, f := range []struct {
			name string
			v    *float64
		}{{"input", pj.Input}, {"output", pj.Output}, {"cache_read", pj.CacheRead}, {"cache_write", pj.CacheWrite}} {
			if f.v != nil && *f.v < 0 {
				bad = append(bad, fmt.Sprintf("%s is negative (%g)", f.name, *f.v))
			}
		}
		if len(bad) > 0 {
			errs = append(errs, fmt.Errorf("%s: %s", model, strings.Join(bad, "; ")))
			continue
		}
		p := Price{Input: *pj.Input, Output: *pj.Output, CacheRead: *pj.Input, CacheWrite: *pj.Input}
		if pj.CacheRead != nil {
			p.CacheRead = *pj.CacheRead
		}
		if pj.CacheWrite != nil {
			p.CacheWrite = *pj.CacheWrite
		}
		out[model] = p
	}
	return out, errors.Join(errs...)
}

// Find returns model's price: its own entry; else, for an ARN (arn:aws:bedrock:…:
// foundation-model/ID or inference-profile/ID), the entry of its ID; else, for a
// cross-Region inference profile id (us.anthropic.claude-…, eu.…, apac.…, global.…), the
// entry of the model it routes to (anthropic.claude-…). An application inference profile
// (an opaque id) is found only under its own ARN or id.
func (p Prices) Find(model string) (Price, bool) {
	for _, id := range candidates(model) {
		if price, ok := p[id]; ok {
			return price, true
		}
	}
	return Price{}, false
}

// candidates are the names model may be priced under, most specific first.
func candidates(model string) []string {
	out := []string{model}
	id := model
	if strings.HasPrefix(model, "arn:") {
		if _, res, ok := strings.Cut(model, "/"); ok {
			id = res
			out = append(out, id)
		}
	}
	// A cross-Region profile is the model's id behind a geography: "us.anthropic.claude-…".
	if geo, rest, ok := strings.Cut(id, "."); ok && strings.Contains(rest, ".") && isGeography(geo) {
		out = append(out, rest)
	}
	return out
}

// isGeography reports whether s looks like an inference profile's geography prefix (us, eu,
// apac, us-gov, global, …): lower-case letters and hyphens, short.
func isGeography(s string) bool {
	if s == "" || len(s) > 8 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '-') {
			return false
		}
	}
	return true
}

// Cost is the price of tokens: input tokens read (cacheRead and cacheWrite among them; the
// rest are priced as Input), output written, in US dollars rounded to a millionth of a dollar.
func (p Price) Cost(input, output, cacheRead, cacheWrite int) float64 {
	plain := max(input-cacheRead-cacheWrite, 0)
	usd := (float64(plain)*p.Input + float64(cacheRead)*p.CacheRead + float64(cacheWrite)*p.CacheWrite + float64(output)*p.Output) / 1e6
	return math.Round(usd*1e6) / 1e6
}

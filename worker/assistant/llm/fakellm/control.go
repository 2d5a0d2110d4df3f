package fakellm

import (
	"net/http"

	"github.com/slackrelay/slackrelay/shared/loopback"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"
)

// The control API lets another process drive a Server over HTTP (see Client). Durations
// are seconds (fractions allowed); n defaults to 1.
//
//	GET  /_control/requests    recorded requests (Requests)
//	GET  /_control/pace        the current pace
//	POST /_control/pace        {"first_token_seconds","tokens_per_second","answer_tokens"}: SetPace
//	                           (fields left out keep their value)
//	POST /_control/disconnect  {"n","after_tokens"}: DisconnectNext
//	POST /_control/truncate    {"n","after_tokens"}: TruncateNext
//	POST /_control/stall       {"n","after_tokens","seconds"}: StallNext
//	POST /_control/ratelimit   {"n","retry_after_seconds"}: RateLimitNext
//	POST /_control/failhttp    {"n","status"}: FailHTTPNext
//	GET  /_control/script      {"text"}: the script (Script)
//	POST /_control/script      {"text"}: SetScript ("" goes back to the generated answers)
//	POST /_control/answer      {"messages","max_tokens"} → {"text"}: AnswerText
//	POST /_control/cache       {"cached_tokens"}: SetCachedTokens
//	POST /_control/reset       Reset
//
// Bad requests answer HTTP 400 {"ok":false,"error":...}.
func (s *Server) routeControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /_control/requests", s.ctlRequests)
	mux.HandleFunc("GET /_control/pace", s.ctlGetPace)
	mux.HandleFunc("POST /_control/pace", s.ctlSetPace)
	mux.HandleFunc("POST /_control/disconnect", s.ctlFault(FaultDisconnect))
	mux.HandleFunc("POST /_control/truncate", s.ctlFault(FaultTruncate))
	mux.HandleFunc("POST /_control/stall", s.ctlFault(FaultStall))
	mux.HandleFunc("POST /_control/ratelimit", s.ctlFault(FaultRateLimit))
	mux.HandleFunc("POST /_control/failhttp", s.ctlFault(FaultHTTP))
	mux.HandleFunc("GET /_control/script", s.ctlGetScript)
	mux.HandleFunc("POST /_control/script", s.ctlSetScript)
	mux.HandleFunc("POST /_control/answer", s.ctlAnswer)
	mux.HandleFunc("POST /_control/cache", s.ctlCache)
	mux.HandleFunc("POST /_control/reset", s.ctlReset)
}

// cacheJSON is SetCachedTokens on the control API.
type cacheJSON struct {
	CachedTokens int `json:"cached_tokens"`
}

func (s *Server) ctlCache(w http.ResponseWriter, r *http.Request) {
	var in cacheJSON
	if !loopback.ReadControl(w, r, &in) {
		return
	}
	if in.CachedTokens < 0 {
		loopback.WriteJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "cached_tokens_must_not_be_negative"})
		return
	}
	s.SetCachedTokens(in.CachedTokens)
	loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// faultJSON is a fault on the control API.
type faultJSON struct {
	N                 *int    `json:"n,omitempty"`
	AfterTokens       int     `json:"after_tokens,omitempty"`
	Seconds           float64 `json:"seconds,omitempty"`
	RetryAfterSeconds float64 `json:"retry_after_seconds,omitempty"`
	Status            int     `json:"status,omitempty"`
}

// scriptJSON is the script on the control API.
type scriptJSON struct {
	Text string `json:"text"`
}

// answerJSON asks for AnswerText on the control API.
type answerJSON struct {
	Messages  []Message `json:"messages"`
	MaxTokens int       `json:"max_tokens,omitempty"`
}

func (s *Server) ctlRequests(w http.ResponseWriter, _ *http.Request) {
	reqs := s.Requests()
	if reqs == nil {
		reqs = []Request{}
	}
	loopback.WriteJSON(w, http.StatusOK, reqs)
}

func (s *Server) ctlGetPace(w http.ResponseWriter, _ *http.Request) {
	loopback.WriteJSON(w, http.StatusOK, s.Pace().JSON())
}

func (s *Server) ctlSetPace(w http.ResponseWriter, r *http.Request) {
	var in fakemodel.PaceJSON
	if !loopback.ReadControl(w, r, &in) {
		return
	}
	s.mu.Lock()
	err := in.Apply(&s.pace)
	s.mu.Unlock()
	if err != nil {
		loopback.WriteJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": err.Error()})
		return
	}
	loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (s *Server) ctlFault(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in faultJSON
		if !loopback.ReadControl(w, r, &in) {
			return
		}
		n := 1
		if in.N != nil {
			n = *in.N
		}
		switch kind {
		case FaultDisconnect:
			s.DisconnectNext(n, in.AfterTokens)
		case FaultTruncate:
			s.TruncateNext(n, in.AfterTokens)
		case FaultStall:
			s.StallNext(n, in.AfterTokens, fakemodel.Seconds(in.Seconds))
		case FaultRateLimit:
			s.RateLimitNext(n, fakemodel.Seconds(in.RetryAfterSeconds))
		case FaultHTTP:
			if in.Status < 400 || in.Status > 599 {
				loopback.WriteJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "status_must_be_4xx_or_5xx"})
				return
			}
			s.FailHTTPNext(n, in.Status)
		}
		loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
	}
}

func (s *Server) ctlGetScript(w http.ResponseWriter, _ *http.Request) {
	loopback.WriteJSON(w, http.StatusOK, scriptJSON{Text: s.Script()})
}

func (s *Server) ctlSetScript(w http.ResponseWriter, r *http.Request) {
	var in scriptJSON
	if !loopback.ReadControl(w, r, &in) {
		return
	}
	s.SetScript(in.Text)
	loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (s *Server) ctlAnswer(w http.ResponseWriter, r *http.Request) {
	var in answerJSON
	if !loopback.ReadControl(w, r, &in) {
		return
	}
	loopback.WriteJSON(w, http.StatusOK, scriptJSON{Text: s.AnswerText(in.Messages, in.MaxTokens)})
}

func (s *Server) ctlReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
}

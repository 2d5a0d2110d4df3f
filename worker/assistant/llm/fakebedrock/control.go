package fakebedrock

import (
	"net/http"

	"github.com/slackrelay/slackrelay/shared/loopback"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"
)

// The control API lets another process drive a Server over HTTP (see Client). Durations are
// seconds (fractions allowed); n defaults to 1.
//
//	GET  /_control/requests        recorded requests (Requests)
//	POST /_control/pace            {"first_token_seconds","tokens_per_second","answer_tokens"}: SetPace
//	                               (fields left out keep their value)
//	POST /_control/throttle        {"n","retry_after_seconds"}: ThrottleNext
//	POST /_control/fail            {"n","status","exception"}: FailNext
//	POST /_control/streamexception {"n","after_chunks","exception"}: StreamExceptionNext
//	POST /_control/cut             {"n","after_chunks"}: CutNext
//	POST /_control/stall           {"n","after_chunks","seconds"}: StallNext
//	POST /_control/tooluse         {"n","tools":[{"id","name","input"}]}: ToolUseNext
//	POST /_control/script          {"text"}: SetScript
//	POST /_control/turns           {"turns":[{"text","tools":[{"id","name","input"}]}]}: SetTurns
//	POST /_control/allowed         {"models":[…]}: SetAllowedModels
//	POST /_control/cache           {"read_tokens","write_tokens"}: SetCacheTokens
//	POST /_control/reset           Reset
//
// Bad requests answer HTTP 400 {"ok":false,"error":...}.
func (s *Server) routeControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /_control/requests", func(w http.ResponseWriter, _ *http.Request) {
		reqs := s.Requests()
		if reqs == nil {
			reqs = []Request{}
		}
		loopback.WriteJSON(w, http.StatusOK, reqs)
	})
	mux.HandleFunc("POST /_control/pace", s.ctlPace)
	mux.HandleFunc("POST /_control/throttle", s.ctlFault(FaultThrottle))
	mux.HandleFunc("POST /_control/fail", s.ctlFault(FaultHTTP))
	mux.HandleFunc("POST /_control/streamexception", s.ctlFault(FaultStreamException))
	mux.HandleFunc("POST /_control/cut", s.ctlFault(FaultCut))
	mux.HandleFunc("POST /_control/stall", s.ctlFault(FaultStall))
	mux.HandleFunc("POST /_control/tooluse", s.ctlFault(FaultToolUse))
	mux.HandleFunc("POST /_control/script", func(w http.ResponseWriter, r *http.Request) {
		var in scriptJSON
		if loopback.ReadControl(w, r, &in) {
			s.SetScript(in.Text)
			loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
		}
	})
	mux.HandleFunc("POST /_control/turns", func(w http.ResponseWriter, r *http.Request) {
		var in turnsJSON
		if loopback.ReadControl(w, r, &in) {
			s.SetTurns(in.Turns...)
			loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
		}
	})
	mux.HandleFunc("POST /_control/allowed", func(w http.ResponseWriter, r *http.Request) {
		var in allowedJSON
		if loopback.ReadControl(w, r, &in) {
			s.SetAllowedModels(in.Models...)
			loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
		}
	})
	mux.HandleFunc("POST /_control/cache", func(w http.ResponseWriter, r *http.Request) {
		var in cacheJSON
		if !loopback.ReadControl(w, r, &in) {
			return
		}
		if in.ReadTokens < 0 || in.WriteTokens < 0 {
			loopback.WriteJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "tokens_must_not_be_negative"})
			return
		}
		s.SetCacheTokens(in.ReadTokens, in.WriteTokens)
		loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	mux.HandleFunc("POST /_control/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
	})
}

// faultJSON is a fault on the control API.
type faultJSON struct {
	N                 *int       `json:"n,omitempty"`
	AfterChunks       int        `json:"after_chunks,omitempty"`
	Seconds           float64    `json:"seconds,omitempty"`
	RetryAfterSeconds float64    `json:"retry_after_seconds,omitempty"`
	Status            int        `json:"status,omitempty"`
	Exception         string     `json:"exception,omitempty"`
	Tools             []ToolCall `json:"tools,omitempty"`
}

type scriptJSON struct {
	Text string `json:"text"`
}

type turnsJSON struct {
	Turns []Turn `json:"turns"`
}

type allowedJSON struct {
	Models []string `json:"models"`
}

type cacheJSON struct {
	ReadTokens  int `json:"read_tokens"`
	WriteTokens int `json:"write_tokens"`
}

func (s *Server) ctlPace(w http.ResponseWriter, r *http.Request) {
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
		case FaultThrottle:
			s.ThrottleNext(n, fakemodel.Seconds(in.RetryAfterSeconds))
		case FaultHTTP:
			if in.Status < 400 || in.Status > 599 {
				loopback.WriteJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "status_must_be_4xx_or_5xx"})
				return
			}
			s.FailNext(n, in.Status, in.Exception)
		case FaultStreamException:
			s.StreamExceptionNext(n, in.AfterChunks, in.Exception)
		case FaultCut:
			s.CutNext(n, in.AfterChunks)
		case FaultStall:
			s.StallNext(n, in.AfterChunks, fakemodel.Seconds(in.Seconds))
		case FaultToolUse:
			s.ToolUseNext(n, in.Tools...)
		}
		loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
	}
}

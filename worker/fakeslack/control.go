package fakeslack

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// The control API lets another process drive a Server over HTTP (see Client):
//
//	GET  /_control/posts           recorded posts (Posts)
//	GET  /_control/reactions       current reactions (Reactions)
//	GET  /_control/calls?method=M  call count (Calls)
//	POST /_control/fail            {"method","n","error"}: FailNext
//	POST /_control/ratelimit       {"method","n","retry_after_seconds"}: RateLimitNext
//	POST /_control/failhttp        {"method","n","status"}: FailHTTPNext
//	POST /_control/loseresponse    {"method","n"}: LoseResponseNext
//	POST /_control/messages        a UserMessage: AddUserMessage, answers {"ok":true,"ts"}
//	POST /_control/triggers        {"view_id"} (optional): NewTrigger, or NewViewTrigger when
//	                               view_id is set; answers {"ok":true,"trigger_id"}
//	GET  /_control/views           views opened or pushed (Views)
//	GET  /_control/views/{id}      one view (View); 404 {"ok":false,"error":"not_found"}
//	GET  /_control/streams         streamed messages (Streams)
//	GET  /_control/rendered?channel=C&ts=T
//	                               one message as a client shows it (Rendered); 404
//	                               {"ok":false,"error":"message_not_found"}
//	GET  /_control/rendered/thread?channel=C&thread_ts=T
//	                               a thread as a client shows it (RenderedThread)
//	GET  /_control/rendered/channel?channel=C&user=U
//	                               a channel as user U sees it (RenderedChannel)
//	GET  /_control/ephemerals?channel=C&user=U
//	                               ephemeral messages shown to U (Ephemerals)
//	POST /_control/responseurls    {"id", "channel", "user", "message_ts", "is_ephemeral"}:
//	                               ResponseURLFrom (ResponseURL without a channel); answers
//	                               {"ok":true,"response_url"}
//	GET  /_control/assistant       assistant threads (AssistantThreads)
//	POST /_control/streamlifetime  {"seconds"}: SetStreamLifetime (0 restores the default)
//	POST /_control/reset           Reset
//
// Bad requests answer HTTP 400 {"ok":false,"error":...}.
func (s *Server) routeControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /_control/posts", s.ctlPosts)
	mux.HandleFunc("GET /_control/reactions", s.ctlReactions)
	mux.HandleFunc("GET /_control/calls", s.ctlCalls)
	mux.HandleFunc("POST /_control/fail", s.ctlFail)
	mux.HandleFunc("POST /_control/ratelimit", s.ctlRateLimit)
	mux.HandleFunc("POST /_control/failhttp", s.ctlFailHTTP)
	mux.HandleFunc("POST /_control/loseresponse", s.ctlLoseResponse)
	mux.HandleFunc("POST /_control/messages", s.ctlAddUserMessage)
	mux.HandleFunc("POST /_control/triggers", s.ctlNewTrigger)
	mux.HandleFunc("GET /_control/views", s.ctlViews)
	mux.HandleFunc("GET /_control/views/{id}", s.ctlView)
	mux.HandleFunc("GET /_control/streams", s.ctlStreams)
	mux.HandleFunc("GET /_control/rendered", s.ctlRendered)
	mux.HandleFunc("GET /_control/rendered/thread", s.ctlRenderedThread)
	mux.HandleFunc("GET /_control/rendered/channel", s.ctlRenderedChannel)
	mux.HandleFunc("GET /_control/ephemerals", s.ctlEphemerals)
	mux.HandleFunc("POST /_control/responseurls", s.ctlResponseURL)
	mux.HandleFunc("GET /_control/assistant", s.ctlAssistant)
	mux.HandleFunc("POST /_control/streamlifetime", s.ctlStreamLifetime)
	mux.HandleFunc("POST /_control/reset", s.ctlReset)
	s.routeTeamsControl(mux)
}

type controlFault struct {
	Method            string  `json:"method"`
	N                 *int    `json:"n"`
	Error             string  `json:"error"`
	RetryAfterSeconds float64 `json:"retry_after_seconds"`
	Status            int     `json:"status"`
}

func readControl(w http.ResponseWriter, r *http.Request) (controlFault, int, bool) {
	var c controlFault
	if !decodeControl(w, r, &c) {
		return c, 0, false
	}
	if c.Method == "" {
		writeJSON(w, http.StatusBadRequest, slackErr("method_required"))
		return c, 0, false
	}
	n := 1
	if c.N != nil {
		n = *c.N
	}
	return c, n, true
}

// decodeControl reads a control request's JSON body (bounded) into v; a body that is not
// JSON is answered invalid_json and false.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, loopback.ControlBodyLimit)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, slackErr("invalid_json"))
		return false
	}
	return true
}

func (s *Server) ctlPosts(w http.ResponseWriter, _ *http.Request) {
	posts := s.Posts()
	if posts == nil {
		posts = []Post{}
	}
	writeJSON(w, http.StatusOK, posts)
}

func (s *Server) ctlReactions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Reactions())
}

func (s *Server) ctlCalls(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, obj{"calls": s.Calls(r.URL.Query().Get("method"))})
}

func (s *Server) ctlFail(w http.ResponseWriter, r *http.Request) {
	c, n, ok := readControl(w, r)
	if !ok {
		return
	}
	if c.Error == "" {
		writeJSON(w, http.StatusBadRequest, slackErr("error_required"))
		return
	}
	s.FailNext(c.Method, n, c.Error)
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

func (s *Server) ctlRateLimit(w http.ResponseWriter, r *http.Request) {
	c, n, ok := readControl(w, r)
	if !ok {
		return
	}
	s.RateLimitNext(c.Method, n, time.Duration(c.RetryAfterSeconds*float64(time.Second)))
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

func (s *Server) ctlFailHTTP(w http.ResponseWriter, r *http.Request) {
	c, n, ok := readControl(w, r)
	if !ok {
		return
	}
	if c.Status < 400 || c.Status > 599 {
		writeJSON(w, http.StatusBadRequest, slackErr("status_must_be_4xx_or_5xx"))
		return
	}
	s.FailHTTPNext(c.Method, n, c.Status)
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

func (s *Server) ctlLoseResponse(w http.ResponseWriter, r *http.Request) {
	c, n, ok := readControl(w, r)
	if !ok {
		return
	}
	s.LoseResponseNext(c.Method, n)
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

func (s *Server) ctlAddUserMessage(w http.ResponseWriter, r *http.Request) {
	var m UserMessage
	if !decodeControl(w, r, &m) {
		return
	}
	ts, err := s.AddUserMessage(m)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, slackErr(err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, obj{"ok": true, "ts": ts})
}

func (s *Server) ctlReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

func (s *Server) ctlNewTrigger(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ViewID string `json:"view_id"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, loopback.ControlBodyLimit)).Decode(&in); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, slackErr("invalid_json"))
		return
	}
	if in.ViewID == "" {
		writeJSON(w, http.StatusOK, obj{"ok": true, "trigger_id": s.NewTrigger()})
		return
	}
	id, err := s.NewViewTrigger(in.ViewID)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, slackErr(err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, obj{"ok": true, "trigger_id": id})
}

func (s *Server) ctlViews(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Views())
}

func (s *Server) ctlView(w http.ResponseWriter, r *http.Request) {
	v, ok := s.View(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, slackErr("not_found"))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) ctlStreams(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Streams())
}

func (s *Server) ctlRendered(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	m, ok := s.Rendered(q.Get("channel"), q.Get("ts"))
	if !ok {
		writeJSON(w, http.StatusNotFound, slackErr("message_not_found"))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) ctlRenderedThread(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	writeJSON(w, http.StatusOK, s.RenderedThread(q.Get("channel"), q.Get("thread_ts")))
}

func (s *Server) ctlRenderedChannel(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	writeJSON(w, http.StatusOK, orEmpty(s.RenderedChannel(q.Get("channel"), q.Get("user"))))
}

func (s *Server) ctlEphemerals(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	writeJSON(w, http.StatusOK, orEmpty(s.Ephemerals(q.Get("channel"), q.Get("user"))))
}

func orEmpty(rs []Rendered) []Rendered {
	if rs == nil {
		return []Rendered{}
	}
	return rs
}

func (s *Server) ctlResponseURL(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ID string `json:"id"`
		Origin
	}
	if !decodeControl(w, r, &in) {
		return
	}
	if in.ID == "" {
		writeJSON(w, http.StatusBadRequest, slackErr("id_required"))
		return
	}
	u := s.ResponseURL(in.ID)
	if in.Channel != "" {
		u = s.ResponseURLFrom(in.ID, in.Origin)
	}
	writeJSON(w, http.StatusOK, obj{"ok": true, "response_url": u})
}

func (s *Server) ctlAssistant(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.AssistantThreads())
}

func (s *Server) ctlStreamLifetime(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Seconds *float64 `json:"seconds"`
	}
	if !decodeControl(w, r, &in) {
		return
	}
	if in.Seconds == nil || *in.Seconds < 0 {
		writeJSON(w, http.StatusBadRequest, slackErr("seconds_required"))
		return
	}
	s.SetStreamLifetime(time.Duration(*in.Seconds * float64(time.Second)))
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

// Workspaces, OAuth and the clock over HTTP:
//
//	GET  /_control/workspaces      workspaces (Workspaces)
//	POST /_control/workspaces      a Workspace: AddWorkspace
//	POST /_control/clock           {"advance_seconds"}: Advance; answers {"ok":true,"now"}
//	GET  /_control/refreshes?install=I
//	                               refresh grants of an installation (Refreshes)
//	POST /_control/uninstall       {"install"}: Uninstall
func (s *Server) routeTeamsControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /_control/workspaces", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Workspaces())
	})
	mux.HandleFunc("POST /_control/workspaces", s.ctlAddWorkspace)
	mux.HandleFunc("POST /_control/clock", s.ctlClock)
	mux.HandleFunc("GET /_control/refreshes", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, obj{"refreshes": s.Refreshes(r.URL.Query().Get("install"))})
	})
	mux.HandleFunc("POST /_control/uninstall", s.ctlUninstall)
}

func (s *Server) ctlAddWorkspace(w http.ResponseWriter, r *http.Request) {
	var ws Workspace
	if !decodeControl(w, r, &ws) {
		return
	}
	if err := s.AddWorkspace(ws); err != nil {
		writeJSON(w, http.StatusBadRequest, slackErr(err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

func (s *Server) ctlClock(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AdvanceSeconds *float64 `json:"advance_seconds"`
	}
	if !decodeControl(w, r, &in) {
		return
	}
	if in.AdvanceSeconds == nil || *in.AdvanceSeconds < 0 {
		writeJSON(w, http.StatusBadRequest, slackErr("advance_seconds_required"))
		return
	}
	s.Advance(time.Duration(*in.AdvanceSeconds * float64(time.Second)))
	writeJSON(w, http.StatusOK, obj{"ok": true, "now": s.opts.Now()})
}

func (s *Server) ctlUninstall(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Install string `json:"install"`
	}
	if !decodeControl(w, r, &in) {
		return
	}
	if in.Install == "" {
		writeJSON(w, http.StatusBadRequest, slackErr("install_required"))
		return
	}
	s.Uninstall(in.Install)
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

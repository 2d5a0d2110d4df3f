package ddbfault

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/slackrelay/slackrelay/shared/loopback"
)

// The control API lets another process drive a Proxy over HTTP, on the proxy's own
// listener (see Client). Durations are seconds (fractions allowed).
//
//	GET    /_control/snapshot    what was recorded (Snapshot)
//	POST   /_control/reset       Reset
//	GET    /_control/down        {"down":bool}
//	POST   /_control/down        {"down":bool}: SetDown
//	GET    /_control/rules       the armed rules' status (Rules)
//	POST   /_control/rules       a rule: Arm; answers {"ok":true,"id":N}. A rule is
//	                             {"ops":["UpdateItem"|"reads"|"writes"…],"table","pk_prefix",
//	                             "nth","times" (-1: forever),"per_operation",
//	                             "action":{"kind":"pass"|"fail"|"delay"|"reset"|"drop",
//	                             "status","error_type","message","delay_seconds"}}
//	DELETE /_control/rules/{id}  Disarm; 404 {"ok":false,"error":"not_found"}
//
// Bad requests answer HTTP 400 {"ok":false,"error":...}. Hooks and PK funcs are Go
// functions: only a rule armed in the proxy's own process can have them.
func (p *Proxy) routeControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /_control/snapshot", p.ctlSnapshot)
	mux.HandleFunc("POST /_control/reset", p.ctlReset)
	mux.HandleFunc("GET /_control/down", p.ctlGetDown)
	mux.HandleFunc("POST /_control/down", p.ctlSetDown)
	mux.HandleFunc("GET /_control/rules", p.ctlRules)
	mux.HandleFunc("POST /_control/rules", p.ctlArm)
	mux.HandleFunc("DELETE /_control/rules/{id}", p.ctlDisarm)
}

// ruleJSON is a Rule on the control API.
type ruleJSON struct {
	Ops          []string   `json:"ops,omitempty"`
	Table        string     `json:"table,omitempty"`
	PKPrefix     string     `json:"pk_prefix,omitempty"`
	Nth          int        `json:"nth,omitempty"`
	Times        int        `json:"times,omitempty"`
	PerOperation bool       `json:"per_operation,omitempty"`
	Action       actionJSON `json:"action"`
}

// actionJSON is an Action on the control API.
type actionJSON struct {
	Kind         Kind    `json:"kind"`
	Status       int     `json:"status,omitempty"`
	ErrorType    string  `json:"error_type,omitempty"`
	Message      string  `json:"message,omitempty"`
	DelaySeconds float64 `json:"delay_seconds,omitempty"`
}

// downJSON is the proxy's state on the control API.
type downJSON struct {
	Down bool `json:"down"`
}

// errNotPortable is Client.Arm's error for a rule that holds Go functions.
var errNotPortable = errors.New("a rule with a PK func or a hook cannot be sent to another process")

// toJSON is r on the control API.
func toJSON(r Rule) (ruleJSON, error) {
	if r.PK != nil || r.Action.Kind == KindHook || r.Action.Before != nil || r.Action.After != nil {
		return ruleJSON{}, errNotPortable
	}
	return ruleJSON{Ops: r.Ops, Table: r.Table, PKPrefix: r.PKPrefix, Nth: r.Nth, Times: r.Times, PerOperation: r.PerOperation,
		Action: actionJSON{Kind: r.Action.Kind, Status: r.Action.Status, ErrorType: r.Action.ErrorType, Message: r.Action.Message,
			DelaySeconds: r.Action.Delay.Seconds()}}, nil
}

// fromJSON is the Rule j describes, or the control API's error code.
func fromJSON(j ruleJSON) (Rule, string) {
	a := j.Action
	switch {
	case a.Kind == KindHook:
		return Rule{}, "hooks_need_go"
	case a.Kind != "" && a.Kind != KindPass && a.Kind != KindFail && a.Kind != KindDelay && a.Kind != KindReset && a.Kind != KindDrop:
		return Rule{}, "unknown_action"
	case a.Kind == KindFail && (a.Status < 400 || a.Status > 599):
		return Rule{}, "status_must_be_4xx_or_5xx"
	case a.Kind == KindFail && a.ErrorType == "":
		return Rule{}, "error_type_required"
	case a.DelaySeconds < 0 || j.Nth < 0 || j.Times < Forever:
		return Rule{}, "negative_value"
	}
	return Rule{
		Match: Match{Ops: j.Ops, Table: j.Table, PKPrefix: j.PKPrefix}, Nth: j.Nth, Times: j.Times, PerOperation: j.PerOperation,
		Action: Action{Kind: a.Kind, Status: a.Status, ErrorType: a.ErrorType, Message: a.Message,
			Delay: time.Duration(a.DelaySeconds * float64(time.Second))},
	}, ""
}

func (p *Proxy) ctlSnapshot(w http.ResponseWriter, _ *http.Request) {
	loopback.WriteJSON(w, http.StatusOK, p.Snapshot())
}

func (p *Proxy) ctlReset(w http.ResponseWriter, _ *http.Request) {
	p.Reset()
	loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (p *Proxy) ctlGetDown(w http.ResponseWriter, _ *http.Request) {
	loopback.WriteJSON(w, http.StatusOK, downJSON{Down: p.Down()})
}

func (p *Proxy) ctlSetDown(w http.ResponseWriter, r *http.Request) {
	var in downJSON
	if !loopback.ReadControl(w, r, &in) {
		return
	}
	p.SetDown(in.Down)
	loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (p *Proxy) ctlRules(w http.ResponseWriter, _ *http.Request) {
	loopback.WriteJSON(w, http.StatusOK, p.Rules())
}

func (p *Proxy) ctlArm(w http.ResponseWriter, r *http.Request) {
	var in ruleJSON
	if !loopback.ReadControl(w, r, &in) {
		return
	}
	rule, bad := fromJSON(in)
	if bad != "" {
		loopback.WriteJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": bad})
		return
	}
	loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "id": p.Arm(rule).ID()})
}

func (p *Proxy) ctlDisarm(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || !p.Disarm(id) {
		loopback.WriteJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "not_found"})
		return
	}
	loopback.WriteJSON(w, http.StatusOK, map[string]any{"ok": true})
}

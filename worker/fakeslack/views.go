package fakeslack

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Modals as Slack serves them: views.open exchanges a trigger_id (valid for TriggerLifetime
// after the interaction that issued it, and only once) for a modal with a view id and a
// hash; views.update replaces a view by view_id or external_id, refusing a stale hash;
// views.push adds a view to the stack of the modal a trigger came from, at most
// MaxViewStack deep.

// TriggerLifetime is how long a trigger_id can be exchanged after it was issued.
const TriggerLifetime = 3 * time.Second

// MaxViewStack is how many views a modal's stack holds (views.push beyond it answers
// push_limit_reached).
const MaxViewStack = 3

// Limits Slack applies to a modal view (view object reference). Its blocks are held to
// MaxViewBlocks and to the block limits of messages (MaxSectionText, MaxHeaderText,
// MaxButtonText…), answered as invalid_arguments with the place of each problem.
const (
	// MaxViewBytes is the largest view payload; beyond it: view_too_large.
	MaxViewBytes = 250 << 10
	// MaxViewTitle is the longest title, submit and close text.
	MaxViewTitle = 24
	// MaxViewPrivateMetadata is the longest private_metadata.
	MaxViewPrivateMetadata = 3000
	// MaxViewIdentifier is the longest callback_id and external_id.
	MaxViewIdentifier = 255
)

type trigger struct {
	issued time.Time
	viewID string // the view the interaction happened in ("" for a command or message action)
	used   bool
}

// triggerFormat is the shape of a trigger_id, e.g. 1700000000.42.9f3c0a1b2c3d4e5f.
var triggerFormat = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9a-f]+$`)

// NewTrigger issues a trigger_id now, as Slack does for a slash command, shortcut or button
// click outside a modal: views.open accepts it once, within TriggerLifetime.
func (s *Server) NewTrigger() string {
	id, _ := s.newTrigger("")
	return id
}

// NewViewTrigger issues a trigger_id now for an interaction inside the open view viewID
// (a button in a modal): views.push with it adds a view to that modal's stack. It fails
// when the server has no such view.
func (s *Server) NewViewTrigger(viewID string) (string, error) {
	if viewID == "" {
		return "", errors.New("fakeslack: view trigger without a view id")
	}
	return s.newTrigger(viewID)
}

func (s *Server) newTrigger(viewID string) (string, error) {
	var random [8]byte
	_, _ = rand.Read(random[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if viewID != "" && s.viewLocked(viewID) == nil {
		return "", fmt.Errorf("fakeslack: no view %s to issue a trigger in", viewID)
	}
	now := s.opts.Now()
	s.seq++
	id := fmt.Sprintf("%d.%d.%s", now.Unix(), s.seq, hex.EncodeToString(random[:]))
	s.triggers[id] = &trigger{issued: now, viewID: viewID}
	return id, nil
}

// checkTriggerLocked answers the error a call exchanging id gets, or "" when id can be used.
func (s *Server) checkTriggerLocked(id string) (*trigger, string) {
	t := s.triggers[id]
	switch {
	case !triggerFormat.MatchString(id) || t == nil:
		return nil, "invalid_trigger_id"
	case t.used:
		return nil, "exchanged_trigger_id"
	case s.opts.Now().Sub(t.issued) > TriggerLifetime:
		return nil, "expired_trigger_id"
	}
	return t, ""
}

// ViewChange is one state of a view: how it was opened, pushed or updated.
type ViewChange struct {
	// Method is "views.open", "views.push" or "views.update".
	Method     string          `json:"method"`
	Hash       string          `json:"hash"`
	Title      string          `json:"title,omitempty"`
	CallbackID string          `json:"callback_id,omitempty"`
	Payload    json.RawMessage `json:"view"`
	At         time.Time       `json:"at"`
}

// View is a modal view the app opened or pushed, in its current state, with its history.
type View struct {
	ID             string `json:"id"`
	ExternalID     string `json:"external_id,omitempty"`
	Hash           string `json:"hash"`
	RootViewID     string `json:"root_view_id"`
	PreviousViewID string `json:"previous_view_id,omitempty"`
	// TriggerID is the trigger the view was opened or pushed with.
	TriggerID       string `json:"trigger_id"`
	Title           string `json:"title,omitempty"`
	CallbackID      string `json:"callback_id,omitempty"`
	PrivateMetadata string `json:"private_metadata,omitempty"`
	// Payload is the view payload as the app last sent it.
	Payload json.RawMessage `json:"view"`
	// History holds every state, the opening first.
	History []ViewChange `json:"history"`
}

type viewState struct {
	View
	stack []string // for a root view: the ids in its modal's stack, root first
}

func (s *Server) viewLocked(id string) *viewState {
	for _, v := range s.views {
		if v.ID == id {
			return v
		}
	}
	return nil
}

func (s *Server) viewByExternalLocked(ext string) *viewState {
	for _, v := range s.views {
		if ext != "" && v.ExternalID == ext {
			return v
		}
	}
	return nil
}

func (v *viewState) snapshot() View {
	out := v.View
	out.History = append([]ViewChange(nil), v.History...)
	return out
}

// Views returns every view the app opened or pushed, in that order, each in its current
// state with its history.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]View, 0, len(s.views))
	for _, v := range s.views {
		out = append(out, v.snapshot())
	}
	return out
}

// View returns the view with id, and false when there is none.
func (s *Server) View(id string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.viewLocked(id); v != nil {
		return v.snapshot(), true
	}
	return View{}, false
}

// ViewByTrigger returns the view opened or pushed with trigger, and false when there is none.
func (s *Server) ViewByTrigger(trigger string) (View, bool) {
	for _, v := range s.Views() {
		if v.TriggerID == trigger {
			return v, true
		}
	}
	return View{}, false
}

func (s *Server) viewsOpen(p params) obj { return s.openView(p, "views.open") }
func (s *Server) viewsPush(p params) obj { return s.openView(p, "views.push") }
func (s *Server) openView(p params, method string) obj {
	def, raw, bad := readView(p)
	if bad != nil {
		return bad
	}
	tid := p.get("trigger_id")
	if tid == "" {
		tid = p.get("interactivity_pointer")
	}
	if tid == "" {
		return invalidArgs(argError("missing required field: trigger_id", "/trigger_id"))
	}
	s.mu.Lock()
	t, code := s.checkTriggerLocked(tid)
	if code != "" {
		s.mu.Unlock()
		return slackErr(code)
	}
	if s.viewByExternalLocked(def.ExternalID) != nil {
		s.mu.Unlock()
		return slackErr("duplicate_external_id")
	}
	var root *viewState
	if method == "views.push" {
		if root = s.rootOfLocked(t.viewID); root == nil {
			s.mu.Unlock()
			return slackErr("not_found")
		}
		if len(root.stack) >= MaxViewStack {
			s.mu.Unlock()
			return slackErr("push_limit_reached")
		}
	}
	t.used = true
	s.seq++
	v := &viewState{View: View{ID: fmt.Sprintf("V%08X", s.seq), ExternalID: def.ExternalID, TriggerID: tid}}
	v.RootViewID = v.ID
	if root != nil {
		v.RootViewID = root.ID
		v.PreviousViewID = root.stack[len(root.stack)-1]
		root.stack = append(root.stack, v.ID)
	} else {
		v.stack = []string{v.ID}
	}
	s.setViewLocked(v, method, def, raw)
	s.views = append(s.views, v)
	resp := s.viewJSONLocked(v)
	s.mu.Unlock()
	s.printView(v.View, method, root)
	return obj{"ok": true, "view": resp}
}

// rootOfLocked is the root view of the modal view id belongs to.
func (s *Server) rootOfLocked(id string) *viewState {
	if v := s.viewLocked(id); v != nil {
		return s.viewLocked(v.RootViewID)
	}
	return nil
}

func (s *Server) viewsUpdate(p params) obj {
	def, raw, bad := readView(p)
	if bad != nil {
		return bad
	}
	id, ext, hash := p.get("view_id"), p.get("external_id"), p.get("hash")
	if id == "" && ext == "" {
		return invalidArgs(argError("either view_id or external_id is required", ""))
	}
	s.mu.Lock()
	v := s.viewLocked(id)
	if id == "" {
		v = s.viewByExternalLocked(ext)
	}
	switch {
	case v == nil:
		s.mu.Unlock()
		return slackErr("not_found")
	case hash != "" && hash != v.Hash:
		s.mu.Unlock()
		return slackErr("hash_conflict")
	case def.ExternalID != "" && def.ExternalID != v.ExternalID && s.viewByExternalLocked(def.ExternalID) != nil:
		s.mu.Unlock()
		return slackErr("duplicate_external_id")
	}
	if def.ExternalID != "" {
		v.ExternalID = def.ExternalID
	}
	s.setViewLocked(v, "views.update", def, raw)
	resp := s.viewJSONLocked(v)
	snap := v.View
	s.mu.Unlock()
	s.printView(snap, "views.update", nil)
	return obj{"ok": true, "view": resp}
}

// setViewLocked gives v the payload def (raw as sent) and a new hash, and records the change.
func (s *Server) setViewLocked(v *viewState, method string, def viewDef, raw json.RawMessage) {
	now := s.opts.Now()
	s.seq++
	v.Hash = fmt.Sprintf("%d.%08x", now.Unix(), s.seq)
	v.Title, v.CallbackID, v.PrivateMetadata, v.Payload = def.title(), def.CallbackID, def.PrivateMetadata, raw
	v.History = append(v.History, ViewChange{Method: method, Hash: v.Hash, Title: v.Title,
		CallbackID: v.CallbackID, Payload: raw, At: now})
}

// viewJSONLocked is v as Slack returns it: the payload the app sent plus the view's ids.
func (s *Server) viewJSONLocked(v *viewState) obj {
	o := obj{}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(v.Payload, &fields)
	for k, raw := range fields {
		o[k] = raw
	}
	var prev any
	if v.PreviousViewID != "" {
		prev = v.PreviousViewID
	}
	ids := obj{"id": v.ID, "team_id": s.opts.TeamID, "hash": v.Hash, "root_view_id": v.RootViewID,
		"previous_view_id": prev, "external_id": v.ExternalID, "app_id": "A" + s.opts.BotID,
		"bot_id": s.opts.BotID, "app_installed_team_id": s.opts.TeamID, "state": obj{"values": obj{}},
		"callback_id": v.CallbackID, "private_metadata": v.PrivateMetadata}
	for k, val := range ids {
		o[k] = val
	}
	return o
}

type textObj struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// viewDef is what the server reads of a view payload.
type viewDef struct {
	Type            string          `json:"type"`
	Title           *textObj        `json:"title"`
	Submit          *textObj        `json:"submit"`
	Close           *textObj        `json:"close"`
	Blocks          json.RawMessage `json:"blocks"`
	CallbackID      string          `json:"callback_id"`
	PrivateMetadata string          `json:"private_metadata"`
	ExternalID      string          `json:"external_id"`
}

func (d viewDef) title() string {
	if d.Title == nil {
		return ""
	}
	return d.Title.Text
}

// readView reads and checks the `view` argument, answering Slack's errors for a missing,
// malformed, too large or invalid modal.
func readView(p params) (viewDef, json.RawMessage, obj) {
	var d viewDef
	raw := strings.TrimSpace(p.get("view"))
	if raw == "" {
		return d, nil, invalidArgs(argError("missing required field: view", "/view"))
	}
	if len(raw) > MaxViewBytes {
		return d, nil, slackErr("view_too_large")
	}
	if err := json.Unmarshal([]byte(raw), &d); err != nil || raw[0] != '{' {
		return d, nil, invalidArgs(argError("view must be a JSON object", "/view"))
	}
	var msgs []string
	if d.Type != "modal" {
		msgs = append(msgs, argError("must be one of: modal", "/view/type"))
	}
	if d.Title == nil {
		msgs = append(msgs, argError("missing required field: title", "/view"))
	}
	type namedText struct {
		name string
		obj  *textObj
	}
	for _, t := range []namedText{{"title", d.Title}, {"submit", d.Submit}, {"close", d.Close}} {
		if t.obj != nil && len([]rune(t.obj.Text)) > MaxViewTitle {
			msgs = append(msgs, argError(fmt.Sprintf("must be less than %d characters", MaxViewTitle+1), "/view/"+t.name+"/text"))
		}
	}
	var blocks []any
	if err := json.Unmarshal(d.Blocks, &blocks); err != nil || d.Blocks == nil {
		msgs = append(msgs, argError("missing required field: blocks", "/view"))
	} else {
		msgs = append(msgs, checkBlocks(blocks, "/view/blocks", MaxViewBlocks)...)
	}
	if len([]rune(d.PrivateMetadata)) > MaxViewPrivateMetadata {
		msgs = append(msgs, argError(fmt.Sprintf("must be less than %d characters", MaxViewPrivateMetadata+1), "/view/private_metadata"))
	}
	for _, f := range [][2]string{{"callback_id", d.CallbackID}, {"external_id", d.ExternalID}} {
		if len([]rune(f[1])) > MaxViewIdentifier {
			msgs = append(msgs, argError(fmt.Sprintf("must be less than %d characters", MaxViewIdentifier+1), "/view/"+f[0]))
		}
	}
	if msgs != nil {
		return d, nil, invalidArgs(msgs...)
	}
	return d, json.RawMessage(raw), nil
}

package fakeslack

import (
	"encoding/json"
	"io"
	"net/http"
	"unicode/utf8"
)

// ResponseURLMethod is the method name under which response_url posts are counted, faulted
// (FailNext etc.) and recorded (Post.Method).
const ResponseURLMethod = "response_url"

// handleResponseURL records a post to a slash command's response_url (see ResponseURL).
// Like Slack's, it takes a JSON body and needs no token.
func (s *Server) handleResponseURL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := r.PathValue("id")
	if f := s.beginCall(ResponseURLMethod); f.losesResponse() {
		defer loseAnswer(w)
		w = &answerLost{}
	} else if f != nil {
		writeFault(w, f)
		return
	}
	var body struct {
		Text            string          `json:"text"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		Blocks          json.RawMessage `json:"blocks"`
		ThreadTS        string          `json:"thread_ts"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 10<<20)).Decode(&body); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	if string(body.Blocks) == "null" {
		body.Blocks = nil
	}
	blocks, bad := readBlocks(string(body.Blocks), "/blocks", MaxBlocks)
	if bad != nil {
		http.Error(w, bad["error"].(string), http.StatusBadRequest)
		return
	}
	body.Blocks = blocks
	if body.Text == "" && body.Blocks == nil {
		http.Error(w, "no_text", http.StatusBadRequest)
		return
	}
	if utf8.RuneCountInString(body.Text) > MaxTextLength {
		http.Error(w, "msg_too_long", http.StatusBadRequest)
		return
	}
	post := Post{Method: ResponseURLMethod, Text: body.Text, ThreadTS: body.ThreadTS, Blocks: body.Blocks,
		ResponseID: id, ResponseType: body.ResponseType, ReplaceOriginal: body.ReplaceOriginal}
	s.mu.Lock()
	s.recordLocked(post)
	s.mu.Unlock()
	s.printPost(post)
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

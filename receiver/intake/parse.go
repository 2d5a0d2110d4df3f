package intake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/slackrelay/slackrelay/shared/envelope"
)

// errMalformed marks a body that is signed but cannot be read; the client gets 400.
var errMalformed = errors.New("malformed request body")

// outerEvent holds only the Events API fields the envelope needs; one encoding/json.Unmarshal
// fills it and skips the rest of the body (blocks, attachments, authorizations) without
// building it. encoding/json matches keys case-insensitively and lets the last of duplicate
// keys win, exactly as in the worker, which reads the same body through slack-go.
type outerEvent struct {
	Type         string     `json:"type"`
	Challenge    string     `json:"challenge"`
	TeamID       string     `json:"team_id"`
	EnterpriseID string     `json:"enterprise_id"`
	APIAppID     string     `json:"api_app_id"`
	EventID      string     `json:"event_id"`
	EventTime    int64      `json:"event_time"`
	Event        innerEvent `json:"event"`
}

type innerEvent struct {
	Type string `json:"type"`
}

type interactionPayload struct {
	Type      string `json:"type"`
	TriggerID string `json:"trigger_id"`
	APIAppID  string `json:"api_app_id"`
	Team      struct {
		ID           string `json:"id"`
		EnterpriseID string `json:"enterprise_id"`
	} `json:"team"`
	Enterprise *struct {
		ID string `json:"id"`
	} `json:"enterprise"`
	// View is the modal of a view_submission.
	View *struct {
		Type            string          `json:"type"`
		CallbackID      string          `json:"callback_id"`
		PrivateMetadata string          `json:"private_metadata"`
		Title           json.RawMessage `json:"title"`
	} `json:"view"`
}

// parsed is what the handler decides on: a reply without enqueueing, or an envelope.
type parsed struct {
	challenge   string // url_verification
	noEnqueue   string // why nothing is enqueued (ssl_check, app_rate_limited), for the log
	rateLimited bool
	// answer, when set, is the body Slack gets instead of an empty 200: right away without
	// enqueueing (block_suggestion), or once the envelope is enqueued (a modal kept open).
	answer       []byte
	answerQueued bool
}

// parseEvent fills e from an Events API body.
func parseEvent(body []byte, e *envelope.Envelope, p *parsed) error {
	var o outerEvent
	if err := json.Unmarshal(body, &o); err != nil {
		return fmt.Errorf("%w: events api body: %v", errMalformed, err)
	}
	switch o.Type {
	case "url_verification":
		if o.Challenge == "" {
			return fmt.Errorf("%w: url_verification without challenge", errMalformed)
		}
		p.challenge = o.Challenge
		return nil
	case "app_rate_limited":
		p.noEnqueue, p.rateLimited = "app_rate_limited", true
		e.TeamID, e.APIAppID = o.TeamID, o.APIAppID
		return nil
	case "event_callback":
	case "":
		return fmt.Errorf("%w: events api body has no type", errMalformed)
	default:
		// Unknown top-level types are passed on; the worker acknowledges what it cannot route.
	}
	if o.EventID == "" {
		return fmt.Errorf("%w: %s without event_id", errMalformed, o.Type)
	}
	e.Kind = envelope.KindEvent
	e.TeamID, e.EnterpriseID, e.APIAppID = o.TeamID, o.EnterpriseID, o.APIAppID
	e.EventType, e.EventID, e.EventTime = o.Event.Type, o.EventID, o.EventTime
	if e.EventType == "" {
		e.EventType = o.Type
	}
	e.ContentType = envelope.ContentTypeJSON
	return nil
}

// parseForm fills e from a slash command or interactivity body.
func parseForm(kind envelope.Kind, body []byte, timestamp string, e *envelope.Envelope, p *parsed) error {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fmt.Errorf("%w: form body: %v", errMalformed, err)
	}
	e.Kind, e.ContentType = kind, envelope.ContentTypeForm
	e.EventTime, _ = strconv.ParseInt(timestamp, 10, 64)
	switch kind {
	case envelope.KindSlashCommand:
		if form.Get("ssl_check") == "1" {
			p.noEnqueue = "ssl_check"
			return nil
		}
		e.EventType = form.Get("command")
		if e.EventType == "" {
			return fmt.Errorf("%w: slash command without command", errMalformed)
		}
		e.TeamID, e.EnterpriseID, e.APIAppID = form.Get("team_id"), form.Get("enterprise_id"), form.Get("api_app_id")
	case envelope.KindInteraction:
		raw := form.Get("payload")
		if raw == "" {
			return fmt.Errorf("%w: interactivity request without payload", errMalformed)
		}
		var ip interactionPayload
		if err := json.Unmarshal([]byte(raw), &ip); err != nil {
			return fmt.Errorf("%w: interactivity payload is not JSON: %v", errMalformed, err)
		}
		if ip.Type == "" {
			return fmt.Errorf("%w: interactivity payload without type", errMalformed)
		}
		e.EventType, e.TeamID, e.APIAppID = ip.Type, ip.Team.ID, ip.APIAppID
		e.EnterpriseID = ip.Team.EnterpriseID
		if ip.Enterprise != nil && ip.Enterprise.ID != "" {
			e.EnterpriseID = ip.Enterprise.ID
		}
		switch {
		case ip.Type == "block_suggestion":
			// External select menus need their options in this response, which a queue cannot
			// give: answer none at once, enqueue nothing.
			p.noEnqueue, p.answer = "block_suggestion (options cannot come through the queue)", []byte(`{"options":[]}`)
		case ip.Type == "view_submission" && ip.View != nil && strings.HasPrefix(ip.View.PrivateMetadata, envelope.WorkingViewPrefix):
			// The modal asked to stay open while the worker works: replace it with a
			// "working" view now; the worker updates it by its id with the result.
			p.answer, p.answerQueued = workingView(ip.View.Title, ip.View.CallbackID, ip.View.PrivateMetadata), true
		}
	}
	return nil
}

// workingView is the response_action that keeps a submitted modal open with a "working on
// it" view (same title, callback id and private metadata) until the worker updates it.
func workingView(title json.RawMessage, callbackID, privateMetadata string) []byte {
	if len(title) == 0 || string(title) == "null" {
		title = json.RawMessage(`{"type":"plain_text","text":"Working"}`)
	}
	out, _ := json.Marshal(map[string]any{ // every value is a string or valid JSON: it cannot fail
		"response_action": "update",
		"view": map[string]any{
			"type":             "modal",
			"title":            title,
			"close":            map[string]string{"type": "plain_text", "text": "Close"},
			"callback_id":      callbackID,
			"private_metadata": privateMetadata,
			"blocks": []any{map[string]any{"type": "section", "text": map[string]string{
				"type": "mrkdwn", "text": ":hourglass_flowing_sand: Working on it…"}}},
		},
	})
	return out
}

// maxFieldBytes bounds every string the receiver copies from a request into the envelope
// and its attributes: the ids (team, enterprise, app, event), the event type (a slash
// command's name, an interaction's type) and Slack's retry reason. Slack's are under 40
// bytes. With them bounded, an envelope's size is known but for its body, which is what
// lets MAX_BODY_BYTES promise that every body under it fits in one SQS message
// (receiverconfig.MaxBodyBytesLimit).
const maxFieldBytes = 128

// checkFieldSizes refuses, as malformed, a request whose ids are longer than maxFieldBytes:
// no Slack request has such ids.
func checkFieldSizes(e *envelope.Envelope) error {
	for _, f := range [...]struct{ name, value string }{
		{"team id", e.TeamID}, {"enterprise id", e.EnterpriseID}, {"app id", e.APIAppID},
		{"event type", e.EventType}, {"event id", e.EventID},
	} {
		if len(f.value) > maxFieldBytes {
			return fmt.Errorf("%w: %s of %d bytes (at most %d)", errMalformed, f.name, len(f.value), maxFieldBytes)
		}
	}
	return nil
}

// cutField shortens s to at most maxFieldBytes without splitting a UTF-8 sequence.
func cutField(s string) string {
	if len(s) <= maxFieldBytes {
		return s
	}
	n := maxFieldBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

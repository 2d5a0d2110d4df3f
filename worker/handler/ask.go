package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/llm"
)

// maxResponseURLPosts is how many messages a response_url accepts.
const maxResponseURLPosts = 5

// Ask answers a slash command (e.g. /ask) through its response_url.
type Ask struct {
	Responder llm.Responder
	HTTP      *http.Client
}

// Handle answers one slash command.
func (h *Ask) Handle(ctx context.Context, m *Message) error {
	form, err := url.ParseQuery(m.Envelope.Body)
	if err != nil {
		return failure.Permanentf("decode slash command: %w", err)
	}
	responseURL := form.Get("response_url")
	if u, err := url.Parse(responseURL); responseURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return failure.Permanentf("slash command without a usable response_url")
	}
	text := form.Get("text")
	if text == "" {
		return h.post(ctx, responseURL, "ephemeral", "Ask me something, for example: "+form.Get("command")+" what is slackrelay?")
	}
	answer, err := h.Responder.Respond(ctx, text)
	if err != nil {
		return fmt.Errorf("responder: %w", err)
	}
	parts := Split(answer, MaxChunkRunes)
	if len(parts) > maxResponseURLPosts {
		parts = parts[:maxResponseURLPosts]
	}
	for i, p := range parts {
		if err := h.post(ctx, responseURL, "in_channel", p); err != nil {
			return fmt.Errorf("response_url part %d/%d: %w", i+1, len(parts), err)
		}
	}
	m.Log.Info("answered slash command", "command", form.Get("command"), "parts", len(parts))
	return nil
}

func (h *Ask) post(ctx context.Context, responseURL, responseType, text string) error {
	body, _ := json.Marshal(map[string]any{"response_type": responseType, "text": text, "replace_original": false})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return failure.AsPermanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := h.HTTP
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL carries a one-time token: do not put it in the error.
		return fmt.Errorf("post to response_url failed: %w", redactURLError(err))
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return &failure.HTTPStatusError{Service: "response_url", Status: resp.StatusCode}
	}
	return nil
}

// redactURLError drops the URL from *url.Error, keeping the cause.
func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

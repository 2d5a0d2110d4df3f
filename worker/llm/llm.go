// Package llm is the slow external call the shipped handlers make: an OpenAI-compatible
// chat-completions client, or, when none is configured, a demo responder that waits a while
// and answers, so the long-work path can be shown and tested without a network.
package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slackrelay/slackrelay/worker/failure"
)

// Responder answers a prompt.
type Responder interface {
	Respond(ctx context.Context, prompt string) (string, error)
}

// Demo is the built-in responder: it waits Delay (or until ctx ends) and echoes.
type Demo struct {
	Delay time.Duration
}

// Respond waits and answers.
func (d Demo) Respond(ctx context.Context, prompt string) (string, error) {
	t := time.NewTimer(d.Delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return "", fmt.Errorf("demo responder: %w", ctx.Err())
	}
	prompt = strings.TrimSpace(prompt)
	if prompt == "" {
		prompt = "(nothing)"
	}
	return fmt.Sprintf("You said: %s\n(This is slackrelay's demo responder after %s of pretend work; set LLM_BASE_URL for real answers.)", prompt, d.Delay), nil
}

// Chat calls POST {BaseURL}/chat/completions.
type Chat struct {
	BaseURL string
	Model   string
	// APIKey returns the key (read from SSM and cached by the caller).
	APIKey func(ctx context.Context) (string, error)
	HTTP   *http.Client
	// System is the system prompt.
	System string
}

type chatRequest struct {
	Model    string        `json:"model"`
	Messages []chatMessage `json:"messages"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatResponse struct {
	Choices []struct {
		Message chatMessage `json:"message"`
	} `json:"choices"`
}

// Respond sends one chat completion. 429 becomes failure.RateLimitError; other statuses
// failure.HTTPStatusError (5xx transient, 4xx permanent). The key never appears in errors.
func (c *Chat) Respond(ctx context.Context, prompt string) (string, error) {
	key, err := c.APIKey(ctx)
	if err != nil {
		return "", fmt.Errorf("llm api key: %w", err)
	}
	msgs := []chatMessage{{Role: "user", Content: prompt}}
	if c.System != "" {
		msgs = append([]chatMessage{{Role: "system", Content: c.System}}, msgs...)
	}
	body, _ := json.Marshal(chatRequest{Model: c.Model, Messages: msgs})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return "", failure.AsPermanent(fmt.Errorf("llm request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("llm call: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", fmt.Errorf("llm read answer: %w", err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if after <= 0 {
			after = 30
		}
		return "", &failure.RateLimitError{Service: "llm", RetryAfter: time.Duration(after) * time.Second}
	}
	if resp.StatusCode/100 != 2 {
		return "", &failure.HTTPStatusError{Service: "llm", Status: resp.StatusCode}
	}
	var out chatResponse
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Choices) == 0 {
		return "", fmt.Errorf("llm answer has no choices (HTTP %d, %d bytes)", resp.StatusCode, len(raw))
	}
	return out.Choices[0].Message.Content, nil
}

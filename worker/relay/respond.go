package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/progress"
)

// MaxResponseURLPosts is how many messages one response_url accepts (within 30 minutes).
const MaxResponseURLPosts = 5

// DefaultResponseURLPrefix is where Slack's response_urls live.
const DefaultResponseURLPrefix = "https://hooks.slack.com/"

// RespondOption tunes a response_url post.
type RespondOption func(*respondOptions)

type respondOptions struct {
	responseType    string
	replaceOriginal bool
	lastBlocks      []slack.Block
}

// InChannel makes the response visible to everyone in the channel (default: only the user).
func InChannel() RespondOption {
	return func(o *respondOptions) { o.responseType = slack.ResponseTypeInChannel }
}

// ReplaceOriginal replaces the message the interaction came from.
func ReplaceOriginal() RespondOption { return func(o *respondOptions) { o.replaceOriginal = true } }

// RespondBlocks appends blocks to the last message of the response.
func RespondBlocks(blocks ...slack.Block) RespondOption {
	return func(o *respondOptions) { o.lastBlocks = append(o.lastBlocks, blocks...) }
}

// Respond answers through the delivery's response_url (slash commands, interactions), split
// into several messages when long (at most 5 per response_url, counted across calls).
// Exactly once, like Reply, except in one window no reader can close: a post whose answer
// was lost (the worker died mid-request) is posted again, because Slack offers no way to read
// response_url messages back.
func (s *Session) Respond(ctx context.Context, text string, opts ...RespondOption) error {
	o := respondOptions{responseType: slack.ResponseTypeEphemeral}
	for _, opt := range opts {
		opt(&o)
	}
	if err := s.checkResponseURL(); err != nil {
		return err
	}
	id := s.nextStep("respond")
	st, resumed := s.lease.Step(id)
	if st.Done {
		return nil
	}
	if !resumed {
		budget := MaxResponseURLPosts - s.responsesUsed(id)
		if budget <= 0 {
			return failure.Permanentf("respond: this response_url has taken its %d messages", MaxResponseURLPosts)
		}
		st = progress.Step{Kind: "respond", Parts: plan(text, budget), Pending: true}
		if err := s.save(ctx, id, st); err != nil {
			return err
		}
	} else if st.Pending {
		s.Log.Warn("an earlier attempt's response_url post may have gone out; posting it again (response_url cannot be read back)",
			"step", id, "part", len(st.Sent)+1)
	}
	_, err := s.sendParts(ctx, id, st, resumed, partSink{
		what: "response_url",
		send: func(ctx context.Context, parts []string, i int) (string, error) {
			msg := map[string]any{"response_type": o.responseType, "text": parts[i], "replace_original": o.replaceOriginal && i == 0}
			if i == len(parts)-1 && len(o.lastBlocks) > 0 {
				msg["blocks"] = append([]slack.Block{slack.NewMarkdownBlock("", parts[i])}, o.lastBlocks...)
			}
			return "", s.postResponseURL(ctx, msg)
		},
		notSent: notSentHTTP,
	})
	return err
}

// responsesUsed counts the response_url messages earlier respond steps planned.
func (s *Session) responsesUsed(except string) int {
	n := 0
	for i := 1; ; i++ {
		id := fmt.Sprintf("respond#%d", i)
		if id == except {
			return n
		}
		st, ok := s.lease.Step(id)
		if !ok {
			return n
		}
		n += len(st.Parts)
	}
}

func (s *Session) checkResponseURL() error {
	raw := s.about.responseURL
	if raw == "" {
		return failure.Permanentf("respond: this delivery has no response_url")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return failure.Permanentf("respond: response_url is not an http(s) URL")
	}
	prefixes := s.rt.ResponseURLPrefixes
	if len(prefixes) == 0 {
		prefixes = []string{DefaultResponseURLPrefix}
	}
	for _, p := range prefixes {
		if strings.HasPrefix(raw, p) {
			return nil
		}
	}
	// The URL carries a one-time token: name only its host.
	return failure.Permanentf("respond: response_url host %s is not one of Slack's (RESPONSE_URL_PREFIXES)", u.Host)
}

func (s *Session) postResponseURL(ctx context.Context, msg map[string]any) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return failure.AsPermanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.about.responseURL, bytes.NewReader(body))
	if err != nil {
		return failure.AsPermanent(errors.New("response_url request could not be built"))
	}
	req.Header.Set("Content-Type", "application/json")
	client := s.rt.HTTP
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL carries a one-time token: keep it out of the error.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return fmt.Errorf("post to response_url: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests {
		return &failure.RateLimitError{Service: "response_url", RetryAfter: failure.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	if resp.StatusCode/100 != 2 {
		return &failure.HTTPStatusError{Service: "response_url", Status: resp.StatusCode}
	}
	return nil
}

func notSentHTTP(err error) bool {
	var hs *failure.HTTPStatusError
	var rl *failure.RateLimitError
	return errors.As(err, &hs) && hs.Status < 500 || errors.As(err, &rl)
}

// Ephemeral shows text to user only, in the delivery's channel (and thread), once: a retry
// after it was shown does not show it again. An answer lost mid-request is shown again, as
// ephemeral messages cannot be read back.
func (s *Session) Ephemeral(ctx context.Context, user, text string) error {
	if s.about.channel == "" {
		return failure.Permanentf("ephemeral: this delivery has no channel")
	}
	id := s.nextStep("ephemeral")
	st, _ := s.lease.Step(id)
	if st.Done {
		return nil
	}
	st = progress.Step{Kind: "ephemeral", Pending: true}
	if err := s.save(ctx, id, st); err != nil {
		return err
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if s.about.threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(s.about.threadTS))
	}
	if _, err := s.Slack.PostEphemeralContext(ctx, s.about.channel, user, opts...); err != nil {
		return fmt.Errorf("post ephemeral: %w", err)
	}
	return s.save(ctx, id, progress.Step{Kind: "ephemeral", Done: true})
}

// Update replaces a message's text (and blocks), once: the new text is recorded before the
// call, so a retry after a crash writes the same content again (an update is idempotent)
// instead of a second, different answer, and a retry after it was done does nothing.
func (s *Session) Update(ctx context.Context, channel, ts, text string, opts ...PostOption) error {
	var o postOptions
	for _, opt := range opts {
		opt(&o)
	}
	id := s.nextStep("update")
	st, resumed := s.lease.Step(id)
	if st.Done {
		return nil
	}
	if !resumed || len(st.Parts) == 0 {
		st = progress.Step{Kind: "update", Parts: []string{truncateRunes(text, maxUpdateRunes)}, Pending: true}
		if err := s.save(ctx, id, st); err != nil {
			return err
		}
	}
	msg := []slack.MsgOption{slack.MsgOptionText(st.Parts[0], false)}
	if len(o.lastBlocks) > 0 {
		msg = append(msg, slack.MsgOptionBlocks(append([]slack.Block{slack.NewMarkdownBlock("", st.Parts[0])}, o.lastBlocks...)...))
	}
	if _, _, _, err := s.Slack.UpdateMessageContext(ctx, channel, ts, msg...); err != nil {
		return fmt.Errorf("update message %s: %w", ts, err)
	}
	return s.save(ctx, id, progress.Step{Kind: "update", Value: ts, Done: true})
}

// maxUpdateRunes keeps an updated message within one message (and one markdown block).
const maxUpdateRunes = 11000

func truncateRunes(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}

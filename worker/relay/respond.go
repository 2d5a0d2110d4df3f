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
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// maxResponseURLPosts is how many messages one response_url accepts (within 30 minutes).
const maxResponseURLPosts = 5

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
// Exactly once as far as Slack allows: Slack offers no way to read response_url messages
// back, so a part handed over whose answer was lost (the worker died mid-request, the
// connection dropped) is not sent again: at most once, never twice (docs/worker.md).
func (s *Session) Respond(ctx context.Context, text string, opts ...RespondOption) error {
	o := respondOptions{responseType: slack.ResponseTypeEphemeral}
	for _, opt := range opts {
		opt(&o)
	}
	if err := s.checkResponseURL(); err != nil {
		return err
	}
	extra, err := lastBlocksChars(o.lastBlocks)
	if err != nil {
		return err
	}
	name, legacyID, err := s.step("respond", "response_url")
	if err != nil {
		return err
	}
	var st partsStep
	resumed, err := s.load(name, legacyID, &st)
	if err != nil {
		return err
	}
	if st.Done {
		return nil
	}
	if !resumed || len(st.Parts) == 0 {
		budget := maxResponseURLPosts - s.responsesUsed(name)
		if budget <= 0 {
			return failure.Permanentf("respond: this response_url has taken its %d messages", maxResponseURLPosts)
		}
		st = partsStep{Kind: "respond", Parts: plan(text, budget, extra)}
	}
	_, err = s.sendParts(ctx, name, st, partSink{
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

// responsesUsed counts the response_url messages the other respond steps planned.
func (s *Session) responsesUsed(except string) int {
	n := 0
	l := s.run.lease
	for _, name := range l.Steps() {
		if name == except || !strings.HasPrefix(name, "respond:") {
			continue
		}
		var st partsStep
		if ok, err := l.Load(name, &st); ok && err == nil {
			n += len(st.Parts)
		}
	}
	return n
}

func (s *Session) checkResponseURL() error {
	raw := s.run.about.responseURL
	if raw == "" {
		return failure.Permanentf("respond: this delivery has no response_url")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return failure.Permanentf("respond: response_url is not an http(s) URL")
	}
	prefixes := s.run.rt.ResponseURLPrefixes
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.run.about.responseURL, bytes.NewReader(body))
	if err != nil {
		return failure.AsPermanent(errors.New("response_url request could not be built"))
	}
	req.Header.Set("Content-Type", "application/json")
	client := s.run.rt.HTTP
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

// notSentHTTP reports whether a response_url error proves the post did not go out: Slack
// answered with a refusal, a rate limit, or a server error of its own (500, 503). A lost
// answer, a timeout or a gateway's 502/504 leave it uncertain: the post is not sent again.
func notSentHTTP(err error) bool {
	var hs *failure.HTTPStatusError
	var rl *failure.RateLimitError
	switch {
	case errors.As(err, &rl):
		return true
	case errors.As(err, &hs):
		return hs.Status != http.StatusBadGateway && hs.Status != http.StatusGatewayTimeout
	}
	return false
}

// Ephemeral shows text to user only, in the delivery's channel (and thread), at most once:
// ephemeral messages cannot be read back, so one handed over whose answer was lost is not
// shown again (docs/worker.md).
func (s *Session) Ephemeral(ctx context.Context, user, text string) error {
	a := s.run.about
	if a.channel == "" {
		return failure.Permanentf("ephemeral: this delivery has no channel")
	}
	name, legacyID, err := s.step("ephemeral", user)
	if err != nil {
		return err
	}
	var st partsStep
	if _, err := s.load(name, legacyID, &st); err != nil {
		return err
	}
	switch {
	case st.Done:
		return nil
	case st.Pending:
		s.Log.Warn("an earlier attempt may have shown this ephemeral message, which cannot be read back; not showing it again", "step", name)
		s.settle(name, partsStep{Kind: "ephemeral", Done: true})
		return nil
	}
	st = partsStep{Kind: "ephemeral", Pending: true}
	if err := s.save(ctx, name, st); err != nil {
		return err
	}
	body := cutToFit(text, maxTextChars, 0, "…")
	opts := []slack.MsgOption{slack.MsgOptionText(body, false)}
	if a.threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(a.threadTS))
	}
	if _, err := s.Slack.PostEphemeralContext(ctx, a.channel, user, opts...); err != nil {
		if notSent(err) {
			s.settle(name, partsStep{Kind: "ephemeral"})
		}
		return fmt.Errorf("post ephemeral: %w", err)
	}
	s.settle(name, partsStep{Kind: "ephemeral", Done: true})
	return nil
}

// Update replaces a message's text (and blocks), once: the new text is recorded before the
// call, so a retry after a crash writes the same content again (an update is idempotent)
// instead of a second, different answer, and a retry after it was done does nothing. Text
// that does not fit one message (one markdown block next to the blocks) is cut with a note.
func (s *Session) Update(ctx context.Context, channel, ts, text string, opts ...PostOption) error {
	var o postOptions
	for _, opt := range opts {
		opt(&o)
	}
	extra, err := lastBlocksChars(o.lastBlocks)
	if err != nil {
		return err
	}
	name, legacyID, err := s.step("update", channel+":"+ts)
	if err != nil {
		return err
	}
	var st partsStep
	resumed, err := s.load(name, legacyID, &st)
	if err != nil {
		return err
	}
	if st.Done {
		return nil
	}
	if !resumed || len(st.Parts) == 0 {
		body := text
		if body == "" {
			body = "(no answer)"
		}
		st = partsStep{Kind: "update", Parts: []string{cutToFit(body, MaxAnswerMessageChars, extra, cutNote)}}
	}
	st.Pending = true
	if err := s.save(ctx, name, st); err != nil {
		return err
	}
	msg := []slack.MsgOption{slack.MsgOptionText(st.Parts[0], false),
		slack.MsgOptionBlocks(append([]slack.Block{slack.NewMarkdownBlock("", st.Parts[0])}, o.lastBlocks...)...)}
	if _, _, _, err := s.Slack.UpdateMessageContext(ctx, channel, ts, msg...); err != nil {
		return fmt.Errorf("update message %s: %w", ts, err)
	}
	s.settle(name, partsStep{Kind: "update", Value: ts, Done: true})
	return nil
}

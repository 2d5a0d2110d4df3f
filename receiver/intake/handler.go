// Package intake is the receiver, the first stage of slackrelay: it verifies a Slack request, wraps it in
// an envelope, puts it on the events queue and answers within milliseconds. One handler core
// serves both the Lambda adapter (API Gateway HTTP API payload v2, Function URLs) and the
// local HTTP server.
package intake

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/logging"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/shared/slackverify"
)

// The routes Slack is configured with, all under PathPrefix.
const (
	PathPrefix        = "/slack/"
	PathEvents        = "/slack/events"
	PathCommands      = "/slack/commands"
	PathInteractivity = "/slack/interactivity"
	// The install pages, served by Handler.Pages (many workspaces only; 404 otherwise).
	PathInstall       = "/slack/install"
	PathOAuthRedirect = "/slack/oauth_redirect"
)

// Slack's retry headers.
const (
	HeaderRetryNum    = "X-Slack-Retry-Num"
	HeaderRetryReason = "X-Slack-Retry-Reason"
)

// SecretKey is the key of the signing secret in the secret source.
const SecretKey = "signing_secret"

// Sender is the one SQS call the receiver makes; *sqs.Client satisfies it.
type Sender interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var _ Sender = (*sqs.Client)(nil)

// Secrets yields the signing secret and can reload it once a rotation is suspected.
type Secrets interface {
	Get(ctx context.Context, key string) (string, error)
	ForceRefresh(ctx context.Context) (bool, error)
}

// Request is a transport-neutral HTTP request. Header looks a header up by its canonical
// name, whatever case the transport delivered it in.
type Request struct {
	Method    string
	Path      string
	Header    func(name string) string
	Body      []byte
	RequestID string
	// RawQuery is the query string without the '?' (the install pages read it).
	RawQuery string
	// Cookies are the request's cookies as name=value pairs (API Gateway payload v2 hands
	// them over apart from the headers).
	Cookies []string
	// BaseURL is the scheme, host and stage prefix the request was addressed to, with no
	// trailing slash (https://abc.execute-api.eu-west-1.amazonaws.com,
	// http://127.0.0.1:3000): the install pages build their own links from it.
	BaseURL string

	// bodyText is Body as a string when the transport already holds one (Lambda events), so
	// the envelope takes it instead of copying Body again.
	bodyText string
}

// Response is what the transport writes back.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
	// NoRetry asks Slack not to retry (X-Slack-No-Retry: 1): set on rejections of requests
	// that would fail the same way again (400, 404, 405, 413), not on 401 or 503.
	NoRetry bool
	// Headers are further response headers (the install pages' Cache-Control and
	// Content-Security-Policy), SetCookies Set-Cookie values.
	Headers    map[string]string
	SetCookies []string
}

// Pages serves the install pages (PathInstall, PathOAuthRedirect) of an app distributed to
// many workspaces; *installflow.Flow implements it.
type Pages interface {
	ServePage(ctx context.Context, r *Request) Response
}

// Handler is the receiver's core.
type Handler struct {
	QueueURL     string
	MaxBodyBytes int
	Sender       Sender
	Secrets      Secrets
	Verifier     slackverify.Verifier
	Log          *slog.Logger
	Metrics      *metrics.Emitter
	Now          func() time.Time
	// Pages, when set, serves the install pages; nil (one workspace) answers them 404.
	Pages Pages

	reported sync.Map // configuration error codes already logged at ERROR
	// messageLimit replaces envelope.MaxSQSMessageBytes when set (the fuzz test, so that
	// short bodies reach both forms of the envelope).
	messageLimit int
}

// Rejection reasons, used in logs and as the metric dimension.
const (
	reasonNotFound    = "not_found"
	reasonMethod      = "method_not_allowed"
	reasonTooLarge    = "too_large"
	reasonSignature   = "bad_signature"
	reasonMalformed   = "malformed"
	reasonNotUTF8     = "not_utf8"
	reasonSecret      = "secret_unavailable"
	reasonEnqueue     = "enqueue_failed"
	reasonEnvelopeBig = "envelope_too_large"
	reasonEncode      = "encode_failed"
)

var (
	respAccepted = Response{Status: 202}
	respOK       = Response{Status: 200}
)

func reject(status int, msg string, noRetry bool) Response {
	return Response{Status: status, ContentType: "text/plain; charset=utf-8", Body: []byte(msg + "\n"), NoRetry: noRetry}
}

// Handle verifies, enqueues and answers one request.
func (h *Handler) Handle(ctx context.Context, r *Request) Response {
	var kind envelope.Kind
	switch r.Path {
	case PathEvents:
		kind = envelope.KindEvent
	case PathCommands:
		kind = envelope.KindSlashCommand
	case PathInteractivity:
		kind = envelope.KindInteraction
	case PathInstall, PathOAuthRedirect:
		if h.Pages != nil {
			return h.Pages.ServePage(ctx, r)
		}
		return h.rejected(r, reasonNotFound, nil, reject(404, "not found", false))
	default:
		// A path under /slack/ that is not a route is more likely a configuration mistake
		// (a route renamed, a stage prefix) than a bad request: Slack may retry it, so an
		// event is not lost while the mistake is fixed.
		return h.rejected(r, reasonNotFound, nil, reject(404, "not found", !strings.HasPrefix(r.Path, PathPrefix)))
	}
	if r.Method != "POST" {
		return h.rejected(r, reasonMethod, nil, reject(405, "method not allowed: use POST", true))
	}
	if len(r.Body) > h.MaxBodyBytes {
		return h.rejected(r, reasonTooLarge, nil, reject(413, "request body too large: the limit is "+strconv.Itoa(h.MaxBodyBytes)+" bytes (MAX_BODY_BYTES)", true))
	}
	ts := r.Header(slackverify.HeaderTimestamp)
	if status, reason, err := h.verify(ctx, r, ts); err != nil {
		msg := "invalid slack signature"
		if status == 503 {
			msg = "signing secret unavailable, retry later"
		}
		// No X-Slack-No-Retry here: a signature that fails because the secret was rotated
		// moments ago verifies on Slack's retry, after the cache has been refreshed.
		return h.rejected(r, reason, err, reject(status, msg, false))
	}
	if !utf8.Valid(r.Body) {
		return h.rejected(r, reasonNotUTF8, nil, reject(400, "request body is not UTF-8", true))
	}

	e := envelope.Envelope{Version: envelope.Version}
	var p parsed
	var err error
	if kind == envelope.KindEvent {
		err = parseEvent(r.Body, &e, &p)
	} else {
		err = parseForm(kind, r.Body, ts, &e, &p)
	}
	if err != nil {
		return h.rejected(r, reasonMalformed, err, reject(400, "malformed request body", true))
	}
	switch {
	case p.challenge != "":
		h.Log.Info("url_verification answered", logging.KeyRequestID, r.RequestID)
		return Response{Status: 200, ContentType: "text/plain; charset=utf-8", Body: []byte(p.challenge)}
	case p.rateLimited:
		h.Log.Warn("slack reports app_rate_limited: events are being dropped by Slack for this workspace",
			logging.KeyRequestID, r.RequestID, logging.KeyTeamID, e.TeamID)
		h.Metrics.Count("AppRateLimited", 1)
		return respOK
	case p.noEnqueue != "":
		if p.answer != nil {
			h.Log.Warn("answered without enqueueing", logging.KeyRequestID, r.RequestID, "reason", p.noEnqueue)
			return Response{Status: 200, ContentType: "application/json", Body: p.answer}
		}
		h.Log.Info("answered without enqueueing", logging.KeyRequestID, r.RequestID, "reason", p.noEnqueue)
		return respOK
	}

	if err := checkFieldSizes(&e); err != nil {
		return h.rejected(r, reasonMalformed, err, reject(400, "malformed request body", true))
	}
	e.ID = envelope.NewID()
	e.ReceivedAt = h.now().UTC()
	e.Body = r.bodyText // the Lambda front end holds the body as a string already
	if e.Body == "" {
		e.Body = string(r.Body)
	}
	if rn := r.Header(HeaderRetryNum); rn != "" {
		e.RetryNum, _ = strconv.Atoi(rn)
		e.RetryReason = cutField(r.Header(HeaderRetryReason))
	}
	resp := h.enqueue(ctx, r, &e)
	if resp.Status/100 == 2 && p.answerQueued {
		return Response{Status: 200, ContentType: "application/json", Body: p.answer}
	}
	return resp
}

func (h *Handler) rejected(r *Request, reason string, err error, resp Response) Response {
	attrs := []any{logging.KeyRequestID, r.RequestID, "reason", reason, "status", resp.Status, "path", r.Path}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	level := slog.LevelWarn
	if resp.Status >= 500 && reason != reasonSecret {
		// A missing secret is reported once, at ERROR, by the secret store; each request it
		// turns away is a WARN.
		level = slog.LevelError
	}
	h.Log.Log(context.Background(), level, "request rejected", attrs...)
	h.Metrics.Count("Rejected", 1, metrics.Dim{Name: "Reason", Value: reason})
	return resp
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

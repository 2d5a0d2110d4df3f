package intake

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/slackverify"
)

// HandleLambda adapts API Gateway HTTP API payload v2 events (and Function URL events, which
// share the format) to Handle. Base64 bodies are decoded to the exact bytes Slack signed.
func (h *Handler) HandleLambda(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	path := routePath(ev.RawPath, ev.RequestContext.Stage)
	body, text := []byte(ev.Body), ev.Body
	if ev.IsBase64Encoded {
		dec, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return toLambda(h.rejected(&Request{Path: path, RequestID: ev.RequestContext.RequestID}, reasonMalformed, err,
				reject(400, "malformed request body", true))), nil
		}
		body, text = dec, ""
	}
	headers := ev.Headers
	r := Request{
		Method:    ev.RequestContext.HTTP.Method,
		Path:      path,
		Body:      body,
		bodyText:  text,
		RequestID: ev.RequestContext.RequestID,
		Header:    func(name string) string { return lookupHeader(headers, name) },
	}
	if isPage(path) {
		r.RawQuery, r.Cookies, r.BaseURL = ev.RawQueryString, ev.Cookies, lambdaBaseURL(ev)
	}
	return toLambda(h.Handle(ctx, &r)), nil
}

// routePath is the path a route sees. API Gateway's rawPath starts with the stage's name for
// every stage but $default (/prod/slack/events on stage prod); Function URLs report the stage
// $default. The stage prefix is removed so that routes match on every stage.
func routePath(rawPath, stage string) string {
	if stage == "" || stage == "$default" {
		return rawPath
	}
	if rest, ok := strings.CutPrefix(rawPath, "/"+stage); ok && (rest == "" || rest[0] == '/') {
		if rest == "" {
			return "/"
		}
		return rest
	}
	return rawPath
}

// isPage reports whether path is one of the install pages, the only routes that read the
// query, the cookies and the base URL: the Slack routes' hot path does not build them.
func isPage(path string) bool { return path == PathInstall || path == PathOAuthRedirect }

// lambdaBaseURL is where API Gateway received the request: its domain name (the API's, or a
// custom domain's) and, for a stage other than $default, the stage. The domain comes from the
// request context, which API Gateway fills, not from a header the client chose.
func lambdaBaseURL(ev events.APIGatewayV2HTTPRequest) string {
	if ev.RequestContext.DomainName == "" {
		return ""
	}
	base := "https://" + ev.RequestContext.DomainName
	if stage := ev.RequestContext.Stage; stage != "" && stage != "$default" && strings.HasPrefix(ev.RawPath, "/"+stage+"/") {
		base += "/" + stage
	}
	return base
}

// lowerHeaderNames are the lower-case forms of the headers Handle asks for, worked out once
// rather than on every lookup.
var lowerHeaderNames = func() map[string]string {
	m := map[string]string{}
	for _, name := range []string{slackverify.HeaderTimestamp, slackverify.HeaderSignature, HeaderRetryNum, HeaderRetryReason} {
		m[name] = strings.ToLower(name)
	}
	return m
}()

// lookupHeader finds name in headers that API Gateway lower-cased (or, defensively, kept in
// another case).
func lookupHeader(headers map[string]string, name string) string {
	lower, ok := lowerHeaderNames[name]
	if !ok {
		lower = strings.ToLower(name)
	}
	if v, ok := headers[lower]; ok {
		return v
	}
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func toLambda(r Response) events.APIGatewayV2HTTPResponse {
	out := events.APIGatewayV2HTTPResponse{StatusCode: r.Status, Body: string(r.Body), Cookies: r.SetCookies}
	if r.ContentType != "" || r.NoRetry || len(r.Headers) > 0 {
		out.Headers = make(map[string]string, 2+len(r.Headers))
		for k, v := range r.Headers {
			out.Headers[strings.ToLower(k)] = v
		}
		if r.ContentType != "" {
			out.Headers["content-type"] = r.ContentType
		}
		if r.NoRetry {
			out.Headers["x-slack-no-retry"] = "1"
		}
	}
	return out
}

// ServeHTTP is the local mode: the same core behind net/http.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r := Request{
		Method:    req.Method,
		Path:      req.URL.Path,
		RequestID: req.Header.Get("X-Request-Id"),
		Header:    func(name string) string { return req.Header.Get(textproto.CanonicalMIMEHeaderKey(name)) },
	}
	if isPage(r.Path) {
		r.RawQuery, r.BaseURL = req.URL.RawQuery, localBaseURL(req)
		for _, c := range req.Cookies() {
			r.Cookies = append(r.Cookies, c.Name+"="+c.Value)
		}
	}
	if r.RequestID == "" {
		r.RequestID = envelope.NewID()[:16]
	}
	// Read one byte past the limit so an oversized body is detected without buffering it all.
	body, err := io.ReadAll(io.LimitReader(req.Body, int64(h.MaxBodyBytes)+1))
	if err != nil {
		var mbe *http.MaxBytesError
		status := 400
		if errors.As(err, &mbe) {
			status = 413
		}
		writeResponse(w, h.rejected(&r, reasonMalformed, err, reject(status, "could not read request body", true)))
		return
	}
	r.Body = body
	writeResponse(w, h.Handle(req.Context(), &r))
}

// localBaseURL is the local server's own address as the client named it.
func localBaseURL(req *http.Request) string {
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + req.Host
}

func writeResponse(w http.ResponseWriter, r Response) {
	for k, v := range r.Headers {
		w.Header().Set(k, v)
	}
	for _, c := range r.SetCookies {
		w.Header().Add("Set-Cookie", c)
	}
	if r.ContentType != "" {
		w.Header().Set("Content-Type", r.ContentType)
	}
	if r.NoRetry {
		w.Header().Set("X-Slack-No-Retry", "1")
	}
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}

package interleave

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
)

// gate is the HTTP client of the worker's DynamoDB client (dynamodb.Options.HTTPClient) and of
// its Slack client (slack.OptionHTTPClient): every request of an invocation first waits for
// the scheduler, which decides whether it goes to the server and whether its answer comes
// back. A request outside any invocation is a harness bug: it is refused.
type gate struct {
	service string // "ddb" or "slack"
	next    *http.Client
}

// errLost is what a client sees of a call whose answer was lost: a connection reset after the
// request was sent (the AWS SDK retries it; the relay treats the call as uncertain).
var errLost = &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer (interleave: the answer was lost)")}

// errCrashed is what the remaining code of a crashed invocation sees of its calls.
var errCrashed = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("interleave: the invocation has crashed")}

// Do sends r if the scheduler lets it.
func (g *gate) Do(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("interleave: read the request body: %w", err)
		}
	}
	inv := invocationOf(r.Context())
	if inv == nil {
		return nil, fmt.Errorf("interleave: a %s request outside any invocation (%s)", g.service, r.URL.Path)
	}
	if err := r.Context().Err(); err != nil {
		return nil, err // as net/http: a request whose context is done is not sent
	}
	c := g.describe(r, body)
	d := inv.gate(c)
	switch d {
	case dead, crashBefore, kill:
		return nil, errCrashed
	case fail:
		if g.service == "slack" {
			inv.answers++
		}
		return g.refusal(r), nil
	}
	resp, respBody, err := g.forward(r, body)
	if err != nil {
		// The local servers do not fail; a schedule that meets this cannot be replayed.
		inv.s.violatef("harness: %s %s could not reach the server: %v", g.service, c.op, err)
		inv.die()
		return nil, errCrashed
	}
	inv.observe(&c, resp.StatusCode)
	switch d {
	case lose:
		return nil, errLost
	case crashAfter:
		inv.die()
		return nil, errCrashed
	}
	if g.service == "slack" {
		inv.answers++ // the client learns what Slack did
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	return resp, nil
}

// forward sends r with body to the server and reads the whole answer.
func (g *gate) forward(r *http.Request, body []byte) (*http.Response, []byte, error) {
	out := r.Clone(r.Context())
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.Body, _ = out.GetBody()
	resp, err := g.next.Do(out)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, b, nil
}

// refusal is the server's answer to a call it refused without acting on it: DynamoDB's
// InternalServerError (which the SDK retries), Slack's internal_error.
func (g *gate) refusal(r *http.Request) *http.Response {
	status, ctype, body := http.StatusOK, "application/json; charset=utf-8", `{"ok":false,"error":"internal_error"}`
	if g.service == "ddb" {
		status, ctype = http.StatusInternalServerError, "application/x-amz-json-1.0"
		body = `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"interleave: refused"}`
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {ctype}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: r,
	}
}

// describe names a request for the trace: the Slack method, or the DynamoDB operation, a
// journal write by what it does (claim, save of steps, release, complete).
func (g *gate) describe(r *http.Request, body []byte) call {
	if g.service == "slack" {
		return call{service: "slack", op: r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]}
	}
	c := call{service: "ddb", op: strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")}
	var in struct {
		Key                       map[string]map[string]string
		UpdateExpression          string
		ExpressionAttributeNames  map[string]string
		ExpressionAttributeValues map[string]map[string]any
	}
	_ = json.Unmarshal(body, &in)
	c.key = in.Key["pk"]["S"]
	if c.op == "UpdateItem" {
		x := in.UpdateExpression
		switch {
		case strings.Contains(x, "#owner = :me"):
			c.op = "claim"
			c.owner, _ = in.ExpressionAttributeValues[":me"]["S"].(string)
		case strings.Contains(x, "#st = :done"):
			c.op = "complete"
		case strings.Contains(x, "#lease = :zero"):
			c.op = "release"
		default:
			c.op = "save"
		}
		var steps []string
		for alias, n := range in.ExpressionAttributeNames {
			if s, ok := strings.CutPrefix(n, "s:"); ok && c.op != "complete" {
				steps = append(steps, s[:strings.IndexByte(s+":", ':')])
				if c.steps == nil {
					c.steps = map[string]string{}
				}
				c.steps[s], _ = in.ExpressionAttributeValues[":"+strings.TrimPrefix(alias, "#")]["S"].(string)
			}
		}
		sort.Strings(steps)
		if len(steps) > 0 {
			c.detail = "[" + strings.Join(steps, " ") + "]"
		}
	}
	if a := r.Header.Get("Amz-Sdk-Request"); a != "" && !strings.HasPrefix(a, "attempt=1;") {
		c.detail += " (" + strings.SplitN(a, ";", 2)[0] + ")"
	}
	return c
}

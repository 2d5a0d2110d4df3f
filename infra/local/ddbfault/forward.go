package ddbfault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// maxBodyBytes bounds a request or answer body (DynamoDB's own limits are lower).
const maxBodyBytes = 32 << 20

// errorTypePrefix is the namespace DynamoDB puts before an error's type.
const errorTypePrefix = "com.amazonaws.dynamodb.v20120810#"

// hopHeaders are the headers of one connection, not copied from one side to the other.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length"}

// serveDynamoDB handles every request that is not a control request: it records it,
// applies the first rule that fires on it and forwards it.
func (p *Proxy) serveDynamoDB(w http.ResponseWriter, r *http.Request) {
	if c, ok := r.Context().Value(connKey{}).(*conn); ok {
		c.dynamo.Store(true)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		closeConn(w) // the client went away mid-request
		return
	}
	c := newCall(r.Header, body, p.opts.KeyAttribute)
	c.At = p.opts.Now()
	act, gen, down := p.arrive(&c)
	defer p.finish(&c, gen)
	if down {
		c.Fault = FaultDown
		closeConn(w)
		return
	}
	if len(body) > maxBodyBytes {
		p.answer(w, &c, Fail(http.StatusRequestEntityTooLarge, ErrValidation, "request body too large for the fault proxy"))
		return
	}
	p.handle(r.Context(), w, r, body, &c, act)
}

// arrive numbers and counts c and picks the action of the first rule that fires on it.
// It returns the recorder's generation and whether the proxy is down (then no rule sees c).
func (p *Proxy) arrive(c *Call) (act Action, gen int, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rec.arrive(c)
	if p.down.Load() {
		return Pass(), p.rec.gen, true
	}
	act = Pass()
	for _, r := range p.rules {
		if r.observe(*c) && c.Rule == 0 {
			c.Rule = r.status.ID
			r.status.Fired++
			act = r.Action
		}
	}
	return act, p.rec.gen, false
}

func (p *Proxy) finish(c *Call, gen int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rec.finish(*c, gen)
}

// handle applies act to the request: before forwarding, the forward, after it.
func (p *Proxy) handle(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte, c *Call, act Action) {
	before := act
	if act.Kind == KindHook {
		c.Fault = KindHook
		before = Pass()
		if act.Before != nil {
			before = hookAction(act.Before(ctx, *c))
		}
	}
	switch before.Kind {
	case KindFail:
		p.answer(w, c, before)
		return
	case KindReset:
		c.Fault = KindReset
		closeConn(w)
		return
	case KindDelay:
		c.Fault = KindDelay
		if !sleep(ctx, before.Delay) {
			c.Error = "the client went away during the delay"
			return
		}
	}
	a, header, err := p.forward(ctx, r, body)
	if err != nil {
		c.Error = err.Error()
		closeConn(w) // as if DynamoDB were unreachable
		return
	}
	c.Forwarded, c.Status, c.ErrorType = true, a.Status, a.ErrorType
	after := Pass()
	switch {
	case before.Kind == KindDrop:
		after = Drop()
	case act.Kind == KindHook && act.After != nil:
		after = hookAction(act.After(ctx, *c, a))
	}
	switch after.Kind {
	case KindFail:
		p.answer(w, c, after)
		return
	case KindReset, KindDrop:
		c.Fault = KindDrop
		closeConn(w)
		return
	case KindDelay:
		c.Fault = KindDelay
		if !sleep(ctx, after.Delay) {
			c.Error = "the client went away during the delay"
			return
		}
	}
	for k, vs := range header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.Body)))
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Body)
	c.Answered = a.Status
}

// hookAction is the action a hook returned, normalized; a hook cannot return a hook.
func hookAction(a Action) Action {
	a = a.normalized()
	if a.Kind == KindHook {
		return Pass()
	}
	return a
}

// forward sends the request to DynamoDB and reads its whole answer.
func (p *Proxy) forward(ctx context.Context, r *http.Request, body []byte) (Answer, http.Header, error) {
	u := p.upstream.JoinPath(r.URL.Path)
	u.RawQuery = r.URL.RawQuery
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return Answer{}, nil, fmt.Errorf("forward: %w", err)
	}
	out.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	// An uncompressed answer, whose error type the proxy can read and whose X-Amz-Crc32
	// stays right for the client.
	out.Header.Set("Accept-Encoding", "identity")
	out.Host = r.Host
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		return Answer{}, nil, fmt.Errorf("forward: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return Answer{}, nil, fmt.Errorf("forward: read the answer: %w", err)
	}
	a := Answer{Status: resp.StatusCode, Body: b}
	if resp.StatusCode >= 300 {
		a.ErrorType = errorType(b)
	}
	header := resp.Header.Clone()
	for _, h := range hopHeaders {
		header.Del(h)
	}
	return a, header, nil
}

// answer writes a DynamoDB error answer as DynamoDB does (JSON 1.0, __type, the CRC32 the
// SDK checks) and records it as c's fault.
func (p *Proxy) answer(w http.ResponseWriter, c *Call, a Action) {
	body, err := json.Marshal(map[string]string{"__type": errorTypePrefix + a.ErrorType, "message": a.Message})
	if err != nil {
		panic(http.ErrAbortHandler) // a map of strings always marshals
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	h.Set("X-Amzn-Requestid", fmt.Sprintf("DDBFAULT%044d", c.Seq))
	w.WriteHeader(a.Status)
	_, _ = w.Write(body)
	c.Fault, c.Answered = KindFail, a.Status
}

// closeConn closes the client's connection without an answer, with a reset (RST) so the
// client's read fails at once.
func closeConn(w http.ResponseWriter) {
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server closes the connection itself
	}
	if c, ok := nc.(*conn); ok {
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	_ = nc.Close()
}

// sleep waits d; it reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

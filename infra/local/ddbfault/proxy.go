// Package ddbfault is an HTTP proxy in front of a DynamoDB endpoint (dynalite locally) that
// records every request and injects faults by operation and by order, so that tests can
// break the worker's DynamoDB calls at precise points: "the 2nd UpdateItem fails", "the
// claim's PutItem is applied but its answer is lost", "block the 3rd write on key k until
// the test lets it go".
//
// It reads the JSON 1.0 protocol the SDK speaks: the operation from X-Amz-Target, the
// table and the partition key value from the body, the SDK's invocation id (equal across
// the retries of one operation) and attempt number from amz-sdk-invocation-id and
// amz-sdk-request. It counts reads and writes per key, as operations and as attempts
// (Snapshot), and applies the armed rules (Arm): answer an error without forwarding, delay,
// close the connection before or after DynamoDB applied the request, or call a hook.
// SetDown(true) closes every DynamoDB request's connection, like loopback.Proxy.
// Another process drives it over HTTP through the /_control/ endpoints on the same
// listener (control.go, Client).
//
// It is written here rather than taken from a library because no maintained library
// injects faults into the DynamoDB JSON protocol by operation and order (TCP fault proxies
// see bytes, not operations, and cannot lose an answer after the write was applied). It
// forwards with a small hand-written forwarder rather than httputil.ReverseProxy because
// it must hold DynamoDB's whole answer before deciding whether, when and how the client
// gets it.
package ddbfault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Proxy.
type Options struct {
	// Upstream is the DynamoDB endpoint, e.g. "http://127.0.0.1:8000". Required.
	Upstream string
	// Addr is the address to listen on: "" means 127.0.0.1:0 (a free port); a missing host
	// means 127.0.0.1.
	Addr string
	// KeyAttribute names the tables' partition key attribute (default "pk").
	KeyAttribute string
	// MaxCalls bounds the calls a Snapshot keeps (default 100,000); the counters go on.
	MaxCalls int
	// Now stamps Call.At (default time.Now).
	Now func() time.Time
}

// DefaultKeyAttribute is Options.KeyAttribute's default, the key of slackrelay's tables.
const DefaultKeyAttribute = "pk"

// DefaultMaxCalls is Options.MaxCalls' default.
const DefaultMaxCalls = 100_000

// Proxy is a running DynamoDB fault proxy. It is safe for concurrent use.
type Proxy struct {
	opts      Options
	upstream  *url.URL
	transport *http.Transport
	srv       *http.Server
	addr      string
	down      atomic.Bool

	connMu sync.Mutex
	conns  map[*conn]struct{}

	mu       sync.Mutex
	rules    []*rule
	lastRule int
	rec      recorder
}

// conn is a client connection; dynamo marks one that carried a DynamoDB request, which
// SetDown(true) closes (control requests keep theirs).
type conn struct {
	net.Conn
	dynamo atomic.Bool
}

type connKey struct{}

// Start listens on Options.Addr and serves the proxy in the background until Close.
func Start(opts Options) (*Proxy, error) {
	u, err := url.Parse(opts.Upstream)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("ddbfault: upstream %q is not an http:// endpoint", opts.Upstream)
	}
	if opts.KeyAttribute == "" {
		opts.KeyAttribute = DefaultKeyAttribute
	}
	if opts.MaxCalls <= 0 {
		opts.MaxCalls = DefaultMaxCalls
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("ddbfault: bad address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("ddbfault: listen: %w", err)
	}
	p := &Proxy{
		opts: opts, upstream: u, addr: ln.Addr().String(), conns: map[*conn]struct{}{},
		// No Proxy from the environment: the upstream is on loopback. Enough idle
		// connections for the worker's concurrency, so that load does not open one per call.
		transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second, DisableCompression: true},
		rec:       newRecorder(opts.MaxCalls, 0),
	}
	mux := http.NewServeMux()
	p.routeControl(mux)
	mux.HandleFunc("/", p.serveDynamoDB)
	p.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c.(*conn))
		},
		ConnState: p.trackConn,
	}
	go func() { _ = p.srv.Serve(trackingListener{Listener: ln}) }()
	return p, nil
}

// trackingListener wraps each accepted connection in a *conn.
type trackingListener struct{ net.Listener }

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c}, nil
}

func (p *Proxy) trackConn(c net.Conn, state http.ConnState) {
	cc, ok := c.(*conn)
	if !ok {
		return
	}
	p.connMu.Lock()
	defer p.connMu.Unlock()
	switch state {
	case http.StateNew:
		p.conns[cc] = struct{}{}
	case http.StateHijacked, http.StateClosed:
		delete(p.conns, cc)
	}
}

// URL is the proxy's endpoint, "http://127.0.0.1:N": the DynamoDB endpoint to give a
// client (AWS_ENDPOINT_URL_DYNAMODB) and the base URL of its control API (Client).
func (p *Proxy) URL() string { return "http://" + p.addr }

// Addr is the address the proxy listens on, "127.0.0.1:N".
func (p *Proxy) Addr() string { return p.addr }

// Close stops the proxy: requests in flight get up to 2 s to finish (a hook or delay
// waiting on its request's context ends when its connection is cut after that).
func (p *Proxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = p.srv.Close()
	}
	p.transport.CloseIdleConnections()
	return err
}

// SetDown makes DynamoDB unreachable through the proxy (true): the connections that
// carried DynamoDB requests are closed, and every DynamoDB request that arrives is
// answered by closing its connection (Call.Fault FaultDown), until SetDown(false). The
// counters count those requests; rules do not see them. The control API keeps working.
func (p *Proxy) SetDown(down bool) {
	p.down.Store(down)
	if !down {
		return
	}
	p.connMu.Lock()
	defer p.connMu.Unlock()
	for c := range p.conns {
		if c.dynamo.Load() {
			_ = c.Close()
		}
	}
}

// Down reports whether the proxy is down (SetDown).
func (p *Proxy) Down() bool { return p.down.Load() }

// Arm puts r in force from the next request on and returns its handle. Rules armed
// earlier take precedence: every rule counts the requests its Match selects, and when
// several fire on one request, the action of the one armed first applies (the others do
// not count it as fired).
func (p *Proxy) Arm(r Rule) *Armed {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastRule++
	ru := newRule(p.lastRule, r)
	p.rules = append(p.rules, ru)
	return &Armed{p: p, r: ru}
}

// Disarm takes rule id out of force; it reports whether the rule was armed.
func (p *Proxy) Disarm(id int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.rules {
		if r.status.ID == id {
			r.status.Armed = false
			p.rules = append(p.rules[:i:i], p.rules[i+1:]...)
			return true
		}
	}
	return false
}

// Rules returns the status of the armed rules, in the order they were armed.
func (p *Proxy) Rules() []RuleStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]RuleStatus, 0, len(p.rules))
	for _, r := range p.rules {
		out = append(out, r.status)
	}
	return out
}

// Snapshot returns a copy of what the proxy recorded since it started or was last Reset.
func (p *Proxy) Snapshot() Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rec.snapshot()
}

// Reset forgets the recorded calls and counters, disarms every rule and brings the proxy
// up (SetDown(false)). Requests in flight are not recorded when they finish.
func (p *Proxy) Reset() {
	p.mu.Lock()
	for _, r := range p.rules {
		r.status.Armed = false
	}
	p.rules = nil
	p.rec = newRecorder(p.opts.MaxCalls, p.rec.gen+1)
	p.mu.Unlock()
	p.SetDown(false)
}

// Armed is a rule armed on a Proxy.
type Armed struct {
	p *Proxy
	r *rule
}

// ID is the rule's id (Call.Rule, Proxy.Disarm, the control API).
func (a *Armed) ID() int { return a.r.status.ID }

// Status returns what the rule has seen so far.
func (a *Armed) Status() RuleStatus {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	return a.r.status
}

// Fired counts the requests the rule's action was applied to.
func (a *Armed) Fired() int { return a.Status().Fired }

// Disarm takes the rule out of force (its Status stays readable).
func (a *Armed) Disarm() { a.p.Disarm(a.ID()) }

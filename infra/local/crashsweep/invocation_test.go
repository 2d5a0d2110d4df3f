package crashsweep

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// mode is how a fault hits a point.
type mode int

const (
	// crashBefore: the worker dies just before the call; it never reaches the server.
	crashBefore mode = iota + 1
	// crashAfter: the call takes effect, then the worker dies before reading the answer.
	crashAfter
	// fail: the call fails (Slack 503; DynamoDB 500 on every SDK attempt of that operation).
	fail
	// lost: the call takes effect and its answer is lost; the worker goes on.
	lost
	// crashDuring: the worker dies while it reads a streamed answer (a model's turn), after
	// the first cutAfterEvents events of it.
	crashDuring
)

var modes = []mode{crashBefore, crashAfter, fail, lost}

func (m mode) String() string {
	return [...]string{"", "crash before", "crash after", "fail", "lost", "crash mid-stream"}[m]
}

// modesAt are the faults tried at a point: every mode, and a crash mid-stream at a model's
// streamed turn.
func modesAt(label string) []mode {
	if strings.HasPrefix(label, string(modelService)+":") {
		return append(modes[:len(modes):len(modes)], crashDuring)
	}
	return modes
}

// cutAfterEvents is how many Server-Sent Events of a model's answer a crash mid-stream lets
// through: the first words of its text.
const cutAfterEvents = 3

// injection is one fault at the at-th point of an invocation (1-based).
type injection struct {
	at    int
	mode  mode
	fired bool
	label string
}

var (
	errCrashed = errors.New("crashsweep: the invocation has died")
	errLost    = errors.New("crashsweep: connection reset after the request was sent")
)

// invocation is one run of the worker's batch handler. Its clients' requests go through
// transport, which counts the points (calls to Slack, DynamoDB writes), applies the
// injection at its point, and refuses everything once the invocation died.
type invocation struct {
	mu      sync.Mutex
	inj     *injection
	dead    bool
	cancel  context.CancelFunc
	points  []string
	failing map[string]bool // DynamoDB operations (SDK invocation ids) failing on every attempt
}

func newInvocation(inj *injection, cancel context.CancelFunc) *invocation {
	return &invocation{inj: inj, cancel: cancel, failing: map[string]bool{}}
}

func (inv *invocation) crashed() bool {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.dead
}

func (inv *invocation) kill() {
	inv.mu.Lock()
	inv.dead = true
	inv.mu.Unlock()
	inv.cancel()
}

// service names what a client talks to: "slack" (the Web API and response_url), "ddb", or,
// for a bot's own clients, "model" (a chat-completions API) and "helpdesk" (a service a tool
// calls).
type service string

const (
	slackService    service = "slack"
	ddbService      service = "ddb"
	modelService    service = "model"
	helpdeskService service = "helpdesk"
)

// point is the label of req when it is a point of the path ("slack:chat.startStream",
// "response_url", "ddb:UpdateItem", "model:chat.completions", "model:ConverseStream", "helpdesk:POST /tickets"), and
// whether it is one. A DynamoDB read is not a point, nor is an SDK retry of an operation
// already counted; every request to the model and the help desk is.
func point(svc service, req *http.Request) (string, bool) {
	switch svc {
	case modelService:
		if strings.HasSuffix(req.URL.Path, "/converse-stream") {
			return string(svc) + ":ConverseStream", true
		}
		return string(svc) + ":chat.completions", true
	case helpdeskService:
		return string(svc) + ":" + req.Method + " " + req.URL.Path, true
	}
	if svc == slackService {
		if strings.Contains(req.URL.Path, "/response/") {
			return "response_url", true
		}
		return "slack:" + req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:], true
	}
	op := req.Header.Get("X-Amz-Target")
	op = op[strings.LastIndex(op, ".")+1:]
	if attempt(req) > 1 {
		return "", false
	}
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem":
		return "ddb:" + op, true
	}
	return "", false
}

// attempt is the SDK's attempt number of req (1 for the first).
func attempt(req *http.Request) int {
	for _, part := range strings.Split(req.Header.Get("amz-sdk-request"), ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "attempt="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 1
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// transport is the invocation's way to svc.
func (inv *invocation) transport(svc service) http.RoundTripper {
	base := http.DefaultTransport
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		inv.mu.Lock()
		if inv.dead {
			inv.mu.Unlock()
			return nil, errCrashed
		}
		opID := req.Header.Get("amz-sdk-invocation-id")
		if svc == ddbService && inv.failing[opID] {
			inv.mu.Unlock()
			return failure(svc, req), nil
		}
		var m mode
		if label, ok := point(svc, req); ok {
			inv.points = append(inv.points, label)
			if inv.inj != nil && !inv.inj.fired && inv.inj.at == len(inv.points) {
				m, inv.inj.fired, inv.inj.label = inv.inj.mode, true, label
				if m == fail && svc == ddbService {
					inv.failing[opID] = true
				}
			}
		}
		inv.mu.Unlock()
		switch m {
		case crashBefore:
			inv.kill()
			return nil, errCrashed
		case crashAfter, lost:
			resp, err := base.RoundTrip(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if m == crashAfter {
				inv.kill()
				return nil, errCrashed
			}
			return nil, errLost
		case fail:
			return failure(svc, req), nil
		case crashDuring:
			resp, err := base.RoundTrip(req)
			if err != nil {
				inv.kill()
				return nil, errCrashed
			}
			resp.Body = &cutBody{inv: inv, body: resp.Body, events: cutAfterEvents,
				framed: resp.Header.Get("Content-Type") == "application/vnd.amazon.eventstream"}
			return resp, nil
		}
		return base.RoundTrip(req)
	})
}

// cutBody is a streamed answer read by a worker that dies after the first events of it: the
// reader gets those whole, then the invocation is killed and the next read fails. Events are
// Server-Sent Events (each ends with a blank line) or, framed, AWS event-stream messages
// (each starts with its total length, 4 bytes big-endian).
type cutBody struct {
	inv    *invocation
	body   io.ReadCloser
	events int // still to let through
	framed bool

	last    byte   // SSE: the last byte let through
	prelude []byte // event stream: the length of the message begun, as read so far
	left    int    // event stream: the bytes of the message begun still to come
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.events == 0 {
		b.inv.kill()
		return 0, errCrashed
	}
	n, err := b.body.Read(p)
	for i := 0; i < n; i++ {
		if !b.endsEvent(p[i]) {
			continue
		}
		if b.events--; b.events == 0 {
			return i + 1, nil
		}
	}
	return n, err
}

// endsEvent takes the next byte of the answer and reports whether it ends an event.
func (b *cutBody) endsEvent(c byte) bool {
	if !b.framed {
		end := c == '\n' && b.last == '\n'
		b.last = c
		if end {
			b.last = 0
		}
		return end
	}
	if b.left == 0 {
		if b.prelude = append(b.prelude, c); len(b.prelude) == 4 {
			b.left = int(binary.BigEndian.Uint32(b.prelude)) - 4
			b.prelude = b.prelude[:0]
		}
		return false
	}
	b.left--
	return b.left == 0
}

func (b *cutBody) Close() error { return b.body.Close() }

// failure is the answer of a failing call: Slack's and the help desk's 503, DynamoDB's 500
// InternalServerError, the model's 503 with an OpenAI-style error.
func failure(svc service, req *http.Request) *http.Response {
	h := http.Header{}
	status, body := http.StatusServiceUnavailable, "service unavailable"
	switch svc {
	case ddbService:
		status, body = http.StatusInternalServerError, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}`
		h.Set("Content-Type", "application/x-amz-json-1.0")
	case modelService:
		body = `{"error":{"message":"injected","type":"server_error","code":"service_unavailable"}}`
		h.Set("Content-Type", "application/json")
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req}
}

// queue is the engine's SQS for one invocation: it records the dead letters and the
// continuations sent, and, like every other client, refuses everything after a crash.
type queue struct {
	inv *invocation

	mu            sync.Mutex
	deadLetters   []*sqs.SendMessageInput
	continuations []*sqs.SendMessageInput
	visibility    time.Duration // the last delay asked for
}

const (
	eventsQueueURL = "events"
	dlqURL         = "dlq"
)

func (q *queue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if q.inv.crashed() {
		return nil, errCrashed
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if *in.QueueUrl == dlqURL {
		q.deadLetters = append(q.deadLetters, in)
	} else {
		q.continuations = append(q.continuations, in)
	}
	return &sqs.SendMessageOutput{}, nil
}

func (q *queue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	if q.inv.crashed() {
		return nil, errCrashed
	}
	q.mu.Lock()
	q.visibility = time.Duration(in.VisibilityTimeout) * time.Second
	q.mu.Unlock()
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

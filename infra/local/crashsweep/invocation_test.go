package crashsweep

import (
	"context"
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
)

var modes = []mode{crashBefore, crashAfter, fail, lost}

func (m mode) String() string {
	return [...]string{"", "crash before", "crash after", "fail", "lost"}[m]
}

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

// service names what a client talks to: "slack" (the Web API and response_url) or "ddb".
type service string

const (
	slackService service = "slack"
	ddbService   service = "ddb"
)

// point is the label of req when it is a point of the path ("slack:chat.startStream",
// "response_url", "ddb:UpdateItem"), and whether it is one. A DynamoDB read is not a point,
// nor is an SDK retry of an operation already counted.
func point(svc service, req *http.Request) (string, bool) {
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
		}
		return base.RoundTrip(req)
	})
}

// failure is the answer of a failing call: Slack's 503, DynamoDB's 500 InternalServerError.
func failure(svc service, req *http.Request) *http.Response {
	h := http.Header{}
	status, body := http.StatusServiceUnavailable, "service unavailable"
	if svc == ddbService {
		status, body = http.StatusInternalServerError, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}`
		h.Set("Content-Type", "application/x-amz-json-1.0")
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

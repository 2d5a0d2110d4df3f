package intake

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/receiver/receiverconfig"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/shared/secrets"
	"github.com/slackrelay/slackrelay/shared/slackverify"
)

const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

var fixedNow = time.Unix(1_700_000_000, 0)

type fakeSender struct {
	mu   sync.Mutex
	sent []*sqs.SendMessageInput
	err  error
}

func (f *fakeSender) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.sent = append(f.sent, in)
	return &sqs.SendMessageOutput{MessageId: aws.String("m-" + strconv.Itoa(len(f.sent)))}, nil
}

func newHandler(s Sender, sec Secrets, logs io.Writer) *Handler {
	if logs == nil {
		logs = io.Discard
	}
	return &Handler{
		QueueURL:     "http://q/events",
		MaxBodyBytes: receiverconfig.DefaultMaxBodyBytes,
		Sender:       s,
		Secrets:      sec,
		Verifier:     slackverify.Verifier{Now: func() time.Time { return fixedNow }},
		Log:          slog.New(slog.NewJSONHandler(logs, nil)),
		Metrics:      metrics.New(io.Discard, "test"),
		Now:          func() time.Time { return fixedNow },
	}
}

func staticSecrets() Secrets { return secrets.NewStatic(map[string]string{SecretKey: testSecret}) }

func signed(path, body string, headers ...string) *Request {
	ts := strconv.FormatInt(fixedNow.Unix(), 10)
	h := map[string]string{
		slackverify.HeaderTimestamp: ts,
		slackverify.HeaderSignature: slackverify.Sign([]byte(testSecret), ts, []byte(body)),
	}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	return &Request{Method: "POST", Path: path, Body: []byte(body), RequestID: "req-1",
		Header: func(n string) string { return h[n] }}
}

const mentionBody = `{"token":"x","team_id":"T1","enterprise_id":"E1","api_app_id":"A1","event":{"type":"app_mention","user":"U1","text":"<@UBOT> hi \"there\" ünïcödé","ts":"1700000000.000100","channel":"C1","event_ts":"1700000000.000100"},"type":"event_callback","event_id":"Ev1","event_time":1700000000,"authorizations":[{"team_id":"T1","user_id":"UBOT","is_bot":true}]}`

func TestHandleStatuses(t *testing.T) {
	t.Parallel()
	slash := url.Values{"command": {"/ask"}, "text": {"why?"}, "team_id": {"T1"}, "trigger_id": {"tr1"}, "response_url": {"https://x/r"}}.Encode()
	interaction := url.Values{"payload": {`{"type":"block_actions","trigger_id":"tr2","api_app_id":"A1","team":{"id":"T1"}}`}}.Encode()
	suggestion := url.Values{"payload": {`{"type":"block_suggestion","action_id":"pick","value":"ab","api_app_id":"A1","team":{"id":"T1"}}`}}.Encode()
	keepOpen := url.Values{"payload": {`{"type":"view_submission","trigger_id":"tr3","api_app_id":"A1","team":{"id":"T1"},"view":{"id":"V1","type":"modal","callback_id":"slackrelay_ask","private_metadata":"` +
		envelope.WorkingViewPrefix + `C1","title":{"type":"plain_text","text":"Ask"}}}`}}.Encode()
	plainSubmit := url.Values{"payload": {`{"type":"view_submission","trigger_id":"tr4","api_app_id":"A1","team":{"id":"T1"},"view":{"id":"V2","type":"modal","callback_id":"other","private_metadata":""}}`}}.Encode()
	cases := []struct {
		name     string
		req      *Request
		status   int
		body     string
		enqueued bool
		kind     envelope.Kind
		evType   string
	}{
		{name: "app_mention", req: signed(PathEvents, mentionBody), status: 202, enqueued: true, kind: envelope.KindEvent, evType: "app_mention"},
		{name: "other event keyed by event id", req: signed(PathEvents, `{"type":"event_callback","team_id":"T1","event_id":"Ev9","event_time":1,"event":{"type":"reaction_added"}}`), status: 202, enqueued: true, kind: envelope.KindEvent, evType: "reaction_added"},
		{name: "slack retry enqueued like a first attempt", req: signed(PathEvents, mentionBody, HeaderRetryNum, "2", HeaderRetryReason, "http_timeout"), status: 202, enqueued: true, kind: envelope.KindEvent, evType: "app_mention"},
		{name: "url_verification", req: signed(PathEvents, `{"type":"url_verification","challenge":"ch4ll3nge","token":"x"}`), status: 200, body: "ch4ll3nge"},
		{name: "app_rate_limited", req: signed(PathEvents, `{"type":"app_rate_limited","team_id":"T1","minute_rate_limited":1518467820,"api_app_id":"A1"}`), status: 200},
		{name: "slash command", req: signed(PathCommands, slash), status: 200, enqueued: true, kind: envelope.KindSlashCommand, evType: "/ask"},
		{name: "ssl_check", req: signed(PathCommands, "ssl_check=1&token=x"), status: 200},
		{name: "interaction", req: signed(PathInteractivity, interaction), status: 200, enqueued: true, kind: envelope.KindInteraction, evType: "block_actions"},
		{name: "block_suggestion answered with no options, nothing enqueued", req: signed(PathInteractivity, suggestion), status: 200, body: `{"options":[]}`},
		{name: "view_submission of a modal that stays open", req: signed(PathInteractivity, keepOpen), status: 200, body: "response_action", enqueued: true, kind: envelope.KindInteraction, evType: "view_submission"},
		{name: "view_submission of a plain modal closes it", req: signed(PathInteractivity, plainSubmit), status: 200, enqueued: true, kind: envelope.KindInteraction, evType: "view_submission"},
		{name: "wrong path", req: signed("/nope", mentionBody), status: 404},
		{name: "wrong method", req: func() *Request { r := signed(PathEvents, mentionBody); r.Method = "GET"; return r }(), status: 405},
		{name: "bad signature", req: func() *Request {
			r := signed(PathEvents, mentionBody)
			r.Body = []byte(strings.Replace(mentionBody, "hi", "ho", 1))
			return r
		}(), status: 401},
		{name: "missing signature", req: func() *Request {
			r := signed(PathEvents, mentionBody)
			r.Header = func(string) string { return "" }
			return r
		}(), status: 401},
		{name: "malformed json", req: signed(PathEvents, `{"type":`), status: 400},
		{name: "json without type", req: signed(PathEvents, `{"event_id":"Ev1"}`), status: 400},
		{name: "event without event_id", req: signed(PathEvents, `{"type":"event_callback","event":{"type":"app_mention"}}`), status: 400},
		{name: "non utf-8", req: signed(PathEvents, "{\"type\":\"event_callback\",\"x\":\"\xff\"}"), status: 400},
		{name: "slash without command", req: signed(PathCommands, "text=hi"), status: 400},
		{name: "interaction without payload", req: signed(PathInteractivity, "x=1"), status: 400},
		{name: "interaction payload not json", req: signed(PathInteractivity, "payload=%7Bnope"), status: 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &fakeSender{}
			resp := newHandler(s, staticSecrets(), nil).Handle(context.Background(), tc.req)
			if resp.Status != tc.status {
				t.Fatalf("status = %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			if tc.body != "" && !strings.Contains(string(resp.Body), tc.body) {
				t.Fatalf("body = %q, want it to hold %q", resp.Body, tc.body)
			}
			if got := len(s.sent); got != map[bool]int{true: 1}[tc.enqueued] {
				t.Fatalf("enqueued %d messages, want enqueued=%v", got, tc.enqueued)
			}
			if wantNoRetry := resp.Status >= 400 && resp.Status < 500 && resp.Status != 401; resp.NoRetry != wantNoRetry {
				t.Fatalf("status %d: X-Slack-No-Retry %v, want %v (401 stays retryable: the secret may just have rotated)", resp.Status, resp.NoRetry, wantNoRetry)
			}
			if !tc.enqueued {
				return
			}
			in := s.sent[0]
			e, err := envelope.Decode([]byte(aws.ToString(in.MessageBody)))
			if err != nil {
				t.Fatal(err)
			}
			if e.Body != string(tc.req.Body) {
				t.Fatal("envelope body differs from the signed bytes")
			}
			// The worker decides the dedupe key from its own decoding; the receiver writes none.
			if e.Kind != tc.kind || e.EventType != tc.evType || e.DedupeKey != "" || e.TeamID != "T1" {
				t.Fatalf("envelope = %+v", e)
			}
			if aws.ToString(in.MessageAttributes[envelope.AttrKind].StringValue) != string(tc.kind) ||
				aws.ToString(in.MessageAttributes[envelope.AttrEventType].StringValue) != tc.evType ||
				aws.ToString(in.MessageAttributes[envelope.AttrTeamID].StringValue) != "T1" {
				t.Fatalf("attributes = %+v", in.MessageAttributes)
			}
			if tc.req.Header(HeaderRetryNum) == "2" {
				if e.RetryNum != 2 || e.RetryReason != "http_timeout" || aws.ToString(in.MessageAttributes[envelope.AttrRetryNum].StringValue) != "2" {
					t.Fatalf("retry not carried: %+v", e)
				}
			}
		})
	}
}

func TestEnvelopeFieldsForMention(t *testing.T) {
	t.Parallel()
	s := &fakeSender{}
	newHandler(s, staticSecrets(), nil).Handle(context.Background(), signed(PathEvents, mentionBody))
	e, _ := envelope.Decode([]byte(aws.ToString(s.sent[0].MessageBody)))
	if e.EnterpriseID != "E1" || e.APIAppID != "A1" || e.EventID != "Ev1" || e.EventTime != 1700000000 ||
		!e.ReceivedAt.Equal(fixedNow) || e.ContentType != envelope.ContentTypeJSON || len(e.ID) != 32 {
		t.Fatalf("envelope = %+v", e)
	}
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	s := &fakeSender{}
	h := newHandler(s, staticSecrets(), nil)
	h.MaxBodyBytes = 2048
	body := `{"type":"event_callback","event_id":"E","event":{"type":"x","text":"` + strings.Repeat("a", 2100) + `"}}`
	if r := h.Handle(context.Background(), signed(PathEvents, body)); r.Status != 413 || len(s.sent) != 0 {
		t.Fatalf("status %d, sent %d", r.Status, len(s.sent))
	}
}

func TestStaleAndFutureTimestamps(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{-6 * time.Minute, 6 * time.Minute} {
		ts := strconv.FormatInt(fixedNow.Add(skew).Unix(), 10)
		sig := slackverify.Sign([]byte(testSecret), ts, []byte(mentionBody))
		h := map[string]string{slackverify.HeaderTimestamp: ts, slackverify.HeaderSignature: sig}
		r := &Request{Method: "POST", Path: PathEvents, Body: []byte(mentionBody), Header: func(n string) string { return h[n] }}
		s := &fakeSender{}
		if resp := newHandler(s, staticSecrets(), nil).Handle(context.Background(), r); resp.Status != 401 || len(s.sent) != 0 {
			t.Fatalf("skew %v: status %d", skew, resp.Status)
		}
	}
}

func TestEnqueueFailureIs503AndNotAcknowledged(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := &fakeSender{err: errors.New("dial tcp: connection refused")}
	resp := newHandler(s, staticSecrets(), &logs).Handle(context.Background(), signed(PathEvents, mentionBody))
	if resp.Status != 503 || resp.NoRetry {
		t.Fatalf("status %d noRetry %v, want 503 that Slack retries", resp.Status, resp.NoRetry)
	}
	if !strings.Contains(logs.String(), "enqueue failed") || !strings.Contains(logs.String(), `"event_id":"Ev1"`) {
		t.Fatalf("log lacks the failure and ids: %s", logs.String())
	}
}

// rotating is a Secrets whose value changes on ForceRefresh, like a rotated SSM parameter.
type rotating struct {
	mu              sync.Mutex
	current, next   string
	refreshes       int
	allowRefreshing bool
}

func (r *rotating) Get(context.Context, string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current, nil
}

func (r *rotating) ForceRefresh(context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.allowRefreshing {
		return false, nil
	}
	r.refreshes++
	r.current = r.next
	return true, nil
}

func TestRotatedSecretIsPickedUpByForcedRefresh(t *testing.T) {
	t.Parallel()
	sec := &rotating{current: "old-secret", next: testSecret, allowRefreshing: true}
	s := &fakeSender{}
	if resp := newHandler(s, sec, nil).Handle(context.Background(), signed(PathEvents, mentionBody)); resp.Status != 202 {
		t.Fatalf("status %d after rotation", resp.Status)
	}
	if sec.refreshes != 1 {
		t.Fatalf("refreshes = %d", sec.refreshes)
	}
	sec2 := &rotating{current: "old-secret", next: "old-secret"}
	if resp := newHandler(&fakeSender{}, sec2, nil).Handle(context.Background(), signed(PathEvents, mentionBody)); resp.Status != 401 {
		t.Fatalf("status %d with a refresh refused", resp.Status)
	}
}

func TestSecretUnavailableIs503(t *testing.T) {
	t.Parallel()
	sec := secrets.NewStatic(map[string]string{})
	if resp := newHandler(&fakeSender{}, sec, nil).Handle(context.Background(), signed(PathEvents, mentionBody)); resp.Status != 503 {
		t.Fatalf("status %d", resp.Status)
	}
}

func TestLogsNeverCarrySecretsOrBodies(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	h := newHandler(&fakeSender{}, staticSecrets(), &logs)
	h.Handle(context.Background(), signed(PathEvents, mentionBody))
	bad := signed(PathEvents, mentionBody)
	bad.Body = []byte(strings.Replace(mentionBody, "hi", "ho", 1))
	h.Handle(context.Background(), bad)
	out := logs.String()
	for _, leak := range []string{testSecret, "ünïcödé", "v0="} {
		if strings.Contains(out, leak) {
			t.Fatalf("log contains %q:\n%s", leak, out)
		}
	}
	if !strings.Contains(out, `"reason":"bad_signature"`) {
		t.Fatalf("rejection reason not logged:\n%s", out)
	}
}

func lambdaEvent(r *Request, base64Body bool) events.APIGatewayV2HTTPRequest {
	ev := events.APIGatewayV2HTTPRequest{
		RawPath: r.Path,
		Headers: map[string]string{
			"x-slack-request-timestamp": r.Header(slackverify.HeaderTimestamp),
			"x-slack-signature":         r.Header(slackverify.HeaderSignature),
			"content-type":              "application/json",
		},
		Body: string(r.Body),
	}
	ev.RequestContext.RequestID = "apigw-req"
	ev.RequestContext.HTTP.Method = r.Method
	if base64Body {
		ev.Body = base64.StdEncoding.EncodeToString(r.Body)
		ev.IsBase64Encoded = true
	}
	return ev
}

func TestHandleLambda(t *testing.T) {
	t.Parallel()
	for _, b64 := range []bool{false, true} {
		s := &fakeSender{}
		h := newHandler(s, staticSecrets(), nil)
		resp, err := h.HandleLambda(context.Background(), lambdaEvent(signed(PathEvents, mentionBody), b64))
		if err != nil || resp.StatusCode != 202 || len(s.sent) != 1 {
			t.Fatalf("base64=%v: %+v %v sent=%d", b64, resp, err, len(s.sent))
		}
		e, _ := envelope.Decode([]byte(aws.ToString(s.sent[0].MessageBody)))
		if e.Body != mentionBody {
			t.Fatalf("base64=%v: body not byte-identical", b64)
		}
	}
	ev := lambdaEvent(signed(PathEvents, mentionBody), true)
	ev.Body = "!!not base64"
	resp, _ := newHandler(&fakeSender{}, staticSecrets(), nil).HandleLambda(context.Background(), ev)
	if resp.StatusCode != 400 || resp.Headers["x-slack-no-retry"] != "1" {
		t.Fatalf("bad base64: %+v", resp)
	}
	resp, _ = newHandler(&fakeSender{}, staticSecrets(), nil).HandleLambda(context.Background(),
		lambdaEvent(signed(PathEvents, `{"type":"url_verification","challenge":"abc"}`), false))
	if resp.StatusCode != 200 || resp.Body != "abc" {
		t.Fatalf("challenge: %+v", resp)
	}
}

func TestServeHTTP(t *testing.T) {
	t.Parallel()
	s := &fakeSender{}
	h := newHandler(s, staticSecrets(), nil)
	h.MaxBodyBytes = 4096
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(path, body string, sign bool) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		if sign {
			r := signed(path, body)
			req.Header.Set("X-Slack-Request-Timestamp", r.Header(slackverify.HeaderTimestamp))
			req.Header.Set("X-Slack-Signature", r.Header(slackverify.HeaderSignature))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := post(PathEvents, mentionBody, true); r.StatusCode != 202 {
		t.Fatalf("signed: %d", r.StatusCode)
	}
	if r := post(PathEvents, mentionBody, false); r.StatusCode != 401 || r.Header.Get("X-Slack-No-Retry") != "" {
		t.Fatalf("unsigned: %d", r.StatusCode)
	}
	if r := post(PathEvents, strings.Repeat("x", 5000), true); r.StatusCode != 413 {
		t.Fatalf("oversized: %d", r.StatusCode)
	}
	if len(s.sent) != 1 {
		t.Fatalf("sent %d", len(s.sent))
	}
}

func TestChallengeIsNotJSONEscapedTwice(t *testing.T) {
	t.Parallel()
	body, _ := json.Marshal(map[string]string{"type": "url_verification", "challenge": "a<b>&c"})
	resp := newHandler(&fakeSender{}, staticSecrets(), nil).Handle(context.Background(), signed(PathEvents, string(body)))
	if string(resp.Body) != "a<b>&c" {
		t.Fatalf("challenge body %q", resp.Body)
	}
}

type slowSender struct{}

func (slowSender) SendMessage(ctx context.Context, _ *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A hung SQS call must end in a 503 before the invocation deadline, not in a timeout.
func TestHungQueueAnswers503BeforeTheDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	start := time.Now()
	resp := newHandler(slowSender{}, staticSecrets(), nil).Handle(ctx, signed(PathEvents, mentionBody))
	if resp.Status != 503 {
		t.Fatalf("status %d", resp.Status)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("answered after %v, past the reserve before the 600ms deadline", took)
	}
}

// A modal opened with the working marker stays open on submission: the receiver answers with
// a "working on it" view that keeps the modal's title, callback id and private metadata, so
// the worker can update it by its id and still read its own metadata.
func TestViewSubmissionKeepsTheModalOpen(t *testing.T) {
	t.Parallel()
	payload := `{"type":"view_submission","trigger_id":"tr3","team":{"id":"T1"},"view":{"id":"V1","type":"modal","callback_id":"slackrelay_ask",` +
		`"private_metadata":"` + envelope.WorkingViewPrefix + `C1","title":{"type":"plain_text","text":"Ask slackrelay"}}}`
	s := &fakeSender{}
	resp := newHandler(s, staticSecrets(), nil).Handle(context.Background(), signed(PathInteractivity, url.Values{"payload": {payload}}.Encode()))
	if resp.Status != 200 || resp.ContentType != "application/json" || len(s.sent) != 1 {
		t.Fatalf("status %d, content type %q, %d enqueued; want 200, application/json, 1", resp.Status, resp.ContentType, len(s.sent))
	}
	var got struct {
		ResponseAction string `json:"response_action"`
		View           struct {
			Type            string
			CallbackID      string `json:"callback_id"`
			PrivateMetadata string `json:"private_metadata"`
			Title           struct{ Text string }
			Blocks          []json.RawMessage
		} `json:"view"`
	}
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatalf("answer is not JSON: %v (%s)", err, resp.Body)
	}
	v := got.View
	if got.ResponseAction != "update" || v.Type != "modal" || v.CallbackID != "slackrelay_ask" || v.PrivateMetadata != envelope.WorkingViewPrefix+"C1" ||
		v.Title.Text != "Ask slackrelay" || len(v.Blocks) != 1 {
		t.Errorf("answer = %s, want response_action update to a working view with the modal's title, callback id and metadata", resp.Body)
	}
}

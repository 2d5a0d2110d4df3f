package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/workerconfig"
)

func TestReplyInThreadWithWorkingReaction(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.send(h.mention("Ev1", "C1", "1700000000.000100", "what is up?"))
	h.drain(10 * time.Second)
	answers := h.answers()
	if len(answers) != 1 {
		t.Fatalf("%d answers, want 1: %+v", len(answers), answers)
	}
	p := answers[0]
	if p.Channel != "C1" || p.ThreadTS != "1700000000.000100" || !strings.Contains(p.Text, "what is up?") || strings.Contains(p.Text, "<@UBOT>") || p.Streaming {
		t.Errorf("answer = %+v, want the finished answer in thread 1700000000.000100 of C1 without the mention", p)
	}
	if p.Metadata == nil || p.Metadata.EventType != relay.ReplyMetadataType || p.Metadata.Payload["dedupe_key"] != "msg:T0001:C1:1700000000.000100" {
		t.Errorf("metadata = %+v, want %s with the dedupe key", p.Metadata, relay.ReplyMetadataType)
	}
	if add, rm, left := h.slack.Calls("reactions.add"), h.slack.Calls("reactions.remove"), h.slack.Reactions(); add != 1 || rm != 1 || len(left) != 0 {
		t.Errorf("reactions: add=%d remove=%d left=%v, want 1, 1, none", add, rm, left)
	}
}

// The same Slack event four times (Slack's retries, SQS duplicates), two of them handled
// concurrently by separate invocations: one reply.
func TestDuplicatesGiveOneReply(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withEnv(assistant.EnvDemoDelay, "300ms"))
	ts := "1700000001.000200"
	for range 4 {
		h.send(h.mention("EvDup", "C1", ts, "once please"))
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); h.poller.PollOnce(context.Background()) }()
	}
	wg.Wait()
	h.drain(15 * time.Second)
	if n := len(h.answers()); n != 1 {
		t.Fatalf("%d replies for one event, want 1", n)
	}
	if n := len(h.dlqMessages()); n != 0 {
		t.Fatalf("%d duplicates ended in the DLQ", n)
	}
}

// A user message that mentions the bot arrives as app_mention and as its message twin (same
// channel and ts, another event id), in any order or at once. The twin must not swallow the
// mention: exactly one reply whatever the order.
func TestMentionAndItsMessageTwinInAnyOrder(t *testing.T) {
	t.Parallel()
	for _, order := range []string{"mention first", "twin first", "together"} {
		t.Run(order, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			ts := fmt.Sprintf("1700000100.%06d", seq.Add(1))
			m := h.mention("EvM"+ts, "C1", ts, "twins")
			twin := eventEnvelope(t, fixture.MessageTwin("EvT"+ts, "C1", ts, "twins"))
			switch order {
			case "mention first":
				h.send(m)
				h.drain(10 * time.Second)
				h.send(twin)
			case "twin first":
				h.send(twin)
				h.drain(10 * time.Second)
				h.send(m)
			default:
				h.send(twin)
				h.send(m)
			}
			h.drain(10 * time.Second)
			if n := len(h.answersIn(ts)); n != 1 {
				t.Fatalf("%d replies to the mention, want 1", n)
			}
		})
	}
}

func TestPermanentFailureGoesToDLQWithReasonAndReplayAnswers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.slack.FailNext(answerMethod, 1, "channel_not_found")
	body := h.mention("EvPerm", "C1", "1700000002.000100", "hi")
	h.send(body)
	h.drain(10 * time.Second)
	if n := len(h.answers()); n != 0 {
		t.Fatalf("%d answers, want 0", n)
	}
	msgs := h.dlqMessages()
	if len(msgs) != 1 {
		t.Fatalf("DLQ holds %d messages, want 1", len(msgs))
	}
	attr := func(n string) string { return aws.ToString(msgs[0].MessageAttributes[n].StringValue) }
	if !strings.Contains(attr(envelope.AttrFailureReason), "channel_not_found") || attr(envelope.AttrFailureClass) != envelope.FailureClassPermanent ||
		attr(envelope.AttrFailedHandler) != "reply" || attr(envelope.AttrFailedAt) == "" || attr(envelope.AttrKind) != "event" {
		t.Fatalf("DLQ attributes = %v", msgs[0].MessageAttributes)
	}
	if n := h.slack.Calls(answerMethod); n != 1 {
		t.Fatalf("%s called %d times: a permanent failure was retried", answerMethod, n)
	}
	// The operator fixes the cause and replays: one reply.
	h.send(body)
	h.drain(10 * time.Second)
	if n := len(h.answers()); n != 1 {
		t.Fatalf("after the replay: %d answers, want 1", n)
	}
}

func TestUndecodableMessageGoesToDLQ(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.send([]byte(`{"v":99,"id":"x"}`))
	h.drain(10 * time.Second)
	msgs := h.dlqMessages()
	if len(msgs) != 1 || !strings.Contains(aws.ToString(msgs[0].MessageAttributes[envelope.AttrFailureReason].StringValue), "unsupported envelope version") {
		t.Fatalf("DLQ = %+v, want the message with its reason", msgs)
	}
}

func TestTransientFailuresAreRetriedThenReplyOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.slack.FailHTTPNext(answerMethod, 2, 503)
	h.send(h.mention("EvFlaky", "C1", "1700000003.000100", "again"))
	start := time.Now()
	h.drain(20 * time.Second)
	if n := len(h.answers()); n != 1 {
		t.Fatalf("%d answers, want 1", n)
	}
	if calls := h.slack.Calls(answerMethod); calls != 3 {
		t.Fatalf("%s calls = %d, want 3 (two failures, one success)", answerMethod, calls)
	}
	// Backoff 1s then 1s (base for receive counts 1 and 2) at least.
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("retries came after %v: no backoff", took)
	}
}

func TestOutOfRetriesGoesToDLQAsExhausted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.slack.FailHTTPNext(answerMethod, 10, 500)
	h.send(h.mention("EvDoomed", "C1", "1700000004.000100", "x"))
	h.drain(20 * time.Second)
	msgs := h.dlqMessages()
	if len(msgs) != 1 || aws.ToString(msgs[0].MessageAttributes[envelope.AttrFailureClass].StringValue) != envelope.FailureClassExhausted {
		t.Fatalf("DLQ = %+v, want one exhausted message", msgs)
	}
	if calls := h.slack.Calls(answerMethod); calls != 3 {
		t.Fatalf("%s calls = %d, want MAX_RECEIVE_COUNT=3", answerMethod, calls)
	}
}

func TestRateLimitWaitsForRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.slack.RateLimitNext(answerMethod, 1, 3*time.Second)
	h.send(h.mention("EvRL", "C1", "1700000005.000100", "slow down"))
	start := time.Now()
	h.drain(20 * time.Second)
	if n := len(h.answers()); n != 1 {
		t.Fatalf("%d answers, want 1", n)
	}
	// The answer appeared (streamed, or posted whole once the wait was over) only after
	// the Retry-After.
	var first time.Time
	for _, st := range h.slack.Streams() {
		first = st.StartedAt
	}
	for _, p := range h.slack.Posts() {
		if first.IsZero() || p.At.Before(first) {
			first = p.At
		}
	}
	if waited := first.Sub(start); waited < 3*time.Second {
		t.Fatalf("reply after %v, before Retry-After 3s", waited)
	}
}

// A worker that posted and died before recording it leaves a pending step and a claim whose
// lease runs out; the redelivery takes it over, finds the post in the thread (its metadata)
// and does not post again.
func TestCrashAfterPostIsNotRepeated(t *testing.T) {
	t.Parallel()
	// A responder that does not stream: the bot answers with Reply (relay's post steps).
	h := newHarness(t, withBot(botWith(&fixedResponder{answer: "the reply from before the crash"})))
	ts := "1700000006.000100"
	key := "msg:T0001:C1:" + ts
	step := "post:C1:" + ts
	h.deadClaim(key, 1500*time.Millisecond, map[string]any{step: map[string]any{"kind": "post", "parts": []string{"the reply from before the crash"}, "pending": true}})
	api := slack.New(botToken, slack.OptionAPIURL(h.slack.APIURL()))
	_, _, err := api.PostMessage("C1", slack.MsgOptionText("the reply from before the crash", false), slack.MsgOptionTS(ts),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: relay.ReplyMetadataType, EventPayload: map[string]any{"dedupe_key": key, "step": step, "part": 1}}))
	if err != nil {
		t.Fatal(err)
	}
	h.send(h.mention("EvCrash", "C1", ts, "hello"))
	h.drain(15 * time.Second)
	if n := len(h.slack.Posts()); n != 1 {
		t.Fatalf("%d posts, want only the one from before the crash", n)
	}
	if !strings.Contains(h.logs.String(), "an earlier attempt sent this part") {
		t.Fatal("the takeover did not find the earlier post")
	}
}

// A worker that died before posting: the redelivery after the lease replies once.
func TestCrashBeforeReplyIsRecovered(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ts := "1700000007.000100"
	h.deadClaim("msg:T0001:C1:"+ts, time.Second, nil)
	h.send(h.mention("EvCrash2", "C1", ts, "hello"))
	h.drain(15 * time.Second)
	if n := len(h.answers()); n != 1 {
		t.Fatalf("%d answers, want 1", n)
	}
}

func TestStoreDownPostsNothingThenRecovers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ddbProxy.SetDown(true)
	h.send(h.mention("EvStore", "C1", "1700000008.000100", "hi"))
	// Poll for a while with a context that is never cancelled mid-receive (a cancelled
	// receive would hide the message for the queue's visibility timeout).
	for start := time.Now(); time.Since(start) < 3*time.Second; {
		h.poller.PollOnce(context.Background())
	}
	if h.slack.Calls(answerMethod) != 0 || h.slack.Calls("reactions.add") != 0 {
		t.Fatal("posted to Slack while the journal was down")
	}
	h.ddbProxy.SetDown(false)
	h.drain(15 * time.Second)
	if n := len(h.answers()); n != 1 {
		t.Fatalf("%d answers after recovery, want 1", n)
	}
}

func TestSkipsBotsEditsAndChannelMessages(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for i, ev := range []string{
		`{"type":"message","channel_type":"im","user":"UBOT","bot_id":"BBOT","text":"mine","ts":"1700000010.000001","channel":"D1"}`,
		`{"type":"message","channel_type":"im","bot_id":"B9","text":"other bot","ts":"1700000010.000002","channel":"D1"}`,
		// An edit of the bot's own answer (how a streamed answer grows): declined before a
		// claim. A person's edit updates the thread memory instead (worker/assistant).
		`{"type":"message","channel_type":"im","subtype":"message_changed","ts":"1700000010.000003","channel":"D1","message":{"type":"message","bot_id":"BBOT","user":"UBOT","text":"an answer","ts":"1700000009.000001"}}`,
		`{"type":"message","channel_type":"channel","user":"U1","text":"plain channel message","ts":"1700000010.000004","channel":"C1"}`,
	} {
		h.send(eventEnvelope(t, fmt.Sprintf(`{"type":"event_callback","team_id":"T1","event_id":"EvS%d","event":%s}`, i, ev)))
	}
	// A direct message from a person is answered.
	h.send(eventEnvelope(t, `{"type":"event_callback","team_id":"T1","event_id":"EvDM","event":{"type":"message","channel_type":"im","user":"U1","text":"hello bot","ts":"1700000010.000005","channel":"D1"}}`))
	h.drain(10 * time.Second)
	answers := h.answers()
	if len(answers) != 1 || answers[0].Channel != "D1" || answers[0].ThreadTS != "1700000010.000005" {
		t.Fatalf("answers = %+v, want one reply in the DM thread 1700000010.000005", answers)
	}
	if got := strings.Count(h.logs.String(), "route declined the delivery"); got != 4 {
		t.Errorf("%d deliveries declined, want 4", got)
	}
}

func askEnvelope(t testing.TB, responseURL, text, trigger string) []byte {
	form := url.Values{"command": {"/ask"}, "text": {text}, "team_id": {"T1"}, "trigger_id": {trigger},
		"response_url": {responseURL}, "channel_id": {"C1"}, "user_id": {"U1"}}.Encode()
	return marshal(t, envelope.Envelope{Version: 1, ID: envelope.NewID(), Kind: envelope.KindSlashCommand, EventType: "/ask", TeamID: "T1",
		DedupeKey: "cmd:T1:" + trigger, ContentType: envelope.ContentTypeForm, Body: form})
}

func TestSlashCommandAnsweredViaResponseURLOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	e := askEnvelope(t, h.slack.ResponseURL("r1"), "what time is it", "tr1")
	h.send(e)
	h.send(e)
	h.drain(10 * time.Second)
	posts := h.slack.Posts()
	if len(posts) != 1 || posts[0].ResponseID != "r1" || !strings.Contains(posts[0].Text, "what time is it") || posts[0].ResponseType != "in_channel" {
		t.Fatalf("posts = %+v, want one in_channel response", posts)
	}
}

// /ask whose answer takes three response_url messages, the second failing: the retry posts
// the second and third, never the first again (four public posts before).
func TestSlashCommandCutShortIsFinished(t *testing.T) {
	t.Parallel()
	long := strings.Repeat(strings.Repeat("lorem ", 600)+"\n\n", 3)
	// The first response_url post succeeds, the second fails: a fault on the second call, in
	// front of the local Slack server's response URLs (the worker may post there too).
	var calls atomic.Int32
	var slackURL atomic.Pointer[url.URL]
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if calls.Add(1) == 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		httputil.NewSingleHostReverseProxy(slackURL.Load()).ServeHTTP(w, req)
	}))
	t.Cleanup(front.Close)
	h := newHarness(t, withEnv(assistant.EnvDemoDelay, "1ms"), withBot(botWith(&fixedResponder{answer: long})),
		withConfig(func(c *workerconfig.Config) { c.ResponseURLPrefixes = append(c.ResponseURLPrefixes, front.URL+"/") }))
	u, err := url.Parse(h.slack.ResponseURL("r2"))
	if err != nil {
		t.Fatal(err)
	}
	slackURL.Store(&url.URL{Scheme: u.Scheme, Host: u.Host})
	h.send(askEnvelope(t, front.URL+u.Path, "tell me a lot", "tr2"))
	h.drain(20 * time.Second)
	if n := calls.Load(); n != 4 {
		t.Errorf("%d response_url calls, want 4 (the second refused, then sent again)", n)
	}
	posts := h.slack.Posts()
	if len(posts) != 3 {
		t.Fatalf("%d response_url posts, want 3", len(posts))
	}
	for i, p := range posts {
		if p.ResponseID != "r2" {
			t.Errorf("post %d went to %q", i, p.ResponseID)
		}
	}
}

func TestUnknownEventTypesAreAcknowledged(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.send(eventEnvelope(t, `{"type":"event_callback","team_id":"T1","event_id":"EvU","event":{"type":"team_join","user":{"id":"U9"}}}`))
	h.drain(10 * time.Second)
	if len(h.dlqMessages()) != 0 || len(h.answers()) != 0 {
		t.Fatal("an unknown event type was failed or answered")
	}
}

// countingResponder records how many calls run at once.
type countingResponder struct {
	delay       time.Duration
	now, maxNow atomic.Int32
}

func (c *countingResponder) Respond(ctx context.Context, prompt string) (string, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for {
		m := c.maxNow.Load()
		if n <= m || c.maxNow.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-time.After(c.delay):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return "ok " + prompt, nil
}

type fixedResponder struct{ answer string }

func (f *fixedResponder) Respond(context.Context, string) (string, error) { return f.answer, nil }

func batchOf(t testing.TB, n int, prefix string) events.SQSEvent {
	var ev events.SQSEvent
	for i := range n {
		ts := fmt.Sprintf("17%08d.000100", seq.Add(1))
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: fmt.Sprintf("%s-%d", prefix, i), ReceiptHandle: "rh",
			Body:       string(eventEnvelope(t, fixture.AppMention(fmt.Sprintf("%s%d", prefix, i), "C1", ts, "q"))),
			Attributes: map[string]string{"ApproximateReceiveCount": "1"},
		})
	}
	return ev
}

func TestBatchRunsConcurrently(t *testing.T) {
	t.Parallel()
	resp := &countingResponder{delay: 200 * time.Millisecond}
	h := newHarness(t, withBot(botWith(resp)))
	out, err := h.app.Engine.HandleSQS(context.Background(), batchOf(t, 10, "EvC"))
	if err != nil || len(out.BatchItemFailures) != 0 {
		t.Fatalf("%+v %v", out, err)
	}
	if got := resp.maxNow.Load(); got != 10 {
		t.Fatalf("at most %d handlers ran at once, want 10", got)
	}
	if n := len(h.slack.Posts()); n != 10 {
		t.Fatalf("%d posts, want 10", n)
	}
}

// BenchmarkBatchOfTenTwoSecondCalls: one SQS batch of 10 messages whose external call takes
// 2 s each, through the real engine, DynamoDB (dynalite) and Slack (local server). The
// batch should take about as long as one call, not ten.
func BenchmarkBatchOfTenTwoSecondCalls(b *testing.B) {
	h := newHarness(b, withBot(botWith(&countingResponder{delay: 2 * time.Second})))
	b.ReportAllocs()
	i := 0
	var worst time.Duration
	for b.Loop() {
		i++
		start := time.Now()
		out, _ := h.app.Engine.HandleSQS(context.Background(), batchOf(b, 10, fmt.Sprintf("EvB%d-", i)))
		if len(out.BatchItemFailures) != 0 {
			b.Fatalf("failures: %+v", out.BatchItemFailures)
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(worst.Seconds(), "worst-s/batch")
}

func TestPollerStopsGracefully(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withEnv(assistant.EnvDemoDelay, "1s"))
	h.send(h.mention("EvStop", "C1", "1700000009.000100", "finish me"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.poller.Run(ctx) }()
	// Cancel while the handler is working.
	deadline := time.Now().Add(5 * time.Second)
	for h.slack.Calls("reactions.add") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("poller did not stop")
	}
	if n := len(h.answers()); n != 1 || h.answers()[0].Streaming {
		t.Fatalf("the batch in flight did not finish: %d answers", n)
	}
	if d := h.depth(h.queueURL); d != 0 {
		t.Fatalf("the finished message was not deleted: depth %d", d)
	}
}

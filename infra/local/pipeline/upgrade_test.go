package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// Records of the release before the step journal, as that release wrote them, are in
// testdata/upgrade/: one DynamoDB item each, in DynamoDB's own JSON (what `aws dynamodb
// get-item` prints). That release's items hold `pk`, `status`, `owner` (a 32-hex token, absent
// once released), `lease_until_ms` (0 once released), `attempts`, `expires_at`, `last_error`
// and one attribute per step by call order, `step:<kind>#<n>` ("post#1", "respond#1",
// "stream#1/1", "stream#1/done"), holding that release's step JSON (kind, parts, sent, pending,
// value, done, chars). String values may name the Slack state the record points at as
// ${NAME} (a message's ts, given by the local Slack server when the test recreates that
// state).
//
// Each case recreates the Slack state the earlier release left with its record (a stream
// started empty and appended to, then left open; posts carrying that release's metadata
// {dedupe_key, step: "post#1", part, parts}; response_url posts), writes the item with the
// real DynamoDB client, delivers the event again through the real worker (worker.New: the
// engine, its journal, relay, the shipped bot) and judges by what a Slack client shows that the event ends with
// exactly one answer.
func TestRecordsOfTheEarlierReleaseAreHonoured(t *testing.T) {
	t.Parallel()
	const mention = "tell me about queues"
	cases := []upgradeCase{
		{
			// The worker died mid-stream: the stream is open with part of an answer whose text
			// that release did not record. The new answer sets that message whole.
			name: "stream_mid_answer",
			seed: func(t *testing.T, u *upgrade) map[string]string {
				ts := u.startStream(t, "1765800000.000100", "An earlier answer, cut short when the worker ", "died while it was ")
				return map[string]string{"STREAM_TS": ts}
			},
			deliver: func(u *upgrade) []byte { return u.h.mention("EvUp1", "C1", "1765800000.000100", mention) },
			check: func(t *testing.T, u *upgrade, vars map[string]string, _ []fakeslack.Rendered) {
				want := u.answer(t, 1)
				got := u.bot("1765800000.000100")
				if len(got) != 1 || got[0].TS != vars["STREAM_TS"] || got[0].Streaming || got[0].Text != want ||
					!slices.Equal(got[0].Actions, []string{assistant.ActionRegenerate, assistant.ActionFeedback}) {
					t.Fatalf("the thread shows %+v; want only the old stream %s, finished, holding the new answer %q with the buttons under it", got, vars["STREAM_TS"], want)
				}
				if n := u.h.slack.Calls("chat.startStream"); n != 1 {
					t.Errorf("chat.startStream called %d times; want 1 (the earlier release's): no second stream", n)
				}
			},
		},
		{
			// The answer was finished in Slack, the worker died before completing the record:
			// nothing more is sent and the model is not asked.
			name: "stream_done",
			seed: func(t *testing.T, u *upgrade) map[string]string {
				text := "The earlier release's answer, finished and with buttons."
				ts := u.startStream(t, "1765800100.000100", text[:20], text[20:])
				if n := len([]rune(text)); n != 56 {
					t.Fatalf("the seeded answer has %d characters; stream_done.json records 56", n)
				}
				u.stopStream(t, ts, text, "stream#1/1", "msg:T0001:C1:1765800100.000100")
				return map[string]string{"STREAM_TS": ts}
			},
			deliver: func(u *upgrade) []byte { return u.h.mention("EvUp2", "C1", "1765800100.000100", mention) },
			check: func(t *testing.T, u *upgrade, _ map[string]string, before []fakeslack.Rendered) {
				u.untouched(t, "1765800100.000100", before)
				if n := len(u.llm.Requests()); n != 0 {
					t.Errorf("the model was asked %d times for a finished answer; want 0", n)
				}
			},
		},
		{
			// A reply in three planned parts: the first posted and recorded, the second handed
			// to Slack, which posted it, and the answer lost. The retry adopts the second (it
			// carries that release's metadata) and posts the third.
			name:  "post_cut_part_posted",
			fixed: true,
			seed: func(t *testing.T, u *upgrade) map[string]string {
				key := "msg:T0001:C1:1765800200.000100"
				p1 := u.postPart(t, "1765800200.000100", key, "post#1", 1, 3, "Part one of the answer the earlier release planned.")
				u.postPart(t, "1765800200.000100", key, "post#1", 2, 3, "Part two of the answer the earlier release planned.")
				return map[string]string{"PART1_TS": p1}
			},
			deliver: func(u *upgrade) []byte { return u.h.mention("EvUp3", "C1", "1765800200.000100", mention) },
			check: func(t *testing.T, u *upgrade, _ map[string]string, _ []fakeslack.Rendered) {
				u.threePlannedParts(t, "1765800200.000100")
			},
		},
		{
			// The same cut, but the second part never reached Slack (the call timed out and the
			// attempt released the record): the retry posts the second and third.
			name:  "post_cut_part_lost",
			fixed: true,
			seed: func(t *testing.T, u *upgrade) map[string]string {
				p1 := u.postPart(t, "1765800300.000100", "msg:T0001:C1:1765800300.000100", "post#1", 1, 3, "Part one of the answer the earlier release planned.")
				return map[string]string{"PART1_TS": p1}
			},
			deliver: func(u *upgrade) []byte { return u.h.mention("EvUp4", "C1", "1765800300.000100", mention) },
			check: func(t *testing.T, u *upgrade, _ map[string]string, _ []fakeslack.Rendered) {
				u.threePlannedParts(t, "1765800300.000100")
			},
		},
		{
			// /ask answered through response_url in three parts; the third was refused (500):
			// the retry sends only the third.
			name:  "respond_cut_failed",
			fixed: true,
			seed: func(t *testing.T, u *upgrade) map[string]string {
				u.respondPart(t, "r0", "First part of the /ask answer.")
				u.respondPart(t, "r0", "Second part of the /ask answer.")
				return nil
			},
			deliver: func(u *upgrade) []byte {
				return askEnvelope(u.h.t, u.h.slack.ResponseURL("r0"), mention, "13345224609.738474920.8088930838d88f008e0")
			},
			check: func(t *testing.T, u *upgrade, _ map[string]string, _ []fakeslack.Rendered) {
				u.threeResponses(t, "r0")
			},
		},
		{
			// The second part was handed to response_url and the answer lost (it arrived):
			// response_url cannot be read back, so it is not sent again (at most once); the
			// third is sent.
			name:  "respond_cut_pending",
			fixed: true,
			seed: func(t *testing.T, u *upgrade) map[string]string {
				u.respondPart(t, "r1", "First part of the /ask answer.")
				u.respondPart(t, "r1", "Second part of the /ask answer.")
				return nil
			},
			deliver: func(u *upgrade) []byte {
				return askEnvelope(u.h.t, u.h.slack.ResponseURL("r1"), mention, "13345224609.738474920.8088930838d88f008e1")
			},
			check: func(t *testing.T, u *upgrade, _ map[string]string, _ []fakeslack.Rendered) {
				u.threeResponses(t, "r1")
			},
		},
		{
			// STREAMING=off: the answer was a post updated in place, left mid-answer. The new
			// answer sets it whole.
			name:        "stream_post_mid_answer",
			noStreaming: true,
			seed: func(t *testing.T, u *upgrade) map[string]string {
				ts := u.postPart(t, "1765800700.000100", "msg:T0001:C1:1765800700.000100", "stream#1/1", 1, 0, "An earlier answer, cut short")
				if _, _, _, err := u.slack.UpdateMessageContext(context.Background(), "C1", ts, slack.MsgOptionText("An earlier answer, cut short when the worker died", false)); err != nil {
					t.Fatal(err)
				}
				return map[string]string{"POST_TS": ts}
			},
			deliver: func(u *upgrade) []byte { return u.h.mention("EvUp8", "C1", "1765800700.000100", mention) },
			check: func(t *testing.T, u *upgrade, vars map[string]string, _ []fakeslack.Rendered) {
				u.oneAnswer(t, "1765800700.000100", vars["POST_TS"])
			},
		},
		{
			// STREAMING=off: the answer's first post went out and the worker died before
			// recording its ts; the post carries that release's metadata {dedupe_key, step:
			// "stream#1/1", part: 1}. That release looked for it before posting again.
			name:        "stream_post_pending",
			noStreaming: true,
			seed: func(t *testing.T, u *upgrade) map[string]string {
				ts := u.postPart(t, "1765800800.000100", "msg:T0001:C1:1765800800.000100", "stream#1/1", 1, 0, "An earlier answer, cut short")
				return map[string]string{"POST_TS": ts}
			},
			deliver: func(u *upgrade) []byte { return u.h.mention("EvUp9", "C1", "1765800800.000100", mention) },
			check: func(t *testing.T, u *upgrade, vars map[string]string, _ []fakeslack.Rendered) {
				u.oneAnswer(t, "1765800800.000100", vars["POST_TS"])
			},
		},
		{
			// A completed record (no steps): a duplicate; the handler does not run at all.
			name: "completed",
			seed: func(t *testing.T, u *upgrade) map[string]string {
				text := "The earlier release's answer."
				ts := u.startStream(t, "1765800600.000100", text)
				u.stopStream(t, ts, text, "stream#1/1", "msg:T0001:C1:1765800600.000100")
				return nil
			},
			deliver: func(u *upgrade) []byte { return u.h.mention("EvUp7", "C1", "1765800600.000100", mention) },
			check: func(t *testing.T, u *upgrade, _ map[string]string, before []fakeslack.Rendered) {
				u.untouched(t, "1765800600.000100", before)
				if n := len(u.llm.Requests()) + int(u.responded.Load()); n != 0 {
					t.Errorf("the model was asked %d times; want 0", n)
				}
				if n := u.h.slack.Calls("reactions.add"); n != 0 {
					t.Errorf("reactions.add called %d times: the handler ran for a completed event", n)
				}
				if !strings.Contains(u.h.logs.String(), "duplicate delivery: already answered") {
					t.Error("the delivery was not logged as a duplicate")
				}
			},
		},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "upgrade", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".json"); !slices.ContainsFunc(cases, func(c upgradeCase) bool {
			return c.name == name
		}) {
			t.Errorf("%s has no case", f)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			u := newUpgrade(t, c.fixed, c.noStreaming)
			vars := c.seed(t, u)
			key := u.putRecord(t, c.name+".json", vars)
			u.calls = map[string]int{}
			for _, m := range messageMethods {
				u.calls[m] = u.h.slack.Calls(m)
			}
			var before []fakeslack.Rendered
			if thread := threadOfKey(key); thread != "" {
				before = u.h.slack.RenderedThread("C1", thread)
			}
			u.h.send(c.deliver(u))
			u.h.drain(20 * time.Second)
			c.check(t, u, vars, before)
			if n := len(u.h.dlqMessages()); n != 0 {
				t.Errorf("%d messages in the DLQ; want none", n)
			}
			u.completed(t, key)
		})
	}
}

// upgradeCase is a record of the earlier release (testdata/upgrade/<name>.json) and the Slack
// state it came with.
type upgradeCase struct {
	// name is the fixture's file name without .json.
	name string
	// seed recreates the Slack state the earlier release left; it returns the values of
	// the fixture's placeholders.
	seed func(t *testing.T, u *upgrade) map[string]string
	// deliver is the event delivered again.
	deliver func(u *upgrade) []byte
	// check judges the outcome; before is the thread as a client showed it before the
	// delivery.
	check func(t *testing.T, u *upgrade, vars map[string]string, before []fakeslack.Rendered)
	// fixed answers with a responder that does not stream (the shipped bot then replies
	// with Reply, and /ask with Respond) instead of the local LLM's streamed answer.
	fixed bool
	// noStreaming runs the worker with STREAMING=off, as the earlier release ran when it
	// left the record.
	noStreaming bool
}

// upgrade is one case's worker (the harness, with the local LLM server answering the
// streamed answers and a fixed responder the others) and the client the test plays the
// earlier release with.
type upgrade struct {
	h         *harness
	llm       *fakellm.Server
	slack     *slack.Client
	responded atomic.Int32 // calls of the fixed responder
	// calls counts each of messageMethods as the earlier release left them, before the delivery.
	calls map[string]int
}

func newUpgrade(t *testing.T, fixed, noStreaming bool) *upgrade {
	t.Helper()
	llm := fakellm.New(fakellm.Options{APIKey: "local-llm-key", Pace: fakellm.Pace{AnswerTokens: 40}})
	if _, err := llm.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { llm.Close() })
	streaming := "on"
	if noStreaming {
		streaming = "off"
	}
	u := &upgrade{llm: llm}
	opts := []option{withEnv(assistant.EnvLLMBaseURL, llm.APIURL(), assistant.EnvLLMModel, "local-model",
		assistant.EnvLLMAPIKey, "local-llm-key", assistant.EnvStreaming, streaming)}
	if fixed {
		// Its answer is not what the records planned: the plan must win.
		opts = append(opts, withBot(botWith(responderFunc(func(context.Context, string) (string, error) {
			u.responded.Add(1)
			return "A different answer from the new release's model.", nil
		}))))
	}
	u.h = newHarness(t, opts...)
	u.slack = slack.New(botToken, slack.OptionAPIURL(u.h.slack.APIURL()))
	return u
}

// responderFunc is an llm.Responder that does not stream.
type responderFunc func(ctx context.Context, prompt string) (string, error)

func (f responderFunc) Respond(ctx context.Context, prompt string) (string, error) {
	return f(ctx, prompt)
}

// earlierTTL is how long the earlier release kept a record after its last write.
const earlierTTL = 15 * 24 * time.Hour

// putRecord writes the fixture item name with the real DynamoDB client, its placeholders
// replaced by vars and its expires_at moved to 15 days from now (the earlier release's TTL
// after its last write; the file's value is from when it was written). It returns the key.
func (u *upgrade) putRecord(t *testing.T, name string, vars map[string]string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "upgrade", name))
	if err != nil {
		t.Fatal(err)
	}
	item, err := decodeItem(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	pairs := []string{}
	for k, v := range vars {
		pairs = append(pairs, "${"+k+"}", v)
	}
	r := strings.NewReplacer(pairs...)
	for attr, v := range item {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			s.Value = r.Replace(s.Value)
			if strings.Contains(s.Value, "${") {
				t.Fatalf("%s: attribute %s names state the case did not recreate: %s", name, attr, s.Value)
			}
		}
	}
	if _, ok := item["expires_at"]; !ok {
		t.Fatalf("%s: no expires_at", name)
	}
	item["expires_at"] = &types.AttributeValueMemberN{Value: fmt.Sprint(time.Now().Add(earlierTTL).Unix())}
	if _, err := u.h.ddb.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(u.h.cfg.Table), Item: item}); err != nil {
		t.Fatal(err)
	}
	return item["pk"].(*types.AttributeValueMemberS).Value
}

// decodeItem reads an item in DynamoDB's JSON: each attribute an object naming its type (S,
// N, BOOL, NULL, M, L, SS, NS).
func decodeItem(raw []byte) (map[string]types.AttributeValue, error) {
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &attrs); err != nil {
		return nil, err
	}
	item := make(map[string]types.AttributeValue, len(attrs))
	for name, a := range attrs {
		v, err := decodeAttribute(a)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		item[name] = v
	}
	return item, nil
}

func decodeAttribute(raw json.RawMessage) (types.AttributeValue, error) {
	var typed map[string]json.RawMessage
	if err := json.Unmarshal(raw, &typed); err != nil {
		return nil, err
	}
	if len(typed) != 1 {
		return nil, fmt.Errorf("%s: want one type", raw)
	}
	for typ, v := range typed {
		switch typ {
		case "S":
			var s string
			err := json.Unmarshal(v, &s)
			return &types.AttributeValueMemberS{Value: s}, err
		case "N":
			var s string
			err := json.Unmarshal(v, &s)
			return &types.AttributeValueMemberN{Value: s}, err
		case "BOOL":
			var b bool
			err := json.Unmarshal(v, &b)
			return &types.AttributeValueMemberBOOL{Value: b}, err
		case "NULL":
			return &types.AttributeValueMemberNULL{Value: true}, nil
		case "SS", "NS":
			var ss []string
			if err := json.Unmarshal(v, &ss); err != nil {
				return nil, err
			}
			if typ == "SS" {
				return &types.AttributeValueMemberSS{Value: ss}, nil
			}
			return &types.AttributeValueMemberNS{Value: ss}, nil
		case "M":
			m, err := decodeItem(v)
			return &types.AttributeValueMemberM{Value: m}, err
		case "L":
			var list []json.RawMessage
			if err := json.Unmarshal(v, &list); err != nil {
				return nil, err
			}
			out := make([]types.AttributeValue, len(list))
			for i, e := range list {
				var err error
				if out[i], err = decodeAttribute(e); err != nil {
					return nil, err
				}
			}
			return &types.AttributeValueMemberL{Value: out}, nil
		default:
			return nil, fmt.Errorf("type %q is not read here", typ)
		}
	}
	return nil, nil
}

// threadOfKey is the thread of a message key ("msg:T:C:ts" → ts), else "".
func threadOfKey(key string) string {
	if !strings.HasPrefix(key, "msg:") {
		return ""
	}
	return key[strings.LastIndexByte(key, ':')+1:]
}

// startStream starts a stream in the thread as the earlier release did (empty: it recorded
// the ts before the first append) and appends pieces to it.
func (u *upgrade) startStream(t *testing.T, thread string, pieces ...string) string {
	t.Helper()
	ctx := context.Background()
	_, ts, err := u.slack.StartStreamContext(ctx, "C1", slack.MsgOptionTS(thread), slack.MsgOptionRecipientUserID("U0USER"), slack.MsgOptionRecipientTeamID("T0001"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pieces {
		if _, _, err := u.slack.AppendStreamContext(ctx, "C1", ts, slack.MsgOptionMarkdownText(p)); err != nil {
			t.Fatal(err)
		}
	}
	return ts
}

// stopStream ends a stream as the earlier release finished an answer: its final blocks were
// the text in a markdown block and the buttons, its metadata {dedupe_key, step}.
func (u *upgrade) stopStream(t *testing.T, ts, text, step, key string) {
	t.Helper()
	buttons := slack.NewActionBlock("slackrelay_actions", slack.NewButtonBlockElement(assistant.ActionRegenerate, "{}",
		slack.NewTextBlockObject(slack.PlainTextType, "Regenerate", false, false)))
	_, _, err := u.slack.StopStreamContext(context.Background(), "C1", ts,
		slack.MsgOptionBlocks(slack.NewMarkdownBlock("", text), buttons),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: relay.ReplyMetadataType, EventPayload: map[string]any{"dedupe_key": key, "step": step}}))
	if err != nil {
		t.Fatal(err)
	}
}

// postPart posts part of parts of a reply as the earlier release did, with its metadata
// (parts 0: a streamed answer's post, whose metadata has no "parts").
func (u *upgrade) postPart(t *testing.T, thread, key, step string, part, parts int, text string) string {
	t.Helper()
	md := map[string]any{"dedupe_key": key, "step": step, "part": part}
	if parts > 0 {
		md["parts"] = parts
	}
	_, ts, err := u.slack.PostMessageContext(context.Background(), "C1", slack.MsgOptionTS(thread), slack.MsgOptionText(text, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: relay.ReplyMetadataType, EventPayload: md}))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// respondPart posts text to the response_url id, visible in the channel, as /ask did.
func (u *upgrade) respondPart(t *testing.T, id, text string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"response_type": "in_channel", "text": text, "replace_original": false})
	resp, err := http.Post(u.h.slack.ResponseURL(id), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("response_url post: %d", resp.StatusCode)
	}
}

// answer is the local LLM's answer to its first request, of want requests in all.
func (u *upgrade) answer(t *testing.T, want int) string {
	t.Helper()
	reqs := u.llm.Requests()
	if len(reqs) != want {
		t.Fatalf("the model was asked %d times, want %d", len(reqs), want)
	}
	return u.llm.AnswerText(reqs[0].Messages, reqs[0].MaxTokens)
}

// bot is the bot's messages in the thread, as a client shows them.
func (u *upgrade) bot(thread string) []fakeslack.Rendered {
	var out []fakeslack.Rendered
	for _, m := range u.h.slack.RenderedThread("C1", thread) {
		if m.Bot {
			out = append(out, m)
		}
	}
	return out
}

// untouched checks that the thread shows what it showed before and that the worker called
// none of messageMethods.
func (u *upgrade) untouched(t *testing.T, thread string, before []fakeslack.Rendered) {
	t.Helper()
	if after := u.h.slack.RenderedThread("C1", thread); !slices.EqualFunc(before, after, func(a, b fakeslack.Rendered) bool {
		return a.TS == b.TS && a.Text == b.Text && a.Streaming == b.Streaming && a.Edited == b.Edited && slices.Equal(a.Actions, b.Actions)
	}) {
		t.Errorf("the thread changed:\nbefore %+v\nafter  %+v", before, after)
	}
	for m, before := range u.calls {
		if n := u.h.slack.Calls(m) - before; n != 0 {
			t.Errorf("%s called %d times by the worker; want none", m, n)
		}
	}
}

// messageMethods are the Web API methods that show or change a message.
var messageMethods = []string{"chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream", "chat.delete"}

// oneAnswer checks that the thread shows one message of the bot, ts, finished, holding the
// local LLM's answer with the buttons under it.
func (u *upgrade) oneAnswer(t *testing.T, thread, ts string) {
	t.Helper()
	want := u.answer(t, 1)
	got := u.bot(thread)
	if len(got) != 1 || got[0].TS != ts || got[0].Streaming || got[0].Text != want ||
		!slices.Equal(got[0].Actions, []string{assistant.ActionRegenerate, assistant.ActionFeedback}) {
		t.Fatalf("the thread shows %d messages of the bot: %+v; want only %s, finished, holding the new answer %q with the buttons under it", len(got), got, ts, want)
	}
}

// threePlannedParts checks that the thread shows the earlier release's three planned parts,
// each once, in order, the buttons under the last.
func (u *upgrade) threePlannedParts(t *testing.T, thread string) {
	t.Helper()
	got := u.bot(thread)
	want := []string{"Part one", "Part two", "Part three"}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = got[i].Text == want[i]+" of the answer the earlier release planned."
	}
	if !ok {
		t.Fatalf("the thread shows %d messages of the bot: %+v; want the three planned parts, each once, in order", len(got), got)
	}
	if last := got[len(got)-1]; !slices.Equal(last.Actions, []string{assistant.ActionRegenerate, assistant.ActionFeedback}) || len(got[0].Actions)+len(got[1].Actions) != 0 {
		t.Errorf("actions %q, %q, %q; want the buttons under the last part only", got[0].Actions, got[1].Actions, last.Actions)
	}
}

// threeResponses checks that response_url id got the three planned parts, each once, in order.
func (u *upgrade) threeResponses(t *testing.T, id string) {
	t.Helper()
	var got []string
	for _, p := range u.h.slack.Posts() {
		if p.Method == "response_url" && p.ResponseID == id {
			got = append(got, p.Text)
		}
	}
	want := []string{"First part of the /ask answer.", "Second part of the /ask answer.", "Third part of the /ask answer."}
	if !slices.Equal(got, want) {
		t.Errorf("response_url %s got %q; want %q", id, got, want)
	}
}

// completed checks that the record is completed with its steps (old and new) dropped.
func (u *upgrade) completed(t *testing.T, key string) {
	t.Helper()
	out, err := u.h.ddb.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(u.h.cfg.Table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := out.Item["status"].(*types.AttributeValueMemberS); s == nil || s.Value != "completed" {
		t.Errorf("record %s: status %v, want completed", key, out.Item["status"])
	}
	for name := range out.Item {
		if strings.HasPrefix(name, "step:") || strings.HasPrefix(name, "s:") {
			t.Errorf("record %s still holds %s after completion", key, name)
		}
	}
}

package assistant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker"
	"github.com/slackrelay/slackrelay/worker/assistant/llm"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/relay/relaytest"
	"github.com/slackrelay/slackrelay/worker/threadmemory"
)

// echoReply answers each question by quoting it: "Answer to <question>".
func echoReply(msgs []fakellm.Message) *fakellm.Reply {
	return &fakellm.Reply{Text: "Answer to " + msgs[len(msgs)-1].Content}
}

// memoryBot is the shipped bot with the tool loop on the local OpenAI-compatible server,
// its thread memory in mem; many says the worker serves many workspaces (no Slack reads).
func memoryBot(t testing.TB, reply func([]fakellm.Message) *fakellm.Reply, mem ThreadMemory, many bool) (*relaytest.Harness, *fakellm.Server) {
	t.Helper()
	srv := fakellm.New(fakellm.Options{Reply: reply})
	if _, err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c := &llm.Chat{BaseURL: srv.APIURL(), Model: "local-model", System: llm.SlackSystemPrompt,
		APIKey: func(context.Context) (string, error) { return "sk-local", nil }}
	cfg := Config{LLM: c, Agent: c.Agent(), Tools: DefaultTools(), Model: "local-model", Memory: mem, NoSlackThreadReads: many}
	return relaytest.New(t, func(r *relay.Router) { Register(r, cfg) }), srv
}

// mentionIn is an app_mention of the bot by U0USER in team's channel at ts (in thread, or a
// new thread when thread is "").
func mentionIn(t testing.TB, team, id, channel, ts, thread, text string) string {
	t.Helper()
	return inTeam(t, fixture.AppMention(id, channel, ts, text), team, thread)
}

// replyIn is a user's message in a channel thread that does not mention the bot (the
// message.channels event).
func replyIn(t testing.TB, team, id, channel, ts, thread, text string) string {
	t.Helper()
	body := inTeam(t, fixture.MessageTwin(id, channel, ts, text), team, thread)
	return strings.Replace(body, "<@UBOT> ", "", 1)
}

// inTeam moves an Events API body to team (its team_id, authorizations and the event's team)
// and into thread.
func inTeam(t testing.TB, body, team, thread string) string {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		t.Fatal(err)
	}
	ev["team_id"] = team
	ev["authorizations"].([]any)[0].(map[string]any)["team_id"] = team
	inner := ev["event"].(map[string]any)
	inner["team"] = team
	if thread != "" {
		inner["thread_ts"] = thread
	}
	raw, _ := json.Marshal(ev)
	return string(raw)
}

// conversation is a model request's messages, "role: text" (tool turns left out).
func conversation(req fakellm.Request) []string {
	var out []string
	for _, m := range req.Messages {
		if m.Role == "user" || (m.Role == "assistant" && m.Content != "") {
			out = append(out, m.Role+": "+m.Content)
		}
	}
	return out
}

// post puts a user's message in the local Slack (thread "" for a new thread) and returns its
// ts, which the server orders with the bot's own messages as Slack does.
func post(t testing.TB, h *relaytest.Harness, channel, thread, text string) string {
	t.Helper()
	ts, err := h.Slack.AddUserMessage(fakeslack.UserMessage{Channel: channel, User: "U0USER", Text: text, ThreadTS: thread})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func deliver(t testing.TB, h *relaytest.Harness, name, body string) {
	t.Helper()
	if got := h.DeliverBody(t, name, body); got.Err != nil || len(got.DeadLetters) != 0 {
		t.Fatalf("%s: err=%v dead=%v", name, got.Err, got.DeadLetters)
	}
}

// With many workspaces, a conversation of several turns in a channel thread is answered with
// the bot's own memory of the thread as the model's context, and Slack is never asked for
// the thread (conversations.replies); a reply in the thread that does not mention the bot,
// an edit and a deletion all show in the next prompt.
func TestAConversationFromTheThreadMemory(t *testing.T) {
	t.Parallel()
	mem := threadmemory.NewMemory(threadmemory.Limits{}, nil)
	h, srv := memoryBot(t, echoReply, mem, true)
	const team, ch = "T0001", "C0CHAN"
	root := ""
	var asked []string
	for i, q := range []string{"what is a river?", "and a lake?", "and the sea?"} {
		ts := post(t, h, ch, root, "<@UBOT> "+q)
		deliver(t, h, fmt.Sprintf("mention%d.json", i), mentionIn(t, team, fmt.Sprintf("Ev%d", i), ch, ts, root, q))
		if root == "" {
			root = ts
		}
		asked = append(asked, ts)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d model requests, want 3", len(reqs))
	}
	want := []string{"user: what is a river?", "assistant: Answer to what is a river?", "user: and a lake?", "assistant: Answer to and a lake?", "user: and the sea?"}
	if got := conversation(reqs[2]); !slices.Equal(got, want) {
		t.Errorf("the third question's conversation is\n%q\nwant\n%q", got, want)
	}

	// A reply without a mention is recorded (and its twin route takes no mention's key); the
	// second question is edited, the first deleted.
	deliver(t, h, "reply.json", replyIn(t, team, "EvR", ch, post(t, h, ch, root, "I prefer oceans"), root, "I prefer oceans"))
	deliver(t, h, "edit.json", fixture.MessageChanged("EvE", ch, asked[1], root, post(t, h, "C0CLOCK", "", "tick"), "<@UBOT> and a lake?", "<@UBOT> and a pond?"))
	deliver(t, h, "delete.json", fixture.MessageDeleted("EvD", ch, root, "", post(t, h, "C0CLOCK", "", "tick"), "<@UBOT> what is a river?"))
	last := post(t, h, ch, root, "<@UBOT> why salt?")
	deliver(t, h, "twin.json", inTeam(t, fixture.MessageTwin("EvT", ch, last, "why salt?"), team, root))
	deliver(t, h, "mention4.json", mentionIn(t, team, "Ev4", ch, last, root, "why salt?"))
	reqs = srv.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d model requests, want 4: the mention is answered even though its message twin came first", len(reqs))
	}
	want = []string{"assistant: Answer to what is a river?", "user: and a pond?", "assistant: Answer to and a lake?", "user: and the sea?",
		"assistant: Answer to and the sea?", "user: I prefer oceans", "user: why salt?"}
	if got := conversation(reqs[3]); !slices.Equal(got, want) {
		t.Errorf("after a reply, an edit and a deletion the conversation is\n%q\nwant\n%q", got, want)
	}
	if n := h.Slack.Calls("conversations.replies"); n != 0 {
		t.Errorf("%d conversations.replies calls with many workspaces, want none", n)
	}
	if n := len(h.Slack.Streams()); n != 4 {
		t.Errorf("%d answers, want 4", n)
	}
}

// The bot's own answers are in the memory as shown, for earlier_answers too: no Slack read.
func TestEarlierAnswersReadsTheMemory(t *testing.T) {
	t.Parallel()
	const first, followUp = "what is a river?", "what did you say?"
	reply := func(msgs []fakellm.Message) *fakellm.Reply {
		last := msgs[len(msgs)-1]
		switch {
		case last.Role == "user" && last.Content == first:
			return &fakellm.Reply{Text: "A river is water on its way to the sea."}
		case last.Role == "user":
			return &fakellm.Reply{ToolCalls: []fakellm.ToolCall{{ID: "call_e", Name: ToolEarlierAnswers, Arguments: `{"last":1}`}}}
		}
		return &fakellm.Reply{Text: "I said: " + last.Content}
	}
	mem := threadmemory.NewMemory(threadmemory.Limits{}, nil)
	h, srv := memoryBot(t, reply, mem, true)
	const ch = "D0DM"
	thread := post(t, h, ch, "", first)
	deliver(t, h, "first.json", dmBody(t, "Ev0FIRST", ch, thread, "", first))
	deliver(t, h, "follow_up.json", dmBody(t, "Ev0FOLLOW", ch, post(t, h, ch, thread, followUp), thread, followUp))
	reqs := srv.Requests()
	last := reqs[len(reqs)-1].Messages[len(reqs[len(reqs)-1].Messages)-1]
	var res earlierAnswers
	if err := json.Unmarshal([]byte(last.Content), &res); err != nil || last.Role != "tool" {
		t.Fatalf("the last request ends with %+v (%v), want earlier_answers' result", last, err)
	}
	if len(res.Answers) != 1 || res.Answers[0].Text != "A river is water on its way to the sea." {
		t.Errorf("earlier_answers gave %+v, want the bot's earlier answer from the memory", res)
	}
	if n := h.Slack.Calls("conversations.replies"); n != 0 {
		t.Errorf("%d conversations.replies calls, want none", n)
	}
}

// With one workspace, a thread the memory does not know (started before it) is read from
// Slack once and kept: the next follow-up reads only the memory. With many workspaces Slack
// is not read at all.
func TestAThreadStartedBeforeTheMemory(t *testing.T) {
	t.Parallel()
	for _, many := range []bool{false, true} {
		t.Run(map[bool]string{false: "one workspace", true: "many workspaces"}[many], func(t *testing.T) {
			t.Parallel()
			h, srv := memoryBot(t, echoReply, threadmemory.NewMemory(threadmemory.Limits{}, nil), many)
			const ch, root = "C0CHAN", "1515449500.000100"
			if _, err := h.Slack.AddUserMessage(fakeslack.UserMessage{Channel: ch, User: "U0USER", Text: "an old question", TS: root}); err != nil {
				t.Fatal(err)
			}
			deliver(t, h, "m1.json", mentionIn(t, "T0001", "Ev1", ch, post(t, h, ch, root, "<@UBOT> a follow-up"), root, "a follow-up"))
			deliver(t, h, "m2.json", mentionIn(t, "T0001", "Ev2", ch, post(t, h, ch, root, "<@UBOT> another"), root, "another"))
			reqs := srv.Requests()
			want := []string{"user: an old question", "user: a follow-up", "assistant: Answer to a follow-up", "user: another"}
			reads := 1
			if many {
				want, reads = want[1:], 0
			}
			if got := conversation(reqs[len(reqs)-1]); !slices.Equal(got, want) {
				t.Errorf("the second follow-up's conversation is %q, want %q", got, want)
			}
			if n := h.Slack.Calls("conversations.replies"); n != reads {
				t.Errorf("%d conversations.replies calls, want %d", n, reads)
			}
		})
	}
}

var markerRE = regexp.MustCompile(`mk-[a-z0-9]+-r\d`)

// No prompt carries anything of another thread, conversation or workspace: four threads —
// two in one channel, one in another channel with the same thread ts, one in another
// workspace with the same channel and thread ts — hold interleaved conversations whose
// messages carry markers; every request the model gets carries only its own thread's.
func TestNoPromptCarriesAnotherThreadsText(t *testing.T) {
	t.Parallel()
	mem := threadmemory.NewMemory(threadmemory.Limits{}, nil)
	h, srv := memoryBot(t, echoReply, mem, true)
	// The messages' ts come from the local Slack's clock (the bot's answers are later than
	// the questions they answer); threads a, c and d share one root ts.
	rootA, rootB := post(t, h, "C0CLOCK", "", "tick"), post(t, h, "C0CLOCK", "", "tick")
	type thread struct{ name, team, channel, root string }
	threads := []thread{
		{"a", "T0001", "C0ONE", rootA},
		{"b", "T0001", "C0ONE", rootB},
		{"c", "T0001", "C0TWO", rootA},
		{"d", "T0002", "C0ONE", rootA},
	}
	const rounds = 3
	for r := range rounds {
		for _, th := range threads {
			ts, parent := th.root, ""
			if r > 0 {
				ts, parent = post(t, h, "C0CLOCK", "", "tick"), th.root
			}
			text := fmt.Sprintf("mk-%s-r%d tell me more", th.name, r)
			deliver(t, h, fmt.Sprintf("%s%d.json", th.name, r), mentionIn(t, th.team, fmt.Sprintf("Ev%s%d", th.name, r), th.channel, ts, parent, text))
		}
	}
	reqs := srv.Requests()
	if len(reqs) != rounds*len(threads) {
		t.Fatalf("%d model requests, want %d", len(reqs), rounds*len(threads))
	}
	for i, req := range reqs {
		own := markerRE.FindString(req.Messages[len(req.Messages)-1].Content)
		if own == "" {
			t.Fatalf("request %d has no marker in its question", i)
		}
		name := strings.Split(own, "-")[1]
		seen := 0
		for _, m := range req.Messages {
			for _, mk := range markerRE.FindAllString(m.Content, -1) {
				if strings.Split(mk, "-")[1] != name {
					t.Errorf("request %d (thread %s) carries %q from another thread: %q", i, name, mk, m.Content)
				}
				seen++
			}
		}
		// The round's question, and the earlier rounds' questions and answers.
		round := int(own[len(own)-1] - '0')
		if seen != 1+2*round {
			t.Errorf("request %d (thread %s, round %d) carries %d markers, want %d (its thread's history)", i, name, round, seen, 1+2*round)
		}
	}
	if n := h.Slack.Calls("conversations.replies"); n != 0 {
		t.Errorf("%d conversations.replies calls, want none", n)
	}
}

// The bot New builds keeps its memory in the worker's table (DynamoDB), and with many
// workspaces never reads a thread from Slack.
func TestNewKeepsTheMemoryInTheWorkersTable(t *testing.T) {
	t.Parallel()
	table := awstest.NewTable(t)
	endpoint := awstest.Endpoint(t, awstest.EnvDynamoDB)
	srv := fakellm.New(fakellm.Options{Reply: echoReply})
	if _, err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	vars := map[string]string{EnvLLMProvider: "openai", EnvLLMBaseURL: srv.APIURL(), EnvLLMAPIKey: "sk-local", awstest.EnvDynamoDB: endpoint}
	setup := &worker.Setup{Getenv: func(k string) string { return vars[k] }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: metrics.New(io.Discard, "slackrelay/worker"), AWS: awsclient.Local(), Table: table, ManyWorkspaces: true}
	h := relaytest.New(t, func(r *relay.Router) {
		if err := New(r, setup); err != nil {
			t.Fatalf("New: %v", err)
		}
	})
	const ch = "C0CHAN"
	root := post(t, h, ch, "", "<@UBOT> what is a river?")
	deliver(t, h, "m1.json", mentionIn(t, "T0001", "Ev1", ch, root, "", "what is a river?"))
	deliver(t, h, "m2.json", mentionIn(t, "T0001", "Ev2", ch, post(t, h, ch, root, "<@UBOT> and a lake?"), root, "and a lake?"))
	reqs := srv.Requests()
	want := []string{"user: what is a river?", "assistant: Answer to what is a river?", "user: and a lake?"}
	if got := conversation(reqs[len(reqs)-1]); !slices.Equal(got, want) {
		t.Errorf("the follow-up's conversation is %q, want %q", got, want)
	}
	if n := h.Slack.Calls("conversations.replies"); n != 0 {
		t.Errorf("%d conversations.replies calls, want none", n)
	}
	th, err := threadmemory.NewDynamo(awstest.DynamoDBAt(endpoint), table, threadmemory.Limits{}, nil).Read(context.Background(),
		threadmemory.Key{Team: "T0001", Channel: ch, Thread: root})
	if err != nil || len(th.Turns) != 4 {
		t.Errorf("the table holds %+v (%v), want the thread's 4 turns", th, err)
	}
}

// turnsOf is the memory's thread as "user: text" / "bot: text" lines.
func turnsOf(t *testing.T, mem ThreadMemory, k threadmemory.Key) []string {
	t.Helper()
	th, err := mem.Read(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, turn := range th.Turns {
		who := "user"
		if turn.Bot {
			who = "bot"
		}
		out = append(out, who+": "+turn.Text)
	}
	return out
}

// Retries record nothing twice: a redelivery of an answered mention, and an answer whose
// first attempt failed at its last Slack call, each leave the question and the answer once;
// a Regenerate click replaces the answer's turn with the new answer.
func TestRetriesAndRegenerateKeepTheMemoryExact(t *testing.T) {
	t.Parallel()
	t.Run("posted, redelivered, regenerated", func(t *testing.T) {
		t.Parallel()
		mem := threadmemory.NewMemory(threadmemory.Limits{}, nil)
		llm := &numbered{}
		h := relaytest.New(t, func(b *relay.Router) { Register(b, Config{LLM: llm, Model: "test", Memory: mem}) })
		got := h.Deliver(t, "testdata/app_mention.json")
		if got.Err != nil || len(got.Posts) != 1 {
			t.Fatalf("err=%v posts=%d", got.Err, len(got.Posts))
		}
		if again := h.Redeliver(t, got); again.Err != nil {
			t.Fatal(again.Err)
		}
		k := threadmemory.Key{Team: "T0001", Channel: "C0CHAN", Thread: "1515449522.000016"}
		const q = "is it everything a river should be?"
		if got := turnsOf(t, mem, k); !slices.Equal(got, []string{"user: " + q, "bot: answer 1 to: " + q}) {
			t.Fatalf("after a redelivery the memory holds %q, want the question and the answer once", got)
		}
		reply := got.Posts[0]
		deliver(t, h, "regenerate_click.json", regenerateClick(t, reply))
		if got := turnsOf(t, mem, k); !slices.Equal(got, []string{"user: " + q, "bot: answer 2 to: " + q}) {
			t.Errorf("after Regenerate the memory holds %q, want the regenerated answer in place of the first", got)
		}
	})
	t.Run("streamed, the stop failed once", func(t *testing.T) {
		t.Parallel()
		mem := threadmemory.NewMemory(threadmemory.Limits{}, nil)
		h, _ := setupAssistant(t, Config{Memory: mem})
		h.Slack.FailNext("chat.stopStream", 1, "internal_error")
		got := h.Deliver(t, "testdata/message_im.json")
		if got.Err != nil || got.Runs != 2 {
			t.Fatalf("err=%v runs=%d, want answered on the second run", got.Err, got.Runs)
		}
		k := threadmemory.Key{Team: "T0001", Channel: "D0DM", Thread: "1515449600.000100"}
		if got := turnsOf(t, mem, k); !slices.Equal(got, []string{"user: hello bot", "bot: " + scriptedAnswer}) {
			t.Errorf("the memory holds %q, want the question and the whole answer once", got)
		}
	})
}

// A stopped answer is remembered as the user saw it: what was shown, with the note.
func TestAStoppedAnswerIsRememberedAsShown(t *testing.T) {
	t.Parallel()
	srv := fakellm.New(fakellm.Options{Pace: fakellm.Pace{FirstToken: 100 * time.Millisecond, TokensPerSecond: 20, AnswerTokens: 400}})
	if _, err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c := &llm.Chat{BaseURL: srv.APIURL(), Model: "local-model", System: llm.SlackSystemPrompt,
		APIKey: func(context.Context) (string, error) { return "sk-local", nil }}
	mem := threadmemory.NewMemory(threadmemory.Limits{}, nil)
	h := relaytest.New(t, func(r *relay.Router) {
		Register(r, Config{LLM: c, Model: "local-model", StopButton: true, Memory: mem, NoSlackThreadReads: true})
	})
	body, err := os.ReadFile("testdata/message_im.json")
	if err != nil {
		t.Fatal(err)
	}
	const channel, ts = "D0DM", "1515449600.000100"
	done := make(chan error, 1)
	go func() { done <- h.DeliverBody(t, "message_im.json", string(body)).Err }()
	if !h.WaitForStream(channel, ts, 5*time.Second) {
		t.Fatal("the answer did not start streaming")
	}
	time.Sleep(1200 * time.Millisecond)
	if c := h.ClickStop(t, channel, ts); c.Err != nil || c.Route != "stop" {
		t.Fatalf("the click: %+v", c)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := h.Slack.Streams()
	if len(st) != 1 || !strings.HasSuffix(st[0].Text, "_Stopped._") {
		t.Fatalf("streams %+v, want one, stopped with the note", st)
	}
	got := turnsOf(t, mem, threadmemory.Key{Team: "T0001", Channel: channel, Thread: ts})
	if want := []string{"user: hello bot", "bot: " + st[0].Text}; !slices.Equal(got, want) {
		t.Errorf("the memory holds %q, want %q", got, want)
	}
}

// brokenMemory is a thread memory whose store is down.
type brokenMemory struct{}

var errMemoryDown = errors.New("the table is unavailable")

func (brokenMemory) Read(context.Context, threadmemory.Key) (threadmemory.Thread, error) {
	return threadmemory.Thread{}, errMemoryDown
}
func (brokenMemory) Add(context.Context, threadmemory.Key, ...threadmemory.Turn) (threadmemory.Thread, error) {
	return threadmemory.Thread{}, errMemoryDown
}
func (brokenMemory) AddIfKnown(context.Context, threadmemory.Key, ...threadmemory.Turn) (bool, error) {
	return false, errMemoryDown
}
func (brokenMemory) Edit(context.Context, threadmemory.Key, string, string) (bool, error) {
	return false, errMemoryDown
}
func (brokenMemory) Remove(context.Context, threadmemory.Key, string) (bool, error) {
	return false, errMemoryDown
}

// A memory that cannot be reached never fails an answer: with one workspace the thread is
// read from Slack instead; with many it is answered without its history.
func TestAnUnavailableMemoryDoesNotFailTheAnswer(t *testing.T) {
	t.Parallel()
	for _, many := range []bool{false, true} {
		t.Run(map[bool]string{false: "one workspace", true: "many workspaces"}[many], func(t *testing.T) {
			t.Parallel()
			h, srv := memoryBot(t, echoReply, brokenMemory{}, many)
			const ch = "C0CHAN"
			root := post(t, h, ch, "", "an old question")
			deliver(t, h, "m1.json", mentionIn(t, "T0001", "Ev1", ch, post(t, h, ch, root, "<@UBOT> a follow-up"), root, "a follow-up"))
			want, reads := []string{"user: an old question", "user: a follow-up"}, 1
			if many {
				want, reads = want[1:], 0
			}
			reqs := srv.Requests()
			if got := conversation(reqs[len(reqs)-1]); !slices.Equal(got, want) {
				t.Errorf("the follow-up's conversation is %q, want %q", got, want)
			}
			if n := h.Slack.Calls("conversations.replies"); n != reads {
				t.Errorf("%d conversations.replies calls, want %d", n, reads)
			}
			if n := len(h.Slack.Streams()); n != 1 {
				t.Errorf("%d answers, want 1", n)
			}
		})
	}
}

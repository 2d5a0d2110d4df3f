package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
)

// journalHeading opens the report's section on what one event costs in DynamoDB and Slack
// calls; `bench -journal-only -out FILE` replaces that section of FILE.
const journalHeading = "## The journal's cost per event"

// textMethods are the Slack calls that carry an answer's text: each is one flush, and the
// journal's budget is one write per flush plus two (the claim and the completion).
var textMethods = []string{"chat.startStream", "chat.appendStream", "chat.stopStream", "chat.postMessage", "chat.update",
	"chat.postEphemeral", fakeslack.ResponseURLMethod, "views.open", "views.update"}

// journalPath is one way an event goes through the worker, as the bench sends it.
type journalPath struct {
	name   string
	script string // the local model's answer (empty: its own)
	// request sets the scene (not counted) and returns the request to send: its path on the
	// receiver, content type and body.
	request func(ctx context.Context, s *devworld.World, n int) (path, contentType, body string, err error)
}

// benchJournal sends one event down each path through the real binaries (the worker's
// DynamoDB behind the ddbfault proxy, which counts its operations) and reports, per event,
// the journal's writes and reads, the notes' (small values kept across events), the Slack
// calls, and how many of those carried text.
func benchJournal(ctx context.Context, bins devworld.Binaries) (string, error) {
	pace := fakellm.Pace{TokensPerSecond: 4000, AnswerTokens: 300}
	s, err := devworld.Start(ctx, devworld.Options{Bins: bins, HandlerTimeout: 20 * time.Second, LocalLLM: &fakellm.Options{Pace: pace}})
	if err != nil {
		return "", err
	}
	defer s.Stop()
	long := strings.TrimSpace(strings.Repeat("A long answer, streamed into the thread as the model writes it. ", 400)) // 25,599 characters
	paths := []journalPath{
		{name: "streamed mention (about 1,800 characters)", request: mentionIn("CJBENCH")},
		{name: "streamed mention, 25,600 characters (3 messages)", script: long, request: mentionIn("CJBENCHLONG")},
		{name: "direct message in an assistant thread", request: directMessageIn("DJBENCH")},
		{name: "/ask with a question (3 response_url parts)", script: strings.TrimSpace(long[:9000]), request: askWith("what is slackrelay?")},
		{name: "/ask alone: the modal opens", request: askWith("")},
		{name: "the modal submitted", request: submitModal},
		{name: "Regenerate click", request: clickOn(assistant.ActionRegenerate)},
		{name: "feedback click", request: clickOn(assistant.ActionFeedback)},
		{name: "assistant thread started", request: threadStarted},
	}
	var r strings.Builder
	fmt.Fprintf(&r, "%s\n\nOne event down each path through the real binaries (local model, local Slack), counted by the DynamoDB proxy in front of the worker and by the local Slack server. A write is one `UpdateItem`/`PutItem` operation of the event's record (the SDK's retries not counted); notes are the small values a handler keeps across events (the channel an assistant thread's user looks at), in items of their own; the thread memory is the bot's record of the thread (docs/worker.md, \"Thread memory\"), one item per thread. Flushes are the Slack calls that carry the answer; the budget is one write per flush plus two (claim and completion).\n\nBefore the step journal (main at dfb5fe8, counted the same way): streamed mention 6 writes and 1 read; `/ask` with a one-part answer 4 writes, three parts 6; the modal opening 4; Regenerate 4; feedback 4; assistant thread started 3 (with its note).\n\n", journalHeading)
	r.WriteString("| path | record writes | record reads | note writes / reads | thread memory writes / reads | flushes | budget | Slack calls by the worker |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	for i, p := range paths {
		step("journal cost: %s", p.name)
		s.LLM.SetScript(p.script)
		if p.script != "" {
			// The script's own length: a token is a word with the space after it.
			s.LLM.SetPace(fakellm.Pace{TokensPerSecond: pace.TokensPerSecond, AnswerTokens: len(strings.SplitAfter(strings.TrimSpace(p.script), " "))})
		} else {
			s.LLM.SetPace(pace)
		}
		s.Slack.Reset()
		path, ct, body, err := p.request(ctx, s, i)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p.name, err)
		}
		before := callCounts(s.Slack)
		s.DynamoDBProxy.Reset()
		if err := sent(s.Send(ctx, path, ct, body)); err != nil {
			return "", fmt.Errorf("%s: %w", p.name, err)
		}
		if err := devworld.WaitFor(60*time.Second, func() bool { return depthZero(ctx, s) }); err != nil {
			return "", fmt.Errorf("%s: the event did not settle: %w", p.name, err)
		}
		time.Sleep(300 * time.Millisecond) // the completion write follows the last Slack call
		snap := s.DynamoDBProxy.Snapshot()
		notes, memory, all := snap.Prefix("note:"), snap.Prefix("thread:"), snap.Total
		if n, err := s.Local.Depth(ctx, s.Local.DLQURL); err != nil || n != 0 {
			return "", fmt.Errorf("%s: the event went to the DLQ (%d dead letters, %v)", p.name, n, err)
		}
		calls, flushes := slackCalls(s.Slack, before)
		writes := all.Writes.Operations - notes.Writes.Operations - memory.Writes.Operations
		reads := all.Reads.Operations - notes.Reads.Operations - memory.Reads.Operations
		fmt.Fprintf(&r, "| %s | %d | %d | %d / %d | %d / %d | %d | %d | %s |\n", p.name, writes, reads, notes.Writes.Operations, notes.Reads.Operations,
			memory.Writes.Operations, memory.Reads.Operations, flushes, flushes+2, calls)
		say("%s: %d record writes (budget %d), %d reads; notes %d/%d; thread memory %d/%d", p.name, writes, flushes+2, reads, notes.Writes.Operations, notes.Reads.Operations,
			memory.Writes.Operations, memory.Reads.Operations)
	}
	s.LLM.SetScript("")
	r.WriteString("\nRecord reads are the claim's look at a record in its way: dynalite does not return the item with a failed condition (DynamoDB does, so there they cost no read).\n")
	return r.String(), nil
}

// methods are the Slack calls the bench counts.
var methods = append([]string{"auth.test", "reactions.add", "reactions.remove", "conversations.replies", "conversations.history",
	"assistant.threads.setStatus", "assistant.threads.setTitle", "assistant.threads.setSuggestedPrompts"}, textMethods...)

// callCounts is how many calls of each method the server has received.
func callCounts(srv *fakeslack.Server) map[string]int {
	out := map[string]int{}
	for _, m := range methods {
		out[m] = srv.Calls(m)
	}
	return out
}

// slackCalls lists the Slack methods called since before (with counts) and how many carried
// text.
func slackCalls(srv *fakeslack.Server, before map[string]int) (string, int) {
	var parts []string
	flushes := 0
	for _, m := range methods {
		n := srv.Calls(m) - before[m]
		if n == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(m, "chat."), n))
		for _, t := range textMethods {
			if t == m {
				flushes += n
			}
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", "), flushes
}

func sent(r devworld.Reply, err error) error {
	if err == nil && r.Status/100 != 2 {
		err = fmt.Errorf("the receiver answered %d", r.Status)
	}
	return err
}

type request = func(context.Context, *devworld.World, int) (string, string, string, error)

const (
	jsonType = "application/json"
	formType = "application/x-www-form-urlencoded"
)

func mentionIn(channel string) request {
	return func(_ context.Context, _ *devworld.World, n int) (string, string, string, error) {
		ts := fmt.Sprintf("%d.%06d", time.Now().Unix(), 800000+n)
		return "/slack/events", jsonType, fixture.AppMention(fmt.Sprintf("EvJ%d-%d", time.Now().UnixNano(), n), channel, ts, "how does it work?"), nil
	}
}

func directMessageIn(channel string) request {
	return func(_ context.Context, _ *devworld.World, n int) (string, string, string, error) {
		ts := fmt.Sprintf("%d.%06d", time.Now().Unix(), 800000+n)
		var body map[string]any
		_ = json.Unmarshal([]byte(fixture.MessageTwin(fmt.Sprintf("EvJDM%d", time.Now().UnixNano()), channel, ts, "")), &body)
		ev := body["event"].(map[string]any)
		ev["channel_type"], ev["text"] = "im", "how does it work?"
		raw, _ := json.Marshal(body)
		return "/slack/events", jsonType, string(raw), nil
	}
}

func askWith(text string) request {
	return func(_ context.Context, s *devworld.World, n int) (string, string, string, error) {
		return "/slack/commands", formType, fixture.SlashCommand("/ask", text, s.Slack.NewTrigger(), s.Slack.ResponseURL(fmt.Sprint("bench", n))), nil
	}
}

func submitModal(_ context.Context, s *devworld.World, _ int) (string, string, string, error) {
	api := slack.New(devworld.LocalBotToken, slack.OptionAPIURL(s.Slack.APIURL()))
	v, err := api.OpenView(s.Slack.NewTrigger(), slack.ModalViewRequest{Type: slack.VTModal, CallbackID: assistant.CallbackAsk,
		Title:  slack.NewTextBlockObject(slack.PlainTextType, "Ask", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.PlainTextType, "…", false, false), nil, nil)}}})
	if err != nil {
		return "", "", "", err
	}
	body := fixture.ViewSubmission(v.ID, assistant.CallbackAsk, "", "question", "text", "what is slackrelay?")
	form, _ := url.ParseQuery(body)
	var p map[string]any
	_ = json.Unmarshal([]byte(form.Get("payload")), &p)
	p["trigger_id"] = fmt.Sprintf("%d.1.bench", time.Now().UnixNano())
	raw, _ := json.Marshal(p)
	return "/slack/interactivity", formType, url.Values{"payload": {string(raw)}}.Encode(), nil
}

func clickOn(action string) request {
	return func(_ context.Context, s *devworld.World, n int) (string, string, string, error) {
		api := slack.New(devworld.LocalBotToken, slack.OptionAPIURL(s.Slack.APIURL()))
		thread := fmt.Sprintf("%d.%06d", time.Now().Unix(), 900000+n)
		value, _ := json.Marshal(map[string]any{"p": "how does it work?", "c": "CJCLICK", "ts": thread})
		_, ts, err := api.PostMessage("CJCLICK", slack.MsgOptionTS(thread), slack.MsgOptionText("an earlier answer", false))
		if err != nil {
			return "", "", "", err
		}
		v := "good"
		if action == assistant.ActionRegenerate {
			v = string(value)
		}
		return "/slack/interactivity", formType, fixture.BlockActions(action, v, "CJCLICK", ts, thread, fmt.Sprintf("%d.%06d", time.Now().Unix(), n)), nil
	}
}

func threadStarted(_ context.Context, _ *devworld.World, n int) (string, string, string, error) {
	now := time.Now()
	body := fmt.Sprintf(`{"token":"XXYYZZ","team_id":"T0001","api_app_id":"A0001","type":"event_callback","event_id":"EvJAT%d","event_time":%d,`+
		`"event":{"type":"assistant_thread_started","assistant_thread":{"user_id":"U0USER","context":{"channel_id":"C0LOOKING","team_id":"T0001"},`+
		`"channel_id":"DJBENCH","thread_ts":"%d.000100"},"event_ts":"%d.000200"}}`, now.UnixNano(), now.Unix(), now.Unix()+int64(n), now.Unix())
	return "/slack/events", jsonType, body, nil
}

// journalOnly measures only the journal's cost per event and puts it into out (replacing the
// section there) or prints it.
func journalOnly(ctx context.Context, out string) error {
	bins, err := build(ctx)
	if err != nil {
		return err
	}
	section, err := benchJournal(ctx, bins)
	if err != nil {
		return err
	}
	return writeSection(out, journalHeading, section)
}

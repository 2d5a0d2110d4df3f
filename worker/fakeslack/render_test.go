package fakeslack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
)

// The answer's final blocks as a bot builds them: the answer in a markdown block, feedback
// buttons and a Regenerate button.
func answerBlocks(answer string) []slack.Block {
	text := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	return []slack.Block{
		slack.NewMarkdownBlock("", answer),
		slack.NewContextActionsBlock("", slack.NewFeedbackButtonsBlockElement("slackrelay_feedback",
			slack.NewFeedbackButton(text("Good"), "good"), slack.NewFeedbackButton(text("Bad"), "bad"))),
		slack.NewActionBlock("", slack.NewButtonBlockElement("slackrelay_regenerate", "again", text("Regenerate"))),
	}
}

func TestRenderedPosts(t *testing.T) {
	t.Parallel()
	section := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*Deploy* failed", false, false),
		[]*slack.TextBlockObject{slack.NewTextBlockObject(slack.MarkdownType, "env: prod", false, false),
			slack.NewTextBlockObject(slack.MarkdownType, "step: migrate", false, false)},
		slack.NewAccessory(slack.NewButtonBlockElement("retry", "r", slack.NewTextBlockObject(slack.PlainTextType, "Retry", false, false))))
	tests := []struct {
		name string
		opts []slack.MsgOption
		want Rendered
	}{
		{"text only", []slack.MsgOption{slack.MsgOptionText("plain answer", false)},
			Rendered{Text: "plain answer"}},
		{"markdown_text", []slack.MsgOption{slack.MsgOptionMarkdownText("**bold** answer")},
			Rendered{Text: "**bold** answer"}},
		{"blocks hide the fallback text", []slack.MsgOption{slack.MsgOptionText("fallback", false), slack.MsgOptionBlocks(answerBlocks("the answer")...)},
			Rendered{Text: "the answer", Actions: []string{"slackrelay_feedback", "slackrelay_regenerate"}}},
		{"each kind of block", []slack.MsgOption{slack.MsgOptionText("fallback", false), slack.MsgOptionBlocks(
			slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Incident", false, false)),
			section,
			slack.NewDividerBlock(),
			slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, "by", false, false),
				slack.NewImageBlockElement("https://example.com/a.png", "avatar"),
				slack.NewTextBlockObject(slack.PlainTextType, "slackrelay", false, false)),
			slack.NewRichTextBlock("",
				slack.NewRichTextSection(slack.NewRichTextSectionTextElement("see ", nil),
					slack.NewRichTextSectionLinkElement("https://example.com", "the runbook", nil),
					slack.NewRichTextSectionTextElement(" ", nil), slack.NewRichTextSectionEmojiElement("fire", 0, nil)),
				slack.NewRichTextList(slack.RTEListBullet, 0,
					slack.NewRichTextSection(slack.NewRichTextSectionTextElement("one", nil)),
					slack.NewRichTextSection(slack.NewRichTextSectionTextElement("two", nil)))),
		)}, Rendered{Text: "Incident\n*Deploy* failed\nenv: prod\nstep: migrate\nby slackrelay\nsee the runbook :fire:\none\ntwo",
			Actions: []string{"retry"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newTest(t, Options{})
			_, ts, err := newAPI(s).PostMessageContext(context.Background(), "C1", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := s.Rendered("C1", ts)
			tc.want.Channel, tc.want.TS, tc.want.User, tc.want.Bot = "C1", ts, "UBOT", true
			if diff := cmp.Diff(tc.want, got); !ok || diff != "" {
				t.Errorf("Rendered (found %v) differs (-want +got):\n%s", ok, diff)
			}
		})
	}
}

// A streamed message shows what it streamed, then chat.stopStream's blocks below it: blocks
// repeating the answer show it twice. chat.update replaces all of it.
func TestRenderedStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		// after the start ("The answer") and an append (" is 42."), finish ends the stream.
		finish   func(api *slack.Client, ts string) error
		want     string
		actions  []string
		edited   bool
		apiBlock bool // conversations.replies shows blocks
	}{
		{"stopped without blocks", func(api *slack.Client, ts string) error {
			_, _, err := api.StopStreamContext(ctx, "D1", ts)
			return err
		}, "The answer is 42.", nil, false, false},
		{"stopped with buttons only", func(api *slack.Client, ts string) error {
			_, _, err := api.StopStreamContext(ctx, "D1", ts, slack.MsgOptionBlocks(answerBlocks("")[1:]...))
			return err
		}, "The answer is 42.", []string{"slackrelay_feedback", "slackrelay_regenerate"}, false, true},
		{"stopped with blocks repeating the answer", func(api *slack.Client, ts string) error {
			_, _, err := api.StopStreamContext(ctx, "D1", ts, slack.MsgOptionBlocks(answerBlocks("The answer is 42.")...))
			return err
		}, "The answer is 42.\nThe answer is 42.", []string{"slackrelay_feedback", "slackrelay_regenerate"}, false, true},
		{"stopped with more markdown", func(api *slack.Client, ts string) error {
			_, _, err := api.StopStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText(" Done."))
			return err
		}, "The answer is 42. Done.", nil, false, false},
		{"updated with text after the stop", func(api *slack.Client, ts string) error {
			if _, _, err := api.StopStreamContext(ctx, "D1", ts, slack.MsgOptionBlocks(answerBlocks("")[1:]...)); err != nil {
				return err
			}
			_, _, _, err := api.UpdateMessageContext(ctx, "D1", ts, slack.MsgOptionText("Replaced.", false))
			return err
		}, "Replaced.", nil, true, false},
		{"updated with blocks after the stop", func(api *slack.Client, ts string) error {
			if _, _, err := api.StopStreamContext(ctx, "D1", ts); err != nil {
				return err
			}
			_, _, _, err := api.UpdateMessageContext(ctx, "D1", ts, slack.MsgOptionText("fallback", false),
				slack.MsgOptionBlocks(answerBlocks("Whole answer.")...))
			return err
		}, "Whole answer.", []string{"slackrelay_feedback", "slackrelay_regenerate"}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newTest(t, Options{})
			api := newAPI(s)
			parent, ts := startDMStream(t, s, api, slack.MsgOptionMarkdownText("The answer"))
			if _, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionMarkdownText(" is 42.")); err != nil {
				t.Fatal(err)
			}
			if r, _ := s.Rendered("D1", ts); !r.Streaming || r.Text != "The answer is 42." {
				t.Fatalf("while streaming: %+v, want the text so far, streaming", r)
			}
			if err := tc.finish(api, ts); err != nil {
				t.Fatal(err)
			}
			r, _ := s.Rendered("D1", ts)
			if r.Streaming || r.Text != tc.want || !cmp.Equal(r.Actions, tc.actions) || r.Edited != tc.edited {
				t.Errorf("Rendered = %+v, want text %q, actions %v, edited %v, not streaming", r, tc.want, tc.actions, tc.edited)
			}
			// The API's view keeps its shape: text and blocks as sent.
			if m := threadText(t, api, "D1", parent, ts); (len(m.Blocks.BlockSet) > 0) != tc.apiBlock {
				t.Errorf("conversations.replies shows %d blocks, want blocks: %v", len(m.Blocks.BlockSet), tc.apiBlock)
			}
		})
	}
}

func TestRenderedStreamChunks(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t, Options{})
	api := newAPI(s)
	ctx := context.Background()
	_, ts := startDMStream(t, s, api, slack.MsgOptionChunks(slack.NewMarkdownTextChunk("Looking"),
		slack.NewTaskUpdateChunk("t1", "Search the docs")))
	if _, _, err := api.AppendStreamContext(ctx, "D1", ts, slack.MsgOptionChunks(slack.NewMarkdownTextChunk(" it up."),
		slack.NewBlocksChunk(slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*Sources*", false, false), nil, nil)),
		slack.NewMarkdownTextChunk("Found it."))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.StopStreamContext(ctx, "D1", ts, slack.MsgOptionBlocks(answerBlocks("")[2])); err != nil {
		t.Fatal(err)
	}
	r, _ := s.Rendered("D1", ts)
	if want := "Looking it up.\n*Sources*\nFound it."; r.Text != want || !cmp.Equal(r.Actions, []string{"slackrelay_regenerate"}) {
		t.Fatalf("Rendered = %+v, want text %q and the Regenerate action", r, want)
	}
	if st, _ := s.Stream("D1", ts); st.Text != "Looking it up.Found it." {
		t.Fatalf("Stream.Text = %q, want the markdown chunks only", st.Text)
	}
}

func TestRenderedStreamEndsByItself(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s, _ := newTest(t, Options{Now: clock.Now})
	api := newAPI(s)
	_, ts := startDMStream(t, s, api, slack.MsgOptionMarkdownText("half an"))
	clock.Advance(DefaultStreamLifetime)
	if r, _ := s.Rendered("D1", ts); r.Streaming || r.Text != "half an" {
		t.Fatalf("Rendered after the lifetime = %+v, want the half answer, not streaming", r)
	}
	if st, _ := s.Stream("D1", ts); st.EndedBy != "lifetime" {
		t.Fatalf("stream ended by %q, want lifetime", st.EndedBy)
	}
	if m := s.Messages("D1"); m[len(m)-1].Streaming {
		t.Fatalf("Messages = %+v, want the stream ended", m)
	}
}

func TestRenderedThread(t *testing.T) {
	t.Parallel()
	s, base := newTest(t, Options{})
	api := newAPI(s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parent, err := s.AddUserMessage(UserMessage{Channel: "C1", User: "U1", Text: "why?"})
	if err != nil {
		t.Fatal(err)
	}
	_, reply, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionTS(parent), slack.MsgOptionText("fallback", false),
		slack.MsgOptionBlocks(answerBlocks("Because.")...))
	if err != nil {
		t.Fatal(err)
	}
	_, streamed, err := api.StartStreamContext(ctx, "C1", slack.MsgOptionTS(parent), slack.MsgOptionRecipientUserID("U1"),
		slack.MsgOptionRecipientTeamID("T1"), slack.MsgOptionMarkdownText("And also"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("elsewhere", false)); err != nil {
		t.Fatal(err)
	}
	want := []Rendered{
		{Channel: "C1", TS: parent, User: "U1", Text: "why?"},
		{Channel: "C1", TS: reply, ThreadTS: parent, User: "UBOT", Bot: true, Text: "Because.",
			Actions: []string{"slackrelay_feedback", "slackrelay_regenerate"}},
		{Channel: "C1", TS: streamed, ThreadTS: parent, User: "UBOT", Bot: true, Text: "And also", Streaming: true},
	}
	for _, from := range []string{parent, reply} { // any message of the thread names it
		if diff := cmp.Diff(want, s.RenderedThread("C1", from)); diff != "" {
			t.Errorf("RenderedThread(C1, %s) differs (-want +got):\n%s", from, diff)
		}
	}
	c := &Client{BaseURL: base}
	got, err := c.RenderedThread(ctx, "C1", parent)
	if diff := cmp.Diff(want, got); err != nil || diff != "" {
		t.Errorf("Client.RenderedThread: %v, differs (-want +got):\n%s", err, diff)
	}
	one, err := c.Rendered(ctx, "C1", reply)
	if diff := cmp.Diff(want[1], one); err != nil || diff != "" {
		t.Errorf("Client.Rendered: %v, differs (-want +got):\n%s", err, diff)
	}
	if _, err := c.Rendered(ctx, "C1", "1600000000.000100"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Client.Rendered of an unknown message: %v, want an HTTP 404 error", err)
	}
	if _, ok := s.Rendered("C9", reply); ok {
		t.Error("Rendered found a message in a channel that has none")
	}
	if got := s.RenderedThread("C1", "1600000000.000100"); len(got) != 0 {
		t.Errorf("RenderedThread of an unknown thread = %+v, want none", got)
	}
}

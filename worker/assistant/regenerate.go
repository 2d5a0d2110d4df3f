package assistant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/internal/textcut"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// ActionRegenerate is the action_id of the button on every answer the bot posts.
const ActionRegenerate = "slackrelay_regenerate"

// maxPromptInButton bounds the question a button carries (bytes); a longer question is read
// back from the conversation when the button is clicked. The buttons under an answer must also
// fit relay.FinalBlocksChars of JSON, in which the value is escaped twice: regenerateButton
// shortens it further when they would not.
const maxPromptInButton = 1000

// regenerateValue is what the button carries: the question, so a click can ask again without
// reading the conversation, and where the question was.
type regenerateValue struct {
	Prompt  string `json:"p"`
	Cut     bool   `json:"cut,omitempty"`
	Channel string `json:"c"`
	TS      string `json:"ts"`
}

func regenerateButton(prompt string, source relay.MessageRef) slack.Block {
	for limit := maxPromptInButton; ; limit /= 2 {
		v := regenerateValue{Prompt: textcut.Truncate(prompt, limit), Channel: source.Channel, TS: source.TS}
		v.Cut = len(v.Prompt) < len(prompt)
		raw, _ := json.Marshal(v) // strings only: cannot fail
		btn := slack.NewButtonBlockElement(ActionRegenerate, string(raw), slack.NewTextBlockObject(slack.PlainTextType, "Regenerate", false, false))
		block := slack.NewActionBlock("slackrelay_actions", btn)
		if limit == 0 || answerBlocksFit(block) {
			return block
		}
	}
}

// answerBlocksFit reports whether the blocks under an answer (this Regenerate button and the
// feedback buttons) leave the answer's text its room.
func answerBlocksFit(regenerate slack.Block) bool {
	raw, err := json.Marshal([]slack.Block{regenerate, feedbackButtons()})
	return err == nil && utf8.RuneCount(raw) <= relay.FinalBlocksChars
}

// regenerate answers the question of the clicked answer again and replaces that message with
// the new answer, under the same Regenerate and feedback buttons as every answer, once per
// click: Slack's retries of the click and SQS's duplicates share the
// click's dedupe key, and the update's text is recorded before it is sent.
func (h *handlers) regenerate(ctx context.Context, req *relay.Request[slack.InteractionCallback]) error {
	cb := req.Payload
	if len(cb.ActionCallback.BlockActions) == 0 {
		return relay.Permanent(errors.New("regenerate click without an action"))
	}
	var v regenerateValue
	if err := json.Unmarshal([]byte(cb.ActionCallback.BlockActions[0].Value), &v); err != nil {
		return relay.Permanent(fmt.Errorf("regenerate button value: %w", err))
	}
	clicked := req.Source()
	if clicked.Channel == "" || clicked.TS == "" {
		return relay.Permanent(errors.New("regenerate click without the message it was on"))
	}
	thread := cb.Container.ThreadTs
	if thread == "" {
		thread = cb.Message.ThreadTimestamp
	}
	question := v.Prompt
	if v.Cut {
		full, err := h.readQuestion(ctx, req.Session, v, thread)
		if err != nil {
			return err
		}
		question = full
	}
	answer, err := h.cfg.LLM.Respond(ctx, question)
	if err != nil {
		return fmt.Errorf("responder: %w", err)
	}
	blocks := relay.WithBlocks(regenerateButton(question, relay.MessageRef{Channel: v.Channel, TS: v.TS}), feedbackButtons())
	if err := req.Update(ctx, clicked.Channel, clicked.TS, answer, blocks); err != nil {
		return err
	}
	if h.cfg.Memory != nil && thread != "" {
		// The thread's memory holds the answer as the user now sees it.
		if _, err := h.cfg.Memory.Edit(ctx, memoryKey(req.Session, clicked.Channel, thread), clicked.TS, answer); err != nil {
			req.Log.Warn("thread memory: could not record the regenerated answer", "error", err.Error())
		}
	}
	req.Log.Info("regenerated an answer", "message_ts", clicked.TS)
	return nil
}

// readQuestion reads the question's full text: from the thread's memory, else (when Slack
// reads are allowed) from its conversation, else the cut text the button carries.
func (h *handlers) readQuestion(ctx context.Context, s *relay.Session, v regenerateValue, thread string) (string, error) {
	if h.cfg.Memory != nil && thread != "" {
		th, err := h.cfg.Memory.Read(ctx, memoryKey(s, v.Channel, thread))
		if err != nil {
			s.Log.Warn("thread memory: could not read the question back", "error", err.Error())
		}
		for _, t := range th.Turns {
			if t.TS == v.TS && !t.Bot {
				return t.Text, nil
			}
		}
	}
	if h.cfg.NoSlackThreadReads {
		return v.Prompt, nil
	}
	msgs, _, _, err := s.Slack.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: v.Channel, Timestamp: v.TS, Inclusive: true, Limit: 1})
	if err != nil {
		return "", fmt.Errorf("read the question back: %w", err)
	}
	for _, m := range msgs {
		if m.Timestamp == v.TS {
			return prompt(m.Text), nil
		}
	}
	return v.Prompt, nil
}

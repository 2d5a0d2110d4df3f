package assistant

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/worker/internal/textcut"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// CallbackAsk is the callback_id of the /ask modal.
const CallbackAsk = "slackrelay_ask"

// The modal's one input.
const (
	askBlockID  = "question"
	askActionID = "text"
)

// ask answers /ask <question> through the response_url, visible in the channel; /ask alone
// opens a modal to type the question in.
func (h *handlers) ask(ctx context.Context, req *relay.Request[slack.SlashCommand]) error {
	q := strings.TrimSpace(req.Payload.Text)
	if q == "" {
		_, err := req.OpenView(ctx, askModal(), relay.KeepOpen())
		if errors.Is(err, relay.ErrViewMayBeOpen) {
			// An earlier attempt handed the modal to Slack and lost the answer: the user may
			// be looking at it. Never tell them it failed.
			return nil
		}
		if errors.Is(err, relay.ErrTriggerExpired) {
			// Slack accepts views.open for 3 s after the command: tell the user instead.
			req.Log.Warn("the /ask modal could not open in time; answering through response_url instead")
			return req.Respond(ctx, "Sorry, the question form could not open in time. Try again, or type your question after the command: "+
				req.Payload.Command+" what is slackrelay?")
		}
		return err
	}
	answer, err := h.cfg.LLM.Respond(ctx, q)
	if err != nil {
		return fmt.Errorf("responder: %w", err)
	}
	if err := req.Respond(ctx, answer, relay.InChannel()); err != nil {
		return err
	}
	req.Log.Info("answered slash command", "command", req.Payload.Command)
	return nil
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func askModal() slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(plain("What would you like to know?"), askActionID)
	input.Multiline = true
	return slack.ModalViewRequest{
		Type:       slack.VTModal,
		CallbackID: CallbackAsk,
		Title:      plain("Ask slackrelay"),
		Submit:     plain("Ask"),
		Close:      plain("Cancel"),
		Blocks:     slack.Blocks{BlockSet: []slack.Block{slack.NewInputBlock(askBlockID, plain("Your question"), nil, input)}},
	}
}

// askSubmitted answers the modal's question in the modal itself: the receiver has already
// replaced it with a "working on it" view, which this updates by its id.
func (h *handlers) askSubmitted(ctx context.Context, req *relay.Request[slack.InteractionCallback]) error {
	view := req.Payload.View
	var q string
	if view.State != nil {
		q = strings.TrimSpace(view.State.Values[askBlockID][askActionID].Value)
	}
	if q == "" {
		return req.UpdateView(ctx, view.ID, answerModal("(no question)", "Type a question and submit the form again."))
	}
	answer, err := h.cfg.LLM.Respond(ctx, q)
	if err != nil {
		return fmt.Errorf("responder: %w", err)
	}
	return req.UpdateView(ctx, view.ID, answerModal(q, answer))
}

// answerModal shows the question and the answer; a section block holds 3,000 characters.
func answerModal(question, answer string) slack.ModalViewRequest {
	blocks := []slack.Block{slack.NewContextBlock("q", slack.NewTextBlockObject(slack.PlainTextType, textcut.Truncate(question, 2000), false, false))}
	parts := textcut.Split(answer, relay.MaxSectionChars-100)
	if room := relay.MaxViewBlocks - len(blocks); len(parts) > room {
		parts = parts[:room]
		parts[room-1] = textcut.Truncate(parts[room-1], relay.MaxSectionChars-200) + "\n\n_(The answer was too long for this form and has been cut here.)_"
	}
	for _, part := range parts {
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, part, false, false), nil, nil))
	}
	return slack.ModalViewRequest{
		Type:       slack.VTModal,
		CallbackID: CallbackAsk,
		Title:      plain("Ask slackrelay"),
		Close:      plain("Done"),
		Blocks:     slack.Blocks{BlockSet: blocks},
	}
}

package assistant

import (
	"context"
	"errors"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/relay"
)

// ActionFeedback is the action_id of the feedback buttons on every answer.
const ActionFeedback = "slackrelay_feedback"

// The feedback buttons' values: the verdicts.
const (
	verdictGood = "good"
	verdictBad  = "bad"
)

// feedbackButtons is the context_actions block with Slack's feedback buttons.
func feedbackButtons() slack.Block {
	good := slack.NewFeedbackButton(slack.NewTextBlockObject(slack.PlainTextType, "Good answer", false, false), verdictGood)
	bad := slack.NewFeedbackButton(slack.NewTextBlockObject(slack.PlainTextType, "Bad answer", false, false), verdictBad)
	return slack.NewContextActionsBlock("slackrelay_feedback", slack.NewFeedbackButtonsBlockElement(ActionFeedback, good, bad))
}

// feedback records a verdict on an answer, once per click (Slack's retries of the click share
// its key): a log line and a Feedback metric by model and verdict; the user is thanked
// privately.
func (h *handlers) feedback(ctx context.Context, req *relay.Request[slack.InteractionCallback]) error {
	cb := req.Payload
	if len(cb.ActionCallback.BlockActions) == 0 {
		return relay.Permanent(errors.New("feedback click without an action"))
	}
	verdict := cb.ActionCallback.BlockActions[0].Value
	if verdict != verdictGood && verdict != verdictBad {
		return relay.Permanent(errors.New("feedback click with an unknown verdict"))
	}
	model := h.cfg.Model
	if model == "" {
		model = "unknown"
	}
	if h.cfg.Metrics != nil {
		h.cfg.Metrics.Count("Feedback", 1, metrics.Dim{Name: "Model", Value: model}, metrics.Dim{Name: "Verdict", Value: verdict})
	}
	req.Log.Info("feedback", "verdict", verdict, "model", model, "message_ts", cb.Message.Timestamp, "user_id", cb.User.ID)
	thanks := "Thanks for the feedback!"
	if verdict == verdictBad {
		thanks = "Thanks for telling us. Try Regenerate for another answer."
	}
	return req.Ephemeral(ctx, cb.User.ID, thanks)
}

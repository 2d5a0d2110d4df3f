package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// triggerLifetime is how long Slack accepts a trigger_id for views.open.
const triggerLifetime = 3 * time.Second

// ErrTriggerExpired means views.open came too late (or the trigger was used already): no
// modal can open from this delivery. Tell the user another way (Ephemeral, Respond).
var ErrTriggerExpired = errors.New("the trigger_id expired before views.open")

// TriggerAge is how long ago Slack sent the request that carries the trigger (the receiver
// stamps the request time), or 0 when unknown.
func (s *Session) TriggerAge(now time.Time) time.Duration {
	if s.Envelope == nil || s.Envelope.EventTime == 0 {
		return 0
	}
	return now.Sub(time.Unix(s.Envelope.EventTime, 0))
}

// ViewOption tunes OpenView.
type ViewOption func(*slack.ModalViewRequest)

// KeepOpen makes the modal stay open when it is submitted: the receiver answers the
// submission at once with a "working on it" view, and the submission's handler replaces it
// with UpdateView(view id) when it has the result. Without it Slack closes the modal on
// submission (the receiver's empty 200).
func KeepOpen() ViewOption {
	return func(v *slack.ModalViewRequest) {
		if !strings.HasPrefix(v.PrivateMetadata, envelope.WorkingViewPrefix) {
			v.PrivateMetadata = envelope.WorkingViewPrefix + v.PrivateMetadata
		}
	}
}

// ErrViewMayBeOpen means an earlier call of views.open with this delivery's trigger may have
// opened the modal (its answer was lost): the user may be looking at it, and the trigger can
// open no other. Do not report a failure.
var ErrViewMayBeOpen = errors.New("the modal may have opened in an earlier attempt")

// OpenView opens a modal with the delivery's trigger_id, once: a retry returns the view id
// recorded by the attempt that opened it. When that attempt lost Slack's answer, the trigger
// itself tells (Slack accepts a trigger once): the retry opens the modal if it was not
// opened, and gives ErrViewMayBeOpen if Slack says the trigger was used, or expired meanwhile
// (the modal may be open; no failure should be reported). A trigger that expired before any
// attempt handed it over gives ErrTriggerExpired (permanent); tell the user another way.
func (s *Session) OpenView(ctx context.Context, view slack.ModalViewRequest, opts ...ViewOption) (string, error) {
	for _, o := range opts {
		o(&view)
	}
	a := s.run.about
	if a.triggerID == "" {
		return "", failure.Permanentf("open view: this delivery has no trigger_id")
	}
	name, legacyID, err := s.step("view", "trigger")
	if err != nil {
		return "", err
	}
	var st partsStep
	if _, err := s.load(name, legacyID, &st); err != nil {
		return "", err
	}
	switch {
	case st.Done && st.Value == "":
		return "", ErrViewMayBeOpen
	case st.Done:
		return st.Value, nil
	}
	uncertain := st.Pending
	if uncertain {
		s.Log.Warn("an earlier attempt handed views.open to Slack and lost the answer; asking again with the same trigger, which Slack accepts once", "step", name)
	}
	age := s.TriggerAge(time.Now())
	if age > triggerLifetime {
		s.Log.Warn("views.open is late: the trigger is older than Slack accepts", "trigger_age_ms", age.Milliseconds())
	} else {
		s.Log.Info("opening a view", "trigger_age_ms", age.Milliseconds())
	}
	if !uncertain {
		if err := s.save(ctx, name, partsStep{Kind: "view", Pending: true}); err != nil {
			return "", err
		}
	}
	resp, err := s.Slack.OpenViewContext(ctx, a.triggerID, view)
	if err != nil && !notSent(err) && s.TriggerAge(time.Now()) < triggerLifetime {
		// The answer was lost (or Slack failed): while the trigger is young, asking again
		// settles it at once, since Slack accepts a trigger once.
		s.Log.Warn("views.open's answer was lost; asking again with the same trigger", "error", err.Error())
		uncertain = true
		resp, err = s.Slack.OpenViewContext(ctx, a.triggerID, view)
	}
	switch {
	case isSlackError(err, "exchanged_trigger_id"), uncertain && isSlackError(err, "expired_trigger_id"):
		// The trigger was used (by an earlier call of this delivery whose answer was lost),
		// or expired after an earlier call that may have used it.
		s.settle(name, partsStep{Kind: "view", Done: true})
		return "", ErrViewMayBeOpen
	case isSlackError(err, "expired_trigger_id"), isSlackError(err, "invalid_trigger_id"):
		s.settle(name, partsStep{Kind: "view"})
		return "", failure.AsPermanent(fmt.Errorf("open view: %w (%w)", ErrTriggerExpired, err))
	case err != nil:
		if notSent(err) {
			s.settle(name, partsStep{Kind: "view"})
		}
		return "", fmt.Errorf("open view: %w", err)
	}
	s.settle(name, partsStep{Kind: "view", Value: resp.View.ID, Done: true})
	return resp.View.ID, nil
}

// UpdateView replaces the modal viewID shows. Idempotent: nothing is recorded.
func (s *Session) UpdateView(ctx context.Context, viewID string, view slack.ModalViewRequest) error {
	if _, err := s.Slack.UpdateViewContext(ctx, view, "", "", viewID); err != nil {
		return fmt.Errorf("update view %s: %w", viewID, err)
	}
	return nil
}

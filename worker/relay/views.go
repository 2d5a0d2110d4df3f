package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/worker/failure"
	"github.com/slackrelay/slackrelay/worker/progress"
)

// TriggerLifetime is how long Slack accepts a trigger_id for views.open.
const TriggerLifetime = 3 * time.Second

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

// OpenView opens a modal with the delivery's trigger_id, once: a retry returns the view id
// recorded by the attempt that opened it. A trigger that expired gives ErrTriggerExpired
// (permanent: no retry can revive it); tell the user another way.
func (s *Session) OpenView(ctx context.Context, view slack.ModalViewRequest, opts ...ViewOption) (string, error) {
	for _, o := range opts {
		o(&view)
	}
	if s.about.triggerID == "" {
		return "", failure.Permanentf("open view: this delivery has no trigger_id")
	}
	id := s.nextStep("view")
	st, resumed := s.lease.Step(id)
	if st.Done {
		return st.Value, nil
	}
	if resumed && st.Pending {
		// The earlier attempt may have opened it; the trigger has long expired anyway.
		return "", failure.AsPermanent(fmt.Errorf("open view: an earlier attempt may have opened it: %w", ErrTriggerExpired))
	}
	age := s.TriggerAge(time.Now())
	if age > TriggerLifetime {
		s.Log.Warn("views.open is late: the trigger is older than Slack accepts", "trigger_age_ms", age.Milliseconds())
	} else {
		s.Log.Info("opening a view", "trigger_age_ms", age.Milliseconds())
	}
	if err := s.save(ctx, id, progress.Step{Kind: "view", Pending: true}); err != nil {
		return "", err
	}
	resp, err := s.Slack.OpenViewContext(ctx, s.about.triggerID, view)
	if err != nil {
		if isSlackError(err, "expired_trigger_id") || isSlackError(err, "exchanged_trigger_id") {
			_ = s.lease.Save(ctx, id, progress.Step{Kind: "view"})
			return "", failure.AsPermanent(fmt.Errorf("open view: %w (%w)", ErrTriggerExpired, err))
		}
		if notSent(err) {
			_ = s.lease.Save(ctx, id, progress.Step{Kind: "view"})
		}
		return "", fmt.Errorf("open view: %w", err)
	}
	viewID := resp.View.ID
	if err := s.save(ctx, id, progress.Step{Kind: "view", Value: viewID, Done: true}); err != nil {
		return viewID, err
	}
	return viewID, nil
}

// UpdateView replaces the modal viewID shows. Idempotent: nothing is recorded.
func (s *Session) UpdateView(ctx context.Context, viewID string, view slack.ModalViewRequest) error {
	if _, err := s.Slack.UpdateViewContext(ctx, view, "", "", viewID); err != nil {
		return fmt.Errorf("update view %s: %w", viewID, err)
	}
	return nil
}

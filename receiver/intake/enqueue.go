package intake

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/logging"
	"github.com/slackrelay/slackrelay/shared/metrics"
)

// messageAttributes are the SQS message attributes the receiver sets, for filtering and for
// the operators' DLQ tool.
func messageAttributes(e *envelope.Envelope) map[string]sqstypes.MessageAttributeValue {
	attrs := make(map[string]sqstypes.MessageAttributeValue, 4)
	attrs[envelope.AttrKind] = sqstypes.MessageAttributeValue{DataType: &dataTypeString, StringValue: (*string)(&e.Kind)}
	if e.EventType != "" {
		attrs[envelope.AttrEventType] = sqstypes.MessageAttributeValue{DataType: &dataTypeString, StringValue: &e.EventType}
	}
	if e.TeamID != "" {
		attrs[envelope.AttrTeamID] = sqstypes.MessageAttributeValue{DataType: &dataTypeString, StringValue: &e.TeamID}
	}
	if e.RetryNum > 0 {
		retry := strconv.Itoa(e.RetryNum)
		attrs[envelope.AttrRetryNum] = sqstypes.MessageAttributeValue{DataType: &dataTypeNumber, StringValue: &retry}
	}
	return attrs
}

// messageGroup is the SQS MessageGroupId of an envelope: its tenant, so that SQS fair queues
// keep one busy workspace from raising the others' dwell time. The tenant is the one whose
// installation answers the event: the org (enterprise id) for an org-wide install, else the
// workspace (team id). Slack ids carry their kind in their first letter (T, E), so the plain
// id is unambiguous. Empty when the request names neither (no group is set then).
func messageGroup(e *envelope.Envelope, body []byte) string {
	if e.EnterpriseID != "" && (e.TeamID == "" || enterpriseInstall(e, body)) {
		return e.EnterpriseID
	}
	return e.TeamID
}

// enterpriseInstall reports whether the request says it comes through an org-wide install:
// authorizations[0].is_enterprise_install in an Events API body, is_enterprise_install in a
// slash command's form or an interaction's payload. Only read for requests from an Enterprise
// Grid org (an enterprise id is set), so the other requests are not parsed twice.
func enterpriseInstall(e *envelope.Envelope, body []byte) bool {
	switch e.Kind {
	case envelope.KindEvent:
		var o struct {
			Authorizations []struct {
				IsEnterpriseInstall bool `json:"is_enterprise_install"`
			} `json:"authorizations"`
		}
		return json.Unmarshal(body, &o) == nil && len(o.Authorizations) > 0 && o.Authorizations[0].IsEnterpriseInstall
	case envelope.KindSlashCommand:
		form, err := url.ParseQuery(string(body))
		return err == nil && form.Get("is_enterprise_install") == "true"
	case envelope.KindInteraction:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return false
		}
		var ip struct {
			IsEnterpriseInstall bool `json:"is_enterprise_install"`
		}
		return json.Unmarshal([]byte(form.Get("payload")), &ip) == nil && ip.IsEnterpriseInstall
	}
	return false
}

func (h *Handler) enqueue(ctx context.Context, r *Request, e *envelope.Envelope) Response {
	ids := [...]slog.Attr{
		slog.String(logging.KeyRequestID, r.RequestID),
		slog.String(logging.KeyEnvelopeID, e.ID),
		slog.String(logging.KeyEventID, e.EventID),
		slog.String(logging.KeyKind, string(e.Kind)),
		slog.String(logging.KeyTeamID, e.TeamID),
	}
	attrs := messageAttributes(e)
	// SQS counts the attributes toward its limit too. Encode writes the body as a JSON
	// string when that fits and in base64 otherwise: with MAX_BODY_BYTES at most
	// receiverconfig.MaxBodyBytesLimit and the ids bounded (maxFieldBytes), every body
	// accepted so far fits.
	attrBytes := envelope.SQSMessageSize("", attrs)
	limit := envelope.MaxSQSMessageBytes
	if h.messageLimit > 0 {
		limit = h.messageLimit
	}
	body, version, err := envelope.Encode(e, limit-attrBytes)
	var tooLarge *envelope.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		// Cannot happen with the configuration's limits: a handler built with a larger
		// MaxBodyBytes. A retry would fail the same way.
		h.Log.LogAttrs(ctx, slog.LevelError, "request rejected: MAX_BODY_BYTES is over the largest body that fits in an SQS message",
			append(ids[:], slog.String("reason", reasonEnvelopeBig), slog.Int("request_bytes", len(r.Body)),
				slog.Int("max_body_bytes", h.MaxBodyBytes), slog.Int("message_bytes", tooLarge.Bytes+attrBytes),
				slog.Int("attribute_bytes", attrBytes), slog.Int("limit_bytes", limit))...)
		h.Metrics.Count("Rejected", 1, metrics.Dim{Name: "Reason", Value: reasonEnvelopeBig})
		return reject(413, "request body too large once wrapped", true)
	case err != nil:
		// Only a clock outside years 0-9999 gets here: a fault of this host, so Slack may retry.
		return h.rejected(r, reasonEncode, err, reject(503, "could not enqueue, retry later", false))
	}
	if e.RetryNum > 0 {
		h.Metrics.Count("SlackRetries", 1, metrics.Dim{Name: "Reason", Value: e.RetryReason})
	}
	start := h.now()
	sendCtx, cancel := enqueueContext(ctx)
	in := &sqs.SendMessageInput{QueueUrl: &h.QueueURL, MessageBody: &body, MessageAttributes: attrs}
	if group := messageGroup(e, r.Body); group != "" {
		in.MessageGroupId = &group
	}
	_, err = h.Sender.SendMessage(sendCtx, in)
	cancel()
	took := h.now().Sub(start)
	h.Metrics.Milliseconds("EnqueueLatency", took)
	if err != nil {
		// Not enqueued, so not acknowledged: Slack retries the delivery.
		level := slog.LevelError
		if code, ok := configErrorCode(err); ok {
			h.configError(code, err)
			level = slog.LevelWarn
		}
		h.Log.LogAttrs(ctx, level, "enqueue failed; answering 503 so Slack retries",
			append(ids[:], slog.String("error", err.Error()), slog.Int64("took_ms", took.Milliseconds()))...)
		h.Metrics.Count("EnqueueFailures", 1)
		return reject(503, "could not enqueue, retry later", false)
	}
	h.Metrics.Count("Requests", 1, metrics.Dim{Name: "Kind", Value: string(e.Kind)})
	line := append(ids[:], slog.String("event_type", e.EventType), slog.Int("retry_num", e.RetryNum), slog.Int64("took_ms", took.Milliseconds()))
	if version == envelope.VersionBodyBase64 {
		// A worker older than the base64 form dead-letters this message as an unsupported
		// version; replay it once the worker is updated.
		line = append(line, slog.String("body_encoding", "base64"), slog.Int("request_bytes", len(r.Body)))
	}
	h.Log.LogAttrs(ctx, slog.LevelInfo, "enqueued", line...)
	if e.Kind == envelope.KindEvent {
		return respAccepted
	}
	return respOK
}

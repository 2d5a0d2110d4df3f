package intake

import (
	"errors"

	"github.com/aws/smithy-go"
)

// configErrorCodes are SQS error codes that mean the receiver's configuration is wrong (the
// queue URL, the function's role, the queue's key): every request fails the same way until
// a deploy fixes it, so the cause is logged once at ERROR and each request at WARN.
var configErrorCodes = map[string]bool{
	"AWS.SimpleQueueService.NonExistentQueue": true,
	"QueueDoesNotExist":                       true,
	"InvalidAddress":                          true,
	"InvalidSecurity":                         true,
	"AccessDenied":                            true,
	"AccessDeniedException":                   true,
	"KmsAccessDenied":                         true,
	"KmsDisabled":                             true,
	"KmsNotFound":                             true,
	"KmsInvalidState":                         true,
	"KmsInvalidKeyUsage":                      true,
}

// configErrorCode returns the error code of err when it is a configuration error.
func configErrorCode(err error) (string, bool) {
	var ae smithy.APIError
	if errors.As(err, &ae) && configErrorCodes[ae.ErrorCode()] {
		return ae.ErrorCode(), true
	}
	return "", false
}

// configError logs a configuration error at ERROR the first time its code is seen.
func (h *Handler) configError(code string, err error) {
	if _, seen := h.reported.LoadOrStore(code, true); seen {
		return
	}
	h.Log.Error("configuration error: every enqueue fails this way until the configuration is fixed",
		"code", code, "queue_url", h.QueueURL, "error", err.Error())
}

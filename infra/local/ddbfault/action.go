package ddbfault

import (
	"context"
	"net/http"
	"time"
)

// Kind names what the proxy does with a request. The kinds of faults are also what
// Call.Fault records.
type Kind string

// The kinds of Action, and FaultDown, the fault of a request that came while the proxy
// was down.
const (
	// KindPass forwards the request and writes DynamoDB's answer: no fault.
	KindPass Kind = "pass"
	// KindFail answers with a DynamoDB error without forwarding.
	KindFail Kind = "fail"
	// KindDelay waits, then forwards (or, returned by an AfterFunc, writes the answer).
	KindDelay Kind = "delay"
	// KindReset closes the client's connection without forwarding.
	KindReset Kind = "reset"
	// KindDrop forwards, reads DynamoDB's answer and closes the client's connection
	// without writing it: the write is applied, the client sees a network error.
	KindDrop Kind = "drop"
	// KindHook calls the rule's BeforeFunc and AfterFunc, which choose the action.
	KindHook Kind = "hook"
	// FaultDown is recorded for a request closed without an answer because SetDown(true).
	FaultDown Kind = "down"
)

// The DynamoDB error types the ready-made failures answer with.
const (
	ErrInternalServerError = "InternalServerError"
	ErrThroughputExceeded  = "ProvisionedThroughputExceededException"
	ErrValidation          = "ValidationException"
)

// Action is what a rule does to the requests it fires on. Make one with Pass, Fail,
// FailRetryable, FailThrottled, FailPermanent, Delay, Reset, Drop or Hook.
type Action struct {
	// Kind is the action.
	Kind Kind
	// Status, ErrorType and Message are the answer of KindFail: an HTTP status (400-599)
	// and a DynamoDB error type such as "InternalServerError" (without the
	// "com.amazonaws.dynamodb.v20120810#" prefix, which the proxy adds).
	Status    int
	ErrorType string
	Message   string
	// Delay is the wait of KindDelay.
	Delay time.Duration
	// Before and After are the functions of KindHook (either may be nil).
	Before BeforeFunc
	After  AfterFunc
}

// BeforeFunc is called before a request is forwarded, on the request's goroutine (it may
// block it). ctx ends when the client goes away. The returned action applies to the
// request: Pass (or the zero Action) forwards it; Fail, Reset and Drop behave as the
// actions do; Delay waits, then forwards. A KindHook answer counts as Pass.
type BeforeFunc func(ctx context.Context, c Call) Action

// AfterFunc is called when DynamoDB has answered a forwarded request, before the answer is
// written: the request has been applied. The returned action decides what the client
// gets: Pass (or the zero Action) DynamoDB's answer; Fail an error instead; Delay the
// answer later; Reset or Drop no answer (the connection is closed). A KindHook answer
// counts as Pass.
type AfterFunc func(ctx context.Context, c Call, a Answer) Action

// Answer is DynamoDB's answer to a forwarded request, as an AfterFunc sees it.
type Answer struct {
	// Status is the HTTP status.
	Status int
	// ErrorType is the short DynamoDB error type of an error answer
	// ("ConditionalCheckFailedException"), empty on success.
	ErrorType string
	// Body is the answer's JSON body; the func must not change it.
	Body []byte
}

// Pass is no fault: forward and answer.
func Pass() Action { return Action{Kind: KindPass} }

// Fail answers status with a DynamoDB error of type errorType without forwarding.
func Fail(status int, errorType, message string) Action {
	return Action{Kind: KindFail, Status: status, ErrorType: errorType, Message: message}
}

// FailRetryable answers 500 InternalServerError, which the SDK retries.
func FailRetryable() Action {
	return Fail(http.StatusInternalServerError, ErrInternalServerError, "injected internal server error")
}

// FailThrottled answers 400 ProvisionedThroughputExceededException, which the SDK retries
// after a throttling backoff.
func FailThrottled() Action {
	return Fail(http.StatusBadRequest, ErrThroughputExceeded, "injected: the level of configured provisioned throughput for the table was exceeded")
}

// FailPermanent answers 400 ValidationException, which the SDK does not retry: the call
// fails at once.
func FailPermanent() Action {
	return Fail(http.StatusBadRequest, ErrValidation, "injected validation error")
}

// Delay waits d (or until the client goes away), then forwards.
func Delay(d time.Duration) Action { return Action{Kind: KindDelay, Delay: d} }

// Reset closes the client's connection without forwarding: the request never reaches
// DynamoDB.
func Reset() Action { return Action{Kind: KindReset} }

// Drop forwards the request, lets DynamoDB apply it and closes the client's connection
// without the answer. The SDK sees a network error and sends the same request again.
func Drop() Action { return Action{Kind: KindDrop} }

// Hook calls before ahead of forwarding and after once DynamoDB answered (either may be
// nil); the actions they return decide what happens to the request.
func Hook(before BeforeFunc, after AfterFunc) Action {
	return Action{Kind: KindHook, Before: before, After: after}
}

// normalized fills what an action leaves empty: the zero Action passes; a failure without
// a valid status answers 500, without a type InternalServerError.
func (a Action) normalized() Action {
	switch a.Kind {
	case "":
		a.Kind = KindPass
	case KindFail:
		if a.Status < 400 || a.Status > 599 {
			a.Status = http.StatusInternalServerError
		}
		if a.ErrorType == "" {
			a.ErrorType = ErrInternalServerError
		}
	}
	return a
}

// forwards reports whether the action, taken before forwarding, lets the request reach
// DynamoDB.
func (a Action) forwards() bool {
	switch a.Kind {
	case KindFail, KindReset:
		return false
	}
	return true
}

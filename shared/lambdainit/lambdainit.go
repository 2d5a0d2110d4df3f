// Package lambdainit reports a binary's failed start. The failure becomes one JSON log line
// (searchable, alarmable) and, inside AWS Lambda, a call to the Runtime API's init/error
// endpoint, so that Lambda records the cause as the function's error type and message
// instead of a bare Runtime.ExitError.
//
// Written here because aws-lambda-go (v1.55.1) has no init/error call: its Runtime API
// client is unexported and used only by lambda.Start, after init has succeeded. The call is
// one POST (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-initerror).
package lambdainit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/slackrelay/slackrelay/shared/config"
)

// The error types a binary reports.
const (
	// TypeConfig is a configuration the binary cannot start with (variables missing or
	// malformed): a deploy fixes it.
	TypeConfig = "Runtime.ConfigError"
	// TypeInit is any other failure to start.
	TypeInit = "Runtime.InitError"
)

// HeaderErrorType is the Runtime API's header naming the error type.
const HeaderErrorType = "Lambda-Runtime-Function-Error-Type"

// Path is the init/error endpoint under the Runtime API's address.
const Path = "/2018-06-01/runtime/init/error"

// Error is a failure to start with its error type.
type Error struct {
	Type string
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the failure.
func (e *Error) Unwrap() error { return e.Err }

// Config marks err as a configuration error (TypeConfig).
func Config(err error) error { return &Error{Type: TypeConfig, Err: err} }

// TypeOf returns the error type of err: the one an *Error carries, else TypeInit.
func TypeOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Type != "" {
		return e.Type
	}
	return TypeInit
}

// Body is what init/error receives.
type Body struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// Report writes err as one JSON log line to w and, when getenv has AWS_LAMBDA_RUNTIME_API,
// posts it to the Runtime API's init/error endpoint. It returns what went wrong with the
// post. Error messages name variables and parameters, never secret values (the config and
// secrets packages see to that).
func Report(ctx context.Context, getenv func(string) string, w io.Writer, binary string, err error) error {
	typ := TypeOf(err)
	slog.New(slog.NewJSONHandler(w, nil)).Error("init failed", "binary", binary, "error_type", typ, "error", err.Error())
	api := getenv(config.EnvLambdaRuntimeAPI)
	if api == "" {
		return nil
	}
	body, _ := json.Marshal(Body{ErrorMessage: err.Error(), ErrorType: typ}) // two strings always encode
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, rerr := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+api+Path, bytes.NewReader(body))
	if rerr != nil {
		return fmt.Errorf("init/error request: %w", rerr)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderErrorType, typ)
	resp, rerr := http.DefaultClient.Do(req)
	if rerr != nil {
		return fmt.Errorf("post init/error: %w", rerr)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("post init/error: status %d, want 202", resp.StatusCode)
	}
	return nil
}

// Exit is a main's way out after a failed start: Report to stdout, a plain line on stderr
// outside Lambda (for the person at the terminal), then exit status 1.
func Exit(binary string, err error) {
	if perr := Report(context.Background(), os.Getenv, os.Stdout, binary, err); perr != nil {
		slog.New(slog.NewJSONHandler(os.Stdout, nil)).Error("could not report the init failure to the runtime API", "binary", binary, "error", perr.Error())
	}
	if !config.IsLambda(os.Getenv) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", binary, err)
	}
	os.Exit(1)
}

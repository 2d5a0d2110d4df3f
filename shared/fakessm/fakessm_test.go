package fakessm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"github.com/slackrelay/slackrelay/shared/awsclient"
)

func start(t *testing.T) (*Server, *ssm.Client) {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, ssm.NewFromConfig(awsclient.Local(), func(o *ssm.Options) { o.BaseEndpoint = aws.String(s.URL()) })
}

func TestAnswersTheRealClient(t *testing.T) {
	t.Parallel()
	s, c := start(t)
	s.Put("/app/sign", "s3cret")
	out, err := c.GetParameters(context.Background(), &ssm.GetParametersInput{Names: []string{"/app/sign", "/app/none"}, WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Parameters) != 1 || aws.ToString(out.Parameters[0].Value) != "s3cret" || out.Parameters[0].Type != types.ParameterTypeSecureString ||
		len(out.InvalidParameters) != 1 || out.InvalidParameters[0] != "/app/none" {
		t.Fatalf("GetParameters = %+v; want /app/sign decrypted and /app/none invalid", out)
	}
	out, _ = c.GetParameters(context.Background(), &ssm.GetParametersInput{Names: []string{"/app/sign"}})
	if aws.ToString(out.Parameters[0].Value) == "s3cret" {
		t.Fatal("a SecureString came back in plain text without WithDecryption")
	}
	if n := s.Calls(); n != 2 {
		t.Fatalf("Calls = %d, want 2", n)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode      Mode
		code      string
		wantCalls int
	}{
		{Fail, "InternalServerError", 3}, // every attempt of three
		{Throttle, "ThrottlingException", 3},
		{Deny, "AccessDeniedException", 1},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			s, c := start(t)
			s.Put("/p", "v")
			s.SetMode(tc.mode)
			quick := awsclient.BoundedRetry{Attempts: 3, AttemptTimeout: time.Second, BackoffBase: time.Millisecond, BackoffMax: 4 * time.Millisecond}
			_, err := c.GetParameters(context.Background(), &ssm.GetParametersInput{Names: []string{"/p"}, WithDecryption: aws.Bool(true)},
				func(o *ssm.Options) { o.Retryer = quick.Retryer() })
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Fatalf("GetParameters = %v; want API error %s", err, tc.code)
			}
			if n := s.Calls(); n != tc.wantCalls {
				t.Fatalf("Calls = %d, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestHangUntilTheCallerGivesUpOrTheModeChanges(t *testing.T) {
	t.Parallel()
	s, c := start(t)
	s.Put("/p", "v")
	s.SetMode(Hang)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{"/p"}}, func(o *ssm.Options) { o.RetryMaxAttempts = 1 }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetParameters = %v after %s; want the caller's deadline", err, time.Since(start))
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.GetParameters(context.Background(), &ssm.GetParametersInput{Names: []string{"/p"}, WithDecryption: aws.Bool(true)})
		done <- err
	}()
	for s.Calls() < 2 {
		time.Sleep(time.Millisecond)
	}
	s.SetMode(Answer)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("released call = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a hanging call was not released by SetMode(Answer)")
	}
}

package lambdaruntime

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/slackrelay/slackrelay/shared/lambdainit"
)

// The test binary doubles as a runtime: run with helperEnv set, it is a Lambda function built
// on aws-lambda-go, whose init and handler do what its environment and events say.
const helperEnv = "LAMBDARUNTIME_TEST_RUNTIME"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		helperRuntime()
		return
	}
	os.Exit(m.Run())
}

type helperEvent struct {
	SleepMS int    `json:"sleep_ms"`
	Fail    string `json:"fail"`
	Exit    int    `json:"exit"`
}

type helperReply struct {
	FunctionName string  `json:"function_name"`
	RuntimeAPI   string  `json:"runtime_api"`
	Home         string  `json:"home"`
	DeadlineIn   float64 `json:"deadline_in_s"`
}

func helperRuntime() {
	switch os.Getenv("HELPER_INIT") {
	case "report":
		lambdainit.Exit("helper", lambdainit.Config(errors.New("config: SOMETHING is required")))
	case "exit":
		os.Exit(2)
	}
	lambda.Start(func(ctx context.Context, ev helperEvent) (helperReply, error) {
		switch {
		case ev.Exit != 0:
			os.Exit(ev.Exit)
		case ev.Fail != "":
			return helperReply{}, errors.New(ev.Fail)
		}
		time.Sleep(time.Duration(ev.SleepMS) * time.Millisecond)
		d, _ := ctx.Deadline()
		return helperReply{FunctionName: os.Getenv("AWS_LAMBDA_FUNCTION_NAME"), RuntimeAPI: os.Getenv("AWS_LAMBDA_RUNTIME_API"),
			Home: os.Getenv("HOME"), DeadlineIn: time.Until(d).Seconds()}, nil
	})
}

func startHelper(t *testing.T, timeout time.Duration, env ...string) *Function {
	t.Helper()
	f, err := Start(context.Background(), FunctionOptions{
		Name: "helper", Bin: os.Args[0], Timeout: timeout,
		Env: append([]string{helperEnv + "=1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local"}, env...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("function output:\n%s", f.Logs())
		}
	})
	return f
}

func invoke(t *testing.T, f *Function, ev string) (Result, helperReply) {
	t.Helper()
	r, err := f.Invoke(context.Background(), []byte(ev))
	if err != nil {
		t.Fatalf("Invoke(%s) = %v", ev, err)
	}
	var reply helperReply
	if r.Response != nil {
		if err := json.Unmarshal(r.Response, &reply); err != nil {
			t.Fatalf("response %s: %v", r.Response, err)
		}
	}
	return r, reply
}

func TestInitInvokeAndWarmInvoke(t *testing.T) {
	t.Parallel()
	f := startHelper(t, 3*time.Second)
	if init := f.Init(); init.Failed() || init.Duration <= 0 {
		t.Fatalf("Init = %+v; want a measured, successful init", init)
	}
	r, reply := invoke(t, f, `{}`)
	if r.Cold || r.TimedOut || r.Error != nil || r.Duration <= 0 {
		t.Fatalf("first invocation %+v; want a warm, answered one with a duration", r)
	}
	if reply.FunctionName != "helper" || reply.RuntimeAPI == "" || reply.Home != "" {
		t.Fatalf("the function saw %+v; want Lambda's variables and nothing of the test's environment", reply)
	}
	if reply.DeadlineIn < 2.5 || reply.DeadlineIn > 3 {
		t.Fatalf("the function's deadline was %.3fs away; want the 3s timeout", reply.DeadlineIn)
	}
	r2, _ := invoke(t, f, `{}`)
	if r2.Cold || r2.RequestID == r.RequestID {
		t.Fatalf("second invocation %+v; want warm, with its own request id", r2)
	}
}

func TestTimeoutKillsTheInstanceAndTheNextInvocationIsCold(t *testing.T) {
	t.Parallel()
	f := startHelper(t, 300*time.Millisecond)
	r, _ := invoke(t, f, `{"sleep_ms": 2000}`)
	if !r.TimedOut || r.Duration < 300*time.Millisecond || r.Duration > time.Second {
		t.Fatalf("slow invocation %+v; want a timeout after about 300ms", r)
	}
	r, _ = invoke(t, f, `{}`)
	if !r.Cold || r.Init.Failed() || r.TimedOut || r.Response == nil {
		t.Fatalf("invocation after a timeout %+v; want a cold start, then an answer", r)
	}
}

func TestInvocationError(t *testing.T) {
	t.Parallel()
	f := startHelper(t, 3*time.Second)
	r, _ := invoke(t, f, `{"fail": "handler says no"}`)
	if r.Error == nil || r.Error.Body.ErrorMessage != "handler says no" || r.Error.Body.ErrorType == "" {
		t.Fatalf("Error = %+v; want the handler's error", r.Error)
	}
	if r, _ := invoke(t, f, `{}`); r.Cold || r.Response == nil {
		t.Fatalf("after an invocation error: %+v; want the same instance to answer", r)
	}
}

func TestCrashDuringAnInvocation(t *testing.T) {
	t.Parallel()
	f := startHelper(t, 3*time.Second)
	if _, err := f.Invoke(context.Background(), []byte(`{"exit": 3}`)); !errors.Is(err, errExited) {
		t.Fatalf("Invoke = %v, want the process's exit", err)
	}
	if r, _ := invoke(t, f, `{}`); !r.Cold || r.Response == nil {
		t.Fatalf("after a crash: %+v; want a cold start that answers", r)
	}
}

func TestInitFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		init     string
		reported bool
		code     int
	}{
		{"report", true, 1},
		{"exit", false, 2},
	} {
		t.Run(tc.init, func(t *testing.T) {
			t.Parallel()
			f := startHelper(t, time.Second, "HELPER_INIT="+tc.init)
			init := f.Init()
			if !init.Failed() || (init.Error != nil) != tc.reported || !init.Exited || init.ExitCode != tc.code {
				t.Fatalf("Init = %+v; want reported %v, exit code %d", init, tc.reported, tc.code)
			}
			if tc.reported {
				want := ErrorBody{ErrorMessage: "config: SOMETHING is required", ErrorType: lambdainit.TypeConfig}
				if init.Error.Body != want || init.Error.HeaderType != lambdainit.TypeConfig {
					t.Fatalf("init/error %+v; want %+v with the type in the header too", init.Error, want)
				}
				if !strings.Contains(f.Logs(), `"msg":"init failed"`) {
					t.Fatalf("no JSON init line in the output:\n%s", f.Logs())
				}
			}
			r, err := f.Invoke(context.Background(), []byte(`{}`))
			if !errors.Is(err, ErrInitFailed) || !r.Cold {
				t.Fatalf("Invoke after a failed init = %+v, %v; want a cold start that fails init again", r, err)
			}
		})
	}
}

func TestServerRejectsUnknownCalls(t *testing.T) {
	t.Parallel()
	s, err := NewServer("arn")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, path := range []string{prefix + "invocation/nope/response", prefix + "whatever"} {
		resp, err := httpPost("http://"+s.Addr()+path, `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if resp < 400 {
			t.Fatalf("POST %s: status %d, want an error", path, resp)
		}
	}
}

func httpPost(url, body string) (int, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

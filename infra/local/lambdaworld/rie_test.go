package lambdaworld

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/shared/lambdainit"
)

// The test binary doubles as a runtime: run with helperEnv set, it is a Lambda function built
// on aws-lambda-go, whose init and handler do what its environment and events say.
const helperEnv = "LAMBDAWORLD_TEST_RUNTIME"

var (
	rieBin   string
	rieErr   error
	buildRIE sync.Once
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		helperRuntime()
		return
	}
	os.Exit(m.Run())
}

// emulator is RIE, built once for the package's tests (BuildRIE keeps it under build/).
func emulator(t *testing.T) string {
	t.Helper()
	buildRIE.Do(func() {
		root, err := localaws.RepoRoot()
		if err != nil {
			rieErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		rieBin, rieErr = BuildRIE(ctx, root)
	})
	if rieErr != nil {
		t.Fatal(rieErr)
	}
	return rieBin
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
	Memory       string  `json:"memory"`
	DeadlineIn   float64 `json:"deadline_in_s"`
	PID          int     `json:"pid"`
}

func helperRuntime() {
	switch os.Getenv("HELPER_INIT") {
	case "report":
		lambdainit.Exit("helper", lambdainit.Config(errors.New("config: SOMETHING is required")))
	case "exit":
		os.Exit(2)
	case "slow":
		time.Sleep(300 * time.Millisecond)
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
			Home: os.Getenv("HOME"), Memory: os.Getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), DeadlineIn: time.Until(d).Seconds(), PID: os.Getpid()}, nil
	})
}

func startHelper(t *testing.T, timeout time.Duration, env ...string) *Function {
	t.Helper()
	f, err := Start(context.Background(), FunctionOptions{
		Name: "helper", Bin: os.Args[0], RIE: emulator(t), Timeout: timeout, MemoryMB: 256,
		Env: append([]string{helperEnv + "=1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_SESSION_TOKEN=local"}, env...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("RIE and function output:\n%s", f.Logs())
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

// The first invocation starts the runtime (init measured, RIE's INIT REPORT); the function
// sees the options' name and memory, RIE's Runtime API, none of the test's environment, and
// a deadline of its timeout.
func TestColdThenWarm(t *testing.T) {
	t.Parallel()
	f := startHelper(t, 3*time.Second, "HELPER_INIT=slow")
	r, reply := invoke(t, f, `{"sleep_ms": 50}`)
	if !r.Cold || r.Init.Failed() || r.Init.Duration < 300*time.Millisecond || r.Init.Duration > 2*time.Second {
		t.Fatalf("first invocation %+v; want a cold start whose init took the helper's 300ms", r)
	}
	if r.TimedOut || r.Error != nil || r.Duration < 50*time.Millisecond || r.Duration > time.Second {
		t.Fatalf("first invocation %+v; want an answer after about 50ms (init not counted)", r)
	}
	if f.Init() != r.Init {
		t.Fatalf("Init() = %+v, want the cold start's %+v", f.Init(), r.Init)
	}
	if reply.FunctionName != "helper" || reply.Memory != "256" || reply.RuntimeAPI == "" || reply.Home != "" {
		t.Fatalf("the function saw %+v; want the options and Lambda's variables, nothing of the test's environment", reply)
	}
	// RIE counts init against the first invocation's timeout: 3s less the 300ms init.
	if reply.DeadlineIn < 2.3 || reply.DeadlineIn > 2.8 {
		t.Fatalf("the cold invocation's deadline was %.3fs away; want the 3s timeout less init", reply.DeadlineIn)
	}
	r2, reply2 := invoke(t, f, `{}`)
	if r2.Cold || r2.RequestID == r.RequestID || reply2.PID != reply.PID {
		t.Fatalf("second invocation %+v; want warm (the same runtime), with its own request id", r2)
	}
	if reply2.DeadlineIn < 2.8 || reply2.DeadlineIn > 3 {
		t.Fatalf("the warm invocation's deadline was %.3fs away; want the 3s timeout", reply2.DeadlineIn)
	}
}

func TestTimeoutKillsTheRuntimeAndTheNextInvocationIsCold(t *testing.T) {
	t.Parallel()
	f := startHelper(t, time.Second)
	_, first := invoke(t, f, `{}`)
	r, _ := invoke(t, f, `{"sleep_ms": 3000}`)
	if !r.TimedOut || r.Duration != time.Second {
		t.Fatalf("slow invocation %+v; want a timeout after 1s", r)
	}
	r, reply := invoke(t, f, `{}`)
	if !r.Cold || r.Init.Failed() || r.TimedOut || r.Response == nil || reply.PID == first.PID {
		t.Fatalf("invocation after a timeout %+v; want a new runtime that answers", r)
	}
}

func TestInvocationError(t *testing.T) {
	t.Parallel()
	f := startHelper(t, 3*time.Second)
	r, _ := invoke(t, f, `{"fail": "handler says no"}`)
	if r.Error == nil || r.Error.ErrorMessage != "handler says no" || r.Error.ErrorType == "" || r.Response != nil {
		t.Fatalf("Result %+v; want the handler's error", r)
	}
	if r, _ := invoke(t, f, `{}`); r.Cold || r.Response == nil {
		t.Fatalf("after an invocation error: %+v; want the same runtime to answer", r)
	}
}

func TestCrashDuringAnInvocation(t *testing.T) {
	t.Parallel()
	f := startHelper(t, 3*time.Second)
	r, _ := invoke(t, f, `{"exit": 3}`)
	if r.Error == nil || r.Error.ErrorType != "Runtime.ExitError" || r.Status != 502 {
		t.Fatalf("Result %+v; want Runtime.ExitError", r)
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
			for i := 0; i < 2; i++ { // Lambda (and RIE) try init again at the next invocation
				r, err := f.Invoke(context.Background(), []byte(`{}`))
				init := r.Init
				if !errors.Is(err, ErrInitFailed) || !r.Cold || !init.Failed() || (init.Error != nil) != tc.reported || !init.Exited || init.ExitCode != tc.code {
					t.Fatalf("invocation %d: %+v, %v; want a failed init, reported %v, exit code %d", i, r, err, tc.reported, tc.code)
				}
				if tc.reported {
					want := ErrorBody{ErrorMessage: "config: SOMETHING is required", ErrorType: lambdainit.TypeConfig}
					if *init.Error != want {
						t.Fatalf("init/error %+v; want %+v", init.Error, want)
					}
				}
			}
			if tc.reported && !strings.Contains(f.Logs(), `"msg":"init failed"`) {
				t.Fatalf("no JSON init line in the output:\n%s", f.Logs())
			}
		})
	}
}

// Invocations of one Function are serialized (RIE takes one at a time); several Functions run
// at once.
func TestConcurrentInvocations(t *testing.T) {
	t.Parallel()
	fs := []*Function{startHelper(t, 3*time.Second), startHelper(t, 3*time.Second)}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	start := time.Now()
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := fs[i%2].Invoke(context.Background(), []byte(`{"sleep_ms": 200}`))
			if err != nil || r.Response == nil {
				errs <- fmt.Errorf("invocation %d: %+v, %v", i, r, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Two at a time: about 400ms, not 800ms.
	if took := time.Since(start); took > 750*time.Millisecond {
		t.Errorf("4 invocations of 200ms on 2 functions took %s", took)
	}
}

func TestStopEndsTheRuntime(t *testing.T) {
	t.Parallel()
	f := startHelper(t, 3*time.Second)
	_, reply := invoke(t, f, `{}`)
	f.Stop()
	if err := findProcess(reply.PID); err == nil {
		time.Sleep(200 * time.Millisecond)
		if findProcess(reply.PID) == nil {
			t.Fatalf("the runtime (pid %d) outlived Stop", reply.PID)
		}
	}
	// A stopped Function starts RIE again when invoked.
	if r, _ := invoke(t, f, `{}`); !r.Cold || r.Response == nil {
		t.Fatalf("after Stop: %+v; want a cold start", r)
	}
}

// findProcess is nil while pid runs (a zombie counts as gone).
func findProcess(pid int) error {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return err
	}
	if f := strings.Fields(string(raw)); len(f) > 2 && f[2] == "Z" {
		return errors.New("zombie")
	}
	return nil
}

func TestErrorBody(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]bool{
		`{"errorMessage":"x","errorType":"y"}`:                  true,
		`{"errorMessage":"x","errorType":"y","stackTrace":[]}`:  true,
		`{"errorMessage":"x","errorType":"y","statusCode":200}`: false,
		`{"statusCode":200}`:                                    false,
		`Task timed out after 1.00 seconds`:                     false,
	} {
		if got := errorBody([]byte(body)) != nil; got != want {
			t.Errorf("errorBody(%s) = %v, want %v", body, got, want)
		}
	}
}

package lambdaruntime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// FunctionOptions describe a function as Lambda would run it.
type FunctionOptions struct {
	// Name is the function's name (default "function").
	Name string
	// Bin is the bootstrap binary.
	Bin string
	// Env is the function's configured environment (NAME=value), credentials included;
	// Lambda's own variables (AWS_LAMBDA_RUNTIME_API, …) are added and win.
	Env []string
	// Timeout is the function's timeout (required).
	Timeout time.Duration
	// MemoryMB (default 128) and Region (default us-east-1) are reported to the function.
	MemoryMB int
	Region   string
	// InitTimeout bounds the init phase (default 10s, Lambda's).
	InitTimeout time.Duration
	// Log receives the process's output (stdout and stderr), line by line (optional).
	Log io.Writer
}

// InitResult is how an instance's init phase ended.
type InitResult struct {
	// Duration runs from the process start to the runtime's first request for work (or to
	// its init/error report, or its exit).
	Duration time.Duration
	// Error is the runtime's init/error report, if it made one.
	Error *Posted
	// Exited is true when the process ended during init, with ExitCode.
	Exited   bool
	ExitCode int
}

// Failed reports whether the instance did not become ready.
func (r InitResult) Failed() bool { return r.Error != nil || r.Exited }

// Result is one invocation's outcome.
type Result struct {
	RequestID string
	// Response is the runtime's response payload; Error its invocation error, if it posted one.
	Response []byte
	Error    *Posted
	// Duration runs from the runtime taking the event to its result (Lambda's Duration).
	Duration time.Duration
	// TimedOut is true when the runtime did not answer within the timeout; the instance was
	// then killed, as Lambda does.
	TimedOut bool
	// Cold is true when this invocation started a new instance; Init is its init phase.
	Cold bool
	Init InitResult
}

// ErrInitFailed is returned by Invoke when the instance it started did not become ready.
var ErrInitFailed = errors.New("lambdaruntime: init failed")

// Function runs a bootstrap binary as Lambda would, one instance at a time.
type Function struct {
	opts FunctionOptions
	logs logbuf.Buffer

	mu       sync.Mutex
	inst     *instance
	lastInit InitResult
}

type instance struct {
	srv      *Server
	cmd      *exec.Cmd
	exited   chan struct{}
	exitCode int
}

// Start starts an instance and waits for its init phase to end. An init that fails is not an
// error here: Init says how it ended.
func Start(ctx context.Context, opts FunctionOptions) (*Function, error) {
	if opts.Timeout <= 0 {
		return nil, errors.New("lambdaruntime: FunctionOptions.Timeout is required")
	}
	if opts.Name == "" {
		opts.Name = "function"
	}
	if opts.MemoryMB == 0 {
		opts.MemoryMB = 128
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.InitTimeout == 0 {
		opts.InitTimeout = 10 * time.Second
	}
	f := &Function{opts: opts}
	if _, err := f.coldStart(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// Init is how the latest instance's init phase ended.
func (f *Function) Init() InitResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastInit
}

// Logs is everything the function's instances have written so far.
func (f *Function) Logs() string { return f.logs.String() }

// Invoke sends payload as one event. Without a live instance (none yet, or the last one
// timed out or crashed) it starts one first: a cold start, reported in the Result.
// Invocations are serialized, as one instance takes one event at a time.
func (f *Function) Invoke(ctx context.Context, payload []byte) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var res Result
	if f.inst == nil {
		init, err := f.coldStartLocked(ctx)
		if err != nil {
			return res, err
		}
		res.Cold, res.Init = true, init
		if init.Failed() {
			return res, ErrInitFailed
		}
	}
	inst := f.inst
	r, err := inst.srv.invoke(ctx, payload, f.opts.Timeout, inst.exited)
	r.Cold, r.Init = res.Cold, res.Init
	if r.TimedOut || err != nil {
		// Lambda ends an instance that timed out; a crashed one is gone anyway, and one whose
		// caller gave up mid-invocation is busy with an event nobody waits for.
		f.stopLocked()
	}
	return r, err
}

// Stop ends the running instance, if any.
func (f *Function) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopLocked()
}

func (f *Function) coldStart(ctx context.Context) (InitResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.coldStartLocked(ctx)
}

// coldStartLocked starts a new instance and waits until its runtime asks for work, reports
// an init error, exits, or runs out of InitTimeout.
func (f *Function) coldStartLocked(ctx context.Context) (InitResult, error) {
	f.stopLocked()
	arn := fmt.Sprintf("arn:aws:lambda:%s:000000000000:function:%s", f.opts.Region, f.opts.Name)
	srv, err := NewServer(arn)
	if err != nil {
		return InitResult{}, err
	}
	dir := filepath.Dir(f.opts.Bin)
	cmd := exec.Command(f.opts.Bin)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, f.opts.Env...),
		"AWS_LAMBDA_RUNTIME_API="+srv.Addr(),
		"AWS_LAMBDA_FUNCTION_NAME="+f.opts.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(f.opts.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+f.opts.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME=local/[$LATEST]0",
		"AWS_REGION="+f.opts.Region, "AWS_DEFAULT_REGION="+f.opts.Region,
		"_HANDLER=bootstrap", "LAMBDA_TASK_ROOT="+dir, "LAMBDA_RUNTIME_DIR="+dir,
		"TZ=:UTC", "LANG=en_US.UTF-8", "PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	inst := &instance{srv: srv, cmd: cmd, exited: make(chan struct{})}
	go f.copyLines(pr)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pw.Close()
		srv.Close()
		return InitResult{}, fmt.Errorf("start %s: %w", f.opts.Bin, err)
	}
	go func() {
		_ = cmd.Wait()
		inst.exitCode = cmd.ProcessState.ExitCode()
		pw.Close()
		close(inst.exited)
	}()
	f.inst = inst

	var res InitResult
	timer := time.NewTimer(f.opts.InitTimeout)
	defer timer.Stop()
	select {
	case <-srv.polled:
		srv.mu.Lock()
		res.Duration = srv.firstPoll.Sub(start)
		srv.mu.Unlock()
	case p := <-srv.initErr:
		res.Duration, res.Error = time.Since(start), &p
		// The runtime is expected to exit after init/error; Lambda resets it regardless.
		select {
		case <-inst.exited:
			res.Exited, res.ExitCode = true, inst.exitCode
		case <-time.After(2 * time.Second):
		}
		f.stopLocked()
	case <-inst.exited:
		res.Duration, res.Exited, res.ExitCode = time.Since(start), true, inst.exitCode
		f.stopLocked()
	case <-timer.C:
		res.Duration = time.Since(start)
		f.stopLocked()
		f.lastInit = res
		return res, fmt.Errorf("lambdaruntime: %s did not finish init within %s", f.opts.Name, f.opts.InitTimeout)
	case <-ctx.Done():
		f.stopLocked()
		return res, ctx.Err()
	}
	f.lastInit = res
	return res, nil
}

// stopLocked kills the instance's process group and closes its Runtime API.
func (f *Function) stopLocked() {
	inst := f.inst
	if inst == nil {
		return
	}
	f.inst = nil
	_ = syscall.Kill(-inst.cmd.Process.Pid, syscall.SIGKILL)
	<-inst.exited
	_ = inst.srv.Close()
}

func (f *Function) copyLines(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := append(append(make([]byte, 0, len(sc.Bytes())+1), sc.Bytes()...), '\n')
		f.logs.Write(line)
		if f.opts.Log != nil {
			_, _ = f.opts.Log.Write(line)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

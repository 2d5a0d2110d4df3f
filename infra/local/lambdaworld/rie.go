package lambdaworld

// A Function runs a bootstrap under AWS's Lambda Runtime Interface Emulator (RIE, built from
// infra/local/tools/rie by BuildRIE): RIE is the Runtime API, the init phase, the deadline,
// the timeout (the runtime killed, the next invocation a new init) and init/error. What is
// written here is only the client a test needs and RIE does not have: RIE answers an
// invocation over HTTP with the payload alone, so whether the runtime posted an error, timed
// out, or started cold, how long init took and how long the invocation ran (Lambda's
// Duration) are read from RIE's own log lines (INIT START, INIT REPORT, INVOKE RTDONE,
// REPORT) of the pinned version, which the tests in rie_test.go check.
//
// What RIE does differently from Lambda, and what follows here:
//   - init runs at the first invocation and counts against its timeout and deadline (Lambda
//     gives init its own 10 s): Start starts RIE, the first Invoke reports the init.
//   - one process serves one invocation at a time, and a second one arriving meanwhile
//     crashes this version (a nil pointer after "ReserveFailed: AlreadyReserved"):
//     Invoke serializes; a test that wants concurrency starts several Functions.
//   - the Lambda-Runtime-Function-Error-Type header of an init/error is not shown: only the
//     body the runtime posted.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slackrelay/slackrelay/shared/logbuf"
)

// FunctionOptions describe a function as Lambda would run it.
type FunctionOptions struct {
	// Name is the function's name (default "function").
	Name string
	// Bin is the bootstrap binary; RIE the emulator (BuildRIE).
	Bin, RIE string
	// Env is the function's configured environment (NAME=value), credentials included;
	// Lambda's own variables (AWS_LAMBDA_FUNCTION_NAME, …) are added and win.
	Env []string
	// Timeout is the function's timeout, whole seconds (required).
	Timeout time.Duration
	// MemoryMB (default 128) and Region (default us-east-1) are reported to the function.
	MemoryMB int
	Region   string
	// Log receives the output of RIE and of the function, line by line (optional).
	Log io.Writer
}

// ErrorBody is the JSON of an invocation's or an init's error.
type ErrorBody struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// InitResult is how an instance's init phase ended.
type InitResult struct {
	// Duration is RIE's INIT REPORT: from the runtime's start to its first request for work
	// (or to its failure).
	Duration time.Duration
	// Error is what the runtime posted to /runtime/init/error, if it did.
	Error *ErrorBody
	// Exited is true when the runtime process ended during init, with ExitCode.
	Exited   bool
	ExitCode int
	failed   bool
}

// Failed reports whether init did not end with the runtime asking for work.
func (r InitResult) Failed() bool { return r.failed || r.Error != nil || r.Exited }

// Result is one invocation's outcome.
type Result struct {
	RequestID string
	// Status is RIE's HTTP status (200, or 502 for a failed init or a crashed runtime).
	Status int
	// Response is the runtime's response payload; Error its invocation error (the runtime's
	// /error post, or Runtime.ExitError when it crashed), if any.
	Response []byte
	Error    *ErrorBody
	// Duration is Lambda's Duration: the event handed to the runtime until its result
	// (RIE's INVOKE RTDONE; the timeout when it timed out).
	Duration time.Duration
	// TimedOut is true when the runtime did not answer within the timeout; RIE then killed
	// it, and the next invocation starts a new one.
	TimedOut bool
	// Cold is true when this invocation started the runtime; Init is its init phase.
	Cold bool
	Init InitResult
}

// ErrInitFailed is returned by Invoke when the runtime it started did not become ready.
var ErrInitFailed = errors.New("lambdaworld: init failed")

// Function is one RIE process running one bootstrap.
type Function struct {
	opts   FunctionOptions
	logs   logbuf.Buffer
	client *http.Client

	mu       sync.Mutex // one invocation at a time
	proc     *rieProcess
	lastInit InitResult

	seen sync.Mutex // what the log reader saw of the invocation in flight
	cur  *observed
}

type rieProcess struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
}

// observed is what RIE logged about one invocation.
type observed struct {
	id        string
	cold      bool
	init      InitResult
	initSeen  bool
	duration  time.Duration
	durSeen   bool
	initExits bool // the runtime's exit came during init
	done      chan struct{}
	closed    bool
}

// Start starts RIE for opts; the runtime itself starts at the first invocation.
func Start(ctx context.Context, opts FunctionOptions) (*Function, error) {
	if opts.Timeout < time.Second || opts.Timeout%time.Second != 0 {
		return nil, fmt.Errorf("lambdaworld: timeout %s; RIE takes whole seconds", opts.Timeout)
	}
	if opts.RIE == "" || opts.Bin == "" {
		return nil, errors.New("lambdaworld: FunctionOptions.RIE and Bin are required")
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
	f := &Function{opts: opts, client: &http.Client{}}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.startLocked(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// Init is how the latest init phase ended (zero before the first invocation).
func (f *Function) Init() InitResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastInit
}

// Logs is everything RIE and the function have written so far.
func (f *Function) Logs() string { return f.logs.String() }

// Stop ends RIE and the runtime.
func (f *Function) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopLocked()
}

var requestIDs atomic.Int64

// Invoke sends payload as one event and waits for its result. Invocations are serialized,
// as one RIE process takes one event at a time. A caller giving up (ctx) ends the process;
// the next invocation starts a new one.
func (f *Function) Invoke(ctx context.Context, payload []byte) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.proc == nil {
		if err := f.startLocked(ctx); err != nil {
			return Result{}, err
		}
	}
	id := fmt.Sprintf("5e1f0c7a-0000-4000-8000-%012d", requestIDs.Add(1))
	obs := &observed{id: id, done: make(chan struct{})}
	f.seen.Lock()
	f.cur = obs
	f.seen.Unlock()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.proc.url, bytes.NewReader(payload))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("X-Amzn-RequestId", id)
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		f.stopLocked()
		select {
		case <-ctx.Done():
			return Result{RequestID: id}, ctx.Err()
		default:
		}
		return Result{RequestID: id}, fmt.Errorf("lambdaworld: invoke %s: %w\n%s", f.opts.Name, err, tail(f.Logs(), 20))
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	wall := time.Since(start)
	if err != nil {
		f.stopLocked()
		return Result{RequestID: id}, err
	}
	// RIE logs what it knows before it answers; the reader may be a little behind.
	select {
	case <-obs.done:
	case <-time.After(2 * time.Second):
	}
	f.seen.Lock()
	f.cur = nil
	o := *obs
	f.seen.Unlock()

	r := Result{RequestID: id, Status: resp.StatusCode, Cold: o.cold, Init: o.init, Duration: o.duration}
	if !o.durSeen {
		r.Duration = wall - o.init.Duration
	}
	if o.cold {
		f.lastInit = o.init
	}
	switch {
	case resp.StatusCode == http.StatusOK && bytes.HasPrefix(body, []byte("Task timed out after ")):
		r.TimedOut, r.Duration = true, f.opts.Timeout
	case resp.StatusCode == http.StatusOK:
		if e := errorBody(body); e != nil {
			r.Error = e
		} else {
			r.Response = body
		}
	case o.cold && o.init.Failed():
		if e := errorBody(body); e != nil {
			r.Init.Error = e
			f.lastInit.Error = e
		}
		return r, ErrInitFailed
	default:
		r.Error = errorBody(body)
		if r.Error == nil {
			r.Error = &ErrorBody{ErrorType: "Status" + strconv.Itoa(resp.StatusCode), ErrorMessage: string(body)}
		}
	}
	return r, nil
}

// errorBody is body as an error's JSON, or nil when it is something else: a JSON object
// with errorMessage and errorType and nothing else but a stack trace.
func errorBody(body []byte) *ErrorBody {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	_, hasMsg := m["errorMessage"]
	_, hasType := m["errorType"]
	delete(m, "stackTrace")
	if !hasMsg || !hasType || len(m) != 2 {
		return nil
	}
	var e ErrorBody
	if json.Unmarshal(body, &e) != nil {
		return nil
	}
	return &e
}

// RIE's log lines that say how an invocation went.
var (
	reInitStart   = regexp.MustCompile(`\(rapid\) INIT START\(`)
	reInitRTDone  = regexp.MustCompile(`\(rapid\) INIT RTDONE\(status: (\w+)`)
	reInitReport  = regexp.MustCompile(`\(rapid\) INIT REPORT\(durationMs: ([0-9.]+)`)
	reRuntimeExit = regexp.MustCompile(`\(rapid\) Process runtime-\d+ exited: exit status (\d+)`)
	reInvokeDone  = regexp.MustCompile(`\(rapid\) INVOKE RTDONE\(.*duration: ([0-9.]+)ms`)
	reReport      = regexp.MustCompile(`^REPORT RequestId: (\S+)`)
	reDoneFailed  = regexp.MustCompile(`\(rapid\) Invoke DONE failed`)
)

func ms(s string) time.Duration {
	v, _ := strconv.ParseFloat(s, 64)
	return time.Duration(v * float64(time.Millisecond))
}

// observe reads one line of output for the invocation in flight.
func (f *Function) observe(line string) {
	f.seen.Lock()
	defer f.seen.Unlock()
	o := f.cur
	if o == nil || o.closed || !strings.Contains(line, "(rapid)") && !strings.HasPrefix(line, "REPORT ") {
		return
	}
	if reInitStart.MatchString(line) {
		o.cold = true
		o.initExits = true
	}
	if m := reInitRTDone.FindStringSubmatch(line); m != nil && !o.initSeen {
		o.init.failed = m[1] != "success"
	}
	if m := reRuntimeExit.FindStringSubmatch(line); m != nil && o.initExits && !o.initSeen {
		o.init.Exited = true
		o.init.ExitCode, _ = strconv.Atoi(m[1])
	}
	if m := reInitReport.FindStringSubmatch(line); m != nil {
		// After a failed init, RIE retries it within the same invocation: the first report
		// is the runtime's.
		if !o.initSeen {
			o.init.Duration, o.initSeen = ms(m[1]), true
		}
		o.initExits = false
	}
	if m := reInvokeDone.FindStringSubmatch(line); m != nil {
		o.duration, o.durSeen = ms(m[1]), true
	}
	if m := reReport.FindStringSubmatch(line); (m != nil && m[1] == o.id) || reDoneFailed.MatchString(line) {
		o.closed = true
		close(o.done)
	}
}

// startLocked starts RIE on two free loopback ports and waits until it takes invocations.
func (f *Function) startLocked(ctx context.Context) error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p, err := f.spawn()
		if err != nil {
			return err
		}
		if lastErr = waitListening(ctx, p); lastErr == nil {
			f.proc = p
			return nil
		}
		killProcess(p)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return fmt.Errorf("lambdaworld: RIE for %s did not start: %w\n%s", f.opts.Name, lastErr, tail(f.Logs(), 20))
}

func (f *Function) spawn() (*rieProcess, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(f.opts.Bin)
	cmd := exec.Command(f.opts.RIE, "--log-level", "info",
		"--runtime-interface-emulator-address", ports[0], "--runtime-api-address", ports[1], f.opts.Bin)
	cmd.Dir = dir
	// RIE hands its own environment to the runtime: the function's, then Lambda's.
	cmd.Env = append(append([]string{}, f.opts.Env...),
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(f.opts.Timeout/time.Second)),
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
	// One pipe for both streams keeps RIE's lines and the runtime's in the order written.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", f.opts.RIE, err)
	}
	pw.Close()
	p := &rieProcess{cmd: cmd, url: "http://" + ports[0] + "/2015-03-31/functions/function/invocations", exited: make(chan struct{})}
	go f.copyLines(pr)
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func freePorts(n int) ([]string, error) {
	var addrs []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

func waitListening(ctx context.Context, p *rieProcess) error {
	host := strings.TrimPrefix(p.url, "http://")
	host = host[:strings.Index(host, "/")]
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case <-p.exited:
			return errors.New("RIE exited")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return errors.New("RIE did not listen within 10s")
}

func (f *Function) stopLocked() {
	if f.proc != nil {
		killProcess(f.proc)
		f.proc = nil
	}
}

// killProcess ends RIE and the runtime it started (which RIE puts in a process group of its
// own): SIGTERM lets RIE kill the runtime; whatever is left is killed.
func killProcess(p *rieProcess) {
	pid := p.cmd.Process.Pid
	children := childPIDs(pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.exited
	}
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
}

// childPIDs lists the processes pid started (Linux: /proc/PID/task/*/children).
func childPIDs(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		raw, _ := os.ReadFile(t)
		for _, s := range strings.Fields(string(raw)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func (f *Function) copyLines(r io.ReadCloser) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := append(append(make([]byte, 0, len(sc.Bytes())+1), sc.Bytes()...), '\n')
		f.logs.Write(line)
		if f.opts.Log != nil {
			_, _ = f.opts.Log.Write(line)
		}
		f.observe(sc.Text())
	}
	_, _ = io.Copy(io.Discard, r)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Package devworld runs the whole pipeline on one machine from the real binaries: the local
// SQS and DynamoDB servers, a local Slack Web API server, optionally a local model (the
// OpenAI-compatible LLM server, or the Bedrock ConverseStream stand-in), the receiver in local
// HTTP mode and the worker with its poller. `make demo`, `make dev`, the end-to-end
// reliability suite and `make bench` are built on it. Everything binds 127.0.0.1 and Stop ends what Start started.
//
// The binaries' variable names come from their tables (receiver/receiverconfig,
// worker/workerconfig, the shipped bot's worker/assistant, shared/awsclient), and a binary
// is ready when it prints the ready line of shared/logging (docs/local.md), not when a log
// message reads a certain way.
package devworld

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slackrelay/slackrelay/shared/loopback"

	"github.com/slackrelay/slackrelay/infra/local/ddbfault"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/shared/awstest"
	"github.com/slackrelay/slackrelay/shared/install"
	"github.com/slackrelay/slackrelay/shared/logging"
	"github.com/slackrelay/slackrelay/shared/slackverify"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
)

// Binaries are the built commands.
type Binaries struct {
	Receiver, Worker, DLQ string
}

// Build compiles the receiver, the worker and the DLQ tool for this machine into dir.
func Build(ctx context.Context, root, dir string) (Binaries, error) {
	b := Binaries{Receiver: filepath.Join(dir, "receiver"), Worker: filepath.Join(dir, "worker"), DLQ: filepath.Join(dir, "slackrelay-dlq")}
	for _, t := range []struct{ module, pkg, out string }{
		{"receiver", "./cmd/receiver", b.Receiver},
		{"worker", "./cmd/worker", b.Worker},
		{"worker", "./cmd/slackrelay-dlq", b.DLQ},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", t.out, t.pkg)
		cmd.Dir = filepath.Join(root, t.module)
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("build %s/%s: %w\n%s", t.module, t.pkg, err, out)
		}
	}
	return b, nil
}

// Options configure the stack.
type Options struct {
	Bins          Binaries
	SigningSecret string
	BotToken      string
	// ReceiverAddr and SlackAddr: "" = a free loopback port.
	ReceiverAddr, SlackAddr string
	// DemoDelay is the demo responder's pretend work (default 2s).
	DemoDelay time.Duration
	// DemoTokensPerSecond is the rate the demo responder streams its answer at (0: the
	// worker's default, DEMO_TOKENS_PER_SECOND).
	DemoTokensPerSecond int
	// NoStreaming makes the worker answer with a message updated in place instead of a
	// stream (STREAMING=off).
	NoStreaming bool
	// WorkerEnv are NAME=value entries put after the worker's environment, so they win
	// (e.g. workerconfig.EnvPollLoops+"=10"); StartWorker's own entries come after these.
	WorkerEnv []string
	// HandlerTimeout is the worker's invocation deadline (default 10s); the queue's
	// visibility timeout is set just above it so a killed worker's messages come back soon.
	HandlerTimeout time.Duration
	// PlainQueues: the local SQS server delivers in the order sent whatever the messages'
	// groups, as a queue without SQS fair queues (default: fair-queue delivery).
	PlainQueues bool
	// MaxReceiveCount of the events queue (default 5). BackoffBase (default 1s).
	MaxReceiveCount int
	BackoffBase     time.Duration
	// LogOut receives the binaries' JSON logs (default: discarded). SlackOut receives one line
	// per message the bot posts.
	LogOut, SlackOut io.Writer
	// LocalDir is infra/local (default: found from the working directory).
	LocalDir string
	// Debug runs the binaries at LOG_LEVEL=debug (default info).
	Debug bool
	// SlackAPIURL, when set, sends the worker's Web API calls there (https://slack.com/api/
	// for a real workspace, GovSlack, a proxy, a test double) instead of to the local Slack
	// server.
	SlackAPIURL string
	// LLMBaseURL, LLMModel and LLMAPIKey, when set, are passed to the worker (an
	// OpenAI-compatible API instead of the demo responder).
	LLMBaseURL, LLMModel, LLMAPIKey string
	// LocalLLM, when set, starts the local OpenAI-compatible server (worker/assistant/llm/fakellm) on
	// loopback with these options (its pace, answers, Out) and points the worker at it:
	// LLM_BASE_URL, LLM_API_KEY (LocalLLMKey unless LocalLLM.APIKey is set; the server checks
	// it) and LLM_MODEL (LocalLLMModel). LLMBaseURL, LLMModel and LLMAPIKey are then ignored.
	LocalLLM *fakellm.Options
	// LocalBedrock, when set, starts the local Bedrock ConverseStream stand-in
	// (worker/assistant/llm/fakebedrock) on loopback with these options and runs the worker's
	// Bedrock client against it: LLM_PROVIDER=bedrock, BEDROCK_MODEL_ID (LocalBedrockModel,
	// the only model the stand-in then lets it invoke unless AllowedModels says otherwise, as
	// the worker's role allows exactly its model), BEDROCK_REGION (LocalBedrockRegion) and
	// AWS_ENDPOINT_URL_BEDROCK_RUNTIME (the stand-in's URL); it signs with the local
	// placeholder credentials every binary gets. LLMBaseURL, LLMModel and LLMAPIKey are then
	// ignored. Not with LocalLLM: the worker talks to one model.
	LocalBedrock *fakebedrock.Options
	// Workspaces are more workspaces of the local Slack beside its default one (T0001, whose
	// bot token is BotToken); TokenRotation makes its OAuth installs answer rotating tokens.
	Workspaces    []fakeslack.Workspace
	TokenRotation bool
	// ManyWorkspaces runs the pipeline as an app distributed to many workspaces: an
	// installations table (World.InstallationsTable) that the worker reads each event's token
	// from (INSTALLATIONS_TABLE, with the local Slack's client id and secret) instead of
	// BotToken. World.Install seeds an installation.
	ManyWorkspaces bool
}

// World is a running pipeline.
type World struct {
	opts     Options
	Local    *localaws.Servers
	Slack    *fakeslack.Server
	SlackURL string
	// LLM is the local LLM server when Options.LocalLLM asked for one (nil otherwise).
	LLM *fakellm.Server
	// Bedrock is the local Bedrock stand-in when Options.LocalBedrock asked for one (nil
	// otherwise). Another process drives it with fakebedrock.Client at Bedrock.URL().
	Bedrock     *fakebedrock.Server
	ReceiverURL string
	// InstallationsTable is the installations' table with Options.ManyWorkspaces ("" otherwise).
	InstallationsTable string
	// SQSProxy sits between the receiver and SQS (a TCP proxy); SetDown(true) simulates an
	// outage.
	SQSProxy *loopback.Proxy
	// DynamoDBProxy sits between the worker and DynamoDB (the worker's
	// AWS_ENDPOINT_URL_DYNAMODB is its URL). SetDown(true) simulates an outage; Arm injects
	// faults by operation and order (fail, delay, reset, drop the answer of an applied
	// write, hooks); Snapshot counts the worker's reads and writes per key. Another process
	// drives it with ddbfault.Client at DynamoDBProxy.URL().
	DynamoDBProxy *ddbfault.Proxy

	mu       sync.Mutex
	receiver *process
	worker   *process
}

type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// The signing secret and bot token of the local Slack app, when Options leave them empty.
const (
	LocalSigningSecret = "local-signing-secret"
	LocalBotToken      = "xoxb-local-bot-token"
)

// The model name and API key the worker is given for the local LLM server (Options.LocalLLM).
const (
	LocalLLMModel = "local-model"
	LocalLLMKey   = "local-llm-key"
)

// The model and region the worker is given for the local Bedrock stand-in
// (Options.LocalBedrock). The region is not the local servers' (AWS_REGION), so a Bedrock
// client that ignored BEDROCK_REGION would show in the region the stand-in records.
const (
	LocalBedrockModel  = "anthropic.claude-3-5-haiku-20241022-v1:0"
	LocalBedrockRegion = "us-west-2"
)

// withDefaults fills what Options leave empty.
func (opts Options) withDefaults() Options {
	if opts.SigningSecret == "" {
		opts.SigningSecret = LocalSigningSecret
	}
	if opts.BotToken == "" {
		opts.BotToken = LocalBotToken
	}
	if opts.DemoDelay == 0 {
		opts.DemoDelay = 2 * time.Second
	}
	if opts.HandlerTimeout == 0 {
		opts.HandlerTimeout = 10 * time.Second
	}
	if opts.MaxReceiveCount == 0 {
		opts.MaxReceiveCount = 5
	}
	if opts.BackoffBase == 0 {
		opts.BackoffBase = time.Second
	}
	if opts.LogOut == nil {
		opts.LogOut = io.Discard
	}
	if opts.LocalLLM != nil {
		llm := *opts.LocalLLM
		if llm.APIKey == "" {
			llm.APIKey = LocalLLMKey
		}
		opts.LocalLLM = &llm
		opts.LLMModel, opts.LLMAPIKey = LocalLLMModel, llm.APIKey
	}
	if opts.LocalBedrock != nil {
		br := *opts.LocalBedrock
		if br.AllowedModels == nil {
			br.AllowedModels = []string{LocalBedrockModel}
		}
		opts.LocalBedrock = &br
		opts.LLMBaseURL, opts.LLMModel, opts.LLMAPIKey = "", "", ""
	}
	return opts
}

// Start brings the whole pipeline up.
func Start(ctx context.Context, opts Options) (_ *World, err error) {
	if opts.LocalLLM != nil && opts.LocalBedrock != nil {
		return nil, errors.New("devworld: Options.LocalLLM and Options.LocalBedrock together: the worker talks to one model")
	}
	opts = opts.withDefaults()
	s := &World{opts: opts}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	visibility := int(opts.HandlerTimeout/time.Second) + 2
	s.Local, err = localaws.Start(ctx, localaws.Options{Dir: opts.LocalDir, MaxReceiveCount: opts.MaxReceiveCount, VisibilityTimeout: visibility, PlainQueues: opts.PlainQueues, Stderr: os.Stderr})
	if err != nil {
		return nil, err
	}
	if s.SQSProxy, err = loopback.StartProxy(strings.TrimPrefix(s.Local.SQSEndpoint, "http://")); err != nil {
		return nil, err
	}
	if s.DynamoDBProxy, err = ddbfault.Start(ddbfault.Options{Upstream: s.Local.DynamoDBEndpoint}); err != nil {
		return nil, err
	}
	if opts.ManyWorkspaces {
		s.InstallationsTable = "slackrelay-installations"
		if err = awstest.CreateTable(ctx, s.Local.DynamoDB(), s.InstallationsTable); err != nil {
			return nil, fmt.Errorf("create the installations table: %w", err)
		}
	}
	s.Slack = fakeslack.New(fakeslack.Options{Token: opts.BotToken, Out: opts.SlackOut, BotName: "slackrelay",
		Workspaces: opts.Workspaces, TokenRotation: opts.TokenRotation})
	if s.SlackURL, err = s.Slack.Start(opts.SlackAddr); err != nil {
		return nil, fmt.Errorf("start the local Slack server: %w", err)
	}
	if err = s.startLLM(); err != nil {
		return nil, err
	}
	if err = s.StartReceiver(ctx); err != nil {
		return nil, err
	}
	if err = s.StartWorker(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Install stores the installation of a workspace of the local Slack that has its own bot
// token (fakeslack.Workspace.Token), as the install flow would have (Options.ManyWorkspaces).
func (s *World) Install(ctx context.Context, w fakeslack.Workspace) error {
	if s.InstallationsTable == "" {
		return errors.New("devworld: Install without Options.ManyWorkspaces")
	}
	owner, err := s.Slack.TokenOwner(w.Token)
	if err != nil {
		return fmt.Errorf("devworld: the local Slack does not know workspace %s's token: %w", w.ID, err)
	}
	_, err = install.NewDynamoStore(s.Local.DynamoDB(), s.InstallationsTable, nil).Save(ctx, install.Installation{
		TeamID: owner.Team, EnterpriseID: owner.EnterpriseID, BotToken: w.Token, BotUserID: owner.BotUserID, BotID: owner.BotID,
		AppID: fakeslack.DefaultAppID,
	})
	return err
}

// startLLM starts the local LLM server when Options.LocalLLM asks for one and points the
// worker's LLM_BASE_URL at it, or the local Bedrock stand-in when Options.LocalBedrock does
// (WorkerEnv then points the worker's Bedrock client at it).
func (s *World) startLLM() error {
	if s.opts.LocalBedrock != nil {
		s.Bedrock = fakebedrock.New(*s.opts.LocalBedrock)
		if _, err := s.Bedrock.Start(""); err != nil {
			return fmt.Errorf("start the local Bedrock stand-in: %w", err)
		}
		return nil
	}
	if s.opts.LocalLLM == nil {
		return nil
	}
	s.LLM = fakellm.New(*s.opts.LocalLLM)
	if _, err := s.LLM.Start(""); err != nil {
		return fmt.Errorf("start the local LLM server: %w", err)
	}
	s.opts.LLMBaseURL = s.LLM.APIURL()
	return nil
}

// StartReceiver starts the receiver binary in local mode (its SQS goes through SQSProxy).
func (s *World) StartReceiver(ctx context.Context) error {
	addr := s.opts.ReceiverAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	p, ready, err := s.spawn(ctx, "receiver", s.opts.Bins.Receiver, s.ReceiverEnv(addr))
	if err != nil {
		return err
	}
	listening, _ := ready[logging.KeyAddr].(string)
	if listening == "" {
		stopProcess(p)
		return fmt.Errorf("the receiver's ready line has no %q", logging.KeyAddr)
	}
	s.mu.Lock()
	s.receiver = p
	s.ReceiverURL = "http://" + listening
	s.mu.Unlock()
	return nil
}

// StartWorker starts the worker binary with its poller (its DynamoDB goes through
// DynamoDBProxy; Slack is the local server unless Options.SlackAPIURL says otherwise).
// env are NAME=value entries put after WorkerEnv's, so they win: a test may start the
// worker with one setting changed (e.g. assistant.EnvStreaming+"=off").
func (s *World) StartWorker(ctx context.Context, env ...string) error {
	p, _, err := s.spawn(ctx, "worker", s.opts.Bins.Worker, append(s.WorkerEnv(), env...))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.worker = p
	s.mu.Unlock()
	return nil
}

// KillWorker ends the worker with SIGKILL, as a crash would: no cleanup, no deletes.
func (s *World) KillWorker() {
	s.mu.Lock()
	p := s.worker
	s.worker = nil
	s.mu.Unlock()
	if p != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// StopWorker stops the worker as Stop does (SIGTERM: it finishes the batches in flight).
func (s *World) StopWorker() {
	s.mu.Lock()
	p := s.worker
	s.worker = nil
	s.mu.Unlock()
	stopProcess(p)
}

// spawn starts a binary in its own process group, copies its log lines to LogOut and waits
// for its ready line (shared/logging.Ready), whose fields it returns.
func (s *World) spawn(ctx context.Context, name, bin string, env []string) (*process, map[string]any, error) {
	if bin == "" {
		return nil, nil, fmt.Errorf("no %s binary: Build first", name)
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	readyc := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			if !sent {
				if m, ok := logging.ParseReady(line); ok {
					readyc <- m
					sent = true
				}
			}
			if bytes.HasPrefix(line, []byte(`{"_aws"`)) {
				continue // metrics lines
			}
			fmt.Fprintf(s.opts.LogOut, "%-8s %s\n", name, line)
		}
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	select {
	case m := <-readyc:
		return p, m, nil
	case <-p.done:
		return nil, nil, fmt.Errorf("%s exited before it was ready: %s", name, strings.TrimSpace(stderr.String()))
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return nil, nil, fmt.Errorf("%s not ready after 20s", name)
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return nil, nil, ctx.Err()
	}
}

func stopProcess(p *process) {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Stop ends everything Start started: the worker first (it finishes its batch), then the
// receiver, the Slack server and the local model, the proxies and the local AWS servers.
func (s *World) Stop() {
	s.mu.Lock()
	w, r := s.worker, s.receiver
	s.worker, s.receiver = nil, nil
	s.mu.Unlock()
	stopProcess(w)
	stopProcess(r)
	if s.Slack != nil {
		_ = s.Slack.Close()
	}
	if s.LLM != nil {
		_ = s.LLM.Close()
	}
	if s.Bedrock != nil {
		_ = s.Bedrock.Close()
	}
	if s.SQSProxy != nil {
		_ = s.SQSProxy.Close()
	}
	if s.DynamoDBProxy != nil {
		_ = s.DynamoDBProxy.Close()
	}
	if s.Local != nil {
		s.Local.Stop()
	}
}

// Reply is what the receiver answered.
type Reply struct {
	Status  int
	Body    string
	Latency time.Duration
}

// Send signs body as Slack would (timestamp now) and posts it to path on the receiver.
// headers are extra header name/value pairs (X-Slack-Retry-Num …).
func (s *World) Send(ctx context.Context, path, contentType, body string, headers ...string) (Reply, error) {
	return s.SendTo(ctx, s.ReceiverURL, path, contentType, body, headers...)
}

// SendTo is Send to another receiver (for example one started by hand for a cold start).
func (s *World) SendTo(ctx context.Context, receiverURL, path, contentType, body string, headers ...string) (Reply, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := http.Header{}
	h.Set("Content-Type", contentType)
	h.Set(slackverify.HeaderTimestamp, ts)
	h.Set(slackverify.HeaderSignature, slackverify.Sign([]byte(s.opts.SigningSecret), ts, []byte(body)))
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	return sendRaw(ctx, receiverURL, http.MethodPost, path, h, []byte(body))
}

var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// SendRaw posts exactly what it is given (for bad-input tests).
func (s *World) SendRaw(ctx context.Context, method, path string, h http.Header, body []byte) (Reply, error) {
	return sendRaw(ctx, s.ReceiverURL, method, path, h, body)
}

func sendRaw(ctx context.Context, receiverURL, method, path string, h http.Header, body []byte) (Reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, receiverURL+path, bytes.NewReader(body))
	if err != nil {
		return Reply{}, err
	}
	req.Header = h
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return Reply{}, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return Reply{Status: resp.StatusCode, Body: string(b), Latency: time.Since(start)}, nil
}

// ErrTimeout is returned by WaitFor when the condition did not hold in time.
var ErrTimeout = errors.New("timed out")

// WaitFor polls cond every 50ms until it is true or timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return ErrTimeout
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// DLQ runs the DLQ tool against this stack's queues and returns its combined output.
func (s *World) DLQ(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.opts.Bins.DLQ, args...)
	// The DLQ tool's table (worker/cmd/slackrelay-dlq/cli.Vars) keeps its names unexported,
	// so its two queue variables are spelled here; its AWS clients use the SDK's default
	// chain, which localaws's environment feeds.
	cmd.Env = append([]string{kv("PATH", os.Getenv("PATH")), kv("HOME", os.Getenv("HOME"))}, s.Local.Env()...)
	cmd.Env = append(cmd.Env, "SLACKRELAY_QUEUE_URL="+s.Local.QueueURL, "SLACKRELAY_DLQ_URL="+s.Local.DLQURL)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

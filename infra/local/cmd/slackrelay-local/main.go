// Command slackrelay-local runs slackrelay on one machine.
//
//	slackrelay-local demo   the guided tour behind `make demo`: starts everything (the worker
//	                        against the local LLM server, or with LOCAL_LLM=bedrock through
//	                        its Bedrock client against the local Bedrock stand-in), shows a
//	                        fast ack, an answer streaming in, a deduplicated retry, a worker
//	                        killed mid-stream whose answer is finished once, a DLQ failure and
//	                        its replay, a Regenerate click and a modal, then stops everything
//	                        and exits 0 (1 if anything misbehaved)
//	slackrelay-local dev    the long-running stack behind `make dev`, for a tunnel and a real
//	                        Slack app, until Ctrl-C
//	slackrelay-local bench  the measurements behind `make bench` (docs/benchmarks.md)
//	slackrelay-local with-aws -- CMD [ARGS...]
//	                        runs CMD with the local SQS and DynamoDB servers up and the AWS
//	                        variables pointing at them (`make test` runs the Go tests so), then
//	                        stops them and exits with CMD's status
//
// What it reads from the environment is infra/local/devenv's table (docs/configuration.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/devenv"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakellm"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: slackrelay-local demo|dev|bench [flags], or slackrelay-local with-aws -- CMD [ARGS...]")
		os.Exit(2)
	}
	settings, err := devenv.Load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "slackrelay-local:", err)
		os.Exit(1)
	}
	color = settings.Color
	switch os.Args[1] {
	case "demo":
		err = demo(os.Args[2:], settings)
	case "dev":
		err = dev(os.Args[2:], settings)
	case "bench":
		err = bench(os.Args[2:], settings)
	case "with-aws":
		os.Exit(withAWS(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q: use demo, dev, bench or with-aws\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "slackrelay-local:", err)
		os.Exit(1)
	}
}

func build(ctx context.Context) (devworld.Binaries, error) {
	root, err := localaws.RepoRoot()
	if err != nil {
		return devworld.Binaries{}, err
	}
	dir := filepath.Join(root, "build", "local")
	say("building the receiver, the worker and slackrelay-dlq into %s", dir)
	return devworld.Build(ctx, root, dir)
}

const (
	bold  = "\033[1m"
	dim   = "\033[2m"
	green = "\033[32m"
	red   = "\033[31m"
	reset = "\033[0m"
)

// color is devenv.Settings.Color, set first thing in main.
var color bool

func paint(c, s string) string {
	if !color {
		return s
	}
	return c + s + reset
}

func say(format string, args ...any) { fmt.Printf("   "+format+"\n", args...) }
func step(format string, args ...any) {
	fmt.Println("\n" + paint(bold, "▶ "+fmt.Sprintf(format, args...)))
}

type checker struct{ failed []string }

func (c *checker) check(ok bool, what string) {
	if ok {
		say("%s %s", paint(green, "✓"), what)
		return
	}
	say("%s %s", paint(red, "✗"), what)
	c.failed = append(c.failed, what)
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("     " + l + "\n")
	}
	return b.String()
}

type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			fmt.Fprint(p.w, p.prefix+l)
		}
	}
	return len(b), nil
}

func dev(args []string, settings devenv.Settings) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:3000", "receiver address (point your tunnel here)")
	slackAddr := fs.String("slack-addr", "127.0.0.1:3001", "local Slack Web API server address")
	delay := fs.Duration("delay", 2*time.Second, "the demo responder's pretend work")
	quiet := fs.Bool("q", false, "do not print the binaries' logs")
	llmFirst := fs.Duration("llm-first-token", 500*time.Millisecond, "with LOCAL_LLM=on or bedrock: the local model's time to first token")
	llmRate := fs.Float64("llm-rate", 20, "with LOCAL_LLM=on or bedrock: the local model's tokens a second (0: as fast as it can)")
	llmTokens := fs.Int("llm-tokens", 60, "with LOCAL_LLM=on or bedrock: the local model's answer length in tokens")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := settings.CheckSlack(); err != nil {
		return err
	}
	if err := settings.CheckLLM(); err != nil {
		return err
	}
	if *llmFirst < 0 || *llmRate < 0 || *llmTokens < 1 {
		return errors.New("-llm-first-token and -llm-rate must not be negative, -llm-tokens must be at least 1")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	bins, err := build(ctx)
	if err != nil {
		return err
	}
	opts := devworld.Options{Bins: bins, ReceiverAddr: *addr, SlackAddr: *slackAddr, DemoDelay: *delay,
		HandlerTimeout: 60 * time.Second, LogOut: os.Stderr, SlackOut: os.Stdout,
		SlackAPIURL: settings.SlackAPIURL, LLMBaseURL: settings.LLMBaseURL, LLMModel: settings.LLMModel, LLMAPIKey: settings.LLMAPIKey}
	switch {
	case settings.LocalLLM:
		opts.LocalLLM = &fakellm.Options{Pace: fakellm.Pace{FirstToken: *llmFirst, TokensPerSecond: *llmRate, AnswerTokens: *llmTokens}, Out: os.Stdout}
	case settings.LocalBedrock:
		opts.LocalBedrock = &fakebedrock.Options{Pace: fakebedrock.Pace{FirstToken: *llmFirst, TokensPerSecond: *llmRate, AnswerTokens: *llmTokens}, Out: os.Stdout}
	}
	if *quiet {
		opts.LogOut = io.Discard
	}
	real := settings.RealSlack()
	if real {
		opts.SigningSecret, opts.BotToken = settings.SigningSecret, settings.BotToken
	}
	s, err := devworld.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Stop()
	fmt.Printf("slackrelay dev stack is up (Ctrl-C stops everything)\n\n")
	fmt.Printf("  receiver   %s/slack/events  /slack/commands  /slack/interactivity\n", s.ReceiverURL)
	fmt.Printf("  SQS        %s   events queue %s\n", s.Local.SQSEndpoint, s.Local.QueueURL)
	fmt.Printf("  DLQ        %s\n", s.Local.DLQURL)
	fmt.Printf("  DynamoDB   %s   table %s\n", s.Local.DynamoDBEndpoint, s.Local.TableName)
	fmt.Printf("  DDB faults %s   the worker's DynamoDB endpoint: a fault proxy, driven under /_control/ (ddbfault.Client)\n", s.DynamoDBProxy.URL())
	switch {
	case real:
		fmt.Printf("  Slack      %s, with the bot token from your environment\n\n", settings.SlackAPIURL)
		fmt.Printf("Expose the receiver with a tunnel (e.g. `cloudflared tunnel --url %s` or `ngrok http %s`)\n", s.ReceiverURL, strings.TrimPrefix(*addr, "127.0.0.1:"))
		fmt.Printf("and set your Slack app's Request URLs to https://<tunnel>/slack/events, …/slack/commands, …/slack/interactivity.\n")
	case settings.SlackAPIURL != "":
		fmt.Printf("  Slack      %s (SLACK_API_URL), with the local bot token %q\n\n", settings.SlackAPIURL, devworld.LocalBotToken)
		fmt.Printf("Signing secret for hand-made requests: %q (local only).\n", devworld.LocalSigningSecret)
	default:
		fmt.Printf("  Slack      local fake at %s (set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN to use a real app)\n\n", s.SlackURL)
		fmt.Printf("Signing secret for hand-made requests: %q (local only).\n", devworld.LocalSigningSecret)
	}
	switch {
	case s.LLM != nil:
		p := s.LLM.Pace()
		fmt.Printf("LLM: the local server at %s (%s), answers streamed into the thread.\n", s.LLM.APIURL(),
			paceText(p.FirstToken, p.TokensPerSecond, p.AnswerTokens, fakellm.DefaultAnswerTokens))
	case s.Bedrock != nil:
		p := s.Bedrock.Pace()
		fmt.Printf("LLM: Bedrock (LLM_PROVIDER=bedrock), model %s in %s, served by the local ConverseStream stand-in at %s (%s; driven under /_control/, fakebedrock.Client), answers streamed into the thread.\n",
			devworld.LocalBedrockModel, devworld.LocalBedrockRegion, s.Bedrock.URL(),
			paceText(p.FirstToken, p.TokensPerSecond, p.AnswerTokens, fakebedrock.DefaultAnswerTokens))
	case settings.LLMBaseURL != "":
		fmt.Printf("LLM: %s (LLM_BASE_URL), answers streamed into the thread.\n", settings.LLMBaseURL)
	default:
		fmt.Printf("LLM: none; the demo responder answers after %s (-delay; LOCAL_LLM=on for the local LLM server, LOCAL_LLM=bedrock for the local Bedrock stand-in, LLM_BASE_URL for a real one).\n", *delay)
	}
	fmt.Printf("DLQ tool: %s=%s %s=local %s=local SLACKRELAY_QUEUE_URL=%s SLACKRELAY_DLQ_URL=%s %s=%s %s list\n",
		awsclient.EnvRegion, awsclient.DefaultRegion, awsclient.EnvAccessKeyID, awsclient.EnvSecretAccessKey,
		s.Local.QueueURL, s.Local.DLQURL, awsclient.EndpointVar("SQS"), s.Local.SQSEndpoint, bins.DLQ)
	<-ctx.Done()
	fmt.Println("\nstopping…")
	return nil
}

// paceText describes a local model's pace, e.g. "500 ms to the first token, 20 tokens/s,
// 60-token answers"; answerTokens 0 means the server's default length def.
func paceText(first time.Duration, tokensPerSecond float64, answerTokens, def int) string {
	rate := "as fast as it can"
	if tokensPerSecond > 0 {
		rate = fmt.Sprintf("%g tokens/s", tokensPerSecond)
	}
	n := answerTokens
	if n == 0 {
		n = def
	}
	return fmt.Sprintf("%d ms to the first token, %s, %d-token answers", first.Milliseconds(), rate, n)
}

// Command slackrelay-local runs slackrelay on one machine.
//
//	slackrelay-local demo   the guided tour behind `make demo`: starts everything, shows a fast
//	                        ack, a slow reply, a deduplicated retry, a DLQ failure and its replay,
//	                        then stops everything and exits 0 (1 if anything misbehaved)
//	slackrelay-local dev    the long-running stack behind `make dev`, for a tunnel and a real
//	                        Slack app, until Ctrl-C
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
	"github.com/slackrelay/slackrelay/infra/local/devstack"
	"github.com/slackrelay/slackrelay/infra/local/fixture"
	"github.com/slackrelay/slackrelay/infra/local/localslack"
	"github.com/slackrelay/slackrelay/infra/local/localstack"
	"github.com/slackrelay/slackrelay/shared/awsclient"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: slackrelay-local demo|dev|bench [flags]")
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
		err = demo(os.Args[2:])
	case "dev":
		err = dev(os.Args[2:], settings)
	case "bench":
		err = bench(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q: use demo, dev or bench\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "slackrelay-local:", err)
		os.Exit(1)
	}
}

func build(ctx context.Context) (devstack.Binaries, error) {
	root, err := localstack.RepoRoot()
	if err != nil {
		return devstack.Binaries{}, err
	}
	dir := filepath.Join(root, "build", "local")
	say("building the receiver, the worker and slackrelay-dlq into %s", dir)
	return devstack.Build(ctx, root, dir)
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

func demo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	delay := fs.Duration("delay", 3*time.Second, "how long the demo handler pretends to work")
	verbose := fs.Bool("v", false, "show the binaries' JSON logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	fmt.Println(paint(bold, "slackrelay demo") + ": a Slack bot that answers slowly without ever missing Slack's 3-second deadline")
	bins, err := build(ctx)
	if err != nil {
		return err
	}
	var logOut io.Writer = io.Discard
	if *verbose {
		logOut = os.Stderr
	}
	step("starting the local stack")
	s, err := devstack.Start(ctx, devstack.Options{
		Bins: bins, DemoDelay: *delay, HandlerTimeout: 15 * time.Second, LogOut: logOut,
		SlackOut: prefixWriter{os.Stdout, "   "},
	})
	if err != nil {
		return err
	}
	defer func() {
		step("stopping everything the demo started")
		s.Stop()
		say("done")
	}()
	say("SQS (fauxqs)         %s", s.Local.SQSEndpoint)
	say("DynamoDB (dynalite)  %s", s.Local.DynamoDBEndpoint)
	say("Slack Web API (fake) %s", s.SlackURL)
	say("receiver             %s/slack/events", s.ReceiverURL)
	say("worker               polling %s", s.Local.QueueURL)

	var c checker
	channel := "C0DEMO"
	now := time.Now()
	ts := fmt.Sprintf("%d.000100", now.Unix())
	eventID := fmt.Sprintf("Ev%dDEMO", now.Unix())
	body := fixture.AppMention(eventID, channel, ts, "summarise yesterday's incidents")

	step("1. a user mentions the bot; the handler needs %s of slow work", *delay)
	r, err := s.Send(ctx, "/slack/events", "application/json", body)
	if err != nil {
		return err
	}
	say("receiver answered %d in %s %s", r.Status, paint(bold, fmt.Sprintf("%.1f ms", float64(r.Latency.Microseconds())/1000)), paint(dim, "(Slack wants < 3000 ms)"))
	c.check(r.Status == 202, "acknowledged at once, before any work")
	say("waiting for the reply…")
	start := time.Now()
	err = devstack.WaitFor(*delay+15*time.Second, func() bool { return threadPosts(s, ts) >= 1 })
	c.check(err == nil, fmt.Sprintf("the reply arrived %.1f s later, in the thread", time.Since(start).Seconds()))

	step("2. Slack retries the same event (as it does when an ack is slow or lost)")
	r, err = s.Send(ctx, "/slack/events", "application/json", body, "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout")
	if err != nil {
		return err
	}
	say("receiver answered %d in %.1f ms (the retry is enqueued, never dropped)", r.Status, float64(r.Latency.Microseconds())/1000)
	time.Sleep(*delay/2 + 2*time.Second)
	c.check(threadPosts(s, ts) == 1, "no second reply: the worker saw the event was already answered")

	step("3. a reply fails permanently (the bot is not in the channel)")
	s.Slack.FailNext("chat.postMessage", 1, "not_in_channel")
	ts2 := fmt.Sprintf("%d.000200", now.Unix())
	body2 := fixture.AppMention(eventID+"2", channel, ts2, "what's on the roadmap?")
	if r, err = s.Send(ctx, "/slack/events", "application/json", body2); err != nil {
		return err
	}
	say("receiver answered %d in %.1f ms", r.Status, float64(r.Latency.Microseconds())/1000)
	err = devstack.WaitFor(*delay+15*time.Second, func() bool { return dlqDepth(ctx, s) == 1 })
	c.check(err == nil, "the event is in the dead-letter queue, not lost and not retried in vain")
	out, _ := s.DLQ(ctx, "list")
	say("%s", paint(dim, "$ slackrelay-dlq list"))
	fmt.Print(indent(out))

	step("4. the bot is invited to the channel; the operator replays the DLQ")
	say("%s", paint(dim, "$ slackrelay-dlq replay --all --yes"))
	out, err = s.DLQ(ctx, "replay", "--all", "--yes")
	fmt.Print(indent(out))
	c.check(err == nil, "replayed")
	err = devstack.WaitFor(*delay+15*time.Second, func() bool { return threadPosts(s, ts2) >= 1 })
	c.check(err == nil, "the replayed event got its reply")
	time.Sleep(time.Second)
	c.check(dlqDepth(ctx, s) == 0 && threadPosts(s, ts2) == 1, "DLQ empty, exactly one reply")

	interactive(ctx, s, &c, channel, ts, *delay)

	step("summary")
	say("events sent: 3 (one of them twice) · replies posted: %d · duplicates: 0 · lost: 0", len(s.Slack.PostsFor(channel)))
	if len(c.failed) > 0 {
		return fmt.Errorf("demo expectations failed: %s", strings.Join(c.failed, "; "))
	}
	say("%s", paint(green, "everything behaved"))
	say("next: `make dev` keeps this stack running for a real Slack app (see docs/local.md)")
	return nil
}

func dlqDepth(ctx context.Context, s *devstack.Stack) int {
	n, err := s.Local.Depth(ctx, s.Local.DLQURL)
	if err != nil {
		return -1
	}
	return n
}

func threadPosts(s *devstack.Stack, ts string) int {
	n := 0
	for _, p := range s.Slack.Posts() {
		if p.ThreadTS == ts {
			n++
		}
	}
	return n
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := settings.CheckSlack(); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	bins, err := build(ctx)
	if err != nil {
		return err
	}
	opts := devstack.Options{Bins: bins, ReceiverAddr: *addr, SlackAddr: *slackAddr, DemoDelay: *delay,
		HandlerTimeout: 60 * time.Second, LogOut: os.Stderr, SlackOut: prefixWriter{os.Stdout, "slack ▸ "},
		SlackAPIURL: settings.SlackAPIURL, LLMBaseURL: settings.LLMBaseURL, LLMModel: settings.LLMModel, LLMAPIKey: settings.LLMAPIKey}
	if *quiet {
		opts.LogOut = io.Discard
	}
	real := settings.RealSlack()
	if real {
		opts.SigningSecret, opts.BotToken = settings.SigningSecret, settings.BotToken
	}
	s, err := devstack.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer s.Stop()
	fmt.Printf("slackrelay dev stack is up (Ctrl-C stops everything)\n\n")
	fmt.Printf("  receiver   %s/slack/events  /slack/commands  /slack/interactivity\n", s.ReceiverURL)
	fmt.Printf("  SQS        %s   events queue %s\n", s.Local.SQSEndpoint, s.Local.QueueURL)
	fmt.Printf("  DLQ        %s\n", s.Local.DLQURL)
	fmt.Printf("  DynamoDB   %s   table %s\n", s.Local.DynamoDBEndpoint, s.Local.TableName)
	switch {
	case real:
		fmt.Printf("  Slack      %s, with the bot token from your environment\n\n", settings.SlackAPIURL)
		fmt.Printf("Expose the receiver with a tunnel (e.g. `cloudflared tunnel --url %s` or `ngrok http %s`)\n", s.ReceiverURL, strings.TrimPrefix(*addr, "127.0.0.1:"))
		fmt.Printf("and set your Slack app's Request URLs to https://<tunnel>/slack/events, …/slack/commands, …/slack/interactivity.\n")
	case settings.SlackAPIURL != "":
		fmt.Printf("  Slack      %s (SLACK_API_URL), with the local bot token %q\n\n", settings.SlackAPIURL, devstack.LocalBotToken)
		fmt.Printf("Signing secret for hand-made requests: %q (local only).\n", devstack.LocalSigningSecret)
	default:
		fmt.Printf("  Slack      local fake at %s (set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN to use a real app)\n\n", s.SlackURL)
		fmt.Printf("Signing secret for hand-made requests: %q (local only).\n", devstack.LocalSigningSecret)
	}
	fmt.Printf("DLQ tool: %s=%s %s=local %s=local SLACKRELAY_QUEUE_URL=%s SLACKRELAY_DLQ_URL=%s %s=%s %s list\n",
		awsclient.EnvRegion, awsclient.DefaultRegion, awsclient.EnvAccessKeyID, awsclient.EnvSecretAccessKey,
		s.Local.QueueURL, s.Local.DLQURL, awsclient.EndpointVar("SQS"), s.Local.SQSEndpoint, bins.DLQ)
	<-ctx.Done()
	fmt.Println("\nstopping…")
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return nil
}

// interactive shows the buttons and modals going through the queue: a Regenerate click on the
// first answer (and Slack's retry of it), then /ask without a question, whose modal opens
// with the command's trigger and is answered in place after its submission.
func interactive(ctx context.Context, s *devstack.Stack, c *checker, channel, thread string, delay time.Duration) {
	step("5. the user clicks Regenerate on the first answer (Slack delivers the click twice)")
	var reply localslack.Post
	for _, p := range s.Slack.Posts() {
		if p.ThreadTS == thread {
			reply = p
		}
	}
	value, ok := fixture.ButtonValue(reply.Blocks, "slackrelay_regenerate")
	c.check(ok, "the answer carries a Regenerate button")
	click := fixture.BlockActions("slackrelay_regenerate", value, channel, reply.TS, thread, fmt.Sprintf("%d.000001", time.Now().Unix()))
	for i, headers := range [][]string{nil, {"X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout"}} {
		r, err := s.Send(ctx, "/slack/interactivity", "application/x-www-form-urlencoded", click, headers...)
		if err != nil {
			c.check(false, "click delivered: "+err.Error())
			return
		}
		say("click %d: receiver answered %d in %.1f ms", i+1, r.Status, float64(r.Latency.Microseconds())/1000)
	}
	err := devstack.WaitFor(delay+15*time.Second, func() bool { return s.Slack.Calls("chat.update") >= 1 })
	time.Sleep(time.Second)
	c.check(err == nil && s.Slack.Calls("chat.update") == 1, "the answer was regenerated and replaced in place, once for the click")

	step("6. /ask without a question opens a modal; the user types a question and submits it")
	trigger := s.Slack.NewTrigger()
	sent := time.Now()
	cmd := fixture.SlashCommand("/ask", "", trigger, s.Slack.ResponseURL("demo-ask"))
	r, err := s.Send(ctx, "/slack/commands", "application/x-www-form-urlencoded", cmd)
	if err != nil {
		c.check(false, "slash command delivered: "+err.Error())
		return
	}
	say("receiver answered %d in %.1f ms", r.Status, float64(r.Latency.Microseconds())/1000)
	var view localslack.View
	err = devstack.WaitFor(10*time.Second, func() bool {
		for _, v := range s.Slack.Views() {
			if v.TriggerID == trigger {
				view = v
				return true
			}
		}
		return false
	})
	if err != nil {
		c.check(false, "the modal opened")
		return
	}
	opened := view.History[0].At.Sub(sent)
	c.check(opened < 3*time.Second, fmt.Sprintf("the modal opened %s after the command, through the queue (Slack allows 3 s)", paint(bold, fmt.Sprintf("%.0f ms", float64(opened.Microseconds())/1000))))
	submit := fixture.ViewSubmission(view.ID, view.CallbackID, view.PrivateMetadata, "question", "text", "how do retries work?")
	r, err = s.Send(ctx, "/slack/interactivity", "application/x-www-form-urlencoded", submit)
	if err != nil {
		c.check(false, "submission delivered: "+err.Error())
		return
	}
	say("receiver answered %d in %.1f ms: %s", r.Status, float64(r.Latency.Microseconds())/1000, paint(dim, strings.TrimSpace(r.Body)))
	c.check(strings.Contains(r.Body, `"response_action":"update"`), "the modal stays open with a \"working on it\" view")
	err = devstack.WaitFor(delay+15*time.Second, func() bool {
		v, _ := s.Slack.View(view.ID)
		return len(v.History) >= 2
	})
	c.check(err == nil, "the worker answered in the modal itself (views.update by its id)")
}

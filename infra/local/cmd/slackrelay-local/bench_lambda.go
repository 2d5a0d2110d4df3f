package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/slackrelay/slackrelay/shared/awstest"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/infra/local/lambdaworld"
	"github.com/slackrelay/slackrelay/infra/local/localaws"
	"github.com/slackrelay/slackrelay/shared/fakessm"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
	"github.com/slackrelay/slackrelay/worker/poller"
)

// lambdaHeading opens the report's Lambda-mode section; `bench -lambda-only -out FILE`
// replaces that section of FILE and leaves the rest as it is.
const lambdaHeading = "## Lambda mode (Runtime Interface Emulator)"

// lambdaWorld is what the Lambda-mode measurement runs against.
type lambdaWorld struct {
	local    *localaws.Servers
	slackAPI string
	botToken string
}

// benchLambda measures the functions in Lambda mode: the real bootstraps (built as `make
// build` builds them, for this machine) under AWS's Runtime Interface Emulator (RIE), with the
// template's environment, timeouts and memory, against the local servers. For each of runs
// cold starts: init (RIE's INIT REPORT: the runtime's start to its first request for work,
// the secrets preload included), the first invocation, then warm invocations. It returns
// the report's section.
func benchLambda(ctx context.Context, root string, w lambdaWorld, runs, warm int) (string, error) {
	bins, err := lambdaworld.Build(ctx, root, filepath.Join(root, "build", "lambda-local"))
	if err != nil {
		return "", err
	}
	tmpl, err := lambdaworld.LoadTemplate(filepath.Join(root, "infra", "template.yaml"))
	if err != nil {
		return "", err
	}
	ssm, err := fakessm.Start()
	if err != nil {
		return "", err
	}
	defer ssm.Close()
	q, dlq, err := awstest.CreateQueuePair(ctx, w.local.SQS(), fmt.Sprintf("bench-lambda-%d", time.Now().Unix()), 5)
	if err != nil {
		return "", err
	}
	local := lambdaworld.Local{QueueURL: q, DLQURL: dlq, Table: w.local.TableName,
		SQSEndpoint: w.local.SQSEndpoint, DynamoDBEndpoint: w.local.DynamoDBEndpoint, SSMEndpoint: ssm.URL()}
	const secret = "bench-signing-secret"
	rOpts, err := lambdaworld.Options(tmpl, lambdaworld.Spec{LogicalID: lambdaworld.ReceiverFunction, Bin: bins.Receiver, RIE: bins.RIE, Local: local})
	if err != nil {
		return "", err
	}
	// The worker's demo responder waits 1 ms instead of the template's 2 s and streams its
	// answer at once instead of 20 words a second, so the numbers are the code's, not the
	// pretend work's.
	wOpts, err := lambdaworld.Options(tmpl, lambdaworld.Spec{LogicalID: lambdaworld.WorkerFunction, Bin: bins.Worker, RIE: bins.RIE, Local: local,
		Set: map[string]string{"SLACK_API_URL": w.slackAPI, "DEMO_DELAY": "1ms", "DEMO_TOKENS_PER_SECOND": "10000"}})
	if err != nil {
		return "", err
	}
	ssm.Put(lambdaworld.EnvValue(rOpts.Env, "SIGNING_SECRET_PARAM"), secret)
	ssm.Put(lambdaworld.EnvValue(wOpts.Env, "BOT_TOKEN_PARAM"), w.botToken)

	var rcv, wrk samples
	seq := 0
	mentionEvent := func() []byte {
		seq++
		ts := fmt.Sprintf("%d.%06d", time.Now().Unix(), seq)
		body := fixture.AppMention(fmt.Sprintf("EvLambdaBench%d-%d", time.Now().UnixNano(), seq), "CLAMBDABENCH", ts, "bench")
		return lambdaworld.HTTPEvent("$default", "/slack/events", "application/json", body, secret, false)
	}
	for i := 0; i < runs; i++ {
		rf, err := lambdaworld.Start(ctx, rOpts)
		if err != nil {
			return "", err
		}
		wf, err := lambdaworld.Start(ctx, wOpts)
		if err != nil {
			rf.Stop()
			return "", err
		}
		err = func() error {
			defer rf.Stop()
			defer wf.Stop()
			// The first invocation of each starts its runtime (init), as in Lambda.
			for j := 0; j <= warm; j++ {
				r, err := invokeReceiver(ctx, rf, mentionEvent())
				if err != nil {
					return err
				}
				if err := rcv.add(j, r); err != nil {
					return fmt.Errorf("receiver: %w", err)
				}
				batch, err := takeBatch(ctx, w.local, q)
				if err != nil {
					return err
				}
				if r, err = invokeWorker(ctx, wf, batch); err != nil {
					return err
				}
				if err := wrk.add(j, r); err != nil {
					return fmt.Errorf("worker: %w", err)
				}
			}
			return nil
		}()
		if err != nil {
			return "", err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n\nMeasured %s. The bootstraps `make build` makes, built for this machine, run by AWS's Lambda Runtime Interface Emulator (RIE, built from infra/local/tools/rie) with the environment, timeouts and memory of infra/template.yaml against the local servers (the SSM stand-in answers in about a millisecond; in AWS the secrets preload adds an SSM round trip to init). Init is RIE's INIT REPORT: from the runtime's start to its first request for work, reading the configuration and preloading the secrets included; as in Lambda it runs when the first invocation arrives, and is not part of that invocation's duration. The receiver's invocation is one signed app_mention (verify, enqueue to the local SQS server); the worker's is a batch of that one message (DynamoDB claim, reaction, the answer streamed (chat.startStream, chat.stopStream), reaction on the local Slack server; demo responder set to 1 ms and to stream its answer at once). %d cold starts, each followed by %d warm invocations; durations as Lambda measures them (event handed over to result posted; RIE's INVOKE RTDONE).\n\n", lambdaHeading, time.Now().UTC().Format("2006-01-02"), runs, warm)
	fmt.Fprintf(&b, "| function | init (median) | first invocation (median) | warm p50 | warm p99 |\n|---|---:|---:|---:|---:|\n")
	for _, f := range []struct {
		name string
		s    samples
	}{{"receiver", rcv}, {"worker", wrk}} {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", f.name, ms(median(f.s.init)), ms(median(f.s.first)), ms(pctOf(f.s.warm, 50)), ms(pctOf(f.s.warm, 99)))
		say("%s: init %s, first %s, warm p50 %s", f.name, ms(median(f.s.init)), ms(median(f.s.first)), ms(pctOf(f.s.warm, 50)))
	}
	return b.String(), nil
}

type samples struct{ init, first, warm []time.Duration }

// add takes the j-th invocation after a start: the first must be the cold one.
func (s *samples) add(j int, r lambdaworld.Result) error {
	if (j == 0) != r.Cold {
		return fmt.Errorf("invocation %d after the start: cold %v", j, r.Cold)
	}
	if j == 0 {
		s.init = append(s.init, r.Init.Duration)
		s.first = append(s.first, r.Duration)
		return nil
	}
	s.warm = append(s.warm, r.Duration)
	return nil
}

func median(d []time.Duration) time.Duration { return pctOf(d, 50) }

func pctOf(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

func invokeReceiver(ctx context.Context, f *lambdaworld.Function, event []byte) (lambdaworld.Result, error) {
	r, err := f.Invoke(ctx, event)
	if err != nil {
		return r, err
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(r.Response, &resp); err != nil || resp.StatusCode != 202 {
		return r, fmt.Errorf("receiver answered %s (timed out %v, error %+v)", r.Response, r.TimedOut, r.Error)
	}
	return r, nil
}

func takeBatch(ctx context.Context, local *localaws.Servers, queue string) ([]byte, error) {
	for start := time.Now(); time.Since(start) < 5*time.Second; {
		out, err := local.SQS().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 1, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}, MessageAttributeNames: []string{"All"}})
		if err != nil {
			return nil, err
		}
		if len(out.Messages) > 0 {
			return json.Marshal(poller.ToEvent(out.Messages, queue))
		}
	}
	return nil, fmt.Errorf("nothing on %s", queue)
}

func invokeWorker(ctx context.Context, f *lambdaworld.Function, batch []byte) (lambdaworld.Result, error) {
	r, err := f.Invoke(ctx, batch)
	if err != nil {
		return r, err
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(r.Response, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
		return r, fmt.Errorf("worker answered %s (timed out %v, error %+v)", r.Response, r.TimedOut, r.Error)
	}
	return r, nil
}

// lambdaOnly measures only the Lambda-mode section, against a local stack and Slack server
// of its own, and puts it into out (replacing the section there) or prints it.
func lambdaOnly(ctx context.Context, root, out string, runs, warm int) error {
	step("Lambda mode: %d cold starts of each function, %d warm invocations each", runs, warm)
	local, err := localaws.Start(ctx, localaws.Options{})
	if err != nil {
		return err
	}
	defer local.Stop()
	slack := fakeslack.New(fakeslack.Options{Token: devworld.LocalBotToken})
	if _, err := slack.Start(""); err != nil {
		return err
	}
	defer slack.Close()
	section, err := benchLambda(ctx, root, lambdaWorld{local: local, slackAPI: slack.APIURL(), botToken: devworld.LocalBotToken}, runs, warm)
	if err != nil {
		return err
	}
	return writeSection(out, lambdaHeading, section)
}

// readingHeading opens the report's last generated section.
const readingHeading = "## How to read these"

// writeSection prints a bench's section when out is "", else puts it in the report out under
// heading (replaceSection) and says so.
func writeSection(out, heading, section string) error {
	if out == "" {
		fmt.Print(section)
		return nil
	}
	if err := replaceSection(out, heading, section); err != nil {
		return err
	}
	step("wrote %s", out)
	return nil
}

// replaceSection puts section (which starts with heading) into the Markdown file at path in
// place of the section with that heading, up to the next "## " heading; without one, before
// the section "How to read these", else before the last section, or at the end.
func replaceSection(path, heading, section string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(raw)
	section = "\n" + strings.Trim(section, "\n") + "\n"
	if i := strings.Index(doc, "\n"+heading+"\n"); i >= 0 {
		end := len(doc)
		if j := strings.Index(doc[i+1:], "\n## "); j >= 0 {
			end = i + 1 + j
		}
		doc = doc[:i] + section + doc[end:]
	} else if j := strings.Index(doc, "\n"+readingHeading+"\n"); j >= 0 {
		doc = doc[:j] + section + doc[j:]
	} else if j := strings.LastIndex(doc, "\n## "); j >= 0 {
		doc = doc[:j] + section + doc[j:]
	} else {
		doc = strings.TrimRight(doc, "\n") + "\n" + section
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

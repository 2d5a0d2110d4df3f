package crashsweep

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/assistant"
	"github.com/slackrelay/slackrelay/worker/relay"
	"github.com/slackrelay/slackrelay/worker/threadmemory"
)

// memoryDB is a DynamoDB client of the run's table: through the running invocation (its
// writes are points, and die with it) or, for the judge, directly.
func memoryDB(r *run, through bool) *dynamodb.Client {
	var rt http.RoundTripper = http.DefaultTransport
	if through {
		rt = r.via(ddbService)
	}
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(r.w.stack.DynamoDBEndpoint),
		HTTPClient:   &http.Client{Transport: rt, Timeout: 10 * time.Second},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		}),
	})
}

// memoryPath is a streamed mention answered by the shipped bot with its thread memory (many
// workspaces: no Slack read), whose PutItem calls are points too. Besides one answer, the
// memory must hold the question and the answer once each, as shown; a turn may be missing
// only when its own write failed on every attempt (a failed record is logged, never retried:
// the answer stands).
func memoryPath(m model) *path {
	return &path{
		name: "streamed mention with the thread memory",
		register: func(r *run, b *relay.Router) {
			mem := threadmemory.NewDynamo(memoryDB(r, true), r.w.table, threadmemory.Limits{}, nil)
			assistant.Register(b, assistant.Config{LLM: m, Model: "sweep", Metrics: metrics.New(io.Discard, "crashsweep"),
				Memory: mem, NoSlackThreadReads: true})
		},
		setup: mention,
		judge: func(r *run) (outcome, error) {
			out, err := oneAnswer(r, m.text, answerActions)
			if err != nil {
				return out, err
			}
			th, err := threadmemory.NewDynamo(memoryDB(r, false), r.w.table, threadmemory.Limits{}, nil).Read(context.Background(),
				threadmemory.Key{Team: "T0001", Channel: r.vars["channel"], Thread: r.vars["thread"]})
			if err != nil {
				return "", err
			}
			var got []string
			for _, t := range th.Turns {
				got = append(got, fmt.Sprintf("%t:%s", t.Bot, t.Text))
			}
			want := []string{"false:question", "true:" + m.text}
			failedWrite := r.fired != nil && r.fired.fired && r.fired.mode == fail && r.fired.label == "ddb:PutItem"
			switch {
			case slices.Equal(got, want):
			case failedWrite && len(got) == 1 && slices.Contains(want, got[0]):
			default:
				return "", fmt.Errorf("the thread memory holds %d turns %.80q, want the question and the answer once each", len(got), got)
			}
			return answered, nil
		},
	}
}

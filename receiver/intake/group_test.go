package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/awstest"
)

// orgMentionBody is an app_mention delivered through an org-wide install of an Enterprise
// Grid org: the tenant is the org, not the workspace the message was written in.
var orgMentionBody = strings.Replace(strings.Replace(mentionBody, `"team_id":"T1","user_id":"UBOT","is_bot":true`,
	`"enterprise_id":"E1","team_id":null,"user_id":"UBOT","is_bot":true,"is_enterprise_install":true`, 1), `"Ev1"`, `"Ev2"`, 1)

func interactionBody(payload string) string {
	return url.Values{"payload": {payload}}.Encode()
}

// TestMessageGroupIsTheTenant checks the MessageGroupId the receiver sets for each kind of
// request: the workspace, or the org when the request comes through an org-wide install.
func TestMessageGroupIsTheTenant(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, path, body, want string
	}{
		{"event in a workspace of a Grid org", PathEvents, mentionBody, "T1"},
		{"event through an org-wide install", PathEvents, orgMentionBody, "E1"},
		{"event without enterprise", PathEvents, strings.Replace(mentionBody, `"enterprise_id":"E1",`, "", 1), "T1"},
		{"slash command", PathCommands, "command=%2Fask&team_id=T2&enterprise_id=E2&api_app_id=A1&text=hi", "T2"},
		{"slash command through an org-wide install", PathCommands, "command=%2Fask&team_id=T2&enterprise_id=E2&is_enterprise_install=true&api_app_id=A1", "E2"},
		{"interaction", PathInteractivity, interactionBody(`{"type":"block_actions","team":{"id":"T3","enterprise_id":"E3"},"api_app_id":"A1","is_enterprise_install":false}`), "T3"},
		{"interaction through an org-wide install", PathInteractivity, interactionBody(`{"type":"block_actions","team":{"id":"T3","enterprise_id":"E3"},"api_app_id":"A1","is_enterprise_install":true}`), "E3"},
		{"interaction with no team", PathInteractivity, interactionBody(`{"type":"block_actions","api_app_id":"A1"}`), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := &fakeSender{}
			h := newHandler(s, staticSecrets(), nil)
			if resp := h.Handle(context.Background(), signed(c.path, c.body)); resp.Status >= 300 {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			if len(s.sent) != 1 {
				t.Fatalf("%d messages sent, want 1", len(s.sent))
			}
			in := s.sent[0]
			if got := aws.ToString(in.MessageGroupId); got != c.want {
				t.Fatalf("MessageGroupId = %q, want %q", got, c.want)
			}
			if c.want == "" && in.MessageGroupId != nil {
				t.Fatal("MessageGroupId set (to an empty string) for a request naming no tenant")
			}
		})
	}
}

// TestMessageGroupReachesLocalSQS sends through the real client to both local SQS servers
// (standard queues, as in the template), through a proxy that reads what goes on the wire:
// each server accepts the group id on a standard queue and the messages are enqueued. Neither
// server keeps it on a standard queue (ReceiveMessage returns no MessageGroupId), so the
// proxy, not the queue, is where it is checked.
func TestMessageGroupReachesLocalSQS(t *testing.T) {
	t.Parallel()
	for name, newQueues := range map[string]func(testing.TB) *awstest.Queues{
		"fauxqs": awstest.NewQueues, "with move tasks": awstest.NewMoveTaskQueues,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			q := newQueues(t)
			target, err := url.Parse(q.Endpoint)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var wire []string
			rp := httputil.NewSingleHostReverseProxy(target)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				var in struct{ MessageGroupId *string }
				if r.Header.Get("X-Amz-Target") == "AmazonSQS.SendMessage" && json.Unmarshal(body, &in) == nil {
					mu.Lock()
					wire = append(wire, aws.ToString(in.MessageGroupId))
					mu.Unlock()
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				rp.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			client := sqs.NewFromConfig(awsclient.Local(), func(o *sqs.Options) {
				o.BaseEndpoint = aws.String(srv.URL)
				o.RetryMaxAttempts = 1
			})
			h := newHandler(client, staticSecrets(), nil)
			h.QueueURL = q.Queue
			ctx := context.Background()
			for _, body := range []string{mentionBody, orgMentionBody} {
				if resp := h.Handle(ctx, signed(PathEvents, body)); resp.Status != 202 {
					t.Fatalf("status %d: %s (the server refused the group id on a standard queue?)", resp.Status, resp.Body)
				}
			}
			mu.Lock()
			got := slices.Clone(wire)
			mu.Unlock()
			if !slices.Equal(got, []string{"T1", "E1"}) {
				t.Fatalf("MessageGroupId on the wire: %q, want [T1 E1]", got)
			}
			n := 0
			for range 5 {
				out, err := q.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.Queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
				if err != nil {
					t.Fatal(err)
				}
				if n += len(out.Messages); n >= 2 {
					break
				}
			}
			if n != 2 {
				t.Fatalf("queue gave %d messages, want the 2 sent", n)
			}
		})
	}
}

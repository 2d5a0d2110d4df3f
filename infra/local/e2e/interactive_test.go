package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/devstack"
	"github.com/slackrelay/slackrelay/infra/local/fixture"
	"github.com/slackrelay/slackrelay/infra/local/localslack"
)

// regenerateValue returns the value of the Regenerate button a reply carries.
func regenerateValue(t *testing.T, p localslack.Post) string {
	t.Helper()
	var blocks []struct {
		Type     string
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string
		}
	}
	if err := json.Unmarshal(p.Blocks, &blocks); err != nil {
		t.Fatalf("reply blocks: %v (%s)", err, p.Blocks)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.ActionID == "slackrelay_regenerate" {
				return e.Value
			}
		}
	}
	t.Fatalf("the reply has no Regenerate button: %s", p.Blocks)
	return ""
}

// 10. A Regenerate click under Slack's retries (two at once, two later) with the worker killed
// while it works on the click: the answer is replaced exactly once.
func TestRegenerateClickUnderRetriesAndACrash(t *testing.T) {
	s := setup(t)
	id, ts := event()
	if r := mention(t, s, fixture.AppMention(id, "C1", ts, "regenerate me")); r.Status != 202 {
		t.Fatal(r.Status)
	}
	reply := settle(t, s, ts, 10*time.Second)
	click := fixture.BlockActions("slackrelay_regenerate", regenerateValue(t, reply), "C1", reply.TS, ts, fmt.Sprintf("%d.000001", time.Now().Unix()))
	send := func(headers ...string) {
		r, err := s.Send(context.Background(), "/slack/interactivity", "application/x-www-form-urlencoded", click, headers...)
		if err != nil || r.Status != 200 {
			t.Errorf("click delivery: status %d, err %v; want 200", r.Status, err)
		}
	}
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				send()
			} else {
				send("X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout")
			}
		}()
	}
	wg.Wait()
	// The demo responder takes 300 ms: kill the worker while it answers the click.
	time.Sleep(120 * time.Millisecond)
	s.KillWorker()
	if n := s.Slack.Calls("chat.update"); n != 0 {
		t.Skipf("the click was handled before the kill (%d updates); nothing to test on this run", n)
	}
	if err := s.StartWorker(context.Background()); err != nil {
		t.Fatal(err)
	}
	send("X-Slack-Retry-Num", "2", "X-Slack-Retry-Reason", "http_timeout")
	send("X-Slack-Retry-Num", "3", "X-Slack-Retry-Reason", "http_timeout")
	// Redelivery after the visibility timeout (handler timeout + 2 s), then the lease.
	if err := devstack.WaitFor(20*time.Second, func() bool { return s.Slack.Calls("chat.update") >= 1 }); err != nil {
		t.Fatal("the click was never handled")
	}
	time.Sleep(3 * time.Second) // room for a second update to show up
	if n := s.Slack.Calls("chat.update"); n != 1 {
		t.Fatalf("chat.update called %d times for one click, want 1", n)
	}
	if n := len(postsInThread(s, ts)); n != 1 {
		t.Fatalf("%d messages in the thread, want the one answer, updated in place", n)
	}
}

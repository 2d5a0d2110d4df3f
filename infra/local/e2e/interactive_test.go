package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/infra/local/devworld"
	"github.com/slackrelay/slackrelay/shared/fixture"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
)

// regenerateValue returns the value of the Regenerate button the bot's message ts in the
// thread threadTS of channel carries (the button's value is in the API's view only).
func regenerateValue(t *testing.T, s *devworld.World, channel, threadTS, ts string) string {
	t.Helper()
	for _, m := range s.Slack.BotReplies(channel, threadTS) {
		if m.TS != ts {
			continue
		}
		v, ok := fixture.ButtonValue(m.Blocks, "slackrelay_regenerate")
		if !ok {
			t.Fatalf("the answer has no Regenerate button: %s", m.Blocks)
		}
		return v
	}
	t.Fatalf("no message %s of the bot in thread %s", ts, threadTS)
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
	reply := settle(t, s, "C1", ts, answerTo(t, "regenerate me"), 10*time.Second).Messages[0]
	updates := s.Slack.Calls("chat.update") // the answer's own (none unless it was resumed)
	click := fixture.BlockActions("slackrelay_regenerate", regenerateValue(t, s, "C1", ts, reply.TS), "C1", reply.TS, ts, fmt.Sprintf("%d.000001", time.Now().Unix()))
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
	if n := s.Slack.Calls("chat.update") - updates; n != 0 {
		t.Skipf("the click was handled before the kill (%d updates); nothing to test on this run", n)
	}
	if err := s.StartWorker(context.Background()); err != nil {
		t.Fatal(err)
	}
	send("X-Slack-Retry-Num", "2", "X-Slack-Retry-Reason", "http_timeout")
	send("X-Slack-Retry-Num", "3", "X-Slack-Retry-Reason", "http_timeout")
	// Redelivery after the visibility timeout (handler timeout + 2 s), then the lease.
	// The demo responder answers the click (not streamed) with its reply to the question;
	// the answer's message shows it, with only Regenerate under it.
	regenerated, err := answercheck.DemoReply(context.Background(), demoDelay, "regenerate me")
	if err != nil {
		t.Fatal(err)
	}
	got := settle(t, s, "C1", ts, answercheck.Regenerated(regenerated), 20*time.Second)
	if n := s.Slack.Calls("chat.update") - updates; n != 1 {
		t.Fatalf("chat.update called %d times for one click, want 1", n)
	}
	if len(got.Messages) != 1 || got.Messages[0].TS != reply.TS {
		t.Fatalf("the bot's messages in the thread: %+v; want the one answer %s, replaced in place", got.Messages, reply.TS)
	}
}

// 11. /ask without a question: the modal must open with the command's trigger_id, through the
// queue, while the local Slack server still accepts it (3 s, once, as Slack does); then the
// submission keeps the modal open and the worker answers in it. Logs request → views.open.
func TestAskModalThroughTheQueue(t *testing.T) {
	s := setup(t)
	const n = 20
	var lat []time.Duration
	var last fakeslack.View
	for i := range n {
		trigger := s.Slack.NewTrigger()
		sent := time.Now()
		r, err := s.Send(context.Background(), "/slack/commands", "application/x-www-form-urlencoded",
			fixture.SlashCommand("/ask", "", trigger, s.Slack.ResponseURL(fmt.Sprint("ask", i))))
		if err != nil || r.Status != 200 {
			t.Fatalf("command %d: status %d, err %v", i, r.Status, err)
		}
		err = devworld.WaitFor(5*time.Second, func() bool {
			var ok bool
			last, ok = s.Slack.ViewByTrigger(trigger)
			return ok
		})
		if err != nil {
			t.Fatalf("command %d: no modal opened with its trigger (expired or never tried); responses: %+v", i, s.Slack.Posts())
		}
		lat = append(lat, last.History[0].At.Sub(sent))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("/ask → views.open through the queue, %d commands: p50 %v, p90 %v, max %v (Slack accepts the trigger for 3 s)",
		n, lat[n/2].Round(time.Millisecond), lat[n*9/10].Round(time.Millisecond), lat[n-1].Round(time.Millisecond))

	submit := fixture.ViewSubmission(last.ID, last.CallbackID, last.PrivateMetadata, "question", "text", "how do retries work?")
	r, err := s.Send(context.Background(), "/slack/interactivity", "application/x-www-form-urlencoded", submit)
	if err != nil || r.Status != 200 || !strings.Contains(r.Body, `"response_action":"update"`) {
		t.Fatalf("submission: status %d, body %q, err %v; want 200 with response_action update", r.Status, r.Body, err)
	}
	err = devworld.WaitFor(10*time.Second, func() bool {
		v, _ := s.Slack.View(last.ID)
		return len(v.History) >= 2 && strings.Contains(string(v.Payload), "how do retries work?")
	})
	if err != nil {
		t.Fatal("the worker did not answer in the modal")
	}
}

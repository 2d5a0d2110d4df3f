package interleave

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/slackrelay/slackrelay/infra/local/answercheck"
	"github.com/slackrelay/slackrelay/worker/fakeslack"
)

// botMessages is the thread as a person reads it: the bot's messages, in order.
func (s *schedule) botMessages() []fakeslack.Rendered {
	var out []fakeslack.Rendered
	for _, r := range s.w.slack.RenderedThread(s.channel, s.thread) {
		if r.Bot && r.TS != s.thread {
			out = append(out, r)
		}
	}
	return out
}

// squeeze drops white space: parts of a reply are cut at spaces and trimmed, and the
// client's rendering joins blocks with newlines; the words are what must match.
func squeeze(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// describe lists the bot's messages for a failure: each one's state, words, first and last.
func describe(msgs []fakeslack.Rendered) string {
	var b strings.Builder
	for i, m := range msgs {
		fmt.Fprintf(&b, "\n      message %d (ts %s", i+1, m.TS)
		if m.Streaming {
			b.WriteString(", streaming")
		}
		if len(m.Actions) > 0 {
			fmt.Fprintf(&b, ", actions %v", m.Actions)
		}
		words := strings.Fields(m.Text)
		fmt.Fprintf(&b, "): %d words", len(words))
		if len(words) > 0 {
			fmt.Fprintf(&b, " %s … %s", words[0], words[len(words)-1])
		}
	}
	return b.String()
}

// settled checks the property once every copy has settled: an answered event shows its
// answer exactly once; an unanswered one has a copy in the DLQ and shows a beginning of the
// answer at most (nothing repeated). It reports whether the event was answered.
func (s *schedule) settled(ctx context.Context, when string) (bool, error) {
	done, err := s.done(ctx)
	if err != nil {
		return false, fmt.Errorf("%w: read the journal: %v", errHarness, err)
	}
	if done {
		return true, s.answered(ctx, when)
	}
	msgs := s.botMessages()
	got, want := squeeze(joinTexts(msgs)), squeeze(s.variant.want())
	switch {
	case len(s.dlq) == 0:
		s.violatef("%s: the event is not answered and no copy is in the DLQ: it was dropped%s", when, describe(msgs))
	case !strings.HasPrefix(want, got):
		s.violatef("%s (unanswered, dead-lettered): the thread shows more than a beginning of the answer (%d of %d characters, a repeat or a stray text)%s",
			when, len(got), len(want), describe(msgs))
	}
	for i, m := range msgs {
		if len(m.Actions) > 0 && (i < len(msgs)-1 || got != want) {
			s.violatef("%s (unanswered): message %d shows the button under an unfinished answer%s", when, i+1, describe(msgs))
		}
	}
	return false, nil
}

// answered checks that the journal says the event was answered and the thread shows the
// answer exactly once: the bot's messages, concatenated, are the answer; none still
// streaming; the button once, under the last one.
func (s *schedule) answered(ctx context.Context, when string) error {
	done, err := s.done(ctx)
	if err != nil {
		return fmt.Errorf("%w: read the journal: %v", errHarness, err)
	}
	msgs := s.botMessages()
	if !done {
		s.violatef("%s: the journal does not say the event was answered%s", when, describe(msgs))
	}
	v := answercheck.Judge(s.channel, s.thread, s.w.slack.RenderedThread(s.channel, s.thread),
		answercheck.Expect{Text: s.variant.want(), Actions: []string{buttonAction}})
	if err := v.Err(); err != nil {
		s.violatef("%s: %v", when, err)
	}
	return nil
}

// joinTexts is the bot's messages' texts, one after the other.
func joinTexts(msgs []fakeslack.Rendered) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Text)
	}
	return b.String()
}

// observe follows the event's record as DynamoDB applies the journal's writes (the answer of
// a call, whether or not the client gets it): it counts takeovers (a claim applied while
// another receive's claim stood: a crashed one, a failed Release) and checks that a step
// changes only on news: between two writes of a step by one invocation, its value may change
// only if Slack answered a call in between (otherwise the second write undoes what the first
// recorded: a stale deferred step written back over an intent, a bug this suite found).
func (inv *invocation) observe(c *call, status int) {
	s := inv.s
	if c.key != s.key || status != 200 {
		return
	}
	for name, v := range c.steps {
		if prev, ok := inv.written[name]; ok && prev != v && inv.writtenAt[name] == inv.answers {
			s.violatef("%s %s wrote step %s back to an older value with no answer from Slack since it wrote the step", inv.name(), c.op, stepKind(name))
		}
		if inv.written == nil {
			inv.written, inv.writtenAt = map[string]string{}, map[string]int{}
		}
		inv.written[name], inv.writtenAt[name] = v, inv.answers
	}
	switch c.op {
	case "claim":
		if s.holder != "" && s.holder != c.owner {
			if messageOf(s.holder) == messageOf(c.owner) {
				s.n.takeoverOwn++
				s.tracef("       (a takeover of the message's own earlier claim)")
			} else {
				s.n.takeoverOther++
				s.tracef("       (a takeover of %s's claim after its lease ended)", messageOf(s.holder))
			}
		}
		s.holder = c.owner
	case "release":
		s.holder = ""
	case "complete":
		s.holder, inv.completed = "", true
	}
}

// ended checks, when inv has returned or died, what it left in the record: a streamed
// answer recorded complete must hold the whole answer, or the next attempt only finishes
// what it holds (a stream marked complete before its text, a bug this suite found).
func (inv *invocation) ended() {
	if inv.completed || !inv.s.variant.stream {
		return
	}
	for name, v := range inv.written {
		if !strings.HasPrefix(name, "stream:") {
			continue
		}
		var st struct {
			Msgs []struct {
				Text string `json:"text"`
			} `json:"msgs"`
			Complete bool `json:"complete"`
		}
		if json.Unmarshal([]byte(v), &st) != nil || !st.Complete {
			continue
		}
		var text strings.Builder
		for _, m := range st.Msgs {
			text.WriteString(m.Text)
		}
		if got := text.String(); got != inv.s.variant.answer {
			inv.s.violatef("%s ended with its stream recorded complete holding %d of the answer's %d characters",
				inv.name(), len(got), len(inv.s.variant.answer))
		}
	}
}

// stepKind is a step's name without the place it names ("stream:C1:ts" → "stream"), for a
// trace that reads the same whatever channel and timestamps the schedule got.
func stepKind(name string) string {
	kind, _, _ := strings.Cut(name, ":")
	return kind
}

// messageOf is the SQS message id of an owner token "<message id>/<nonce>".
func messageOf(token string) string {
	if i := strings.LastIndexByte(token, '/'); i > 0 {
		return token[:i]
	}
	return token
}

// done reads the event's record (ungated, with the client the checks use) and reports whether
// it says the event was answered, as the journal decides it: completed and not expired.
func (s *schedule) done(ctx context.Context) (bool, error) {
	out, err := s.w.h.raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.w.h.table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: s.key}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("read the record of %s: %w", s.key, err)
	}
	status, _ := out.Item["status"].(*types.AttributeValueMemberS)
	expires, _ := out.Item["expires_at"].(*types.AttributeValueMemberN)
	if status == nil || status.Value != "completed" || expires == nil {
		return false, nil
	}
	at, err := strconv.ParseInt(expires.Value, 10, 64)
	return err == nil && at >= s.now().Unix(), nil
}

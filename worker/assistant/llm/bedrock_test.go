package llm

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/google/go-cmp/cmp"
	"github.com/slackrelay/slackrelay/shared/awsclient"
	"github.com/slackrelay/slackrelay/shared/logbuf"
	"github.com/slackrelay/slackrelay/shared/loopback"
	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakebedrock"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// A whole answer through the real SDK client and the stand-in's event stream: the
// conversation as Converse wants it, the inference settings, the text in pieces, the usage
// with its cache tokens in the Result, the metrics and the log line.
func TestBedrockStreamWholeAnswer(t *testing.T) {
	t.Parallel()
	srv, b, metricsOut := setupBedrock(t, fakebedrock.Options{Pace: fakebedrock.Pace{FirstToken: 20 * time.Millisecond, TokensPerSecond: 500, AnswerTokens: 40},
		CacheReadTokens: 120, CacheWriteTokens: 30})
	temp := 0.2
	b.System, b.MaxTokens, b.Temperature = "default system prompt", 1000, &temp
	var logs logbuf.Buffer
	earlier := []Turn{{Text: "how do I deploy?"}, {Text: "with make?"}, {Text: "Run make deploy.", FromBot: true}}
	msgs, _ := History(earlier, "and to roll back?", 10000)
	req := Request{System: "answer in Slack", Messages: msgs, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	var got collect
	res, err := b.Stream(context.Background(), req, got.add)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}

	// Two user messages in a row are one message of two text blocks.
	sent := []fakebedrock.Message{
		{Role: "user", Texts: []string{"how do I deploy?", "with make?"}},
		{Role: "assistant", Texts: []string{"Run make deploy."}},
		{Role: "user", Texts: []string{"and to roll back?"}},
	}
	want := srv.AnswerText(sent, 0)
	if res.Text != want || strings.Join(got.pieces, "") != want || len(got.pieces) != 40 {
		t.Errorf("Result.Text %q, %d pieces joining to %q; want 40 pieces of %q", res.Text, len(got.pieces), strings.Join(got.pieces, ""), want)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.ModelID != testModelID || r.Region != "eu-west-1" || !cmp.Equal(r.System, []string{"answer in Slack"}) {
		t.Errorf("request for model %q in %q with system %q; want %q in eu-west-1 with the request's system prompt", r.ModelID, r.Region, r.System, testModelID)
	}
	if diff := cmp.Diff(sent, r.Messages); diff != "" {
		t.Errorf("messages the server received (-want +got):\n%s", diff)
	}
	if r.MaxTokens == nil || *r.MaxTokens != 1000 || r.Temperature == nil || *r.Temperature < 0.19 || *r.Temperature > 0.21 || r.Tools != nil {
		t.Errorf("inference config maxTokens %v temperature %v tools %v; want 1000, 0.2 and no tools", r.MaxTokens, r.Temperature, r.Tools)
	}
	input := (3 + 3) + (3 + 4 + 2) + (3 + 3) + (3 + 4) // 3 a message or system block, plus its words
	wantUsage := Usage{PromptTokens: input, CompletionTokens: 40, TotalTokens: input + 40 + 150, CacheReadTokens: 120, CacheWriteTokens: 30}
	if res.Usage != wantUsage || res.FinishReason != "end_turn" || res.Model != testModelID || len(res.ToolUses) != 0 {
		t.Errorf("usage %+v, finish %q, model %q, tools %v; want %+v, end_turn, %s, none", res.Usage, res.FinishReason, res.Model, res.ToolUses, wantUsage, testModelID)
	}
	if res.FirstToken < 20*time.Millisecond || res.Duration < res.FirstToken {
		t.Errorf("first token after %v, whole answer after %v; want ≥ 20ms (the server's pace) and the first ≤ the whole", res.FirstToken, res.Duration)
	}
	for kind, n := range map[string]float64{"prompt": float64(input), "completion": 40, "cache_read": 120, "cache_write": 30} {
		if v := metricValues(t, metricsOut, "LLMTokens", map[string]string{"Model": testModelID, "Kind": kind}); !cmp.Equal(v, []float64{n}) {
			t.Errorf("LLMTokens{Kind=%s} = %v, want [%v]", kind, v, n)
		}
	}
	if v := metricValues(t, metricsOut, "LLMTimeToFirstToken", map[string]string{"Model": testModelID}); len(v) != 1 || v[0] < 20 {
		t.Errorf("LLMTimeToFirstToken = %v, want one value ≥ 20 ms", v)
	}
	line := logs.String()
	for _, want := range []string{`"msg":"llm answer"`, `"provider":"bedrock"`, `"cache_read_tokens":120`, `"cache_write_tokens":30`, `"completion_tokens":40`, `"finish_reason":"end_turn"`, `"bedrock_latency_ms":`} {
		if !strings.Contains(line, want) {
			t.Errorf("log %s lacks %s", line, want)
		}
	}
}

// Converse wants a conversation that starts and ends with the user's message, without blank
// text; a system message joins the system prompt; MaxTokens of the request wins.
func TestBedrockConversationShape(t *testing.T) {
	t.Parallel()
	srv, b, _ := setupBedrock(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 3}})
	b.System, b.MaxTokens = "default", 500
	msgs := []Message{{RoleAssistant, "I posted first."}, {RoleSystem, "be kind"}, {RoleUser, "  "}, {RoleUser, "ok"}, {RoleAssistant, "fine"}, {RoleUser, ""}}
	res, err := b.Stream(context.Background(), Request{Messages: msgs, MaxTokens: 2}, func(string) error { return nil })
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	r := srv.Requests()[0]
	want := []fakebedrock.Message{
		{Role: "user", Texts: []string{bedrockThreadStart}},
		{Role: "assistant", Texts: []string{"I posted first."}},
		{Role: "user", Texts: []string{"ok"}},
		{Role: "assistant", Texts: []string{"fine"}},
		{Role: "user", Texts: []string{bedrockEmptyPrompt}},
	}
	if diff := cmp.Diff(want, r.Messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if !cmp.Equal(r.System, []string{"default", "be kind"}) || r.MaxTokens == nil || *r.MaxTokens != 2 || r.Temperature != nil {
		t.Errorf("system %q maxTokens %v temperature %v; want the default prompt and the system message, 2, unset", r.System, r.MaxTokens, r.Temperature)
	}
	if res.FinishReason != "max_tokens" || res.Usage.CompletionTokens != 2 {
		t.Errorf("finish %q after %d tokens, want max_tokens after 2", res.FinishReason, res.Usage.CompletionTokens)
	}
}

func TestBedrockRespond(t *testing.T) {
	t.Parallel()
	srv, b, _ := setupBedrock(t, fakebedrock.Options{})
	b.System = "be brief"
	out, err := b.Respond(context.Background(), "what is 6 x 7?")
	sent := []fakebedrock.Message{{Role: "user", Texts: []string{"what is 6 x 7?"}}}
	if want := srv.AnswerText(sent, 0); err != nil || out != want {
		t.Errorf("Respond = %q, %v; want %q", out, err, want)
	}
	if r := srv.Requests(); len(r) != 1 || !cmp.Equal(r[0].System, []string{"be brief"}) {
		t.Errorf("requests %+v, want one with the client's system prompt", r)
	}
}

// A tool-use answer: the toolUse block's input, streamed in pieces, comes back whole in
// Result.ToolUses, after the answer's text; the tools offered are sent as toolConfig.
func TestBedrockToolUseIsParsed(t *testing.T) {
	t.Parallel()
	srv, b, _ := setupBedrock(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 4}})
	schema := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)
	b.Tools = []Tool{{Name: "weather", Description: "the weather in a city", Schema: schema}}
	input := `{"city":"Lisbon","units":{"temperature":"celsius","wind":"km/h"}}`
	srv.ToolUseNext(1, fakebedrock.ToolCall{ID: "tooluse_1", Name: "weather", Input: json.RawMessage(input)}, fakebedrock.ToolCall{Name: "clock"})
	var got collect
	res, err := b.Stream(context.Background(), Request{Messages: []Message{{RoleUser, "weather in Lisbon?"}}}, got.add)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if len(got.pieces) != 4 || res.FinishReason != "tool_use" {
		t.Errorf("%d pieces, finish %q; want the 4 words of text, then tool_use", len(got.pieces), res.FinishReason)
	}
	if len(res.ToolUses) != 2 {
		t.Fatalf("ToolUses = %+v, want 2", res.ToolUses)
	}
	if tu := res.ToolUses[0]; tu.ID != "tooluse_1" || tu.Name != "weather" || string(tu.Input) != input {
		t.Errorf("first tool use %+v, want weather with %s", tu, input)
	}
	if tu := res.ToolUses[1]; tu.ID == "" || tu.Name != "clock" || string(tu.Input) != "{}" {
		t.Errorf("second tool use %+v, want clock with {}", tu)
	}
	r := srv.Requests()[0]
	if len(r.Tools) != 1 || r.Tools[0].Name != "weather" || r.Tools[0].Description != "the weather in a city" {
		t.Fatalf("tools offered %+v, want weather", r.Tools)
	}
	var sentSchema, wantSchema any
	_ = json.Unmarshal(r.Tools[0].Schema, &sentSchema)
	_ = json.Unmarshal(schema, &wantSchema)
	if !cmp.Equal(sentSchema, wantSchema) {
		t.Errorf("schema sent %s, want %s", r.Tools[0].Schema, schema)
	}
}

func TestBedrockStreamFailures(t *testing.T) {
	t.Parallel()
	firstTokens := func(srv *fakebedrock.Server, n int) string {
		return srv.AnswerText([]fakebedrock.Message{{Role: "user", Texts: []string{"q"}}}, n)
	}
	var (
		modelStream *types.ModelStreamErrorException
		throttling  *types.ThrottlingException
		denied      *types.AccessDeniedException
		validation  *types.ValidationException
		notFound    *types.ResourceNotFoundException
		unavailable *types.ServiceUnavailableException
		internal    *types.InternalServerException
		notReady    *types.ModelNotReadyException
	)
	tests := []struct {
		name     string
		pace     fakebedrock.Pace
		fault    func(*fakebedrock.Server)
		client   func(*Bedrock)
		ctx      time.Duration
		is       []error // a *StreamError wrapping these
		as       any     // the SDK's exception, found with errors.As
		class    failure.Class
		after    time.Duration
		received int // tokens that arrive before the failure
		reason   string
	}{
		{name: "first token timeout", pace: fakebedrock.Pace{FirstToken: 3 * time.Second},
			client: func(b *Bedrock) { b.FirstTokenTimeout = 100 * time.Millisecond },
			is:     []error{ErrFirstTokenTimeout}, class: failure.Transient, reason: "first_token_timeout"},
		{name: "idle timeout", fault: func(s *fakebedrock.Server) { s.StallNext(1, 5, 3*time.Second) },
			client: func(b *Bedrock) { b.IdleTimeout = 100 * time.Millisecond },
			is:     []error{ErrIdleTimeout}, class: failure.Transient, received: 5, reason: "idle_timeout"},
		{name: "deadline", pace: fakebedrock.Pace{TokensPerSecond: 20, AnswerTokens: 100}, ctx: 300 * time.Millisecond,
			is: []error{ErrDeadline, context.DeadlineExceeded}, class: failure.Transient, received: -1, reason: "deadline"},
		{name: "cut", fault: func(s *fakebedrock.Server) { s.CutNext(1, 7) },
			is: []error{ErrStreamCut}, class: failure.Transient, received: 7, reason: "cut"},
		{name: "cut before the first token", fault: func(s *fakebedrock.Server) { s.CutNext(1, 0) },
			is: []error{ErrStreamCut}, class: failure.Transient, reason: "cut"},
		{name: "modelStreamErrorException mid-stream", fault: func(s *fakebedrock.Server) { s.StreamExceptionNext(1, 6, "") },
			is: []error{ErrStreamFailed}, as: &modelStream, class: failure.Transient, received: 6, reason: "stream_error"},
		{name: "throttlingException mid-stream", fault: func(s *fakebedrock.Server) { s.StreamExceptionNext(1, 3, fakebedrock.StreamThrottlingException) },
			is: []error{ErrStreamFailed}, as: &throttling, class: failure.Transient, received: 3, reason: "stream_error"},
		{name: "validationException mid-stream", fault: func(s *fakebedrock.Server) { s.StreamExceptionNext(1, 2, fakebedrock.StreamValidationException) },
			is: []error{ErrStreamFailed}, as: &validation, class: failure.Permanent, received: 2, reason: "stream_error"},
		{name: "throttled", fault: func(s *fakebedrock.Server) { s.ThrottleNext(1, 0) },
			as: &throttling, class: failure.Transient, reason: "ThrottlingException"},
		{name: "throttled with Retry-After", fault: func(s *fakebedrock.Server) { s.ThrottleNext(1, 7*time.Second) },
			as: &throttling, class: failure.RateLimited, after: 7 * time.Second, reason: "ThrottlingException"},
		{name: "model not ready", fault: func(s *fakebedrock.Server) { s.FailNext(1, 429, fakebedrock.ModelNotReadyException) },
			as: &notReady, class: failure.Transient, reason: "ModelNotReadyException"},
		{name: "service unavailable", fault: func(s *fakebedrock.Server) { s.FailNext(1, 503, fakebedrock.ServiceUnavailableException) },
			as: &unavailable, class: failure.Transient, reason: "ServiceUnavailableException"},
		{name: "internal server", fault: func(s *fakebedrock.Server) { s.FailNext(1, 500, fakebedrock.InternalServerException) },
			as: &internal, class: failure.Transient, reason: "InternalServerException"},
		{name: "unknown 502", fault: func(s *fakebedrock.Server) { s.FailNext(1, 502, "BadGatewayException") },
			class: failure.Transient, reason: "BadGatewayException"},
		{name: "access denied", fault: func(s *fakebedrock.Server) { s.SetAllowedModels("anthropic.claude-other") },
			as: &denied, class: failure.Permanent, reason: "AccessDeniedException"},
		{name: "validation", fault: func(s *fakebedrock.Server) { s.FailNext(1, 400, fakebedrock.ValidationException) },
			as: &validation, class: failure.Permanent, reason: "ValidationException"},
		{name: "not found", fault: func(s *fakebedrock.Server) { s.FailNext(1, 404, fakebedrock.ResourceNotFoundException) },
			as: &notFound, class: failure.Permanent, reason: "ResourceNotFoundException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, b, metricsOut := setupBedrock(t, fakebedrock.Options{Pace: tt.pace})
			if tt.fault != nil {
				tt.fault(srv)
			}
			if tt.client != nil {
				tt.client(b)
			}
			ctx := context.Background()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			var got collect
			res, err := b.Stream(ctx, Request{Messages: []Message{{RoleUser, "q"}}}, got.add)
			if err == nil {
				t.Fatalf("Stream succeeded with %q, want an error", res.Text)
			}
			if !strings.Contains(err.Error(), testModelID) {
				t.Errorf("error %q does not name the model", err)
			}
			if tt.as != nil && !errors.As(err, tt.as) {
				t.Errorf("error %q (%T) is not the SDK's %T", err, errors.Unwrap(err), tt.as)
			}
			checkFailedStream(t, failedStream{model: testModelID, is: tt.is, class: tt.class, after: tt.after, received: tt.received, reason: tt.reason},
				err, res, got.pieces, metricsOut, func(n int) string { return firstTokens(srv, n) })
		})
	}
}

// A Bedrock that cannot be reached is a transient failure naming the model.
func TestBedrockUnreachable(t *testing.T) {
	t.Parallel()
	b := &Bedrock{Client: NewBedrockClient(awsclient.Local(), "", aws.String(loopback.RefusedEndpoint(t))), ModelID: "anthropic.claude-x"}
	_, err := b.Respond(context.Background(), "q")
	if class, _ := failure.Classify(err); err == nil || class != failure.Transient || !strings.Contains(err.Error(), "anthropic.claude-x") {
		t.Errorf("error %v classified %v, want a transient error naming the model", err, class)
	}
}

// A cut answer is continued: regenerated and the shown part skipped, or prefilled (the
// shown text, less its trailing space, as a final assistant message the model continues).
func TestBedrockResumesAPartialAnswer(t *testing.T) {
	t.Parallel()
	for _, prefill := range []bool{false, true} {
		name := "regenerate"
		if prefill {
			name = "prefill"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, b, _ := setupBedrock(t, fakebedrock.Options{Pace: fakebedrock.Pace{AnswerTokens: 20}})
			b.Prefill = prefill
			conv := []Message{{RoleUser, "tell me about rivers"}}
			whole := srv.AnswerText(toBedrock(conv), 0)
			partial := srv.AnswerText(toBedrock(conv), 7) // seven words, each with the space after it, as shown
			var logs logbuf.Buffer
			var got collect
			res, err := b.Stream(context.Background(), Request{Messages: conv, Partial: partial, Log: slog.New(slog.NewJSONHandler(&logs, nil))}, got.add)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if res.Text != whole || partial+strings.Join(got.pieces, "") != whole {
				t.Errorf("Result.Text %q, new text %q; want %q continued after %q", res.Text, strings.Join(got.pieces, ""), whole, partial)
			}
			r := srv.Requests()[0]
			if prefill {
				want := append(toBedrock(conv), fakebedrock.Message{Role: "assistant", Texts: []string{strings.TrimSpace(partial)}})
				if !cmp.Equal(r.Messages, want) || r.Prefill == nil || r.Prefill.NotAPrefix {
					t.Errorf("prefill request %+v (prefill %+v), want the conversation then the shown text", r.Messages, r.Prefill)
				}
			} else if !cmp.Equal(r.Messages, toBedrock(conv)) || r.Prefill != nil {
				t.Errorf("regenerate request %+v, want the conversation alone", r.Messages)
			}
			if want := `"resume":"` + name + `"`; !strings.Contains(logs.String(), want) {
				t.Errorf("log %s lacks %s", logs.String(), want)
			}
		})
	}
}

package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	"github.com/slackrelay/slackrelay/shared/metrics"
	"github.com/slackrelay/slackrelay/worker/internal/failure"
)

// BedrockAPI is what Bedrock needs of the SDK's client: *bedrockruntime.Client (see
// NewBedrockClient).
type BedrockAPI interface {
	ConverseStream(ctx context.Context, in *bedrockruntime.ConverseStreamInput, optFns ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseStreamOutput, error)
}

var _ BedrockAPI = (*bedrockruntime.Client)(nil)

// NewBedrockClient returns the SDK's Bedrock runtime client for cfg (its credentials and HTTP
// client), in region (cfg's region when empty), at endpoint (nil: the regional AWS endpoint;
// locally AWS_ENDPOINT_URL_BEDROCK_RUNTIME, e.g. the fakebedrock stand-in). The SDK's own
// retries are off: a refused or broken call fails the attempt at once and the worker's
// retries (backoff, or the wait a throttle names) own the next one, as for Chat; an SDK retry
// would spend the invocation's time without the journal knowing.
func NewBedrockClient(cfg aws.Config, region string, endpoint *string) *bedrockruntime.Client {
	return bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		if region != "" {
			o.Region = region
		}
		o.BaseEndpoint = endpoint
		o.Retryer = aws.NopRetryer{}
	})
}

// Bedrock answers with a model on Amazon Bedrock through the ConverseStream API (one IAM
// action, bedrock:InvokeModelWithResponseStream, for both Stream and Respond). It is the
// same kind of client as Chat: the same Request and Result, the same timeouts, the same
// continuation of a Partial answer, errors in the same failure classes, the same metrics.
type Bedrock struct {
	// Client calls Bedrock (NewBedrockClient).
	Client BedrockAPI
	// ModelID is the model: a model id (anthropic.claude-…), an inference profile id
	// (us.anthropic.claude-…) or an ARN (an inference profile's, a provisioned model's).
	ModelID string
	// MaxTokens caps an answer's length when the Request sets no MaxTokens (0: the model's
	// default).
	MaxTokens int
	// Temperature, when set, is sent as inferenceConfig.temperature (nil: the model's
	// default).
	Temperature *float64
	// System is the system prompt when a Request brings none.
	System string
	// Tools, when set, are offered to the model (toolConfig); the tools it asks for come back
	// in Result.ToolUses. The shipped bot offers none yet.
	Tools []Tool
	// FirstTokenTimeout bounds the time from sending a request to the model's first output
	// (text, tool input or reasoning); IdleTimeout the gap between two events after it (zero:
	// DefaultFirstTokenTimeout, DefaultIdleTimeout). The invocation's deadline comes from ctx.
	FirstTokenTimeout time.Duration
	IdleTimeout       time.Duration
	// Prefill chooses how Stream continues a Request's Partial, as Chat.Prefill: false asks
	// again and drops the repeat; true sends Partial (less trailing whitespace) as a final
	// assistant message, which Anthropic's models on Bedrock continue; models that do not
	// accept one answer ValidationException.
	Prefill bool
	// Metrics, when set, gets LLMTokens (by Model, Kind=prompt|completion|cache_read|
	// cache_write), LLMDuration, LLMTimeToFirstToken and LLMErrors (by Model, Reason), Model
	// being ModelID.
	Metrics *metrics.Emitter
}

// Placeholders for the messages a Converse conversation must have: it starts with the user's
// message and ends with one (a final assistant message is a prefill), and a text block must
// not be blank.
const (
	bedrockThreadStart = "(earlier in the thread)"
	bedrockEmptyPrompt = "(an empty message)"
)

// Respond answers prompt (a one-message conversation) through ConverseStream, read whole:
// the same timeouts and errors as Stream.
func (b *Bedrock) Respond(ctx context.Context, prompt string) (string, error) {
	res, err := b.Stream(ctx, Request{Messages: []Message{{Role: RoleUser, Content: prompt}}}, func(string) error { return nil })
	if err != nil {
		return "", err
	}
	return res.Text, nil
}

// Stream sends req to ConverseStream and calls onDelta with each piece of text as it arrives,
// as Chat.Stream does (see it for Partial, the timeouts and the log line). The conversation is
// sent as Converse wants it: consecutive messages of one role become one message of several
// text blocks, blank messages are left out, a conversation that starts with the assistant's
// message gets a user message before it, and a system message joins the system prompt.
//
// The answer is complete at messageStop; a stream that ends before it is cut. Tool calls
// (toolUse blocks, their input streamed in pieces) come back in Result.ToolUses; reasoning
// content counts as output for the timeouts but is not text. Usage comes from the metadata
// event.
//
// Errors: a refusal (the call's own error) is classified by its exception: ThrottlingException,
// ModelNotReadyException, ServiceQuotaExceededException (rate limited when the answer says how
// long to wait, else transient), InternalServerException, ServiceUnavailableException,
// ModelTimeoutException, ModelErrorException, other 5xx, 408 and 429 are transient;
// ValidationException, AccessDeniedException, ResourceNotFoundException and other 4xx are
// permanent. Each names the model. Once the stream has started, an exception in it
// (modelStreamErrorException, throttlingException, internalServerException,
// serviceUnavailableException) is a transient *StreamError wrapping ErrStreamFailed and the
// exception, so the next attempt continues from what was shown, except validationException,
// which is permanent; the timeouts, the deadline and a cut are transient *StreamErrors as for
// Chat.
func (b *Bedrock) Stream(ctx context.Context, req Request, onDelta func(text string) error) (Result, error) {
	return b.stream(ctx, req, nil, onDelta)
}

// converseOverride, when set, replaces what Stream builds from its Request: the conversation
// (Messages, as Converse wants it, without the prefill, which is added after them) and the
// tools offered. BedrockAgent uses it for conversations with toolUse and toolResult blocks.
type converseOverride struct {
	messages []types.Message
	system   []string
	tools    []Tool
}

func (b *Bedrock) stream(ctx context.Context, req Request, ov *converseOverride, onDelta func(text string) error) (Result, error) {
	start := time.Now()
	ctx, cancel, watch := watchStream(ctx, b.firstTokenTimeout(), b.idleTimeout())
	defer cancel(nil)
	defer watch.stop()

	rs, prefill := newResumer(req.Partial, b.Prefill)
	res := Result{Model: b.ModelID}
	var text strings.Builder // Partial, then the new text
	text.WriteString(req.Partial)
	received := 0
	end := func() {
		res.Text, res.Duration = text.String(), time.Since(start)
	}
	// failAs ends a stream that stopped part way (or never started, ctx having ended) with a
	// *StreamError: transient, or permanent.
	failAs := func(err error, permanent bool) (Result, error) {
		rs.finish(false, req.Log, b.ModelID)
		end()
		err = b.named(watch.streamError(ctx, err, received, rs.dropped, res.Duration))
		if permanent {
			err = failure.AsPermanent(err)
		} else {
			err = failure.Retryable(err)
		}
		b.countError(err)
		return res, err
	}
	fail := func(err error) (Result, error) { return failAs(err, false) }

	in, err := b.input(req, prefill, ov)
	if err != nil {
		err = failure.AsPermanent(b.named(err))
		b.countError(err)
		res.Text = req.Partial
		return res, err
	}
	out, err := b.Client.ConverseStream(ctx, in)
	if err != nil {
		if ctx.Err() == nil {
			err = b.refusal(err)
			b.countError(err)
			res.Text = req.Partial
			return res, err
		}
		return fail(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	events := stream.Events()

	var tools toolBlocks
	stopped, usageReported := false, false
	var latency int64
	markArrived := func() {
		if watch.arrive() {
			res.FirstToken = watch.firstTokenElapsed
		}
	}
	for {
		watch.waiting()
		var ev types.ConverseStreamOutput
		ok := false
		select {
		case ev, ok = <-events:
		case <-ctx.Done():
		}
		watch.read()
		if ctx.Err() != nil {
			return fail(context.Cause(ctx))
		}
		if !ok {
			if stopped {
				break // the answer is whole: a stream broken after messageStop only lost its usage
			}
			if err := stream.Err(); err != nil {
				// An exception Bedrock sent in the stream, or a read that failed (a cut).
				var apiErr smithy.APIError
				if !errors.As(err, &apiErr) {
					return fail(err)
				}
				return failAs(fmt.Errorf("%w: %w", ErrStreamFailed, err), strings.EqualFold(apiErr.ErrorCode(), "validationException"))
			}
			return fail(errors.New("the stream ended before messageStop"))
		}
		switch e := ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockStart:
			if tu, isTool := e.Value.Start.(*types.ContentBlockStartMemberToolUse); isTool {
				tools.start(index(e.Value.ContentBlockIndex), aws.ToString(tu.Value.ToolUseId), aws.ToString(tu.Value.Name))
			}
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			switch d := e.Value.Delta.(type) {
			case *types.ContentBlockDeltaMemberText:
				piece := d.Value
				if piece == "" {
					continue
				}
				markArrived()
				if piece = rs.take(piece); piece == "" {
					continue
				}
				if received == 0 {
					rs.firstDelta = time.Since(start)
				}
				text.WriteString(piece)
				received += utf8.RuneCountInString(piece)
				if err := onDelta(piece); err != nil {
					rs.finish(false, req.Log, b.ModelID)
					end()
					return res, fmt.Errorf("llm stream: %w", err)
				}
			case *types.ContentBlockDeltaMemberToolUse:
				markArrived()
				tools.add(index(e.Value.ContentBlockIndex), aws.ToString(d.Value.Input))
			case *types.ContentBlockDeltaMemberReasoningContent:
				markArrived()
			}
		case *types.ConverseStreamOutputMemberContentBlockStop:
			if err := tools.stop(index(e.Value.ContentBlockIndex)); err != nil {
				return fail(err)
			}
		case *types.ConverseStreamOutputMemberMessageStop:
			stopped = true
			res.FinishReason = string(e.Value.StopReason)
			if err := tools.stopAll(); err != nil {
				return fail(err)
			}
		case *types.ConverseStreamOutputMemberMetadata:
			if u := e.Value.Usage; u != nil {
				usageReported = true
				res.Usage = Usage{PromptTokens: int32Of(u.InputTokens), CompletionTokens: int32Of(u.OutputTokens),
					TotalTokens: int32Of(u.TotalTokens), CacheReadTokens: int32Of(u.CacheReadInputTokens),
					CacheWriteTokens: int32Of(u.CacheWriteInputTokens)}
			}
			if m := e.Value.Metrics; m != nil && m.LatencyMs != nil {
				latency = *m.LatencyMs
			}
		}
	}
	rs.finish(true, req.Log, b.ModelID)
	end()
	res.ToolUses = tools.done
	b.record(req, res, usageReported, rs, latency)
	return res, nil
}

// named prefixes err with the model it concerns.
func (b *Bedrock) named(err error) error {
	return fmt.Errorf("bedrock model %s: %w", b.ModelID, err)
}

// refusal classifies the error of a ConverseStream call that did not start a stream.
func (b *Bedrock) refusal(err error) error {
	named := b.named(err)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return named // the network, a signing failure: transient
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch apiErr.ErrorCode() {
	case "ThrottlingException", "ModelNotReadyException", "ServiceQuotaExceededException", "TooManyRequestsException":
		if re != nil && re.Response != nil {
			if h := re.Response.Header.Get("Retry-After"); h != "" {
				return &failure.RetryAfterError{After: failure.ParseRetryAfter(h, time.Now()), Err: named}
			}
		}
		return failure.Retryable(named)
	case "InternalServerException", "ServiceUnavailableException", "ModelTimeoutException", "ModelErrorException", "ModelStreamErrorException":
		return failure.Retryable(named)
	case "ValidationException", "AccessDeniedException", "ResourceNotFoundException":
		return failure.AsPermanent(named)
	}
	switch {
	case status >= 500, status == 408, status == 429, status == 0:
		return failure.Retryable(named)
	}
	return failure.AsPermanent(named)
}

// input is the ConverseStream request for req (or ov, when set), with prefill as a final
// assistant message when it is not empty.
func (b *Bedrock) input(req Request, prefill string, ov *converseOverride) (*bedrockruntime.ConverseStreamInput, error) {
	system := req.System
	if system == "" {
		system = b.System
	}
	tools := b.Tools
	var msgs []types.Message
	var extra []string
	if ov != nil {
		msgs, extra, tools = ov.messages, ov.system, ov.tools
		if prefill != "" {
			msgs = append(msgs, types.Message{Role: types.ConversationRoleAssistant, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: prefill}}})
		}
	} else {
		msgs, extra = converseMessages(req.Messages, prefill)
	}
	var sys []types.SystemContentBlock
	for _, s := range append([]string{system}, extra...) {
		if strings.TrimSpace(s) != "" {
			sys = append(sys, &types.SystemContentBlockMemberText{Value: s})
		}
	}
	in := &bedrockruntime.ConverseStreamInput{ModelId: aws.String(b.ModelID), Messages: msgs, System: sys}
	var ic types.InferenceConfiguration
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = b.MaxTokens
	}
	if maxTokens > 0 {
		ic.MaxTokens = aws.Int32(int32(min(maxTokens, math.MaxInt32)))
	}
	if b.Temperature != nil {
		ic.Temperature = aws.Float32(float32(*b.Temperature))
	}
	if ic.MaxTokens != nil || ic.Temperature != nil {
		in.InferenceConfig = &ic
	}
	if len(tools) > 0 {
		tc := &types.ToolConfiguration{}
		for _, t := range tools {
			var schema any
			if err := json.Unmarshal(t.Schema, &schema); err != nil {
				return nil, fmt.Errorf("tool %s: input schema: %w", t.Name, err)
			}
			spec := types.ToolSpecification{Name: aws.String(t.Name), InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(schema)}}
			if t.Description != "" {
				spec.Description = aws.String(t.Description)
			}
			tc.Tools = append(tc.Tools, &types.ToolMemberToolSpec{Value: spec})
		}
		in.ToolConfig = tc
	}
	return in, nil
}

// converseMessages turns msgs into a Converse conversation (see Stream), with prefill as a
// final assistant message when it is not empty; system messages are returned apart.
func converseMessages(msgs []Message, prefill string) ([]types.Message, []string) {
	type turn struct {
		role  types.ConversationRole
		texts []string
	}
	var turns []turn
	var system []string
	add := func(role types.ConversationRole, text string) {
		if strings.TrimSpace(text) == "" {
			return
		}
		if n := len(turns); n > 0 && turns[n-1].role == role {
			turns[n-1].texts = append(turns[n-1].texts, text)
			return
		}
		turns = append(turns, turn{role: role, texts: []string{text}})
	}
	for _, m := range msgs {
		switch m.Role {
		case RoleSystem:
			system = append(system, m.Content)
		case RoleAssistant:
			add(types.ConversationRoleAssistant, m.Content)
		default:
			add(types.ConversationRoleUser, m.Content)
		}
	}
	if len(turns) > 0 && turns[0].role != types.ConversationRoleUser {
		turns = append([]turn{{role: types.ConversationRoleUser, texts: []string{bedrockThreadStart}}}, turns...)
	}
	if len(turns) == 0 || turns[len(turns)-1].role != types.ConversationRoleUser {
		add(types.ConversationRoleUser, bedrockEmptyPrompt)
	}
	add(types.ConversationRoleAssistant, prefill)
	out := make([]types.Message, len(turns))
	for i, t := range turns {
		blocks := make([]types.ContentBlock, len(t.texts))
		for j, s := range t.texts {
			blocks[j] = &types.ContentBlockMemberText{Value: s}
		}
		out[i] = types.Message{Role: t.role, Content: blocks}
	}
	return out, system
}

// toolBlocks puts together the toolUse blocks of an answer.
type toolBlocks struct {
	open map[int32]*toolBuild
	done []ToolUse
}

type toolBuild struct {
	id, name string
	input    strings.Builder
}

func (t *toolBlocks) start(i int32, id, name string) {
	if t.open == nil {
		t.open = map[int32]*toolBuild{}
	}
	t.open[i] = &toolBuild{id: id, name: name}
}

func (t *toolBlocks) add(i int32, input string) {
	b, ok := t.open[i]
	if !ok {
		t.start(i, "", "")
		b = t.open[i]
	}
	b.input.WriteString(input)
}

// stop ends block i when it is a tool's: its input must be JSON (empty means {}).
func (t *toolBlocks) stop(i int32) error {
	b, ok := t.open[i]
	if !ok {
		return nil
	}
	delete(t.open, i)
	input := strings.TrimSpace(b.input.String())
	if input == "" {
		input = "{}"
	}
	if !json.Valid([]byte(input)) {
		return fmt.Errorf("%w: the input of tool %q (%d bytes) is not JSON", ErrStreamFailed, b.name, len(input))
	}
	t.done = append(t.done, ToolUse{ID: b.id, Name: b.name, Input: json.RawMessage(input)})
	return nil
}

// stopAll ends the blocks left open, in the order of their indexes.
func (t *toolBlocks) stopAll() error {
	for len(t.open) > 0 {
		first := int32(math.MaxInt32)
		for i := range t.open {
			first = min(first, i)
		}
		if err := t.stop(first); err != nil {
			return err
		}
	}
	return nil
}

func index(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func int32Of(p *int32) int {
	if p == nil {
		return 0
	}
	return int(*p)
}

// record logs an answer's usage and timings and emits its metrics.
func (b *Bedrock) record(req Request, res Result, usageReported bool, rs *resumer, latencyMs int64) {
	emitAnswerMetrics(b.Metrics, b.ModelID, res, usageReported)
	if req.Log == nil {
		return
	}
	attrs := []any{"provider", "bedrock", "model", b.ModelID, "finish_reason", res.FinishReason,
		"usage_reported", usageReported, "prompt_tokens", res.Usage.PromptTokens,
		"completion_tokens", res.Usage.CompletionTokens, "total_tokens", res.Usage.TotalTokens,
		"cache_read_tokens", res.Usage.CacheReadTokens, "cache_write_tokens", res.Usage.CacheWriteTokens,
		"first_token_ms", res.FirstToken.Milliseconds(), "duration_ms", res.Duration.Milliseconds(),
		"bedrock_latency_ms", latencyMs, "chars", utf8.RuneCountInString(res.Text), "messages", len(req.Messages),
		"tool_uses", len(res.ToolUses)}
	if req.Partial != "" {
		strategy := "regenerate"
		if b.Prefill {
			strategy = "prefill"
		}
		attrs = append(attrs, "resume", strategy, "partial_chars", rs.partial, "dropped_chars", rs.dropped,
			"first_delta_ms", rs.firstDelta.Milliseconds())
	}
	req.Log.Info("llm answer", attrs...)
}

// countError emits LLMErrors by the reason err names.
func (b *Bedrock) countError(err error) {
	b.Metrics.Count("LLMErrors", 1, metrics.Dim{Name: "Model", Value: b.ModelID}, metrics.Dim{Name: "Reason", Value: errorReason(err)})
}

func (b *Bedrock) firstTokenTimeout() time.Duration {
	if b.FirstTokenTimeout > 0 {
		return b.FirstTokenTimeout
	}
	return DefaultFirstTokenTimeout
}

func (b *Bedrock) idleTimeout() time.Duration {
	if b.IdleTimeout > 0 {
		return b.IdleTimeout
	}
	return DefaultIdleTimeout
}

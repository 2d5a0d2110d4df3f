package fakebedrock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/slackrelay/slackrelay/worker/assistant/llm/fakemodel"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/slackrelay/slackrelay/shared/loopback"
)

// maxRequestBytes bounds a request body.
const maxRequestBytes = 8 << 20

// padding stands for the "p" field Bedrock adds to every event (random letters that hide the
// length of the text); clients ignore it.
const padding = "abcdefghijklmnopqrstuvwxyzABCDEF"

// wireRequest is what the server reads of a ConverseStream request body.
type wireRequest struct {
	Messages []struct {
		Role    string                       `json:"role"`
		Content []map[string]json.RawMessage `json:"content"`
	} `json:"messages"`
	System          []map[string]json.RawMessage `json:"system"`
	InferenceConfig *struct {
		MaxTokens     *int     `json:"maxTokens"`
		Temperature   *float64 `json:"temperature"`
		TopP          *float64 `json:"topP"`
		StopSequences []string `json:"stopSequences"`
	} `json:"inferenceConfig"`
	ToolConfig *struct {
		Tools      []map[string]json.RawMessage `json:"tools"`
		ToolChoice json.RawMessage              `json:"toolChoice"`
	} `json:"toolConfig"`
}

// answer is one planned answer.
type answer struct {
	id       string
	tokens   []string
	tools    []ToolCall
	stop     string
	input    int
	pace     Pace
	fault    *fault
	record   int // index of the recorded request
	cacheR   int
	cacheW   int
	received time.Time
}

func (s *Server) handleConverseStream(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	model := r.PathValue("modelId")
	rec := Request{ModelID: model, Region: signedRegion(r.Header.Get("Authorization")), Status: http.StatusOK}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		rec.Status, rec.Exception = http.StatusForbidden, "UnrecognizedClientException"
		s.record(rec)
		writeException(w, rec.Status, rec.Exception, "The security token included in the request is invalid.")
		return
	}
	var req wireRequest
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req)
	if err == nil {
		err = rec.read(req)
	}
	if err != nil {
		rec.Status, rec.Exception = http.StatusBadRequest, ValidationException
		s.record(rec)
		s.printf("ValidationException for model %s: %v", model, err)
		writeException(w, rec.Status, rec.Exception, err.Error())
		return
	}

	s.mu.Lock()
	allowed := len(s.allowed) == 0 || slices.Contains(s.allowed, model)
	var f *fault
	if allowed {
		f = s.faults.Next()
	}
	pace, script, turns, cacheR, cacheW := s.pace, s.script, s.turns, s.cacheR, s.cacheW
	s.seq++
	id := "fakebedrock-" + strconv.Itoa(s.seq)
	s.mu.Unlock()

	if !allowed {
		rec.Status, rec.Exception = http.StatusForbidden, AccessDeniedException
		s.record(rec)
		s.printf("AccessDeniedException for model %s", model)
		writeException(w, rec.Status, rec.Exception, "You don't have access to the model with the specified model ID.")
		return
	}
	if f != nil {
		rec.Fault = f.kind
		if f.kind == FaultThrottle || f.kind == FaultHTTP {
			rec.Status, rec.Exception = f.status, f.exception
			s.record(rec)
			s.printf("HTTP %d %s (injected) for model %s", f.status, f.exception, model)
			if f.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.FormatInt(loopback.RetryAfterSeconds(f.retryAfter), 10))
			}
			msg := "injected " + f.exception
			if f.kind == FaultThrottle {
				msg = "Too many requests, please wait before trying again."
			}
			writeException(w, f.status, f.exception, msg)
			return
		}
		if f.kind == FaultStreamException {
			rec.Exception = f.exception
		}
	}

	a := &answer{id: id, pace: pace, fault: f, stop: "end_turn", received: received, cacheR: cacheR, cacheW: cacheW}
	turn, scripted := plannedTurn(turns, rec.Messages)
	if scripted {
		script = turn.Text
	}
	a.tokens, rec.Prefill = reply(rec.Messages, pace.AnswerTokens, script)
	if scripted && strings.TrimSpace(turn.Text) == "" {
		a.tokens = nil
	}
	if scripted && len(turn.Tools) > 0 {
		a.tools, a.stop = turn.Tools, "tool_use"
	}
	if rec.MaxTokens != nil && *rec.MaxTokens < len(a.tokens) {
		a.tokens, a.stop = a.tokens[:*rec.MaxTokens], "max_tokens"
	}
	if f != nil && f.kind == FaultToolUse {
		a.tools, a.stop = f.tools, "tool_use"
	}
	a.input = inputTokens(rec.System, rec.Messages)
	a.record = s.record(rec)

	what := fmt.Sprintf("stream of %d tokens", len(a.tokens))
	if rec.Prefill != nil {
		what += fmt.Sprintf(" continuing %d characters", rec.Prefill.Chars)
	}
	if len(a.tools) > 0 {
		what += fmt.Sprintf(" and %d tool uses", len(a.tools))
	}
	if f != nil && f.kind != FaultToolUse {
		what += fmt.Sprintf(", %s after %d chunks (injected)", orString(f.exception, f.kind), f.afterChunks)
	}
	n := len(rec.Messages)
	s.printf("%s after %d message%s (model %s)", what, n, plural(n), model)
	s.stream(w, r.Context(), a)
}

// read fills the record from the request body, checking what Bedrock checks.
func (rec *Request) read(req wireRequest) error {
	for i, blk := range req.System {
		if raw, ok := blk["text"]; ok {
			var t string
			if err := json.Unmarshal(raw, &t); err != nil {
				return fmt.Errorf("system.%d.text is not a string", i)
			}
			rec.System = append(rec.System, t)
		}
	}
	if len(req.Messages) == 0 || req.Messages[0].Role != "user" {
		return errors.New("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
	}
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Errorf("1 validation error detected: Value '%s' at 'messages.%d.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]", m.Role, i+1)
		}
		if i > 0 && req.Messages[i-1].Role == m.Role {
			return errors.New("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.")
		}
		if len(m.Content) == 0 {
			return fmt.Errorf("The content field in the Message object at messages.%d is empty. Add a ContentBlock object to the content field and try again.", i)
		}
		msg := Message{Role: m.Role}
		for j, blk := range m.Content {
			raw, ok := blk["text"]
			if !ok {
				for k, v := range blk {
					msg.Others = append(msg.Others, k)
					if err := msg.readTool(k, v, i, j); err != nil {
						return err
					}
				}
				continue
			}
			var t string
			if err := json.Unmarshal(raw, &t); err != nil {
				return fmt.Errorf("messages.%d.content.%d.text is not a string", i, j)
			}
			if strings.TrimSpace(t) == "" {
				return fmt.Errorf("The text field in the ContentBlock object at messages.%d.content.%d is blank. Add text to the text field, and try again.", i, j)
			}
			msg.Texts = append(msg.Texts, t)
		}
		rec.Messages = append(rec.Messages, msg)
	}
	if err := checkToolBlocks(rec.Messages, req.ToolConfig != nil); err != nil {
		return err
	}
	if last := rec.Messages[len(rec.Messages)-1]; last.Role == "assistant" && len(last.Texts) > 0 {
		if t := last.Texts[len(last.Texts)-1]; strings.TrimRightFunc(t, unicode.IsSpace) != t {
			return errors.New("The model returned the following errors: final assistant content cannot end with trailing whitespace")
		}
	}
	if ic := req.InferenceConfig; ic != nil {
		if ic.MaxTokens != nil && *ic.MaxTokens < 1 {
			return fmt.Errorf("1 validation error detected: Value '%d' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1", *ic.MaxTokens)
		}
		if ic.Temperature != nil && (*ic.Temperature < 0 || *ic.Temperature > 1) {
			return errors.New("1 validation error detected: Value at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value between 0 and 1")
		}
		rec.MaxTokens, rec.Temperature, rec.TopP, rec.StopSequences = ic.MaxTokens, ic.Temperature, ic.TopP, ic.StopSequences
	}
	if tc := req.ToolConfig; tc != nil {
		rec.ToolChoice = tc.ToolChoice
		for i, t := range tc.Tools {
			raw, ok := t["toolSpec"]
			if !ok {
				continue // a cachePoint, a system tool
			}
			var spec struct {
				Name        string `json:"name"`
				Description string `json:"description"`
				InputSchema struct {
					JSON json.RawMessage `json:"json"`
				} `json:"inputSchema"`
			}
			if err := json.Unmarshal(raw, &spec); err != nil || spec.Name == "" {
				return fmt.Errorf("toolConfig.tools.%d.toolSpec needs a name", i)
			}
			rec.Tools = append(rec.Tools, ToolSpec{Name: spec.Name, Description: spec.Description, Schema: spec.InputSchema.JSON})
		}
	}
	return nil
}

// signedRegion is the region of a SigV4 Authorization header's credential scope.
func signedRegion(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) < 5 {
		return ""
	}
	return parts[2]
}

// stream writes the answer as event-stream messages at its pace, applying its fault.
func (s *Server) stream(w http.ResponseWriter, ctx context.Context, a *answer) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Requestid", a.id)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	enc := eventstream.NewEncoder()
	send := func(eventType string, v any) {
		payload, _ := json.Marshal(v)
		var msg eventstream.Message
		msg.Headers.Set(":event-type", eventstream.StringValue(eventType))
		msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		msg.Headers.Set(":message-type", eventstream.StringValue("event"))
		msg.Payload = payload
		_ = enc.Encode(w, msg)
	}
	exception := func(typ string) {
		body := map[string]any{"message": "injected " + typ}
		if typ == ModelStreamErrorException {
			body = map[string]any{"message": "The model encountered an error while streaming.", "originalStatusCode": 500, "originalMessage": "injected"}
		}
		payload, _ := json.Marshal(body)
		var msg eventstream.Message
		msg.Headers.Set(":exception-type", eventstream.StringValue(typ))
		msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
		msg.Payload = payload
		_ = enc.Encode(w, msg)
		_ = rc.Flush()
	}

	start, pace := a.received, fakemodel.NewPacer(ctx)
	started := false
	begin := func() {
		if !started {
			started = true
			send("messageStart", map[string]any{"role": "assistant", "p": padding[:4]})
			s.update(a.record, func(r *Request) { r.FirstChunkAt = time.Now() })
		}
	}
	for i := 0; i <= len(a.tokens); i++ {
		if f := a.fault; f != nil && f.afterChunks == i {
			switch f.kind {
			case FaultStreamException:
				exception(f.exception)
				return
			case FaultCut:
				_ = rc.Flush()
				panic(http.ErrAbortHandler) // closes the connection without ending the response
			case FaultStall:
				_ = rc.Flush()
				if pace.Wait(f.pause) != nil {
					return
				}
				start = start.Add(f.pause)
			}
		}
		if i == len(a.tokens) {
			break
		}
		if pace.Wait(time.Until(start.Add(a.pace.Due(i)))) != nil {
			return
		}
		begin()
		send("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"text": a.tokens[i]}, "p": padding[:1+i%len(padding)]})
		if i+1 == len(a.tokens) || a.pace.Due(i+1) > time.Since(start) {
			_ = rc.Flush() // flush unless the next token is already due
		}
	}
	index := 0
	if len(a.tokens) > 0 {
		send("contentBlockStop", map[string]any{"contentBlockIndex": 0, "p": padding[:3]})
		index++
	}
	if len(a.tools) > 0 && pace.Wait(time.Until(start.Add(a.pace.Due(len(a.tokens))))) != nil {
		return
	}
	toolTokens := 0
	for j, call := range a.tools {
		begin()
		id := call.ID
		if id == "" {
			id = fmt.Sprintf("tooluse_%s_%d", a.id, j)
		}
		send("contentBlockStart", map[string]any{"contentBlockIndex": index, "start": map[string]any{"toolUse": map[string]any{"toolUseId": id, "name": call.Name}}, "p": padding[:5]})
		input := string(call.Input)
		if strings.TrimSpace(input) == "" {
			input = "{}"
		}
		for k := 0; k < len(input); k += 8 {
			send("contentBlockDelta", map[string]any{"contentBlockIndex": index, "delta": map[string]any{"toolUse": map[string]any{"input": input[k:min(k+8, len(input))]}}, "p": padding[:2]})
			toolTokens++
		}
		send("contentBlockStop", map[string]any{"contentBlockIndex": index, "p": padding[:3]})
		index++
	}
	send("messageStop", map[string]any{"stopReason": a.stop, "p": padding[:6]})
	output := len(a.tokens) + toolTokens
	usage := map[string]any{"inputTokens": a.input, "outputTokens": output, "totalTokens": a.input + output + a.cacheR + a.cacheW}
	if a.cacheR > 0 {
		usage["cacheReadInputTokens"] = a.cacheR
	}
	if a.cacheW > 0 {
		usage["cacheWriteInputTokens"] = a.cacheW
	}
	send("metadata", map[string]any{"usage": usage, "metrics": map[string]any{"latencyMs": time.Since(a.received).Milliseconds()}, "p": padding[:7]})
	_ = rc.Flush()
}

// writeException writes an HTTP error as Bedrock does: the type in X-Amzn-ErrorType, the
// message in a JSON body.
func writeException(w http.ResponseWriter, status int, typ, message string) {
	w.Header().Set("X-Amzn-ErrorType", typ+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": message})
}

func orString(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

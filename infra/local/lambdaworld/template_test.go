package lambdaworld

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func realTemplate(t *testing.T) *Template {
	t.Helper()
	tmpl, err := LoadTemplate(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

var localRefs = map[string]string{"EventsQueue": "http://sqs/q", "DeadLetterQueue": "http://sqs/dlq", "IdempotencyTable": "t"}

// What infra/template.yaml gives each function, as written there: Ref of resources and of
// parameters (a Number one, MaxReceiveCount, as a string), !If on a condition, !Sub of the
// stack name, Timeout from a parameter.
func TestFunctionsOfTheRealTemplate(t *testing.T) {
	t.Parallel()
	tmpl := realTemplate(t)
	r, err := tmpl.Function(ReceiverFunction, Values{Refs: localRefs})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "slackrelay-receiver" || r.Timeout != 2*time.Second || r.MemoryMB != 256 ||
		r.Env["EVENTS_QUEUE_URL"] != "http://sqs/q" || r.Env["SIGNING_SECRET_PARAM"] != "/slackrelay/prod/signing-secret" ||
		r.Env["MAX_BODY_BYTES"] != "780288" || r.Env["SECRETS_MAX_AGE"] != "5m" || len(r.Env) != 12 {
		t.Fatalf("receiver %+v", r)
	}
	// One workspace (the default): the install pages' settings are all empty, so they are off.
	for _, k := range []string{"INSTALLATIONS_TABLE", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET_PARAM", "OAUTH_SCOPES", "OAUTH_REDIRECT_URL", "SLACK_OAUTH_AUTHORIZE_URL", "SLACK_API_URL"} {
		if v, ok := r.Env[k]; !ok || v != "" {
			t.Errorf("receiver %s = %q (set %t), want set and empty with one workspace", k, v, ok)
		}
	}
	w, err := tmpl.Function(WorkerFunction, Values{Refs: localRefs})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"DLQ_URL": "http://sqs/dlq", "IDEMPOTENCY_TABLE": "t", "MAX_RECEIVE_COUNT": "5", "LLM_API_KEY_PARAM": "",
		"LLM_MODEL": "gpt-4o-mini", "SLACK_API_URL": "", "STREAMING": "on", "DEMO_DELAY": "2s",
	} {
		if got, ok := w.Env[k]; !ok || got != v {
			t.Errorf("worker %s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if w.Name != "slackrelay-worker" || w.Timeout != 120*time.Second || w.MemoryMB != 256 {
		t.Errorf("worker %s, %s, %d MB; want slackrelay-worker, the WorkerTimeoutSeconds default 120s, 256 MB", w.Name, w.Timeout, w.MemoryMB)
	}
}

// Workspaces many gives the receiver the install pages' table, client id and secret
// parameter, and the worker no bot token.
func TestManyWorkspaces(t *testing.T) {
	t.Parallel()
	tmpl := realTemplate(t)
	refs := map[string]string{"InstallationsTable": "installations"}
	for k, v := range localRefs {
		refs[k] = v
	}
	vals := Values{Refs: refs, Params: map[string]string{"Workspaces": "many", "SlackClientId": "1.2"}}
	r, err := tmpl.Function(ReceiverFunction, vals)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"INSTALLATIONS_TABLE": "installations", "SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET_PARAM": "/slackrelay/prod/client-secret", "OAUTH_SCOPES": ""} {
		if got := r.Env[k]; got != v {
			t.Errorf("receiver %s = %q, want %q", k, got, v)
		}
	}
	w, err := tmpl.Function(WorkerFunction, vals)
	if err != nil {
		t.Fatal(err)
	}
	if w.Env["INSTALLATIONS_TABLE"] != "installations" || w.Env["BOT_TOKEN_PARAM"] != "" {
		t.Errorf("worker INSTALLATIONS_TABLE %q, BOT_TOKEN_PARAM %q; want the table and no bot token", w.Env["INSTALLATIONS_TABLE"], w.Env["BOT_TOKEN_PARAM"])
	}
}

// Parameters replace defaults, and conditions follow them.
func TestParams(t *testing.T) {
	t.Parallel()
	tmpl := realTemplate(t)
	w, err := tmpl.Function(WorkerFunction, Values{Refs: localRefs, Params: map[string]string{
		"WorkerTimeoutSeconds": "60", "LlmBaseUrl": "http://llm/v1", "MaxReceiveCount": "7", "BotTokenParam": "/x/bot",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if w.Timeout != time.Minute || w.Env["LLM_BASE_URL"] != "http://llm/v1" || w.Env["LLM_API_KEY_PARAM"] != "/slackrelay/prod/llm-api-key" ||
		w.Env["MAX_RECEIVE_COUNT"] != "7" || w.Env["BOT_TOKEN_PARAM"] != "/x/bot" {
		t.Fatalf("worker %+v", w)
	}
	if _, err := tmpl.Function(WorkerFunction, Values{Refs: localRefs, Params: map[string]string{"WorkerTimeoutSeconds": "61"}}); err == nil ||
		!strings.Contains(err.Error(), "AllowedValues") {
		t.Fatalf("a timeout outside AllowedValues: %v; want an error", err)
	}
	if _, err := tmpl.Function(WorkerFunction, Values{Refs: localRefs, Params: map[string]string{"NoSuchParam": "1"}}); err == nil {
		t.Fatal("an unknown parameter: no error")
	}
}

// What the local stack has no value for is an error that says where, never a guess.
func TestUnresolvedIsAnError(t *testing.T) {
	t.Parallel()
	tmpl := realTemplate(t)
	_, err := tmpl.Function(WorkerFunction, Values{Refs: map[string]string{"EventsQueue": "q", "DeadLetterQueue": "d"}})
	if err == nil || !strings.Contains(err.Error(), "IDEMPOTENCY_TABLE") || !strings.Contains(err.Error(), "Ref IdempotencyTable") {
		t.Fatalf("err = %v; want one naming IDEMPOTENCY_TABLE and Ref IdempotencyTable", err)
	}
	for _, id := range []string{"NoSuchFunction", "EventsQueue"} {
		if _, err := tmpl.Function(id, Values{Refs: localRefs}); err == nil {
			t.Errorf("Function(%s): no error", id)
		}
	}
}

const small = `
Parameters:
  Name: {Type: String, Default: fn}
  NoDefault: {Type: String}
  Mem: {Type: Number, Default: 512}
  On: {Type: String, Default: "yes"}
Conditions:
  IsOn: !Equals [!Ref On, "yes"]
  IsOff: !Not [!Equals [!Ref On, "yes"]]
  Nested: !Not [!Condition IsOn]
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Topic:
    Type: AWS::SNS::Topic
    Condition: IsOff
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: !Sub "${AWS::StackName}-${Name}"
      MemorySize: !Ref Mem
      Environment:
        Variables:
          ARN: !GetAtt Queue.Arn
          SUB: !Sub ["${Q}/${!Literal}/${AWS::Region}", {Q: !Ref Queue}]
          GONE: !If [IsOn, !Ref AWS::NoValue, "here"]
          KEPT: !If [IsOff, "no", "yes"]
          NUM: 42
          BOOL: true
  UsesNested:
    Type: AWS::Lambda::Function
    Properties:
      Environment:
        Variables:
          X: !If [Nested, "a", "b"]
  Off:
    Type: AWS::Lambda::Function
    Condition: IsOff
    Properties:
      Environment:
        Variables:
          X: !Ref NoDefault
`

func TestIntrinsics(t *testing.T) {
	t.Parallel()
	tmpl, err := ParseTemplate([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	f, err := tmpl.Function("Fn", Values{Refs: map[string]string{"Queue": "http://q"}, Attrs: map[string]string{"Queue.Arn": "arn:q"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ARN": "arn:q", "SUB": "http://q/${Literal}/us-east-1", "KEPT": "yes", "NUM": "42", "BOOL": "true"}
	if len(f.Env) != len(want) {
		t.Errorf("env %v, want %v", f.Env, want)
	}
	for k, v := range want {
		if f.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, f.Env[k], v)
		}
	}
	if f.Name != "slackrelay-fn" || f.MemoryMB != 512 || f.Timeout != 3*time.Second {
		t.Errorf("%+v; want the name from !Sub, 512 MB from a Number parameter, Lambda's default 3 s", f)
	}
	if _, err := tmpl.Function("Fn", Values{Refs: map[string]string{"Queue": "http://q"}}); err == nil || !strings.Contains(err.Error(), "GetAtt Queue.Arn") {
		t.Errorf("without the queue's ARN: %v; want an error naming GetAtt Queue.Arn", err)
	}
	if _, err := tmpl.Function("Off", Values{}); err == nil || !strings.Contains(err.Error(), "IsOff") {
		t.Errorf("a function whose condition is false: %v; want an error naming it", err)
	}
	// goformation evaluates no condition that names another (Condition): an error, not a guess.
	if _, err := tmpl.Function("UsesNested", Values{}); err == nil || !strings.Contains(err.Error(), "condition Nested") {
		t.Errorf("!If on a condition naming another: %v; want an error naming it", err)
	}
}

// goformation applies no SAM transform or Globals: such a template is refused.
func TestSAMIsRefused(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		"Transform: AWS::Serverless-2016-10-31\nResources: {}\n",
		"Globals:\n  Function: {Timeout: 5}\nResources: {}\n",
	} {
		if _, err := ParseTemplate([]byte(doc)); err == nil {
			t.Errorf("ParseTemplate(%q): no error", doc)
		}
	}
}

// A function property goformation's schema lacks is an error naming it, not dropped.
func TestUnknownPropertyIsAnError(t *testing.T) {
	t.Parallel()
	tmpl, err := ParseTemplate([]byte("Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      Timeout: 5\n      NewSetting: on\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.Function("Fn", Values{}); err == nil || !strings.Contains(err.Error(), "NewSetting") {
		t.Fatalf("err = %v; want one naming NewSetting", err)
	}
}

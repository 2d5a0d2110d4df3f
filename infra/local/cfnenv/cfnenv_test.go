package cfnenv

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The project's own template resolves, with the local stack's values where it names
// resources.
func TestProjectTemplate(t *testing.T) {
	t.Parallel()
	tmpl, err := Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := Stack{Refs: map[string]string{"EventsQueue": "http://q/events", "DeadLetterQueue": "http://q/dlq", "IdempotencyTable": "progress"}}
	rcv, err := tmpl.Function("ReceiverFunction", s)
	if err != nil {
		t.Fatal(err)
	}
	if rcv.Timeout != 2*time.Second || rcv.Env["EVENTS_QUEUE_URL"] != "http://q/events" || rcv.Env["SIGNING_SECRET_PARAM"] != "/slackrelay/prod/signing-secret" {
		t.Fatalf("receiver = %+v", rcv)
	}
	wrk, err := tmpl.Function("WorkerFunction", s)
	if err != nil {
		t.Fatal(err)
	}
	if wrk.Timeout != 120*time.Second || wrk.Env["DLQ_URL"] != "http://q/dlq" || wrk.Env["MAX_RECEIVE_COUNT"] != "5" || wrk.Env["LLM_API_KEY_PARAM"] != "" {
		t.Fatalf("worker = %+v", wrk)
	}
	// With an LLM configured, the condition HasLlm turns the key's parameter on.
	s.Params = map[string]string{"LlmBaseUrl": "https://llm.example/v1", "WorkerTimeoutSeconds": "60"}
	wrk, err = tmpl.Function("WorkerFunction", s)
	if err != nil {
		t.Fatal(err)
	}
	if wrk.Env["LLM_API_KEY_PARAM"] != "/slackrelay/prod/llm-api-key" || wrk.Env["LLM_BASE_URL"] != "https://llm.example/v1" || wrk.Timeout != time.Minute {
		t.Fatalf("worker with an LLM = %+v", wrk)
	}
	// Without a local value for a resource it names, it fails and says which.
	if _, err := tmpl.Function("WorkerFunction", Stack{}); err == nil || !strings.Contains(err.Error(), "EventsQueue") {
		t.Fatalf("without local values: %v; want an error naming EventsQueue", err)
	}
}

const head = `
Parameters:
  Name: {Type: String, Default: app}
  Empty: {Type: String, Default: ""}
  NoDefault: {Type: String}
Conditions:
  HasName: !Not [!Equals [!Ref Name, ""]]
  HasEmpty: !Not [!Equals [!Ref Empty, ""]]
  Both: !And [!Condition HasName, !Condition HasEmpty]
  Either: {"Fn::Or": [{"Condition": HasName}, {"Condition": HasEmpty}]}
  Loop: !Not [!Condition Loop]
Resources:
  Queue: {Type: AWS::SQS::Queue}
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Timeout: 7
      Environment:
        Variables:
`

func TestResolve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value, want string
		absent            bool
	}{
		{"plain", `plain`, "plain", false},
		{"number", `42`, "42", false},
		{"quoted empty", `""`, "", false},
		{"parameter default", `!Ref Name`, "app", false},
		{"long-form Ref", `{Ref: Name}`, "app", false},
		{"resource", `!Ref Queue`, "http://q", false},
		{"pseudo", `!Ref AWS::Region`, "eu-west-1", false},
		{"no value", `!Ref AWS::NoValue`, "", true},
		{"GetAtt short", `!GetAtt Queue.Arn`, "arn:q", false},
		{"GetAtt list", `!GetAtt [Queue, Arn]`, "arn:q", false},
		{"Sub", `!Sub "${AWS::StackName}-${Name}-${Queue.Arn}-${!Literal}"`, "local-app-arn:q-${Literal}", false},
		{"Sub with variables", `!Sub ["${X}/${Name}", {X: !Ref Queue}]`, "http://q/app", false},
		{"long-form Sub", `{"Fn::Sub": "${Name}"}`, "app", false},
		{"If true", `!If [HasName, yes, no]`, "yes", false},
		{"If false", `!If [HasEmpty, yes, no]`, "no", false},
		{"If And", `!If [Both, yes, no]`, "no", false},
		{"If Or, long form", `{"Fn::If": [Either, yes, no]}`, "yes", false},
		{"If to NoValue", `!If [HasEmpty, x, !Ref AWS::NoValue]`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl, err := Parse([]byte(head + "          V: " + tc.value + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			f, err := tmpl.Function("Fn", Stack{Name: "local", Region: "eu-west-1", Refs: map[string]string{"Queue": "http://q"}, Attrs: map[string]string{"Queue.Arn": "arn:q"}})
			if err != nil {
				t.Fatalf("Function: %v", err)
			}
			got, present := f.Env["V"]
			if present == tc.absent || got != tc.want {
				t.Fatalf("V = %q (present %v), want %q (present %v)", got, present, tc.want, !tc.absent)
			}
			if f.Timeout != 7*time.Second || f.MemoryMB != 128 {
				t.Fatalf("timeout %s memory %d, want 7s and the default 128", f.Timeout, f.MemoryMB)
			}
		})
	}
}

// Anything not resolvable locally is an error that says what and where.
func TestUnresolvableFailsLoudly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value, want string }{
		{"unknown intrinsic", `!Join ["-", [a, b]]`, "Join is not resolved locally"},
		{"parameter without default", `!Ref NoDefault`, "parameter NoDefault has no default"},
		{"unknown name", `!Ref Nope`, "no such parameter, resource or pseudo parameter"},
		{"resource without a local value", `!Ref Fn`, "resource Fn has no local value"},
		{"GetAtt without a local value", `!GetAtt Fn.Arn`, "!GetAtt Fn.Arn has no local value"},
		{"Sub of an unknown name", `!Sub "${Nope}"`, "Sub ${Nope}"},
		{"unknown condition", `!If [Nope, a, b]`, "no condition Nope"},
		{"condition loop", `!If [Loop, a, b]`, "refers to itself"},
		{"list as a value", `[a, b]`, "a list or mapping where a value is expected"},
		{"ImportValue", `{"Fn::ImportValue": shared-queue}`, "ImportValue is not resolved locally"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl, err := Parse([]byte(head + "          V: " + tc.value + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tmpl.Function("Fn", Stack{Refs: map[string]string{"Queue": "q"}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "environment variable V") {
				t.Fatalf("Function = %v; want an error about V containing %q", err, tc.want)
			}
		})
	}
}

func TestFunctionErrors(t *testing.T) {
	t.Parallel()
	tmpl, err := Parse([]byte(head + "          V: x\n  Off:\n    Type: AWS::Lambda::Function\n    Condition: HasEmpty\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ id, want string }{
		{"Nope", "no resource Nope"},
		{"Queue", "not an AWS::Lambda::Function"},
		{"Off", "its condition HasEmpty is false"},
	} {
		if _, err := tmpl.Function(tc.id, Stack{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Function(%s) = %v, want %q", tc.id, err, tc.want)
		}
	}
	if _, err := Parse([]byte("- a list\n")); err == nil {
		t.Error("Parse of a list: no error")
	}
}

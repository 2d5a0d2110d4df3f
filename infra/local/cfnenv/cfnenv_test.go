package cfnenv

import (
	"path/filepath"
	"strconv"
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

// The events queue's settings resolve too, its visibility timeout from the template's
// mapping: 6 x the worker's timeout for each value WorkerTimeoutSeconds allows; a value it
// does not allow is an error, as CloudFormation would refuse it.
func TestProjectTemplateQueue(t *testing.T) {
	t.Parallel()
	tmpl, err := Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := Stack{Refs: map[string]string{"EventsQueue": "http://q/events", "DeadLetterQueue": "http://q/dlq", "IdempotencyTable": "progress"}}
	for path, want := range map[string]string{"MaximumMessageSize": "1048576", "MessageRetentionPeriod": "345600", "RedrivePolicy.maxReceiveCount": "5", "VisibilityTimeout": "720"} {
		if got, present, err := tmpl.Property("EventsQueue", path, s); err != nil || !present || got != want {
			t.Errorf("EventsQueue %s = %q, %v, %v; want %q", path, got, present, err, want)
		}
	}
	allowed := get(tmpl.params["WorkerTimeoutSeconds"], "AllowedValues")
	if allowed == nil || len(allowed.Content) == 0 {
		t.Fatal("WorkerTimeoutSeconds has no AllowedValues")
	}
	for _, a := range allowed.Content {
		s.Params = map[string]string{"WorkerTimeoutSeconds": a.Value}
		wrk, err := tmpl.Function("WorkerFunction", s)
		if err != nil {
			t.Fatal(err)
		}
		vis, _, err := tmpl.Property("EventsQueue", "VisibilityTimeout", s)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(a.Value)
		if err != nil {
			t.Fatal(err)
		}
		if wrk.Timeout != time.Duration(n)*time.Second || vis != strconv.Itoa(6*n) {
			t.Errorf("WorkerTimeoutSeconds=%d: worker timeout %s, queue visibility %s s; want %ds and %d s", n, wrk.Timeout, vis, n, 6*n)
		}
	}
	s.Params = map[string]string{"WorkerTimeoutSeconds": "45"}
	for _, resolve := range []func() error{
		func() error { _, err := tmpl.Function("WorkerFunction", s); return err },
		func() error { _, _, err := tmpl.Property("EventsQueue", "VisibilityTimeout", s); return err },
	} {
		if err := resolve(); err == nil || !strings.Contains(err.Error(), `WorkerTimeoutSeconds = "45" is not one of its AllowedValues [30, 60, 120, 300, 600, 900]`) {
			t.Errorf("WorkerTimeoutSeconds=45: %v; want an error naming its AllowedValues", err)
		}
	}
}

const head = `
Parameters:
  Name: {Type: String, Default: app}
  Empty: {Type: String, Default: ""}
  NoDefault: {Type: String}
  Size: {Type: String, Default: small, AllowedValues: [small, big]}
Mappings:
  Sizes:
    small: {Seconds: 30, Names: [a, b]}
    "120": {Seconds: 720}
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
		{"FindInMap by a parameter", `!FindInMap [Sizes, !Ref Size, Seconds]`, "30", false},
		{"long-form FindInMap, numeric key", `{"Fn::FindInMap": [Sizes, 120, Seconds]}`, "720", false},
		{"FindInMap in If", `!If [HasName, !FindInMap [Sizes, small, Seconds], no]`, "30", false},
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
		{"FindInMap without the map", `!FindInMap [Nope, small, Seconds]`, "no mapping Mappings.Nope"},
		{"FindInMap without the key", `!FindInMap [Sizes, !Ref Name, Seconds]`, `Mappings.Sizes has no key "app"`},
		{"FindInMap without the second key", `!FindInMap [Sizes, "120", Names]`, `Mappings.Sizes.120 has no key "Names"`},
		{"FindInMap of a list", `!FindInMap [Sizes, small, Names]`, "Mappings.Sizes.small.Names is a list or mapping"},
		{"FindInMap with two arguments", `!FindInMap [Sizes, small]`, "FindInMap takes [map, key, key]"},
		{"FindInMap by NoValue", `!FindInMap [Sizes, !Ref AWS::NoValue, Seconds]`, "AWS::NoValue as a FindInMap key"},
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

// A parameter's value must be one of its AllowedValues, whether given or its default.
func TestAllowedValues(t *testing.T) {
	t.Parallel()
	tmpl, err := Parse([]byte(head + "          V: !Ref Size\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ given, want, wantErr string }{
		{"", "small", ""},
		{"big", "big", ""},
		{"huge", "", `parameter Size = "huge" is not one of its AllowedValues [small, big]`},
	} {
		s := Stack{}
		if tc.given != "" {
			s.Params = map[string]string{"Size": tc.given}
		}
		f, err := tmpl.Function("Fn", s)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("Size=%q: %v; want an error containing %q", tc.given, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || f.Env["V"] != tc.want):
			t.Errorf("Size=%q: V = %q, %v; want %q", tc.given, f.Env["V"], err, tc.want)
		}
	}
	bad, err := Parse([]byte(strings.Replace(head, "Default: small", "Default: medium", 1) + "          V: !Ref Size\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Function("Fn", Stack{}); err == nil || !strings.Contains(err.Error(), `Size = "medium" is not one of its AllowedValues`) {
		t.Errorf("a default outside AllowedValues: %v", err)
	}
}

// Property resolves a property of any resource, nested keys included.
func TestProperty(t *testing.T) {
	t.Parallel()
	tmpl, err := Parse([]byte(head + "          V: x\n" + `  Q:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: !FindInMap [Sizes, !Ref Size, Seconds]
      QueueName: !Sub "${AWS::StackName}-q"
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Queue.Arn, maxReceiveCount: 5}
      DelaySeconds: !If [HasEmpty, 5, !Ref AWS::NoValue]
  Off:
    Type: AWS::SQS::Queue
    Condition: HasEmpty
`))
	if err != nil {
		t.Fatal(err)
	}
	s := Stack{Name: "local", Attrs: map[string]string{"Queue.Arn": "arn:q"}}
	for _, tc := range []struct {
		path, want string
		present    bool
	}{
		{"VisibilityTimeout", "30", true},
		{"QueueName", "local-q", true},
		{"RedrivePolicy.deadLetterTargetArn", "arn:q", true},
		{"RedrivePolicy.maxReceiveCount", "5", true},
		{"DelaySeconds", "", false},
		{"MaximumMessageSize", "", false},
		{"RedrivePolicy.nope", "", false},
	} {
		got, present, err := tmpl.Property("Q", tc.path, s)
		if err != nil || got != tc.want || present != tc.present {
			t.Errorf("Q %s = %q, %v, %v; want %q, %v", tc.path, got, present, err, tc.want, tc.present)
		}
	}
	for _, tc := range []struct{ id, path, want string }{
		{"Nope", "X", "no resource Nope"},
		{"Off", "X", "its condition HasEmpty is false"},
		{"Q", "RedrivePolicy", "Q.Properties.RedrivePolicy: line"},
	} {
		if _, _, err := tmpl.Property(tc.id, tc.path, s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Property(%s, %s) = %v, want %q", tc.id, tc.path, err, tc.want)
		}
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

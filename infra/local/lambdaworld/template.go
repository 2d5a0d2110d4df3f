package lambdaworld

// Why this file is hand-written around goformation rather than goformation alone: goformation
// (github.com/awslabs/goformation/v7) parses the template, its short tags and most intrinsic
// functions, and gives the typed lambda.Function, but on its own it would give the functions a
// wrong environment without saying so. Its Ref resolves only parameters and fixed pseudo
// parameters ("goformation-stack"), returning nil for a resource (the events queue's URL) or a
// parameter without a default; its GetAtt always returns nil; its Sub drops what it cannot
// resolve; its Fn::If only sees conditions once EvaluateConditions is set, and that option
// replaces every resource that has a Condition by a bool (AlarmEmailSubscription here), so
// the template no longer parses; and a Number parameter's value in an environment variable
// (MAX_RECEIVE_COUNT) does not unmarshal into goformation's map[string]string. So the
// handlers below give Ref, GetAtt and Sub the local stack's values (and an error, never a
// guess, for what has none), Fn::If the conditions goformation evaluated in a first pass,
// and the function's scalar properties the types CloudFormation would convert them to.
// goformation applies no SAM Globals: a template with a Transform or Globals is refused
// rather than read without them (infra/template.yaml is plain CloudFormation). Nor does it
// evaluate a condition that names another (Condition inside Conditions): an Fn::If on one is
// an error here. Its schema may lag new Lambda properties: the function is unmarshalled into
// goformation's lambda.Function, which rejects a property it does not know (an error naming
// it; then update goformation), so nothing the template says is silently dropped.

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/awslabs/goformation/v7/cloudformation/lambda"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// Template is a CloudFormation template, its short tags expanded (goformation), ready to be
// resolved against a local stack.
type Template struct {
	doc []byte // JSON, intrinsics unresolved
}

// goformation's YAML reader registers its tag handlers in a package map at every call.
var yamlMu sync.Mutex

// LoadTemplate reads the template at path.
func LoadTemplate(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := ParseTemplate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseTemplate parses a template (YAML or JSON).
func ParseTemplate(data []byte) (*Template, error) {
	yamlMu.Lock()
	doc, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	yamlMu.Unlock()
	if err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("not a template: %w", err)
	}
	if _, ok := top["Transform"]; ok {
		return nil, fmt.Errorf("the template has a Transform (SAM?): goformation applies no Globals or transforms, so its functions' configuration would be read wrong")
	}
	if _, ok := top["Globals"]; ok {
		return nil, fmt.Errorf("the template has Globals: goformation does not apply them")
	}
	return &Template{doc: doc}, nil
}

// Stack is what the template's references resolve to here.
type Values struct {
	// Params replace parameters' defaults, by name.
	Params map[string]string
	// Refs are the values of Ref of resources (a queue's URL, a table's name); Attrs those of
	// GetAtt, by "LogicalId.Attribute".
	Refs, Attrs map[string]string
}

// The pseudo parameters' local values.
var pseudo = map[string]string{
	"AWS::StackName": "slackrelay", "AWS::Region": "us-east-1", "AWS::AccountId": "000000000000",
	"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
	"AWS::StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/slackrelay/local",
}

// FunctionConfig is what the template gives an AWS::Lambda::Function.
type FunctionConfig struct {
	// Name is FunctionName ("" when the template leaves it to CloudFormation).
	Name string
	// Env is Environment.Variables; a variable whose value is AWS::NoValue is left out.
	Env map[string]string
	// Timeout is Timeout (Lambda's default, 3 s, when absent); MemoryMB is MemorySize
	// (default 128).
	Timeout  time.Duration
	MemoryMB int
}

// unresolved marks a value the local stack has none for; it must not reach what is read.
const unresolved = "\x00unresolved "

// Function resolves the AWS::Lambda::Function logicalID against s.
func (t *Template) Function(logicalID string, s Values) (FunctionConfig, error) {
	var raw map[string]any
	if err := json.Unmarshal(t.doc, &raw); err != nil {
		return FunctionConfig{}, err
	}
	params, _ := raw["Parameters"].(map[string]any)
	for name, v := range s.Params {
		p, ok := params[name].(map[string]any)
		if !ok {
			return FunctionConfig{}, fmt.Errorf("no parameter %s", name)
		}
		if allowed, ok := p["AllowedValues"].([]any); ok && !slices.Contains(scalars(allowed), v) {
			return FunctionConfig{}, fmt.Errorf("parameter %s = %q is not one of its AllowedValues %v", name, v, allowed)
		}
	}
	r := resolver{s: s, params: params}
	handlers := map[string]intrinsics.IntrinsicHandler{"Ref": r.ref, "Fn::GetAtt": r.getAtt, "Fn::Sub": r.sub}

	// Pass 1: goformation evaluates the Conditions section like any other.
	out, err := intrinsics.ProcessJSON(t.doc, &intrinsics.ProcessorOptions{IntrinsicHandlerOverrides: handlers})
	if err != nil {
		return FunctionConfig{}, err
	}
	var first struct{ Conditions map[string]any }
	if err := json.Unmarshal(out, &first); err != nil {
		return FunctionConfig{}, err
	}
	r.conditions = first.Conditions

	// Pass 2: with Fn::If reading those conditions.
	handlers["Fn::If"] = r.fnIf
	if out, err = intrinsics.ProcessJSON(t.doc, &intrinsics.ProcessorOptions{IntrinsicHandlerOverrides: handlers}); err != nil {
		return FunctionConfig{}, err
	}
	var second struct{ Resources map[string]map[string]any }
	if err := json.Unmarshal(out, &second); err != nil {
		return FunctionConfig{}, err
	}
	res, ok := second.Resources[logicalID]
	if !ok {
		return FunctionConfig{}, fmt.Errorf("no resource %s", logicalID)
	}
	if typ := res["Type"]; typ != "AWS::Lambda::Function" {
		return FunctionConfig{}, fmt.Errorf("%s is a %v, not an AWS::Lambda::Function", logicalID, typ)
	}
	if c, ok := res["Condition"].(string); ok {
		if on, known := r.conditions[c].(bool); !known || !on {
			return FunctionConfig{}, fmt.Errorf("%s is not created here: its condition %s is %v", logicalID, c, r.conditions[c])
		}
	}
	if props, ok := res["Properties"].(map[string]any); ok {
		coerce(props)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return FunctionConfig{}, err
	}
	var fn lambda.Function
	if err := json.Unmarshal(b, &fn); err != nil {
		return FunctionConfig{}, fmt.Errorf("%s: %w", logicalID, err)
	}
	cfg := FunctionConfig{Env: map[string]string{}, Timeout: 3 * time.Second, MemoryMB: 128}
	if fn.FunctionName != nil {
		if cfg.Name = *fn.FunctionName; strings.Contains(cfg.Name, unresolved) {
			return FunctionConfig{}, fmt.Errorf("%s.FunctionName: %s", logicalID, why(cfg.Name))
		}
	}
	if fn.Environment != nil {
		for k, v := range fn.Environment.Variables {
			if strings.Contains(v, unresolved) {
				return FunctionConfig{}, fmt.Errorf("%s environment variable %s: %s", logicalID, k, why(v))
			}
			cfg.Env[k] = v
		}
	}
	if fn.Timeout != nil {
		cfg.Timeout = time.Duration(*fn.Timeout) * time.Second
	}
	if fn.MemorySize != nil {
		cfg.MemoryMB = *fn.MemorySize
	}
	if cfg.Timeout <= 0 || cfg.MemoryMB <= 0 {
		return FunctionConfig{}, fmt.Errorf("%s: timeout %s and memory %d MB; want both positive", logicalID, cfg.Timeout, cfg.MemoryMB)
	}
	return cfg, nil
}

func why(v string) string {
	_, after, _ := strings.Cut(v, unresolved)
	return strings.TrimRight(after, "\x00") + " has no value here"
}

type resolver struct {
	s          Values
	params     map[string]any
	conditions map[string]any
}

func mark(what string) string { return unresolved + what + "\x00" }

// ref gives parameters their value (as CloudFormation does, a string even for a Number),
// pseudo parameters and resources their local values.
func (r *resolver) ref(_ string, input, _ any) any {
	name, ok := input.(string)
	if !ok {
		return mark(fmt.Sprintf("Ref %v", input))
	}
	if name == "AWS::NoValue" {
		return nil
	}
	if v, ok := pseudo[name]; ok {
		return v
	}
	if p, ok := r.params[name].(map[string]any); ok {
		if v, ok := r.s.Params[name]; ok {
			return v
		}
		if d, ok := p["Default"]; ok {
			return scalar(d)
		}
		return mark("Ref " + name + " (a parameter without a default)")
	}
	if v, ok := r.s.Refs[name]; ok {
		return v
	}
	return mark("Ref " + name)
}

func (r *resolver) getAtt(_ string, input, _ any) any {
	var key string
	switch v := input.(type) {
	case string:
		key = v
	case []any:
		key = strings.Join(scalars(v), ".")
	}
	if v, ok := r.s.Attrs[key]; ok {
		return v
	}
	return mark("GetAtt " + key)
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// sub substitutes ${Name} (Ref), ${Resource.Attribute} (GetAtt) and, in the list form, the
// given variables; ${!Literal} stays "${Literal}".
func (r *resolver) sub(_ string, input, _ any) any {
	var src string
	vars := map[string]any{}
	switch v := input.(type) {
	case string:
		src = v
	case []any:
		if len(v) != 2 {
			return mark("Fn::Sub with " + strconv.Itoa(len(v)) + " arguments")
		}
		src, _ = v[0].(string)
		vars, _ = v[1].(map[string]any)
	}
	return subVar.ReplaceAllStringFunc(src, func(m string) string {
		name := m[2 : len(m)-1]
		switch {
		case strings.HasPrefix(name, "!"):
			return "${" + name[1:] + "}"
		case vars[name] != nil:
			return scalar(vars[name])
		case strings.Contains(name, "."):
			return scalar(r.getAtt("", name, nil))
		default:
			return scalar(r.ref("", name, nil))
		}
	})
}

func (r *resolver) fnIf(_ string, input, _ any) any {
	arr, ok := input.([]any)
	if !ok || len(arr) != 3 {
		return mark(fmt.Sprintf("Fn::If %v", input))
	}
	name, _ := arr[0].(string)
	on, ok := r.conditions[name].(bool)
	if !ok {
		return mark("the condition " + name)
	}
	if on {
		return arr[1]
	}
	return arr[2]
}

// intProps are lambda.Function's numeric properties, by name.
var intProps = func() map[string]bool {
	m := map[string]bool{}
	t := reflect.TypeFor[lambda.Function]()
	for i := range t.NumField() {
		f := t.Field(i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Int || ft.Kind() == reflect.Float64 {
			m[strings.Split(f.Tag.Get("json"), ",")[0]] = true
		}
	}
	return m
}()

// coerce converts a function's properties as CloudFormation does: a number given as a string
// (a Ref of a Number parameter) where an integer is expected, a scalar where an environment
// variable's string is.
func coerce(props map[string]any) {
	for k, v := range props {
		if s, ok := v.(string); ok && intProps[k] {
			if _, err := strconv.ParseFloat(s, 64); err == nil {
				props[k] = json.Number(s)
			}
		}
	}
	env, _ := props["Environment"].(map[string]any)
	vars, _ := env["Variables"].(map[string]any)
	for k, v := range vars {
		if v == nil {
			delete(vars, k) // AWS::NoValue
		} else {
			vars[k] = scalar(v)
		}
	}
}

// scalar is a JSON scalar as CloudFormation's string.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func scalars(vs []any) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = scalar(v)
	}
	return out
}

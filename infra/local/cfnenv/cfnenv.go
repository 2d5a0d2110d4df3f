// Package cfnenv reads what infra/template.yaml gives a Lambda function (its environment
// variables, timeout and memory) or any resource's property (a queue's visibility timeout,
// say), with CloudFormation's intrinsic functions resolved against a local stand-in of the
// stack: parameters take their defaults (or the caller's values),
// resources and their attributes the local values the caller names, pseudo parameters the
// Stack's, and conditions are evaluated. Whatever it cannot resolve (a reference with no
// local value, a parameter without a default, an intrinsic it does not know) is an error that
// says where, never a guess, so a template change the local world does not cover fails the
// tests that use it.
//
// The YAML is parsed by go.yaml.in/yaml/v3, which keeps CloudFormation's short forms
// (!Ref, !GetAtt, !Sub, !If, …) as tags on the nodes; the long forms (Ref:, Fn::If:, …) are
// read too. Only what the functions' and queues' properties use is resolved: Ref, GetAtt,
// Sub, If, FindInMap, and Equals, Not, And, Or and Condition in conditions. A parameter's
// value, given or default, must be one of its AllowedValues when it has them, as
// CloudFormation requires.
package cfnenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Template is a parsed CloudFormation template.
type Template struct {
	params, mappings, conditions, resources map[string]*yaml.Node
}

// Load reads and parses the template at path.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses a template.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a template: the document is not a mapping")
	}
	root := doc.Content[0]
	t := &Template{}
	var err error
	if t.params, err = section(root, "Parameters"); err != nil {
		return nil, err
	}
	if t.mappings, err = section(root, "Mappings"); err != nil {
		return nil, err
	}
	if t.conditions, err = section(root, "Conditions"); err != nil {
		return nil, err
	}
	if t.resources, err = section(root, "Resources"); err != nil {
		return nil, err
	}
	return t, nil
}

func section(root *yaml.Node, name string) (map[string]*yaml.Node, error) {
	out := map[string]*yaml.Node{}
	n := get(root, name)
	if n == nil {
		return out, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s is not a mapping", name)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = n.Content[i+1]
	}
	return out, nil
}

// get returns the value of key in mapping m, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// Stack is what the template's references resolve to locally.
type Stack struct {
	// Name is AWS::StackName (default "slackrelay"); Region, AccountID, Partition and
	// URLSuffix are the other pseudo parameters (defaults us-east-1, 000000000000, aws,
	// amazonaws.com).
	Name, Region, AccountID, Partition, URLSuffix string
	// Params replace parameters' defaults, by parameter name.
	Params map[string]string
	// Refs are the values of !Ref of resources, by logical id (a queue's URL, a table's name).
	Refs map[string]string
	// Attrs are the values of !GetAtt, by "LogicalId.Attribute".
	Attrs map[string]string
}

// Function is a function's resolved configuration.
type Function struct {
	// Env is Environment.Variables; a variable whose value is AWS::NoValue is left out.
	Env map[string]string
	// Timeout is Timeout (Lambda's default, 3 s, when absent); MemoryMB is MemorySize
	// (default 128).
	Timeout  time.Duration
	MemoryMB int
}

// resource returns the properties of the resource logicalID, checking its type (when typ is
// not empty) and that its condition, if any, holds.
func (r *resolver) resource(logicalID, typ string) (*yaml.Node, error) {
	res, ok := r.t.resources[logicalID]
	if !ok {
		return nil, fmt.Errorf("no resource %s", logicalID)
	}
	if n := get(res, "Type"); typ != "" && (n == nil || n.Value != typ) {
		return nil, fmt.Errorf("%s is not an %s", logicalID, typ)
	}
	if c := get(res, "Condition"); c != nil {
		on, err := r.condition(c.Value)
		if err != nil {
			return nil, fmt.Errorf("%s.Condition: %w", logicalID, err)
		}
		if !on {
			return nil, fmt.Errorf("%s is not created: its condition %s is false", logicalID, c.Value)
		}
	}
	return get(res, "Properties"), nil
}

// Property resolves one property of the resource logicalID, of any type: path names it
// inside Properties, with dots between nested keys ("VisibilityTimeout",
// "RedrivePolicy.maxReceiveCount"). present is false when the property is absent or
// AWS::NoValue (the resource type's default applies).
func (t *Template) Property(logicalID, path string, s Stack) (v string, present bool, err error) {
	r := newResolver(t, s)
	n, err := r.resource(logicalID, "")
	if err != nil {
		return "", false, err
	}
	for _, key := range strings.Split(path, ".") {
		if n = get(n, key); n == nil {
			return "", false, nil
		}
	}
	if v, present, err = r.value(n); err != nil {
		return "", false, fmt.Errorf("%s.Properties.%s: %w", logicalID, path, err)
	}
	return v, present, nil
}

// Function resolves the AWS::Lambda::Function called logicalID.
func (t *Template) Function(logicalID string, s Stack) (Function, error) {
	r := newResolver(t, s)
	props, err := r.resource(logicalID, "AWS::Lambda::Function")
	if err != nil {
		return Function{}, err
	}
	f := Function{Env: map[string]string{}, Timeout: 3 * time.Second, MemoryMB: 128}
	if vars := get(get(props, "Environment"), "Variables"); vars != nil {
		if vars.Kind != yaml.MappingNode {
			return Function{}, fmt.Errorf("%s.Properties.Environment.Variables is not a mapping", logicalID)
		}
		for i := 0; i+1 < len(vars.Content); i += 2 {
			name := vars.Content[i].Value
			v, present, err := r.value(vars.Content[i+1])
			if err != nil {
				return Function{}, fmt.Errorf("%s environment variable %s: %w", logicalID, name, err)
			}
			if present {
				f.Env[name] = v
			}
		}
	}
	for _, p := range []struct {
		name string
		set  func(int)
	}{
		{"Timeout", func(n int) { f.Timeout = time.Duration(n) * time.Second }},
		{"MemorySize", func(n int) { f.MemoryMB = n }},
	} {
		node := get(props, p.name)
		if node == nil {
			continue
		}
		v, _, err := r.value(node)
		if err != nil {
			return Function{}, fmt.Errorf("%s.%s: %w", logicalID, p.name, err)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return Function{}, fmt.Errorf("%s.%s = %q, not a positive integer", logicalID, p.name, v)
		}
		p.set(n)
	}
	return f, nil
}

package cfnenv

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// resolver evaluates intrinsic functions for one Stack.
type resolver struct {
	t          *Template
	s          Stack
	conditions map[string]bool
	evaluating map[string]bool
}

func newResolver(t *Template, s Stack) *resolver {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&s.Name, "slackrelay")
	def(&s.Region, "us-east-1")
	def(&s.AccountID, "000000000000")
	def(&s.Partition, "aws")
	def(&s.URLSuffix, "amazonaws.com")
	return &resolver{t: t, s: s, conditions: map[string]bool{}, evaluating: map[string]bool{}}
}

// intrinsic reports the intrinsic function n calls, in short form (a tag such as !Ref) or
// long form (a one-key mapping Ref: or Fn::Name:), and its argument.
func intrinsic(n *yaml.Node) (string, *yaml.Node, bool) {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		arg := *n
		arg.Tag = ""
		return strings.TrimPrefix(n.Tag, "!"), &arg, true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		key := n.Content[0].Value
		if key == "Ref" || key == "Condition" || strings.HasPrefix(key, "Fn::") {
			return strings.TrimPrefix(key, "Fn::"), n.Content[1], true
		}
	}
	return "", nil, false
}

func at(n *yaml.Node) string { return fmt.Sprintf("line %d", n.Line) }

// value resolves n to a string; present is false for AWS::NoValue.
func (r *resolver) value(n *yaml.Node) (v string, present bool, err error) {
	if n.Kind == yaml.AliasNode {
		return r.value(n.Alias)
	}
	if fn, arg, ok := intrinsic(n); ok {
		switch fn {
		case "Ref":
			return r.ref(arg)
		case "GetAtt":
			v, err := r.getAtt(arg)
			return v, err == nil, err
		case "Sub":
			v, err := r.sub(arg)
			return v, err == nil, err
		case "If":
			return r.ifValue(arg)
		case "FindInMap":
			v, err := r.findInMap(arg)
			return v, err == nil, err
		}
		return "", false, fmt.Errorf("%s: %s is not resolved locally (cfnenv knows Ref, GetAtt, Sub, If, FindInMap)", at(n), fn)
	}
	if n.Kind != yaml.ScalarNode {
		return "", false, fmt.Errorf("%s: a list or mapping where a value is expected", at(n))
	}
	if n.Tag == "!!null" {
		return "", true, nil
	}
	return n.Value, true, nil
}

func scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%s: %s takes a name", at(n), what)
	}
	return n.Value, nil
}

func (r *resolver) ref(arg *yaml.Node) (string, bool, error) {
	name, err := scalar(arg, "Ref")
	if err != nil {
		return "", false, err
	}
	v, present, err := r.name(name)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", at(arg), err)
	}
	return v, present, nil
}

// name resolves what !Ref name means: a pseudo parameter, a parameter, a resource.
func (r *resolver) name(name string) (string, bool, error) {
	switch name {
	case "AWS::NoValue":
		return "", false, nil
	case "AWS::StackName":
		return r.s.Name, true, nil
	case "AWS::Region":
		return r.s.Region, true, nil
	case "AWS::AccountId":
		return r.s.AccountID, true, nil
	case "AWS::Partition":
		return r.s.Partition, true, nil
	case "AWS::URLSuffix":
		return r.s.URLSuffix, true, nil
	}
	if p, ok := r.t.params[name]; ok {
		v, ok := r.s.Params[name]
		if !ok {
			d := get(p, "Default")
			if d == nil {
				return "", false, fmt.Errorf("parameter %s has no default: give it a value in Stack.Params", name)
			}
			v = d.Value
		}
		if allowed := get(p, "AllowedValues"); allowed != nil && !slices.ContainsFunc(allowed.Content, func(a *yaml.Node) bool { return a.Value == v }) {
			values := make([]string, len(allowed.Content))
			for i, a := range allowed.Content {
				values[i] = a.Value
			}
			return "", false, fmt.Errorf("parameter %s = %q is not one of its AllowedValues [%s]", name, v, strings.Join(values, ", "))
		}
		return v, true, nil
	}
	if _, ok := r.t.resources[name]; ok {
		if v, ok := r.s.Refs[name]; ok {
			return v, true, nil
		}
		return "", false, fmt.Errorf("resource %s has no local value for !Ref: add it to Stack.Refs", name)
	}
	return "", false, fmt.Errorf("!Ref %s: no such parameter, resource or pseudo parameter", name)
}

func (r *resolver) getAtt(arg *yaml.Node) (string, error) {
	var key string
	switch {
	case arg.Kind == yaml.ScalarNode:
		key = arg.Value
	case arg.Kind == yaml.SequenceNode && len(arg.Content) == 2:
		key = arg.Content[0].Value + "." + arg.Content[1].Value
	default:
		return "", fmt.Errorf("%s: GetAtt takes Resource.Attribute", at(arg))
	}
	if v, ok := r.s.Attrs[key]; ok {
		return v, nil
	}
	return "", fmt.Errorf("%s: !GetAtt %s has no local value: add it to Stack.Attrs", at(arg), key)
}

func (r *resolver) sub(arg *yaml.Node) (string, error) {
	tmpl, vars := arg, (*yaml.Node)(nil)
	if arg.Kind == yaml.SequenceNode {
		if len(arg.Content) != 2 {
			return "", fmt.Errorf("%s: Sub takes a string or [string, variables]", at(arg))
		}
		tmpl, vars = arg.Content[0], arg.Content[1]
	}
	if tmpl.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%s: Sub's template is not a string", at(arg))
	}
	s := tmpl.Value
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		j := strings.Index(s[i:], "}")
		if j < 0 {
			return "", fmt.Errorf("%s: Sub template has an unclosed ${", at(tmpl))
		}
		name := s[i+2 : i+j]
		s = s[i+j+1:]
		if strings.HasPrefix(name, "!") { // ${!Literal} writes ${Literal}
			b.WriteString("${" + name[1:] + "}")
			continue
		}
		var v string
		var err error
		if n := get(vars, name); n != nil {
			v, _, err = r.value(n)
		} else if strings.Contains(name, ".") {
			v, err = r.getAtt(&yaml.Node{Kind: yaml.ScalarNode, Value: name, Line: tmpl.Line})
		} else {
			v, _, err = r.name(name)
		}
		if err != nil {
			return "", fmt.Errorf("%s: Sub ${%s}: %w", at(tmpl), name, err)
		}
		b.WriteString(v)
	}
}

// findInMap looks up [MapName, TopLevelKey, SecondLevelKey] in the template's Mappings; the
// keys may be intrinsics (a parameter's !Ref, typically).
func (r *resolver) findInMap(arg *yaml.Node) (string, error) {
	if arg.Kind != yaml.SequenceNode || len(arg.Content) != 3 {
		return "", fmt.Errorf("%s: FindInMap takes [map, key, key]", at(arg))
	}
	var keys [3]string
	for i, k := range arg.Content {
		v, present, err := r.value(k)
		if err == nil && !present {
			err = fmt.Errorf("%s: AWS::NoValue as a FindInMap key", at(k))
		}
		if err != nil {
			return "", err
		}
		keys[i] = v
	}
	where := "Mappings." + keys[0]
	n, ok := r.t.mappings[keys[0]]
	if !ok {
		return "", fmt.Errorf("%s: no mapping %s", at(arg), where)
	}
	for _, k := range keys[1:] {
		if n = get(n, k); n == nil {
			return "", fmt.Errorf("%s: %s has no key %q", at(arg), where, k)
		}
		where += "." + k
	}
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%s: %s is a list or mapping, not a value", at(arg), where)
	}
	return n.Value, nil
}

func (r *resolver) ifValue(arg *yaml.Node) (string, bool, error) {
	if arg.Kind != yaml.SequenceNode || len(arg.Content) != 3 {
		return "", false, fmt.Errorf("%s: If takes [condition, value if true, value if false]", at(arg))
	}
	on, err := r.condition(arg.Content[0].Value)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", at(arg), err)
	}
	if on {
		return r.value(arg.Content[1])
	}
	return r.value(arg.Content[2])
}

// condition evaluates the template's condition called name.
func (r *resolver) condition(name string) (bool, error) {
	if v, ok := r.conditions[name]; ok {
		return v, nil
	}
	n, ok := r.t.conditions[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	if r.evaluating[name] {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	r.evaluating[name] = true
	v, err := r.boolean(n)
	delete(r.evaluating, name)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	r.conditions[name] = v
	return v, nil
}

func (r *resolver) boolean(n *yaml.Node) (bool, error) {
	fn, arg, ok := intrinsic(n)
	if !ok {
		return false, fmt.Errorf("%s: a condition must be Equals, Not, And, Or or Condition", at(n))
	}
	switch fn {
	case "Condition":
		return r.condition(arg.Value)
	case "Equals":
		if arg.Kind != yaml.SequenceNode || len(arg.Content) != 2 {
			return false, fmt.Errorf("%s: Equals takes two values", at(arg))
		}
		a, _, err := r.value(arg.Content[0])
		if err != nil {
			return false, err
		}
		b, _, err := r.value(arg.Content[1])
		return a == b, err
	case "Not", "And", "Or":
		if arg.Kind != yaml.SequenceNode || len(arg.Content) == 0 || (fn == "Not" && len(arg.Content) != 1) {
			return false, fmt.Errorf("%s: %s takes a list of conditions", at(arg), fn)
		}
		all, any := true, false
		for _, c := range arg.Content {
			v, err := r.boolean(c)
			if err != nil {
				return false, err
			}
			all, any = all && v, any || v
		}
		switch fn {
		case "Not":
			return !all, nil
		case "And":
			return all, nil
		}
		return any, nil
	}
	return false, fmt.Errorf("%s: %s is not a condition function", at(n), fn)
}

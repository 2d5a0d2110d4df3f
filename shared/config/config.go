// Package config reads a binary's settings from the environment through the binary's table of
// variables, and reports every missing or malformed variable at once, so an operator fixes
// them in one deploy.
//
// The table is the single source of truth: a binary's loader names each variable once (by
// its table entry) and takes its default, kind and range from there; reading a name that is
// not in the table is an error. Renamed variables keep their old names in the table: an old
// name still works and the loader returns a Deprecation naming the new one.
package config

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// EnvLambdaRuntimeAPI is set by AWS Lambda in every function; its presence selects Lambda mode.
const EnvLambdaRuntimeAPI = "AWS_LAMBDA_RUNTIME_API"

// Kind is how a variable's value is parsed.
type Kind int

// The kinds of variables.
const (
	// KindString is any text.
	KindString Kind = iota
	// KindInt is a decimal integer in [Var.Min, Var.Max].
	KindInt
	// KindDuration is a positive Go duration such as 30s, 5m or 1h30m.
	KindDuration
)

// String names the kind as the documentation does.
func (k Kind) String() string {
	switch k {
	case KindInt:
		return "integer"
	case KindDuration:
		return "duration"
	}
	return "string"
}

// Var documents one environment variable a binary reads.
type Var struct {
	Name string
	Kind Kind
	// Default is used when the variable is unset or empty, written as the variable would be.
	Default string
	// Min and Max bound a KindInt variable.
	Min, Max int
	// Required variables have no default and must be set in every mode that reads them.
	Required bool
	// LocalOnly variables are read only outside Lambda (local servers, plain secrets).
	LocalOnly bool
	// OldNames are earlier names of the variable, still read when Name is unset; each use
	// is reported as a Deprecation.
	OldNames []string
	// Doc says what the variable means, for docs/configuration.md.
	Doc string
}

// Deprecation reports an old variable name found in the environment.
type Deprecation struct {
	// Old is the name found; New is the name to use instead.
	Old, New string
	// Ignored is true when New is set as well, so Old's value is not used.
	Ignored bool
}

// String says what the operator should do.
func (d Deprecation) String() string {
	if d.Ignored {
		return fmt.Sprintf("%s is ignored: it is the old name of %s, which is also set; remove %s", d.Old, d.New, d.Old)
	}
	return fmt.Sprintf("%s is deprecated: rename it to %s", d.Old, d.New)
}

// TableError is a mistake in a loader or its table rather than in the environment: a name
// read that the table does not list, a kind or mode the table does not allow, a malformed
// entry. Tests look for it with errors.As.
type TableError struct{ Msg string }

func (e *TableError) Error() string { return e.Msg }

func tableErrorf(format string, args ...any) error {
	return &TableError{Msg: fmt.Sprintf(format, args...)}
}

// IsLambda reports whether the process runs inside AWS Lambda.
func IsLambda(getenv func(string) string) bool { return getenv(EnvLambdaRuntimeAPI) != "" }

// Lookup returns the table entry called name (its current name, not an old one).
func Lookup(vars []Var, name string) (Var, bool) {
	for _, v := range vars {
		if v.Name == name {
			return v, true
		}
	}
	return Var{}, false
}

// Validate checks a table: names unique across current and old names, defaults that parse
// as their kind and lie in range, no default on a required variable.
func Validate(vars []Var) error {
	var errs []error
	seen := map[string]string{}
	claim := func(name, owner string) {
		if prev, dup := seen[name]; dup {
			errs = append(errs, tableErrorf("table: %s is listed twice (%s and %s)", name, prev, owner))
		}
		seen[name] = owner
	}
	for _, v := range vars {
		if v.Name == "" {
			errs = append(errs, tableErrorf("table: an entry has no name"))
			continue
		}
		claim(v.Name, v.Name)
		for _, old := range v.OldNames {
			claim(old, "old name of "+v.Name)
		}
		if v.Required && v.Default != "" {
			errs = append(errs, tableErrorf("table: %s is required and has a default", v.Name))
		}
		if v.Kind == KindInt && v.Min > v.Max {
			errs = append(errs, tableErrorf("table: %s has Min %d above Max %d", v.Name, v.Min, v.Max))
		}
		if v.Default != "" {
			if _, err := parse(v, v.Name, v.Default); err != nil {
				errs = append(errs, tableErrorf("table: default of %v", err))
			}
		}
	}
	return errors.Join(errs...)
}

// parse reads raw as v's kind; from is the name it came from, for the error.
func parse(v Var, from, raw string) (any, error) {
	switch v.Kind {
	case KindInt:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return 0, fmt.Errorf("%s=%q is not an integer", from, raw)
		}
		if n < v.Min || n > v.Max {
			return 0, fmt.Errorf("%s=%d is outside [%d, %d]", from, n, v.Min, v.Max)
		}
		return n, nil
	case KindDuration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return time.Duration(0), fmt.Errorf("%s=%q is not a duration like 30s or 5m", from, raw)
		}
		if d <= 0 {
			return time.Duration(0), fmt.Errorf("%s=%q must be greater than zero", from, raw)
		}
		return d, nil
	}
	return raw, nil
}

// Package config reads a binary's settings from the environment and reports every missing
// or malformed variable at once, so an operator fixes them in one deploy.
package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Var documents one environment variable a binary reads.
type Var struct {
	Name, Default, Doc string
	// Required variables have no default.
	Required bool
	// LocalOnly variables are read only outside Lambda (local servers, plain secrets).
	LocalOnly bool
}

// IsLambda reports whether the process runs inside AWS Lambda.
func IsLambda(getenv func(string) string) bool { return getenv("AWS_LAMBDA_RUNTIME_API") != "" }

// LambdaNames returns the sorted names of the variables read in Lambda mode.
func LambdaNames(vars []Var) []string {
	var names []string
	for _, v := range vars {
		if !v.LocalOnly {
			names = append(names, v.Name)
		}
	}
	slices.Sort(names)
	return names
}

// Loader reads variables and collects the problems it finds.
type Loader struct {
	getenv func(string) string
	errs   []error
}

// NewLoader returns a Loader reading through getenv (os.Getenv, or a map in tests).
func NewLoader(getenv func(string) string) *Loader { return &Loader{getenv: getenv} }

// String returns the variable's value, or def when it is unset or empty.
func (l *Loader) String(name, def string) string {
	if v := l.getenv(name); v != "" {
		return v
	}
	return def
}

// Required returns the variable's value and records an error when it is unset or empty.
func (l *Loader) Required(name string) string {
	v := l.getenv(name)
	if v == "" {
		l.errs = append(l.errs, fmt.Errorf("%s is required", name))
	}
	return v
}

// Int returns the variable as an integer in [min, max], or def when unset.
func (l *Loader) Int(name string, def, min, max int) int {
	raw := l.getenv(name)
	if raw == "" {
		return def
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s=%q is not an integer", name, raw))
		return def
	}
	if n < min || n > max {
		l.errs = append(l.errs, fmt.Errorf("%s=%d is outside [%d, %d]", name, n, min, max))
		return def
	}
	return n
}

// Duration returns the variable as a positive duration ("90s", "5m"), or def when unset.
func (l *Loader) Duration(name string, def time.Duration) time.Duration {
	raw := l.getenv(name)
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s=%q is not a duration like 30s or 5m", name, raw))
		return def
	}
	if d <= 0 {
		l.errs = append(l.errs, fmt.Errorf("%s=%q must be greater than zero", name, raw))
		return def
	}
	return d
}

// Fail records a problem found by the caller (for example two variables that contradict).
func (l *Loader) Fail(err error) { l.errs = append(l.errs, err) }

// Err returns nil or one error naming every problem found so far.
func (l *Loader) Err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return fmt.Errorf("config: %w", errors.Join(l.errs...))
}

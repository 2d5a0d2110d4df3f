package config

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Loader reads variables through a table and collects the problems it finds. Every read
// names a table entry; the value comes from the environment (current name first, then the
// old names) or else from the entry's default.
//
// A loader should read every variable of its mode whatever the values of the others, so
// that what it reads is exactly the table's variables of that mode (the binaries' tests
// check this, and derive the Lambda variable list the template must set from it).
type Loader struct {
	vars         map[string]Var
	getenv       func(string) string
	lambda       bool
	errs         []error
	deprecations []Deprecation
}

// NewLoader returns a Loader for the table vars reading through getenv (os.Getenv, or a map
// in tests). A malformed table is reported by Err.
func NewLoader(vars []Var, getenv func(string) string) *Loader {
	l := &Loader{vars: make(map[string]Var, len(vars)), getenv: getenv, lambda: IsLambda(getenv)}
	if err := Validate(vars); err != nil {
		l.errs = append(l.errs, err)
	}
	for _, v := range vars {
		l.vars[v.Name] = v
	}
	return l
}

// Lambda reports whether the loader reads in Lambda mode (AWS_LAMBDA_RUNTIME_API is set).
func (l *Loader) Lambda() bool { return l.lambda }

// lookup returns the entry called name, the raw value and the name it was found under
// ("" when unset). A name outside the table, or of the wrong kind, or a local-only variable
// read in Lambda, is recorded as an error and reads as unset.
func (l *Loader) lookup(name string, kind Kind) (Var, string, string, bool) {
	v, ok := l.vars[name]
	switch {
	case !ok:
		l.errs = append(l.errs, tableErrorf("%s is read but not in the variable table", name))
		return v, "", "", false
	case v.Kind != kind:
		l.errs = append(l.errs, tableErrorf("%s is read as %s but the table says %s", name, kind, v.Kind))
		return v, "", "", false
	case v.LocalOnly && l.lambda:
		l.errs = append(l.errs, tableErrorf("%s is local-only but read in Lambda", name))
		return v, "", "", false
	}
	raw, from := l.getenv(name), name
	if raw == "" {
		from = ""
	}
	for _, old := range v.OldNames {
		val := l.getenv(old)
		if val == "" {
			continue
		}
		l.deprecations = append(l.deprecations, Deprecation{Old: old, New: name, Ignored: from != ""})
		if from == "" {
			raw, from = val, old
		}
	}
	if from == "" && v.Required {
		l.errs = append(l.errs, fmt.Errorf("%s is required", name))
	}
	return v, raw, from, true
}

// value parses the variable's value, or its default when unset. A malformed value is
// recorded and the default used in its place.
func (l *Loader) value(name string, kind Kind) any {
	v, raw, from, ok := l.lookup(name, kind)
	if !ok {
		return zero(kind)
	}
	if from != "" {
		val, err := parse(v, from, raw)
		if err == nil {
			return val
		}
		l.errs = append(l.errs, err)
	}
	if v.Default == "" {
		return zero(kind)
	}
	val, err := parse(v, v.Name, v.Default)
	if err != nil { // already reported by Validate
		return zero(kind)
	}
	return val
}

func zero(kind Kind) any {
	switch kind {
	case KindInt:
		return 0
	case KindDuration:
		return time.Duration(0)
	}
	return ""
}

// String returns a KindString variable's value, or its default when unset or empty.
func (l *Loader) String(name string) string { return l.value(name, KindString).(string) }

// Int returns a KindInt variable's value within the table's range, or its default.
func (l *Loader) Int(name string) int { return l.value(name, KindInt).(int) }

// Duration returns a KindDuration variable's positive value, or its default.
func (l *Loader) Duration(name string) time.Duration {
	return l.value(name, KindDuration).(time.Duration)
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

// Deprecations returns the old names found in the environment, in the order read.
func (l *Loader) Deprecations() []Deprecation { return l.deprecations }

// LogDeprecations writes one WARN line per deprecated name in use; a binary calls it once at
// start-up, after its logger exists.
func LogDeprecations(log *slog.Logger, ds []Deprecation) {
	for _, d := range ds {
		log.Warn("deprecated environment variable", "name", d.Old, "use", d.New, "ignored", d.Ignored, "detail", d.String())
	}
}

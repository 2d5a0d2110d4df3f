// Package configtest checks a binary's configuration loader against its variable table, for
// the binaries' tests: the loader must read exactly the table's variables of each mode
// (Lambda, local), whatever the values, and the names it reads in Lambda mode are the golden
// testdata/lambda-env.json that the cfn-lint rule E9070 (infra/check/rules/environment.py)
// compares with the environment infra/template.yaml gives each function. It is test support
// (it uses golden, which registers -update).
package configtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/slackrelay/slackrelay/shared/config"
	"github.com/slackrelay/slackrelay/shared/golden"
)

// Load is a binary's loader as the check calls it.
type Load func(getenv func(string) string) error

// Reads runs load with env as the environment and returns the names it asked getenv for,
// each once, in the order first asked.
func Reads(env map[string]string, load Load) ([]string, error) {
	var names []string
	err := load(func(name string) string {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return env[name]
	})
	return names, err
}

// Check runs load in Lambda mode and in local mode, each with no variable set and with every
// variable set, and returns one error naming every difference between what it read and what
// vars says. Then it compares the table names read in Lambda mode with the JSON array at
// lambdaEnvPath (rewritten under -update); "" skips that file (binaries that never run in
// Lambda).
func Check(vars []config.Var, load Load, lambdaEnvPath string) error {
	var errs []error
	if err := config.Validate(vars); err != nil {
		errs = append(errs, err)
	}
	allowed := map[string]bool{config.EnvLambdaRuntimeAPI: true}
	for _, v := range vars {
		allowed[v.Name] = true
		for _, old := range v.OldNames {
			allowed[old] = true
		}
	}
	var lambdaNames []string
	for _, lambda := range []bool{true, false} {
		for _, full := range []bool{false, true} {
			env := environment(vars, lambda, full)
			what := describe(lambda, full)
			reads, err := Reads(env, load)
			var te *config.TableError
			if errors.As(err, &te) {
				errs = append(errs, fmt.Errorf("%s: the loader misuses its table: %w", what, err))
			}
			var tableReads []string
			for _, name := range reads {
				switch {
				case !allowed[name]:
					errs = append(errs, fmt.Errorf("%s: %s is read but not in the table", what, name))
				case name != config.EnvLambdaRuntimeAPI:
					if _, isVar := config.Lookup(vars, name); isVar {
						tableReads = append(tableReads, name)
					}
				}
			}
			for _, v := range vars {
				want := !lambda || !v.LocalOnly
				got := slices.Contains(tableReads, v.Name)
				switch {
				case want && !got:
					errs = append(errs, fmt.Errorf("%s: %s is in the table but not read", what, v.Name))
				case !want && got:
					errs = append(errs, fmt.Errorf("%s: %s is local-only in the table but read", what, v.Name))
				}
			}
			if lambda && !full {
				lambdaNames = slices.Sorted(slices.Values(tableReads))
			}
		}
	}
	if lambdaEnvPath != "" {
		data, err := json.MarshalIndent(lambdaNames, "", "  ")
		if err != nil {
			return err
		}
		if err := golden.Check(lambdaEnvPath, append(data, '\n')); err != nil {
			errs = append(errs, fmt.Errorf("the loader now reads %s in Lambda; cfn-lint rule E9070 (infra/check/rules) compares %s with infra/template.yaml, so update the template too: %w",
				strings.Join(lambdaNames, ", "), lambdaEnvPath, err))
		}
	}
	return errors.Join(errs...)
}

// environment is the environment of one run: the mode switch, and with full a valid value
// for every variable (its default, or the smallest value its kind allows).
func environment(vars []config.Var, lambda, full bool) map[string]string {
	env := map[string]string{}
	if lambda {
		env[config.EnvLambdaRuntimeAPI] = "127.0.0.1:9001"
	}
	if !full {
		return env
	}
	for _, v := range vars {
		switch {
		case v.Default != "":
			env[v.Name] = v.Default
		case v.Kind == config.KindInt:
			env[v.Name] = strconv.Itoa(v.Min)
		case v.Kind == config.KindDuration:
			env[v.Name] = "1s"
		default:
			env[v.Name] = "x"
		}
	}
	return env
}

func describe(lambda, full bool) string {
	mode, set := "local mode", "no variable set"
	if lambda {
		mode = "Lambda mode"
	}
	if full {
		set = "every variable set"
	}
	return mode + ", " + set
}

// Env returns a getenv that answers from name, value pairs (an unpaired last name is unset).
func Env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// Problem is a bad environment and the phrases load's one error must contain about it.
type Problem struct {
	Name string
	Env  func(string) string
	Want []string
}

// CheckProblems runs load on each problem's environment as a subtest and reports each phrase
// the error lacks, so a loader that stops at its first problem fails.
func CheckProblems(t *testing.T, load Load, problems []Problem) {
	t.Helper()
	for _, p := range problems {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			err := load(p.Env)
			for _, want := range p.Want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("load error = %v, want it to contain %q", err, want)
				}
			}
		})
	}
}

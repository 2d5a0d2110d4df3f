package installflow

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/slackrelay/slackrelay/shared/awstest"
)

// A state is used once, whatever the number of receivers racing with it: of ten concurrent
// uses (each its own client, as separate Lambdas), one succeeds and nine get ErrStateUsed;
// another state is unaffected.
func TestStatesAreUsedOnce(t *testing.T) {
	t.Parallel()
	for name, newStates := range map[string]func(t *testing.T) func() States{
		"memory": func(t *testing.T) func() States {
			m := &MemoryStates{}
			return func() States { return m }
		},
		"dynamodb": func(t *testing.T) func() States {
			table := awstest.NewTable(t)
			endpoint := awstest.Endpoint(t, awstest.EnvDynamoDB)
			return func() States { return DynamoStates{DB: awstest.DynamoDBAt(endpoint), Table: table} }
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			newS := newStates(t)
			exp := time.Now().Add(StateLifetime)
			var wg sync.WaitGroup
			errs := make([]error, 10)
			for i := range errs {
				s := newS()
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = s.Use(context.Background(), "state-1", exp)
				}()
			}
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, ErrStateUsed):
					t.Errorf("Use: %v; want nil or ErrStateUsed", err)
				}
			}
			if won != 1 {
				t.Errorf("%d of 10 concurrent uses of one state succeeded, want 1", won)
			}
			if err := newS().Use(context.Background(), "state-2", exp); err != nil {
				t.Errorf("another state: %v", err)
			}
		})
	}
	if k := StateKey("abc"); k != "state#ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("StateKey(abc) = %s: want state#<sha256 hex>, never the state itself", k)
	}
}

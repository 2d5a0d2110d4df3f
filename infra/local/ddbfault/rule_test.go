package ddbfault

import (
	"strings"
	"testing"
)

// call is a request of operation op on key pk, attempt n of invocation id.
func call(op, pk, id string, attempt int) Call {
	return Call{Op: op, Table: "idempotency", PK: pk, InvocationID: id, Attempt: attempt}
}

// fired runs calls through r and returns which of them it fired on, as "1" or "0" each.
func fired(r *rule, calls ...Call) string {
	var b strings.Builder
	for _, c := range calls {
		if r.observe(c) {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}

func TestRuleByOrder(t *testing.T) {
	t.Parallel()
	// Three UpdateItem operations, the second retried twice, a GetItem between them.
	traffic := []Call{
		call("UpdateItem", "k", "op1", 1),
		call("GetItem", "k", "get", 1),
		call("UpdateItem", "k", "op2", 1),
		call("UpdateItem", "k", "op2", 2),
		call("UpdateItem", "k", "op2", 3),
		call("UpdateItem", "k", "op3", 1),
	}
	for _, tc := range []struct {
		name string
		rule Rule
		want string
		// matched and operations are the rule's counts after the traffic.
		matched, operations int
	}{
		{"the 2nd attempt", Rule{Match: Match{Ops: []string{"UpdateItem"}}, Nth: 2}, "001000", 5, 3},
		{"the 2nd and 3rd attempts", Rule{Match: Match{Ops: []string{"UpdateItem"}}, Nth: 2, Times: 2}, "001100", 5, 3},
		{"the 2nd operation, all its attempts", Rule{Match: Match{Ops: []string{"UpdateItem"}}, Nth: 2, PerOperation: true}, "001110", 5, 3},
		{"from the 3rd operation on", Rule{Match: Match{Ops: []string{"UpdateItem"}}, Nth: 3, Times: Forever, PerOperation: true}, "000001", 5, 3},
		{"every write", Rule{Match: Match{Ops: []string{Writes}}, Times: Forever}, "101111", 5, 3},
		{"the first read", Rule{Match: Match{Ops: []string{Reads}}}, "010000", 1, 1},
		{"any op, the 2nd", Rule{Nth: 2}, "010000", 6, 4},
		{"another table", Rule{Match: Match{Table: "other"}, Times: Forever}, "000000", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRule(1, tc.rule)
			if got := fired(r, traffic...); got != tc.want {
				t.Errorf("fired on %s, want %s", got, tc.want)
			}
			if r.status.Matched != tc.matched || r.status.Operations != tc.operations {
				t.Errorf("matched %d (%d operations), want %d (%d)", r.status.Matched, r.status.Operations, tc.matched, tc.operations)
			}
		})
	}
}

// A request without an invocation id (not from the SDK) is an operation of its own.
func TestRulePerOperationWithoutInvocationIDs(t *testing.T) {
	t.Parallel()
	r := newRule(1, Rule{Nth: 2, PerOperation: true})
	if got := fired(r, call("PutItem", "k", "", 1), call("PutItem", "k", "", 1), call("PutItem", "k", "", 1)); got != "010" {
		t.Errorf("fired on %s, want 010", got)
	}
}

func TestMatchByKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		m     Match
		pk    string
		match bool
	}{
		{"prefix", Match{PKPrefix: "msg:T1:"}, "msg:T1:C1:1.2", true},
		{"other prefix", Match{PKPrefix: "msg:T1:"}, "evt:Ev1", false},
		{"prefix, no key", Match{PKPrefix: "msg:"}, "", false},
		{"predicate", Match{PK: func(pk string) bool { return strings.HasSuffix(pk, ":1.2") }}, "msg:T1:C1:1.2", true},
		{"predicate refuses", Match{PK: func(string) bool { return false }}, "msg:T1:C1:1.2", false},
		{"op and prefix", Match{Ops: []string{"PutItem", "DeleteItem"}, PKPrefix: "msg:"}, "msg:x", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.m.matches(call("PutItem", tc.pk, "id", 1)); got != tc.match {
				t.Errorf("matches = %v, want %v", got, tc.match)
			}
		})
	}
}

func TestIDMapForgetsTheOldestInBulk(t *testing.T) {
	t.Parallel()
	m := newIDMap[int](2)
	m.put("a", 1)
	m.put("b", 2)
	m.put("c", 3) // a and b become the older half
	if v, ok := m.get("a"); !ok || v != 1 {
		t.Errorf("a = %d, %v; want 1 still remembered", v, ok)
	}
	m.put("d", 4)
	m.put("e", 5) // c and d become the older half, a and b go
	if _, ok := m.get("a"); ok {
		t.Error("a still remembered after two rotations")
	}
	if v, ok := m.get("c"); !ok || v != 3 {
		t.Errorf("c = %d, %v; want 3", v, ok)
	}
}

// Every rule counts what it selects; when two fire on one request, the one armed first
// applies, and the other's turn passes.
func TestEarlierRuleWins(t *testing.T) {
	t.Parallel()
	p, err := Start(Options{Upstream: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	first := p.Arm(Rule{Match: Match{Ops: []string{"UpdateItem"}}, Times: Forever, Action: Reset()})
	second := p.Arm(Rule{Action: FailPermanent()})
	for _, tc := range []struct {
		c    Call
		want Kind
		rule int
	}{
		{call("UpdateItem", "k", "op1", 1), KindReset, first.ID()},
		{call("GetItem", "k", "op2", 1), KindPass, 0},
	} {
		act, _, down := p.arrive(&tc.c)
		if act.Kind != tc.want || tc.c.Rule != tc.rule || down {
			t.Errorf("%s: action %q by rule %d (down %v), want %q by rule %d", tc.c.Op, act.Kind, tc.c.Rule, down, tc.want, tc.rule)
		}
	}
	if got, want := second.Status(), (RuleStatus{ID: second.ID(), Matched: 2, Operations: 2, Fired: 0, Armed: true}); got != want {
		t.Errorf("second rule = %+v, want %+v", got, want)
	}
	first.Disarm()
	if st := first.Status(); st.Armed || st.Fired != 1 {
		t.Errorf("first rule after Disarm = %+v, want not armed, fired once", st)
	}
	if rules := p.Rules(); len(rules) != 1 || rules[0].ID != second.ID() {
		t.Errorf("Rules = %+v, want the second only", rules)
	}
	p.Reset()
	if rules := p.Rules(); len(rules) != 0 || second.Status().Armed {
		t.Errorf("Rules after Reset = %+v (second armed: %v), want none", rules, second.Status().Armed)
	}
}

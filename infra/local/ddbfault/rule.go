package ddbfault

import (
	"slices"
	"strings"
)

// Forever, as Rule.Times, makes a rule fire on every match from the Nth on.
const Forever = -1

// Match selects requests. The zero Match selects every request.
type Match struct {
	// Ops are operation names ("UpdateItem") or the sets Reads and Writes; empty: any.
	Ops []string
	// Table, when set, is the table the request must name.
	Table string
	// PKPrefix, when set, must begin the request's partition key value (Call.PK).
	PKPrefix string
	// PK, when set, must accept the partition key value. It is called with the proxy's
	// lock held: it must be quick and must not call the proxy.
	PK func(pk string) bool
}

// matches reports whether c is selected.
func (m Match) matches(c Call) bool {
	if len(m.Ops) > 0 && !slices.ContainsFunc(m.Ops, func(op string) bool {
		return op == c.Op || op == Reads && isRead(c.Op) || op == Writes && isWrite(c.Op)
	}) {
		return false
	}
	if m.Table != "" && m.Table != c.Table {
		return false
	}
	if m.PKPrefix != "" && (c.PK == "" || !strings.HasPrefix(c.PK, m.PKPrefix)) {
		return false
	}
	return m.PK == nil || m.PK(c.PK)
}

// Rule is a fault armed on a Proxy: it fires on the Nth request its Match selects after it
// was armed and on the Times-1 that follow, counting HTTP attempts; with PerOperation it
// counts operations instead and fires on every attempt of the operations it picked.
type Rule struct {
	Match
	// Nth is the first match the rule fires on, from 1 (0 means 1).
	Nth int
	// Times is how many matches it fires on from the Nth (0 means 1; Forever: all).
	Times int
	// PerOperation counts operations (the SDK's invocation ids, a request without one
	// being an operation of its own) instead of HTTP attempts: Nth 3 is the third
	// operation that matches, and the rule fires on all of its attempts, retries included.
	PerOperation bool
	// Action is what the rule does to the requests it fires on.
	Action Action
}

// RuleStatus is what an armed rule has seen.
type RuleStatus struct {
	// ID identifies the rule on its proxy (Disarm, the control API, Call.Rule).
	ID int `json:"id"`
	// Matched counts the requests (attempts) its Match selected since it was armed, and
	// Operations the distinct operations among them.
	Matched    int `json:"matched"`
	Operations int `json:"operations"`
	// Fired counts the requests its action was applied to.
	Fired int `json:"fired"`
	// Armed is false once the rule was disarmed.
	Armed bool `json:"armed"`
}

// opFiringMemory bounds how many operations' ids a PerOperation rule remembers (twice this
// at most); an operation's retries come within seconds, long before it is forgotten.
const opFiringMemory = 50_000

// rule is an armed Rule and its counts. The Proxy's lock guards it.
type rule struct {
	Rule
	status RuleStatus
	// ops remembers whether each operation seen (by invocation id) fires.
	ops idMap[bool]
}

func newRule(id int, r Rule) *rule {
	if r.Nth <= 0 {
		r.Nth = 1
	}
	if r.Times == 0 {
		r.Times = 1
	}
	if r.Times < 0 {
		r.Times = Forever
	}
	r.Action = r.Action.normalized()
	return &rule{Rule: r, status: RuleStatus{ID: id, Armed: true}, ops: newIDMap[bool](opFiringMemory)}
}

// inWindow reports whether the nth match is one the rule fires on.
func (r *rule) inWindow(n int) bool {
	return n >= r.Nth && (r.Times == Forever || n < r.Nth+r.Times)
}

// observe counts c when the rule selects it and reports whether the rule fires on it.
func (r *rule) observe(c Call) bool {
	if !r.matches(c) {
		return false
	}
	r.status.Matched++
	fires, seen := false, false
	if c.InvocationID != "" {
		fires, seen = r.ops.get(c.InvocationID)
	}
	if !seen {
		r.status.Operations++
		if r.PerOperation {
			fires = r.inWindow(r.status.Operations)
		}
		if c.InvocationID != "" {
			r.ops.put(c.InvocationID, fires)
		}
	}
	if !r.PerOperation {
		fires = r.inWindow(r.status.Matched)
	}
	return fires
}

// idMap is a map from invocation ids to values that forgets the oldest ids in bulk: when
// the newer half holds limit ids it becomes the older half, and the old older half goes.
type idMap[V any] struct {
	limit    int
	cur, old map[string]V
}

func newIDMap[V any](limit int) idMap[V] {
	return idMap[V]{limit: limit, cur: map[string]V{}}
}

func (m *idMap[V]) get(id string) (V, bool) {
	if v, ok := m.cur[id]; ok {
		return v, true
	}
	v, ok := m.old[id]
	return v, ok
}

func (m *idMap[V]) put(id string, v V) {
	if len(m.cur) >= m.limit {
		m.old, m.cur = m.cur, map[string]V{}
	}
	m.cur[id] = v
}

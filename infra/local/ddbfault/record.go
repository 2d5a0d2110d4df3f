package ddbfault

import (
	"maps"
	"slices"
	"strings"
)

// Count is a number of operations (distinct SDK invocation ids; a request without one is
// an operation of its own) and of the HTTP attempts they took.
type Count struct {
	Operations int `json:"operations"`
	Attempts   int `json:"attempts"`
}

// Counts are counts by class of operation.
type Counts struct {
	// Reads: GetItem, Query, Scan, BatchGetItem, TransactGetItems.
	Reads Count `json:"reads"`
	// Writes: PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems.
	Writes Count `json:"writes"`
	// Other: every other operation (DescribeTable, CreateTable …).
	Other Count `json:"other"`
}

// add counts one attempt of op, the first of its operation when newOp.
func (c *Counts) add(op string, newOp bool) {
	k := &c.Other
	switch {
	case isRead(op):
		k = &c.Reads
	case isWrite(op):
		k = &c.Writes
	}
	k.Attempts++
	if newOp {
		k.Operations++
	}
}

// plus returns the sum of c and o.
func (c Counts) plus(o Counts) Counts {
	sum := func(a, b Count) Count {
		return Count{Operations: a.Operations + b.Operations, Attempts: a.Attempts + b.Attempts}
	}
	return Counts{Reads: sum(c.Reads, o.Reads), Writes: sum(c.Writes, o.Writes), Other: sum(c.Other, o.Other)}
}

// Snapshot is what the proxy recorded since it started or was last Reset.
type Snapshot struct {
	// Calls are the requests that have finished, in the order they arrived (Call.Seq): the
	// first Options.MaxCalls to finish.
	Calls []Call `json:"calls"`
	// Unkept counts the finished requests beyond Options.MaxCalls; the counters include
	// them.
	Unkept int `json:"unkept,omitempty"`
	// Total counts every request that arrived, by class.
	Total Counts `json:"total"`
	// ByOp counts by operation name ("" for requests that named none).
	ByOp map[string]Count `json:"by_op"`
	// ByPK counts by partition key value (Call.PK; "" for requests without one).
	ByPK map[string]Counts `json:"by_pk"`
}

// PK returns the counts of the requests on partition key pk.
func (s Snapshot) PK(pk string) Counts { return s.ByPK[pk] }

// Prefix returns the counts of the requests whose partition key begins with prefix.
func (s Snapshot) Prefix(prefix string) Counts {
	var c Counts
	for pk, n := range s.ByPK {
		if pk != "" && strings.HasPrefix(pk, prefix) {
			c = c.plus(n)
		}
	}
	return c
}

// operationMemory bounds how many invocation ids the counters remember (twice this at
// most); an operation's retries come within seconds, long before it is forgotten.
const operationMemory = 100_000

// recorder holds the calls and counters. The Proxy's lock guards it.
type recorder struct {
	maxCalls int
	// gen changes on every reset, so that a request that arrived before it is not
	// recorded after it.
	gen    int
	seq    int
	calls  []Call
	unkept int
	total  Counts
	byOp   map[string]Count
	byPK   map[string]Counts
	ops    idMap[struct{}]
}

func newRecorder(maxCalls, gen int) recorder {
	return recorder{maxCalls: maxCalls, gen: gen, byOp: map[string]Count{}, byPK: map[string]Counts{},
		ops: newIDMap[struct{}](operationMemory)}
}

// arrive numbers c and counts it.
func (r *recorder) arrive(c *Call) {
	r.seq++
	c.Seq = r.seq
	newOp := true
	if c.InvocationID != "" {
		if _, seen := r.ops.get(c.InvocationID); seen {
			newOp = false
		} else {
			r.ops.put(c.InvocationID, struct{}{})
		}
	}
	r.total.add(c.Op, newOp)
	byOp := r.byOp[c.Op]
	byOp.Attempts++
	if newOp {
		byOp.Operations++
	}
	r.byOp[c.Op] = byOp
	byPK := r.byPK[c.PK]
	byPK.add(c.Op, newOp)
	r.byPK[c.PK] = byPK
}

// finish keeps c, a call that arrived in generation gen.
func (r *recorder) finish(c Call, gen int) {
	switch {
	case gen != r.gen:
	case len(r.calls) >= r.maxCalls:
		r.unkept++
	default:
		r.calls = append(r.calls, c)
	}
}

// snapshot copies what r holds.
func (r *recorder) snapshot() Snapshot {
	calls := slices.Clone(r.calls)
	if calls == nil {
		calls = []Call{}
	}
	slices.SortStableFunc(calls, func(a, b Call) int { return a.Seq - b.Seq })
	return Snapshot{Calls: calls, Unkept: r.unkept, Total: r.total, ByOp: maps.Clone(r.byOp), ByPK: maps.Clone(r.byPK)}
}

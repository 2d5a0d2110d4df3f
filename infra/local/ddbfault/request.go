package ddbfault

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers the proxy reads: the operation, and the SDK's id of one operation (the same
// on each of its retries) and attempt number ("attempt=2; max=3").
const (
	headerTarget       = "X-Amz-Target"
	headerInvocationID = "Amz-Sdk-Invocation-Id"
	headerSDKRequest   = "Amz-Sdk-Request"
	targetPrefix       = "DynamoDB_20120810."
)

// Sets of operations, for Match.Ops.
const (
	// Reads are GetItem, Query, Scan, BatchGetItem and TransactGetItems.
	Reads = "reads"
	// Writes are PutItem, UpdateItem, DeleteItem, BatchWriteItem and TransactWriteItems.
	Writes = "writes"
)

// The classes of operations the counters count.
var (
	readOps  = map[string]bool{"GetItem": true, "Query": true, "Scan": true, "BatchGetItem": true, "TransactGetItems": true}
	writeOps = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true}
)

// Call is one HTTP request through the proxy: one attempt of an SDK operation.
type Call struct {
	// Seq numbers the requests in the order they arrived, from 1 (Reset starts again).
	Seq int `json:"seq"`
	// At is when the request arrived.
	At time.Time `json:"at"`
	// Op is the operation ("UpdateItem"), from X-Amz-Target; empty when it names none.
	Op string `json:"op"`
	// Table is the table the request names; empty when it names none or several (a batch
	// or transaction over several tables).
	Table string `json:"table,omitempty"`
	// PK is the partition key value (Key or Item) the request touches; empty when it
	// touches none (Query, Scan), several, or one of another type than S, N or B.
	PK string `json:"pk,omitempty"`
	// InvocationID is the SDK's amz-sdk-invocation-id: equal across the retries of one
	// operation.
	InvocationID string `json:"invocation_id,omitempty"`
	// Attempt and MaxAttempts are the SDK's amz-sdk-request: attempt=N; max=M (0 when
	// absent).
	Attempt     int `json:"attempt,omitempty"`
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Forwarded reports whether DynamoDB received the request and answered.
	Forwarded bool `json:"forwarded"`
	// Status and ErrorType are DynamoDB's answer: its HTTP status and, for an error, the
	// short __type ("ConditionalCheckFailedException"). Zero when it did not answer.
	Status    int    `json:"status,omitempty"`
	ErrorType string `json:"error_type,omitempty"`
	// Answered is the HTTP status the client got; 0 when its connection was closed without
	// an answer (or it went away first).
	Answered int `json:"answered,omitempty"`
	// Fault is the fault applied: KindFail, KindDelay, KindReset, KindDrop, FaultDown, or
	// KindHook for a hook that let the request pass; empty for none.
	Fault Kind `json:"fault,omitempty"`
	// Rule is the id of the rule that fired on the request (0: none).
	Rule int `json:"rule,omitempty"`
	// Error is why a request went unanswered other than by a fault: DynamoDB could not be
	// reached, or the client went away.
	Error string `json:"error,omitempty"`
}

// isRead and isWrite classify an operation for the counters and for Match.Ops.
func isRead(op string) bool  { return readOps[op] }
func isWrite(op string) bool { return writeOps[op] }

// newCall reads what the proxy records of a request from its headers and body.
// keyAttr names the partition key attribute.
func newCall(h http.Header, body []byte, keyAttr string) Call {
	c := Call{InvocationID: h.Get(headerInvocationID)}
	c.Op, _ = strings.CutPrefix(h.Get(headerTarget), targetPrefix)
	if strings.Contains(c.Op, ".") { // another service's target
		c.Op = ""
	}
	c.Attempt, c.MaxAttempts = parseSDKRequest(h.Get(headerSDKRequest))
	c.Table, c.PK = parseTarget(body, keyAttr)
	return c
}

// parseSDKRequest reads "attempt=N; max=M[; ttl=…]".
func parseSDKRequest(v string) (attempt, maxAttempts int) {
	for part := range strings.SplitSeq(v, ";") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			continue
		}
		switch name {
		case "attempt":
			attempt = n
		case "max":
			maxAttempts = n
		}
	}
	return attempt, maxAttempts
}

// item is an attribute map of which only the key is decoded: name → {"S": "…"}.
type item map[string]map[string]json.RawMessage

// wireRequest is what the proxy reads of a JSON 1.0 request body: the table and the items
// or keys of every single-item, batch and transaction operation.
type wireRequest struct {
	TableName     string                     `json:"TableName"`
	Key           item                       `json:"Key"`
	Item          item                       `json:"Item"`
	RequestItems  map[string]json.RawMessage `json:"RequestItems"`
	TransactItems []map[string]struct {
		TableName string `json:"TableName"`
		Key       item   `json:"Key"`
		Item      item   `json:"Item"`
	} `json:"TransactItems"`
}

// batchGet is one table's part of BatchGetItem's RequestItems.
type batchGet struct {
	Keys []item `json:"Keys"`
}

// batchWrite is one request of BatchWriteItem's RequestItems.
type batchWrite struct {
	PutRequest    *struct{ Item item } `json:"PutRequest"`
	DeleteRequest *struct{ Key item }  `json:"DeleteRequest"`
}

// targets collects the tables and partition keys a request touches.
type targets struct {
	keyAttr     string
	tables, pks map[string]bool
}

func (t *targets) table(name string) {
	if name != "" {
		t.tables[name] = true
	}
}

func (t *targets) key(it item) {
	attr, ok := it[t.keyAttr]
	if !ok {
		return
	}
	for _, typ := range []string{"S", "N", "B"} {
		var v string
		if raw, ok := attr[typ]; ok && json.Unmarshal(raw, &v) == nil {
			t.pks[v] = true
			return
		}
	}
}

// only returns the one member of set, or "" when it has none or several.
func only(set map[string]bool) string {
	if len(set) != 1 {
		return ""
	}
	for v := range set {
		return v
	}
	return ""
}

// parseTarget returns the table and the partition key value a request body touches, each
// empty when it names none or several. A body that is not JSON touches none.
func parseTarget(body []byte, keyAttr string) (table, pk string) {
	var r wireRequest
	if json.Unmarshal(body, &r) != nil {
		return "", ""
	}
	t := targets{keyAttr: keyAttr, tables: map[string]bool{}, pks: map[string]bool{}}
	t.table(r.TableName)
	t.key(r.Key)
	t.key(r.Item)
	for name, raw := range r.RequestItems {
		t.table(name)
		var g batchGet
		if json.Unmarshal(raw, &g) == nil {
			for _, k := range g.Keys {
				t.key(k)
			}
			continue
		}
		var ws []batchWrite
		if json.Unmarshal(raw, &ws) == nil {
			for _, w := range ws {
				if w.PutRequest != nil {
					t.key(w.PutRequest.Item)
				}
				if w.DeleteRequest != nil {
					t.key(w.DeleteRequest.Key)
				}
			}
		}
	}
	for _, ti := range r.TransactItems {
		for _, part := range ti { // Get, Put, Update, Delete or ConditionCheck
			t.table(part.TableName)
			t.key(part.Key)
			t.key(part.Item)
		}
	}
	return only(t.tables), only(t.pks)
}

// errorType returns the short DynamoDB error type of an error answer's body
// ({"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",…}), or
// "" when it has none.
func errorType(body []byte) string {
	var e struct {
		Type string `json:"__type"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	t := e.Type
	if i := strings.LastIndexByte(t, '#'); i >= 0 {
		t = t[i+1:]
	}
	t, _, _ = strings.Cut(t, ":")
	return t
}

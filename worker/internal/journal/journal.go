// Package journal is the worker's memory of each Slack event: one DynamoDB item per dedupe key,
// holding who works on the event (a claim with a lease), how many attempts there have been, and
// a journal of named steps: what the handler had Slack do, as far as it got. It is what makes
// an answer exactly-once: a retry, a Slack redelivery or a DLQ replay claims the item, reads
// the steps, skips what is done and finishes what was cut short.
//
// Every transition is one conditional write of that one item, so nothing is ever decided from
// two writes of which one may have failed:
//
//	absent ──Claim──▶ in_progress, owned (owner token, lease) ──Save──▶ … (steps written, still owned)
//	                        │                         │
//	                        │ Release / lease ends    │ Complete
//	                        ▼                         ▼
//	              in_progress, released ──Claim──▶ …  completed (steps dropped; kept for the TTL)
//
// Each write names its own token, so the SDK retrying a write whose first attempt was applied
// (its response lost) recognises the item as its own instead of failing its condition: a claim
// reads the item the failed condition returns and sees its own owner; later writes accept an
// item whose last write token is theirs. An owner token starts with the SQS message id, so a
// later receive of the same message (after a crash, or a Release that failed) takes over its
// own earlier lease at once, while other copies of the event wait for the lease to end.
package journal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/slackrelay/slackrelay/worker/internal/core"
	"github.com/slackrelay/slackrelay/worker/internal/textcut"
)

// DB is the part of the DynamoDB API the store uses; *dynamodb.Client satisfies it.
type DB interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Outcome of a claim.
type Outcome int

const (
	// Claimed: the caller owns the key until its lease ends and must Complete or Release it.
	Claimed Outcome = iota + 1
	// Done: the key was completed earlier; the delivery is a duplicate.
	Done
	// Busy: another delivery holds a live claim; look again after LeaseUntil.
	Busy
)

func (o Outcome) String() string {
	switch o {
	case Claimed:
		return "claimed"
	case Done:
		return "done"
	case Busy:
		return "busy"
	}
	return "unknown"
}

// Claim is the result of Store.Claim.
type Claim struct {
	Outcome Outcome
	// LeaseUntil is when a Busy key's lease ends.
	LeaseUntil time.Time
	// Holder is the SQS message id of the delivery holding a Busy key ("" when unknown).
	Holder string
	// Lease is set when Outcome is Claimed.
	Lease *Lease
}

// ErrNotOwner means the caller no longer owns the claim (its lease ran out and another
// delivery took the key over, or the key was completed): it must stop, record nothing and
// have Slack do nothing more.
var ErrNotOwner = errors.New("the claim on this event is held by another delivery")

// ErrTooLarge means a write would make the item larger than DynamoDB allows: a permanent
// failure for that shape of answer.
var ErrTooLarge = errors.New("the event's record would exceed its size limit")

// DefaultTTL is how long a key is remembered after its last write: above the DLQ's 14-day
// retention plus the replay window, so that replaying a dead letter never repeats an answer.
const DefaultTTL = 15 * 24 * time.Hour

// MaxItemBytes bounds the item's size as the store estimates it (DynamoDB's limit is 400 KB).
const MaxItemBytes = 350 << 10

// Attribute names in the table. The stack enables TTL on expires_at.
const (
	attrKey       = "pk"
	attrStatus    = "status"
	attrOwner     = "owner"
	attrLease     = "lease_until_ms"
	attrExpires   = "expires_at"
	attrAttempts  = "attempts"
	attrStarted   = "started_ms"
	attrLastError = "last_error"
	attrWrite     = "write_token"
	// attrCompleted (unix ms) is when the event completed; attrUsage what its answer cost
	// (a map, see usageItem), when the handler said.
	attrCompleted = "completed_ms"
	attrUsage     = "usage"
	stepPrefix    = "s:"
	// legacyPrefix holds the steps of records written before the step journal (by call
	// order: "post#1", "stream#1/2"); they are read, never written.
	legacyPrefix = "step:"

	statusInProgress = "in_progress"
	statusCompleted  = "completed"
)

// maxErrorBytes bounds the last_error attribute.
const maxErrorBytes = 1024

// Store is the DynamoDB-backed journal.
type Store struct {
	DB    DB
	Table string
	// TTL is how long a key is kept after its last write (default DefaultTTL).
	TTL time.Duration
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Store) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return DefaultTTL
}

// Owner identifies one receive of one SQS message: the message id (equal across SQS's
// receives of the message) and a random part (new for each receive).
type Owner struct {
	Message string
	nonce   string
}

// NewOwner returns the owner for this receive of the SQS message messageID.
func NewOwner(messageID string) Owner {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return Owner{Message: messageID, nonce: hex.EncodeToString(b[:])}
}

// Token is the owner as stored: "<message id>/<nonce>".
func (o Owner) Token() string { return o.Message + "/" + o.nonce }

func messageOf(token string) string {
	if i := strings.LastIndexByte(token, '/'); i > 0 {
		return token[:i]
	}
	return ""
}

func keyOf(k string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: &types.AttributeValueMemberS{Value: k}}
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// Claim takes key for owner until leaseUntil: a new key, a key released by a failed attempt,
// a key whose lease ended, or a key the same SQS message held on an earlier receive. It costs
// one conditional write; a Busy or Done answer costs a read too when DynamoDB does not return
// the item with the failed condition.
func (s *Store) Claim(ctx context.Context, key string, owner Owner, leaseUntil time.Time) (Claim, error) {
	for range 2 {
		c, expired, err := s.claimOnce(ctx, key, owner, leaseUntil)
		if err != nil || !expired {
			return c, err
		}
		// The record outlived its TTL (DynamoDB deletes expired items with a lag): it says
		// nothing about this delivery. Delete it, then claim again.
		_, err = s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 aws.String(s.Table),
			Key:                       keyOf(key),
			ConditionExpression:       aws.String("#exp < :nows"),
			ExpressionAttributeNames:  map[string]string{"#exp": attrExpires},
			ExpressionAttributeValues: map[string]types.AttributeValue{":nows": num(s.now().Unix())},
		})
		var ccf *types.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &ccf) {
			return Claim{}, fmt.Errorf("claim %s: delete the expired record: %w", key, err)
		}
	}
	return Claim{}, fmt.Errorf("claim %s: the record expired twice in a row", key)
}

func (s *Store) claimOnce(ctx context.Context, key string, owner Owner, leaseUntil time.Time) (Claim, bool, error) {
	now := s.now()
	me := owner.Token()
	out, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.Table),
		Key:       keyOf(key),
		UpdateExpression: aws.String("SET #st = :inprog, #owner = :me, #lease = :lease, #exp = :exp, #w = :me, " +
			"#att = if_not_exists(#att, :zero) + :one, #started = if_not_exists(#started, :nowms)"),
		ConditionExpression: aws.String("attribute_not_exists(#pk) OR (#st = :inprog AND #exp >= :nows AND " +
			"(attribute_not_exists(#owner) OR #lease < :nowms OR begins_with(#owner, :msg)) AND " +
			"(attribute_not_exists(#owner) OR #owner <> :me))"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrKey, "#st": attrStatus, "#owner": attrOwner, "#lease": attrLease, "#exp": attrExpires,
			"#w": attrWrite, "#att": attrAttempts, "#started": attrStarted,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":inprog": str(statusInProgress), ":me": str(me), ":lease": num(leaseUntil.UnixMilli()),
			":exp": num(now.Add(s.ttl()).Unix()), ":zero": num(0), ":one": num(1), ":nowms": num(now.UnixMilli()),
			":nows": num(now.Unix()), ":msg": str(owner.Message + "/"),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		l, err := s.lease(key, me, out.Attributes)
		return Claim{Outcome: Claimed, Lease: l}, false, err
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return Claim{}, false, fmt.Errorf("claim %s: %w", key, err)
	}
	old := ccf.Item
	if old == nil {
		got, gerr := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: keyOf(key), ConsistentRead: aws.Bool(true)})
		if gerr != nil {
			return Claim{}, false, fmt.Errorf("claim %s: read the record in the way: %w", key, gerr)
		}
		if got.Item == nil {
			return Claim{}, true, nil // deleted meanwhile: claim again
		}
		old = got.Item
	}
	switch st := stringAttr(old, attrStatus); {
	case stringAttr(old, attrOwner) == me:
		// This very claim was applied and its answer lost; the SDK's retry failed the
		// condition against it. The item is ours, as the first attempt wrote it.
		l, err := s.lease(key, me, old)
		return Claim{Outcome: Claimed, Lease: l}, false, err
	case numAttr(old, attrExpires) < now.Unix():
		return Claim{}, true, nil
	case st == statusCompleted:
		return Claim{Outcome: Done}, false, nil
	case st == statusInProgress:
		holder := stringAttr(old, attrOwner)
		return Claim{Outcome: Busy, LeaseUntil: time.UnixMilli(numAttr(old, attrLease)), Holder: messageOf(holder)}, false, nil
	default:
		return Claim{}, false, fmt.Errorf("claim %s: record has unknown status %q", key, st)
	}
}

// lease builds the caller's lease from the item as it is after the claim.
func (s *Store) lease(key, me string, item map[string]types.AttributeValue) (*Lease, error) {
	l := &Lease{
		store: dynamoBackend{s}, key: key, owner: me,
		attempt:   int(numAttr(item, attrAttempts)),
		lastError: stringAttr(item, attrLastError),
		started:   time.UnixMilli(numAttr(item, attrStarted)),
		steps:     map[string]json.RawMessage{},
		legacy:    map[string]json.RawMessage{},
		deferred:  map[string]json.RawMessage{},
	}
	for name, v := range item {
		sv, _ := v.(*types.AttributeValueMemberS)
		switch {
		case strings.HasPrefix(name, stepPrefix):
			if sv == nil || !json.Valid([]byte(sv.Value)) {
				return nil, fmt.Errorf("claim %s: step %s is not readable", key, name)
			}
			l.steps[strings.TrimPrefix(name, stepPrefix)] = json.RawMessage(sv.Value)
		case strings.HasPrefix(name, legacyPrefix):
			if sv == nil || !json.Valid([]byte(sv.Value)) {
				return nil, fmt.Errorf("claim %s: step %s is not readable", key, name)
			}
			l.legacy[strings.TrimPrefix(name, legacyPrefix)] = json.RawMessage(sv.Value)
		}
	}
	return l, nil
}

func stringAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func numAttr(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

// Lease is a claim held by one delivery, with the steps of the event as earlier attempts and
// this one left them. Its methods are safe for concurrent use.
type Lease struct {
	store     backend
	key       string
	owner     string
	attempt   int
	lastError string
	started   time.Time

	mu       sync.Mutex
	seq      int
	steps    map[string]json.RawMessage // as the item holds them, plus this attempt's writes
	legacy   map[string]json.RawMessage
	deferred map[string]json.RawMessage // to go out with the next write
	wrote    bool                       // a step was written or deferred in this attempt
	closed   bool                       // completed or released by this lease
	usage    *core.Usage                // kept on the record by Complete
	counts   map[string]int64           // daily counters Complete adds to
}

// Key is the dedupe key the lease holds.
func (l *Lease) Key() string { return l.key }

// Attempt is 1 for the first delivery that claimed the key, n for the n-th, whatever SQS's
// receive count says (a Slack retry, a continuation or a DLQ replay is a new SQS message).
func (l *Lease) Attempt() int { return l.attempt }

// LastError is why the previous attempt ended ("" on the first attempt).
func (l *Lease) LastError() string { return l.lastError }

// Started is when the key was first claimed.
func (l *Lease) Started() time.Time { return l.started }

// Load decodes step name into v and reports whether there is one (written by an earlier
// attempt or this one, deferred writes included).
func (l *Lease) Load(name string, v any) (bool, error) {
	l.mu.Lock()
	raw, ok := l.deferred[name]
	if !ok {
		raw, ok = l.steps[name]
	}
	l.mu.Unlock()
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("read step %s of %s: %w", name, l.key, err)
	}
	return true, nil
}

// Steps lists the names of the steps recorded so far (deferred ones included), sorted.
func (l *Lease) Steps() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.steps)+len(l.deferred))
	for name := range l.steps {
		out = append(out, name)
	}
	for name := range l.deferred {
		if _, ok := l.steps[name]; !ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Legacy returns the step id of a record written before the step journal ("post#1",
// "stream#1/2", …), for the handler library's upgrade path.
func (l *Lease) Legacy(id string) (json.RawMessage, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	raw, ok := l.legacy[id]
	return raw, ok
}

// HasLegacy reports whether the record holds steps written before the step journal.
func (l *Lease) HasLegacy() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.legacy) > 0
}

// Progressed reports whether this attempt wrote (or deferred) any step.
func (l *Lease) Progressed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wrote
}

// Save records step name as v, in one conditional write together with every deferred step,
// provided the lease is still this caller's. ErrNotOwner means another delivery took the key
// over: stop at once. v supersedes whatever was deferred under name; if the write fails, v
// stays deferred for the lease's next write (a Release), like every other deferred step.
func (l *Lease) Save(ctx context.Context, name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("save step %s of %s: %w", name, l.key, err)
	}
	l.mu.Lock()
	l.deferred[name] = raw
	l.wrote = true
	changes := l.takeDeferredLocked()
	l.mu.Unlock()
	return l.write(ctx, "save step "+name, changes, writeSteps, "")
}

// Defer records step name as v in memory: Load sees it at once, and it is written with this
// lease's next write (Save, Release; Complete drops every step anyway). For what an attempt
// learns after its last necessary write: an earlier attempt that finds it missing can tell
// the effect from Slack's state.
func (l *Lease) Defer(name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("defer step %s of %s: %w", name, l.key, err)
	}
	l.mu.Lock()
	l.deferred[name] = raw
	l.wrote = true
	l.mu.Unlock()
	return nil
}

func (l *Lease) takeDeferredLocked() map[string]json.RawMessage {
	changes := make(map[string]json.RawMessage, len(l.deferred)+1)
	for k, v := range l.deferred {
		changes[k] = v
	}
	return changes
}

// SetUsage keeps u (what the event's answer cost) for Complete, which writes it on the
// record in its one write; a later call replaces it. An attempt that does not complete
// writes nothing of it.
func (l *Lease) SetUsage(u core.Usage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.usage = &u
}

// CountDaily adds n to the daily counter name (see Store.DailyCount) when Complete has
// written the completion: one more conditional write, after it. n adds up over calls.
func (l *Lease) CountDaily(name string, n int64) {
	if n == 0 || name == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = map[string]int64{}
	}
	l.counts[name] += n
}

// ErrNotCounted wraps the error of Complete when the event was completed but a daily counter
// could not be added to (CountDaily): the event is answered and must not be retried for it.
var ErrNotCounted = errors.New("the event completed but a daily counter was not added to")

// Complete marks the key answered in one write and drops the steps: only the fact that the
// key is done is kept, for the TTL, with when it completed and the usage SetUsage gave.
// Then it adds to the daily counters CountDaily named, one write each: an event's counts
// are added at most once, since it completes once (a crash between the completion and a
// count loses that count). A count that fails is reported wrapping ErrNotCounted.
func (l *Lease) Complete(ctx context.Context) error {
	if err := l.write(ctx, "complete", nil, writeComplete, ""); err != nil {
		return err
	}
	l.mu.Lock()
	counts := l.counts
	l.mu.Unlock()
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		if err := l.store.count(ctx, l.key, name, counts[name]); err != nil {
			errs = append(errs, fmt.Errorf("count %d on %s: %w", counts[name], name, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("complete %s: %w: %w", l.key, ErrNotCounted, errors.Join(errs...))
	}
	return nil
}

// Release gives the key up after an attempt that did not finish: the lease ends now so the
// next delivery can claim it at once, and the steps stay (deferred ones included) so that it
// resumes rather than repeats. reason is kept for that delivery's logs (no secrets: it is an
// error text).
func (l *Lease) Release(ctx context.Context, reason string) error {
	l.mu.Lock()
	changes := l.takeDeferredLocked()
	l.mu.Unlock()
	return l.write(ctx, "release", changes, writeRelease, reason)
}

type writeKind int

const (
	writeSteps writeKind = iota
	writeRelease
	writeComplete
)

// write is the one write primitive: steps set, and the event completed or released, in one
// conditional UpdateItem. The condition accepts the caller's own last write token, so the
// SDK's retry of a write that was applied (its answer lost) succeeds instead of reading as a
// lost claim.
func (l *Lease) write(ctx context.Context, op string, changes map[string]json.RawMessage, kind writeKind, reason string) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("%s %s: %w", op, l.key, ErrNotOwner)
	}
	l.seq++
	u := update{key: l.key, owner: l.owner, token: l.owner + "#" + strconv.Itoa(l.seq), steps: changes, kind: kind, reason: reason}
	size := 0
	if kind != writeComplete {
		for name, raw := range l.steps {
			if _, changed := changes[name]; !changed {
				size += len(stepPrefix) + len(name) + len(raw)
			}
		}
		for name, raw := range changes {
			size += len(stepPrefix) + len(name) + len(raw)
		}
		for name, raw := range l.legacy {
			size += len(legacyPrefix) + len(name) + len(raw)
		}
	} else {
		u.usage = l.usage
		for name := range l.steps {
			u.drop = append(u.drop, stepPrefix+name)
		}
		for name := range l.legacy {
			u.drop = append(u.drop, legacyPrefix+name)
		}
	}
	l.mu.Unlock()
	if size > MaxItemBytes {
		return fmt.Errorf("%s %s: %d bytes of steps: %w", op, l.key, size, ErrTooLarge)
	}
	err := l.store.update(ctx, u)
	if err != nil {
		if errors.Is(err, errConflict) {
			l.mu.Lock()
			l.closed = true
			l.mu.Unlock()
			return fmt.Errorf("%s %s: %w", op, l.key, ErrNotOwner)
		}
		return fmt.Errorf("%s %s: %w", op, l.key, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, raw := range changes {
		l.steps[name] = raw
		if d, ok := l.deferred[name]; ok && string(d) == string(raw) {
			delete(l.deferred, name)
		}
	}
	if kind != writeSteps {
		l.closed = true
	}
	return nil
}

// update is one conditional write of a lease: steps set, and the event completed or
// released. It applies when the caller still owns the claim of an unfinished event, or when
// the record's last write token is u.token (the same write applied once, its answer lost).
type update struct {
	key, owner, token string
	steps             map[string]json.RawMessage
	kind              writeKind
	reason            string
	drop              []string    // attribute names of steps and legacy steps (on complete)
	usage             *core.Usage // on complete, when the handler gave one
}

// errConflict is a backend's "the condition failed": the caller no longer owns the claim.
var errConflict = errors.New("condition failed")

// backend is where a lease writes: DynamoDB (Store) or memory (Memory). Claims are made by
// each store itself; every write after the claim goes through this one primitive.
type backend interface {
	update(ctx context.Context, u update) error
	// count adds n to the daily counter name for the event key (after its completion).
	count(ctx context.Context, key, name string, n int64) error
}

// dynamoBackend writes a lease's updates with one conditional UpdateItem each.
type dynamoBackend struct{ s *Store }

func (b dynamoBackend) update(ctx context.Context, u update) error {
	s := b.s
	names := map[string]string{"#st": attrStatus, "#exp": attrExpires, "#owner": attrOwner, "#w": attrWrite}
	values := map[string]types.AttributeValue{
		":inprog": str(statusInProgress), ":me": str(u.owner), ":tok": str(u.token),
		":exp": num(s.now().Add(s.ttl()).Unix()),
	}
	set := []string{"#exp = :exp", "#w = :tok"}
	var remove []string
	if u.kind != writeComplete {
		// Steps in a stable order, so equal writes make equal expressions.
		stepNames := make([]string, 0, len(u.steps))
		for name := range u.steps {
			stepNames = append(stepNames, name)
		}
		sort.Strings(stepNames)
		for i, name := range stepNames {
			n, v := "#s"+strconv.Itoa(i), ":s"+strconv.Itoa(i)
			names[n], values[v] = stepPrefix+name, str(string(u.steps[name]))
			set = append(set, n+" = "+v)
		}
	}
	switch u.kind {
	case writeRelease:
		names["#lease"], names["#err"] = attrLease, attrLastError
		values[":zero"], values[":reason"] = num(0), str(textcut.Truncate(u.reason, maxErrorBytes))
		set = append(set, "#lease = :zero", "#err = :reason")
		remove = append(remove, "#owner")
	case writeComplete:
		names["#lease"], names["#err"], names["#cms"] = attrLease, attrLastError, attrCompleted
		values[":done"], values[":cms"] = str(statusCompleted), num(s.now().UnixMilli())
		set = append(set, "#st = :done", "#cms = :cms")
		if u.usage != nil {
			names["#usage"], values[":usage"] = attrUsage, usageItem(*u.usage)
			set = append(set, "#usage = :usage")
		}
		remove = append(remove, "#owner", "#lease", "#err")
		for i, attr := range u.drop {
			n := "#r" + strconv.Itoa(i)
			names[n] = attr
			remove = append(remove, n)
		}
	}
	expr := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Table),
		Key:                       keyOf(u.key),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("(#owner = :me AND #st = :inprog) OR #w = :tok"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return errConflict
	}
	return err
}

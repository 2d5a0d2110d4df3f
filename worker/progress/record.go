// Package progress is the worker's memory of each Slack event: one DynamoDB item per dedupe
// key that says who is working on the event (a claim with a lease), how many attempts there
// have been, and which of the handler's effects (reply parts, response_url posts, views,
// streams) already reached Slack. It is what makes a reply exactly-once: a retry, a Slack
// redelivery or a DLQ replay reads the record, skips what was delivered and finishes what was
// cut short.
//
// A key moves through: absent → in_progress (claimed: owner + lease until the invocation's
// deadline) → released (in_progress, no owner, lease 0: an attempt failed; its steps stay) →
// claimed again by the next delivery (attempt n+1) … → completed. Each write that records an
// effect is conditional on the caller still owning the claim, so a worker whose lease was
// taken over can never record (or, by checking first, perform) an effect twice.
package progress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/slackrelay/slackrelay/worker/text"
)

// DB is the part of the DynamoDB API the store uses; *dynamodb.Client satisfies it.
type DB interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
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
	// Lease is set when Outcome is Claimed.
	Lease *Lease
}

// ErrNotOwner means the caller no longer owns the claim (its lease ran out and another
// delivery took the key over): it must stop, record nothing and post nothing more.
var ErrNotOwner = errors.New("the claim on this event is held by another delivery")

// DefaultTTL is how long a key is remembered after its last write: longer than the DLQ's
// 14-day retention, so that replaying a dead letter never repeats a reply.
const DefaultTTL = 15 * 24 * time.Hour

// MaxStepBytes bounds one step's JSON (the planned text of a reply is in it). DynamoDB items
// hold at most 400 KB; callers trim what they plan to fit.
const MaxStepBytes = 96 << 10

// Attribute names in the table. The stack enables TTL on expires_at.
const (
	attrKey       = "pk"
	attrStatus    = "status"
	attrOwner     = "owner"
	attrLease     = "lease_until_ms"
	attrExpires   = "expires_at"
	attrAttempts  = "attempts"
	attrLastError = "last_error"
	stepPrefix    = "step:"

	statusInProgress = "in_progress"
	statusCompleted  = "completed"
)

// maxErrorBytes bounds the last_error attribute.
const maxErrorBytes = 1024

// Store is the DynamoDB-backed progress store.
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

func keyOf(k string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: &types.AttributeValueMemberS{Value: k}}
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// Claim tries to take key for owner until leaseUntil. A fresh key costs one conditional
// write; a key released by a failed attempt, or whose lease ran out, costs two.
func (s *Store) Claim(ctx context.Context, key, owner string, leaseUntil time.Time) (Claim, error) {
	now := s.now()
	item := keyOf(key)
	item[attrStatus] = str(statusInProgress)
	item[attrOwner] = str(owner)
	item[attrLease] = num(leaseUntil.UnixMilli())
	item[attrAttempts] = num(1)
	item[attrExpires] = num(now.Add(s.ttl()).Unix())
	_, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.Table),
		Item:      item,
		// Free, or expired (DynamoDB deletes expired items with a lag): a fresh record.
		ConditionExpression:                 aws.String("attribute_not_exists(#pk) OR #exp < :nows"),
		ExpressionAttributeNames:            map[string]string{"#pk": attrKey, "#exp": attrExpires},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":nows": num(now.Unix())},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return Claim{Outcome: Claimed, Lease: &Lease{store: s, key: key, owner: owner, attempt: 1, steps: map[string]Step{}}}, nil
	}
	old, err := s.existing(ctx, key, err)
	if err != nil {
		return Claim{}, err
	}
	// Each round either decides or loses a race to another claimer and reads what it wrote.
	for range 3 {
		switch st := stringAttr(old, attrStatus); {
		case st == statusCompleted:
			return Claim{Outcome: Done}, nil
		case st != statusInProgress:
			return Claim{}, fmt.Errorf("claim %s: record has unknown status %q", key, st)
		}
		if lease := time.UnixMilli(numAttr(old, attrLease)); !lease.Before(now) {
			return Claim{Outcome: Busy, LeaseUntil: lease}, nil
		}
		c, err := s.takeOver(ctx, key, owner, leaseUntil, now)
		if err == nil {
			return c, nil
		}
		if old, err = s.existing(ctx, key, err); err != nil {
			return Claim{}, err
		}
	}
	return Claim{}, fmt.Errorf("claim %s: lost three races for the key", key)
}

// existing returns the item a conditional write found in its way, or err when err is not a
// failed condition.
func (s *Store) existing(ctx context.Context, key string, err error) (map[string]types.AttributeValue, error) {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, fmt.Errorf("claim %s: %w", key, err)
	}
	if ccf.Item != nil {
		return ccf.Item, nil
	}
	got, gerr := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: keyOf(key), ConsistentRead: aws.Bool(true)})
	if gerr != nil {
		return nil, fmt.Errorf("claim %s: read the existing record: %w", key, gerr)
	}
	if got.Item == nil {
		// Deleted between the two calls: treat as released so the next round claims it.
		return map[string]types.AttributeValue{attrStatus: str(statusInProgress), attrLease: num(0)}, nil
	}
	return got.Item, nil
}

// takeOver claims a released record or one whose lease ran out, keeping its steps.
func (s *Store) takeOver(ctx context.Context, key, owner string, leaseUntil, now time.Time) (Claim, error) {
	out, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.Table),
		Key:              keyOf(key),
		UpdateExpression: aws.String("SET #owner = :me, #lease = :lease, #exp = :exp, #att = if_not_exists(#att, :zero) + :one"),
		ConditionExpression: aws.String(
			"attribute_exists(#pk) AND #st = :inprog AND (attribute_not_exists(#lease) OR #lease < :nowms) AND #exp >= :nows"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrKey, "#owner": attrOwner, "#lease": attrLease, "#exp": attrExpires, "#att": attrAttempts, "#st": attrStatus,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me": str(owner), ":lease": num(leaseUntil.UnixMilli()), ":exp": num(now.Add(s.ttl()).Unix()),
			":zero": num(0), ":one": num(1), ":inprog": str(statusInProgress),
			":nowms": num(now.UnixMilli()), ":nows": num(now.Unix()),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return Claim{}, err
	}
	l := &Lease{store: s, key: key, owner: owner, attempt: int(numAttr(out.Attributes, attrAttempts)),
		lastError: stringAttr(out.Attributes, attrLastError), steps: map[string]Step{}}
	for name, v := range out.Attributes {
		id, ok := strings.CutPrefix(name, stepPrefix)
		if !ok {
			continue
		}
		var st Step
		sv, _ := v.(*types.AttributeValueMemberS)
		if sv == nil || json.Unmarshal([]byte(sv.Value), &st) != nil {
			return Claim{}, fmt.Errorf("claim %s: step %s is not readable", key, id)
		}
		l.steps[id] = st
	}
	return Claim{Outcome: Claimed, Lease: l}, nil
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

// Step is one effect a handler had Slack perform, as far as it got. Reply-like steps plan
// their parts before the first is sent, so a retry finishes the same answer instead of
// starting another.
type Step struct {
	// Kind names the helper that wrote it ("post", "respond", "ephemeral", "update", "view",
	// "stream", or "stream-post" for a stream answered with a post).
	Kind string `json:"kind"`
	// Parts are the planned texts, recorded before the first one is sent.
	Parts []string `json:"parts,omitempty"`
	// Sent has one entry per delivered part, in order: the Slack ts, or "" where Slack
	// returns none (response_url).
	Sent []string `json:"sent,omitempty"`
	// Pending says the part after the last sent one was handed to Slack and no answer came
	// back (a crash, a timeout): it may or may not be visible.
	Pending bool `json:"pending,omitempty"`
	// Value is a step's single result: a view id, a stream's ts.
	Value string `json:"value,omitempty"`
	// Done says the step finished (every part sent, the stream stopped).
	Done bool `json:"done,omitempty"`
	// Chars is how many characters a finished streamed message holds, so a resumed answer
	// skips them.
	Chars int `json:"chars,omitempty"`
}

// Lease is a claim held by one delivery. Its methods are safe for concurrent use.
type Lease struct {
	store     *Store
	key       string
	owner     string
	attempt   int
	lastError string

	mu    sync.Mutex
	steps map[string]Step
}

// Key is the dedupe key the lease holds.
func (l *Lease) Key() string { return l.key }

// Attempt is 1 for the first delivery that claimed the key, n for the n-th, whatever SQS's
// receive count says (a Slack retry or a DLQ replay is a new SQS message).
func (l *Lease) Attempt() int { return l.attempt }

// LastError is why the previous attempt failed ("" on the first attempt).
func (l *Lease) LastError() string { return l.lastError }

// Step returns what earlier attempts (or this one) recorded under id.
func (l *Lease) Step(id string) (Step, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.steps[id]
	return st, ok
}

// Save records step id, provided the lease is still this caller's. ErrNotOwner means another
// delivery took the key over: stop at once.
func (l *Lease) Save(ctx context.Context, id string, st Step) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("save step %s of %s: %w", id, l.key, err)
	}
	if len(raw) > MaxStepBytes {
		return fmt.Errorf("save step %s of %s: %d bytes, more than the %d a step may hold", id, l.key, len(raw), MaxStepBytes)
	}
	_, err = l.store.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.store.Table),
		Key:                       keyOf(l.key),
		UpdateExpression:          aws.String("SET #step = :step, #exp = :exp"),
		ConditionExpression:       aws.String("#owner = :me AND #st = :inprog"),
		ExpressionAttributeNames:  map[string]string{"#step": stepPrefix + id, "#exp": attrExpires, "#owner": attrOwner, "#st": attrStatus},
		ExpressionAttributeValues: map[string]types.AttributeValue{":step": str(string(raw)), ":exp": num(l.store.now().Add(l.store.ttl()).Unix()), ":me": str(l.owner), ":inprog": str(statusInProgress)},
	})
	if err := l.ownerErr("save step "+id, err); err != nil {
		return err
	}
	l.mu.Lock()
	l.steps[id] = st
	l.mu.Unlock()
	return nil
}

// Complete marks the key answered. The steps' planned texts are dropped (only the record that
// the key is done is kept, for the TTL).
func (l *Lease) Complete(ctx context.Context) error {
	names := map[string]string{"#st": attrStatus, "#exp": attrExpires, "#lease": attrLease, "#owner": attrOwner, "#err": attrLastError}
	remove := []string{"#owner", "#lease", "#err"}
	l.mu.Lock()
	i := 0
	for id := range l.steps {
		alias := "#s" + strconv.Itoa(i)
		names[alias] = stepPrefix + id
		remove = append(remove, alias)
		i++
	}
	l.mu.Unlock()
	_, err := l.store.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.store.Table),
		Key:                       keyOf(l.key),
		UpdateExpression:          aws.String("SET #st = :done, #exp = :exp REMOVE " + strings.Join(remove, ", ")),
		ConditionExpression:       aws.String("#owner = :me"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":done": str(statusCompleted), ":exp": num(l.store.now().Add(l.store.ttl()).Unix()), ":me": str(l.owner)},
	})
	return l.ownerErr("complete", err)
}

// Release gives the key up after a failed attempt: the lease ends now so the next delivery
// can claim it at once, and the steps stay so that it resumes rather than repeats. reason is
// kept for that delivery's logs (no secrets: it is an error text).
func (l *Lease) Release(ctx context.Context, reason string) error {
	_, err := l.store.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.store.Table),
		Key:                       keyOf(l.key),
		UpdateExpression:          aws.String("SET #lease = :zero, #err = :reason, #exp = :exp REMOVE #owner"),
		ConditionExpression:       aws.String("#owner = :me AND #st = :inprog"),
		ExpressionAttributeNames:  map[string]string{"#lease": attrLease, "#err": attrLastError, "#exp": attrExpires, "#owner": attrOwner, "#st": attrStatus},
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": num(0), ":reason": str(text.Truncate(reason, maxErrorBytes)), ":exp": num(l.store.now().Add(l.store.ttl()).Unix()), ":me": str(l.owner), ":inprog": str(statusInProgress)},
	})
	return l.ownerErr("release", err)
}

func (l *Lease) ownerErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("%s %s: %w", op, l.key, ErrNotOwner)
	}
	return fmt.Errorf("%s %s: %w", op, l.key, err)
}

// notePrefix keeps notes apart from dedupe keys in the table.
const notePrefix = "note:"

// PutNote keeps a small value under key for ttl (what an assistant thread's user is looking
// at, say): state a handler needs across events, outside any one event's record.
func (s *Store) PutNote(ctx context.Context, key, value string, ttl time.Duration) error {
	item := keyOf(notePrefix + key)
	item["value"] = str(value)
	item[attrExpires] = num(s.now().Add(ttl).Unix())
	if _, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.Table), Item: item}); err != nil {
		return fmt.Errorf("put note %s: %w", key, err)
	}
	return nil
}

// Note returns the value kept under key, or "" when there is none (or it expired).
func (s *Store) Note(ctx context.Context, key string) (string, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: keyOf(notePrefix + key)})
	if err != nil {
		return "", fmt.Errorf("read note %s: %w", key, err)
	}
	if numAttr(out.Item, attrExpires) < s.now().Unix() {
		return "", nil
	}
	return stringAttr(out.Item, "value"), nil
}

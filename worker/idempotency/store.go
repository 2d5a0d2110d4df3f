// Package idempotency records which Slack events have been answered, so that Slack's retries,
// SQS's duplicate deliveries, crashed workers and DLQ replays give one reply per event.
//
// A key moves through three states: absent → in_progress (a claim with a lease that ends
// with the invocation's deadline) → completed (kept for a TTL). A failed attempt deletes its
// claim so a retry can run; a claim whose lease ran out (its worker died) can be taken over.
package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DB is the part of the DynamoDB API the store uses; *dynamodb.Client satisfies it.
type DB interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Outcome of a claim.
type Outcome int

const (
	// Claimed: this caller owns the key and must Complete or Release it.
	Claimed Outcome = iota + 1
	// TakenOver: claimed, but a previous claim's lease had run out: its worker may have
	// replied before dying, so the handler should check before replying again.
	TakenOver
	// Done: the key was completed earlier; the delivery is a duplicate.
	Done
	// Busy: another worker holds a live claim; retry after the lease ends.
	Busy
)

func (o Outcome) String() string {
	return [...]string{"unknown", "claimed", "taken_over", "done", "busy"}[o]
}

// Claim is the result of Store.Claim.
type Claim struct {
	Outcome Outcome
	// LeaseUntil is when a Busy key's lease ends.
	LeaseUntil time.Time
}

// ErrNotOwner means Complete or Release found the key claimed by someone else.
var ErrNotOwner = errors.New("idempotency key is claimed by another owner")

// Attribute names in the table. The stack enables TTL on expires_at.
const (
	attrKey     = "pk"
	attrStatus  = "status"
	attrOwner   = "owner"
	attrLease   = "lease_until_ms"
	attrExpires = "expires_at"

	statusInProgress = "in_progress"
	statusCompleted  = "completed"
)

// Store is the DynamoDB-backed idempotency store.
type Store struct {
	DB    DB
	Table string
	// TTL is how long a completed key is remembered (default 24h).
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
	return 24 * time.Hour
}

func key(k string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrKey: &types.AttributeValueMemberS{Value: k}}
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// Claim tries to take key for owner until leaseUntil with one conditional write.
func (s *Store) Claim(ctx context.Context, k, owner string, leaseUntil time.Time) (Claim, error) {
	now := s.now()
	item := key(k)
	item[attrStatus] = &types.AttributeValueMemberS{Value: statusInProgress}
	item[attrOwner] = &types.AttributeValueMemberS{Value: owner}
	item[attrLease] = num(leaseUntil.UnixMilli())
	// An abandoned claim disappears from the table a day after its lease, at the latest.
	item[attrExpires] = num(leaseUntil.Add(s.ttl()).Unix())
	out, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.Table),
		Item:      item,
		// Free, expired (TTL deletion lags), or an in-progress claim whose lease ran out.
		ConditionExpression: aws.String("attribute_not_exists(#pk) OR #exp < :nows OR (#st = :inprog AND #lease < :nowms)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrKey, "#exp": attrExpires, "#st": attrStatus, "#lease": attrLease,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":nows":   num(now.Unix()),
			":nowms":  num(now.UnixMilli()),
			":inprog": &types.AttributeValueMemberS{Value: statusInProgress},
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnValues:                        types.ReturnValueAllOld,
	})
	if err == nil {
		if len(out.Attributes) > 0 {
			// The write replaced an expired claim (or an expired record).
			return Claim{Outcome: TakenOver}, nil
		}
		return Claim{Outcome: Claimed}, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return Claim{}, fmt.Errorf("claim %s: %w", k, err)
	}
	old := ccf.Item
	if old == nil {
		got, gerr := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: key(k), ConsistentRead: aws.Bool(true)})
		if gerr != nil {
			return Claim{}, fmt.Errorf("claim %s: read existing claim: %w", k, gerr)
		}
		old = got.Item
	}
	if status, _ := old[attrStatus].(*types.AttributeValueMemberS); status != nil && status.Value == statusCompleted {
		return Claim{Outcome: Done}, nil
	}
	c := Claim{Outcome: Busy}
	if l, ok := old[attrLease].(*types.AttributeValueMemberN); ok {
		if ms, err := strconv.ParseInt(l.Value, 10, 64); err == nil {
			c.LeaseUntil = time.UnixMilli(ms)
		}
	}
	return c, nil
}

// Complete marks key answered and keeps it for the TTL.
func (s *Store) Complete(ctx context.Context, k, owner string) error {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Table),
		Key:                       key(k),
		UpdateExpression:          aws.String("SET #st = :done, #exp = :exp REMOVE #lease"),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#st": attrStatus, "#exp": attrExpires, "#lease": attrLease, "#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":done": &types.AttributeValueMemberS{Value: statusCompleted}, ":exp": num(s.now().Add(s.ttl()).Unix()), ":owner": &types.AttributeValueMemberS{Value: owner}},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("complete %s: %w", k, ErrNotOwner)
	}
	if err != nil {
		return fmt.Errorf("complete %s: %w", k, err)
	}
	return nil
}

// Release deletes owner's claim on key so that a retry can run.
func (s *Store) Release(ctx context.Context, k, owner string) error {
	_, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.Table),
		Key:                       key(k),
		ConditionExpression:       aws.String("#owner = :owner AND #st = :inprog"),
		ExpressionAttributeNames:  map[string]string{"#owner": attrOwner, "#st": attrStatus},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: owner}, ":inprog": &types.AttributeValueMemberS{Value: statusInProgress}},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("release %s: %w", k, ErrNotOwner)
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", k, err)
	}
	return nil
}

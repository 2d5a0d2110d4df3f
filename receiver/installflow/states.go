package installflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ErrStateUsed: the state was already used by an earlier redirect (a replay).
var ErrStateUsed = errors.New("installflow: this install state was already used")

// States remembers the states redirects have used, across every receiver instance, so that a
// state is accepted once.
type States interface {
	// Use records state as used until expires; ErrStateUsed if it already was.
	Use(ctx context.Context, state string, expires time.Time) error
}

// StateKey is the key a used state is recorded under: state#<sha256 of the state, hex>. The
// state itself is not stored.
func StateKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return "state#" + hex.EncodeToString(sum[:])
}

// TTLAttribute is the table's TTL attribute (unix seconds): DynamoDB deletes a used state's
// record after it, the state's cookie having expired long before. Installations have none.
const TTLAttribute = "ttl"

// dynamoPutter is the one DynamoDB call DynamoStates makes.
type dynamoPutter interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

var (
	_ dynamoPutter = (*dynamodb.Client)(nil)
	_ States       = (*DynamoStates)(nil)
	_ States       = (*MemoryStates)(nil)
)

// DynamoStates keeps used states in the installations table (key pk = StateKey), one
// conditional PutItem per redirect: of two redirects with the same state, on whatever
// instances, exactly one succeeds.
type DynamoStates struct {
	DB    dynamoPutter
	Table string
}

// Use implements States.
func (d DynamoStates) Use(ctx context.Context, state string, expires time.Time) error {
	key := StateKey(state)
	_, err := d.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(d.Table),
		Item: map[string]types.AttributeValue{
			"pk":         &types.AttributeValueMemberS{Value: key},
			TTLAttribute: &types.AttributeValueMemberN{Value: strconv.FormatInt(expires.Unix(), 10)},
		},
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": "pk"},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ErrStateUsed
	}
	if err != nil {
		return fmt.Errorf("installflow: recording the used state %s: %w", key, err)
	}
	return nil
}

// MemoryStates keeps used states in memory: one process only (tests).
type MemoryStates struct {
	mu   sync.Mutex
	used map[string]time.Time
}

// Use implements States.
func (m *MemoryStates) Use(_ context.Context, state string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used == nil {
		m.used = map[string]time.Time{}
	}
	key := StateKey(state)
	if _, ok := m.used[key]; ok {
		return ErrStateUsed
	}
	m.used[key] = expires
	return nil
}

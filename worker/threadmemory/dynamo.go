package threadmemory

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

// DynamoDB is the part of the DynamoDB client the memory calls.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

// NewDynamo returns the thread memory in table (key pk S, TTL attribute expires_at: the
// worker's IDEMPOTENCY_TABLE), one item per thread under the key thread:<team>:<channel>:<ts>.
// A call reads the item (strongly consistent) and writes it whole with a PutItem conditional
// on its version. now is its clock (nil: time.Now). Errors name the operation, never a
// message's text.
func NewDynamo(db DynamoDB, table string, limits Limits, now func() time.Time) *Store {
	return newStore(&dynamoBackend{db: db, table: table}, limits, now)
}

type dynamoBackend struct {
	db    DynamoDB
	table string
}

// The item's attributes.
const (
	aKey     = "pk"
	aTurns   = "turns" // a list of maps: ts, user, text, bot
	aVersion = "version"
	aExpires = "expires_at" // unix seconds, the table's TTL attribute
	tTS      = "ts"
	tUser    = "user"
	tText    = "text"
	tBot     = "bot"
)

func (d *dynamoBackend) load(ctx context.Context, id string) (record, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table),
		Key: map[string]types.AttributeValue{aKey: &types.AttributeValueMemberS{Value: id}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return record{}, fmt.Errorf("threadmemory: read a thread: %w", err)
	}
	if out.Item == nil {
		return record{}, nil
	}
	var rec record
	if rec.version, err = number(out.Item[aVersion]); err != nil || rec.version < 1 {
		return record{}, fmt.Errorf("threadmemory: a thread record without a valid version (%v)", err)
	}
	exp, err := number(out.Item[aExpires])
	if err != nil {
		return record{}, fmt.Errorf("threadmemory: a thread record without a valid expiry (%v)", err)
	}
	rec.expires = time.Unix(exp, 0)
	list, _ := out.Item[aTurns].(*types.AttributeValueMemberL)
	if list == nil {
		return rec, nil
	}
	for _, v := range list.Value {
		m, ok := v.(*types.AttributeValueMemberM)
		if !ok {
			return record{}, errors.New("threadmemory: a thread record with a turn that is not a map")
		}
		t := Turn{TS: str(m.Value[tTS]), User: str(m.Value[tUser]), Text: str(m.Value[tText])}
		if b, ok := m.Value[tBot].(*types.AttributeValueMemberBOOL); ok {
			t.Bot = b.Value
		}
		rec.turns = append(rec.turns, t)
	}
	return rec, nil
}

func (d *dynamoBackend) save(ctx context.Context, id string, rec record, prev int64) error {
	turns := make([]types.AttributeValue, 0, len(rec.turns))
	for _, t := range rec.turns {
		m := map[string]types.AttributeValue{tTS: &types.AttributeValueMemberS{Value: t.TS}, tText: &types.AttributeValueMemberS{Value: t.Text}}
		if t.User != "" {
			m[tUser] = &types.AttributeValueMemberS{Value: t.User}
		}
		if t.Bot {
			m[tBot] = &types.AttributeValueMemberBOOL{Value: true}
		}
		turns = append(turns, &types.AttributeValueMemberM{Value: m})
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: map[string]types.AttributeValue{
		aKey:     &types.AttributeValueMemberS{Value: id},
		aTurns:   &types.AttributeValueMemberL{Value: turns},
		aVersion: num(prev + 1),
		aExpires: num(rec.expires.Unix()),
	}}
	if prev == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		in.ConditionExpression = aws.String("version = :v")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": num(prev)}
	}
	_, err := d.db.PutItem(ctx, in)
	var cf *types.ConditionalCheckFailedException
	if errors.As(err, &cf) {
		return errConflict
	}
	if err != nil {
		return fmt.Errorf("threadmemory: write a thread: %w", err)
	}
	return nil
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func number(v types.AttributeValue) (int64, error) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, errors.New("not a number")
	}
	return strconv.ParseInt(n.Value, 10, 64)
}

func str(v types.AttributeValue) string {
	s, _ := v.(*types.AttributeValueMemberS)
	if s == nil {
		return ""
	}
	return s.Value
}

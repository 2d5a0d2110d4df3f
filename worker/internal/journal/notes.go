package journal

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

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

// Peek reads key's record without claiming it and reports whether the event was completed
// (a consistent read). The worker uses it for events too old to claim safely.
func (s *Store) Peek(ctx context.Context, key string) (done bool, err error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: keyOf(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("read the record of %s: %w", key, err)
	}
	return stringAttr(out.Item, attrStatus) == statusCompleted && numAttr(out.Item, attrExpires) >= s.now().Unix(), nil
}

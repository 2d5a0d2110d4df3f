package journal

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/slackrelay/slackrelay/worker/internal/core"
)

// Daily counters live beside the events, one item per counter and UTC day:
//
//	pk "count:<name>:<YYYY-MM-DD>", n (the count), last_key (the event that added last),
//	expires_at (CounterTTL after the last add)
//
// An event adds to a counter once it has completed (Lease.CountDaily, Lease.Complete), with
// one conditional UpdateItem whose condition refuses the event that added last: the SDK's
// retry of an add that was applied but whose answer was lost is not counted twice.
const (
	counterPrefix = "count:"
	attrCount     = "n"
	attrLastKey   = "last_key"
)

// CounterTTL is how long a daily counter is kept after its last add: long enough to read
// yesterday's from any time zone.
const CounterTTL = 3 * 24 * time.Hour

// counterKey is the item of counter name on the UTC day of now.
func counterKey(name string, now time.Time) string {
	return counterPrefix + name + ":" + now.UTC().Format(time.DateOnly)
}

// DailyCount is counter name's value for the current UTC day (0 when nothing was added).
func (s *Store) DailyCount(ctx context.Context, name string) (int64, error) {
	now := s.now()
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: keyOf(counterKey(name, now))})
	if err != nil {
		return 0, fmt.Errorf("read daily counter %s: %w", name, err)
	}
	if out.Item == nil || numAttr(out.Item, attrExpires) < now.Unix() {
		return 0, nil
	}
	return numAttr(out.Item, attrCount), nil
}

func (b dynamoBackend) count(ctx context.Context, key, name string, n int64) error {
	s := b.s
	now := s.now()
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Table),
		Key:                       keyOf(counterKey(name, now)),
		UpdateExpression:          aws.String("ADD #n :n SET #exp = :exp, #last = :key"),
		ConditionExpression:       aws.String("attribute_not_exists(#last) OR #last <> :key"),
		ExpressionAttributeNames:  map[string]string{"#n": attrCount, "#exp": attrExpires, "#last": attrLastKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(n), ":exp": num(now.Add(CounterTTL).Unix()), ":key": str(key)},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // this event added last: its add was applied already
	}
	return err
}

// The usage map's attribute names.
const (
	usageModel      = "model"
	usageTeam       = "team"
	usageInput      = "input_tokens"
	usageOutput     = "output_tokens"
	usageCached     = "cached_tokens"
	usageCacheWrite = "cache_write_tokens"
	usageModelCalls = "model_calls"
	usageToolCalls  = "tool_calls"
	usageModelMs    = "model_ms"
	usageCost       = "cost_usd"
)

// usageItem is u as the record's usage attribute: a map, so that it reads in the console and
// a scan can filter on its team; the cost is left out when it is not known.
func usageItem(u core.Usage) types.AttributeValue {
	m := map[string]types.AttributeValue{
		usageInput: num(u.InputTokens), usageOutput: num(u.OutputTokens), usageCached: num(u.CachedTokens),
		usageCacheWrite: num(u.CacheWriteTokens), usageModelCalls: num(u.ModelCalls), usageToolCalls: num(u.ToolCalls),
		usageModelMs: num(u.ModelMillis),
	}
	if u.Model != "" {
		m[usageModel] = str(u.Model)
	}
	if u.Team != "" {
		m[usageTeam] = str(u.Team)
	}
	if u.CostUSD != nil {
		m[usageCost] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(*u.CostUSD, 'f', -1, 64)}
	}
	return &types.AttributeValueMemberM{Value: m}
}

// usageOf reads a record's usage attribute.
func usageOf(v types.AttributeValue) (core.Usage, error) {
	mv, ok := v.(*types.AttributeValueMemberM)
	if !ok {
		return core.Usage{}, errors.New("usage is not a map")
	}
	m := mv.Value
	u := core.Usage{
		Model: stringAttr(m, usageModel), Team: stringAttr(m, usageTeam),
		InputTokens: numAttr(m, usageInput), OutputTokens: numAttr(m, usageOutput), CachedTokens: numAttr(m, usageCached),
		CacheWriteTokens: numAttr(m, usageCacheWrite), ModelCalls: numAttr(m, usageModelCalls), ToolCalls: numAttr(m, usageToolCalls),
		ModelMillis: numAttr(m, usageModelMs),
	}
	if c, ok := m[usageCost].(*types.AttributeValueMemberN); ok {
		f, err := strconv.ParseFloat(c.Value, 64)
		if err != nil {
			return u, fmt.Errorf("usage cost %q: %w", c.Value, err)
		}
		u.CostUSD = &f
	}
	return u, nil
}

// Scanner is the part of the DynamoDB API ScanAnswered uses; *dynamodb.Client satisfies it.
type Scanner interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

var _ Scanner = (*dynamodb.Client)(nil)

// Answered is a completed event's record that carries its answer's usage.
type Answered struct {
	// Key is the event's dedupe key; Completed when it completed.
	Key       string
	Completed time.Time
	Usage     core.Usage
}

// ScanAnswered reads the whole table, page after page, for the events that completed in
// [from, to) and whose record carries usage (of team only, when team is not ""), and calls
// fn with each. It returns how many pages it read. It stops at the first error, a page's or
// fn's; what fn was given until then is only part of the answer, and the caller must say
// so. A scan reads every item of the table (DynamoDB filters after reading): it costs read
// capacity for the whole table, about 1 RCU per 8 KB with eventually consistent reads.
func ScanAnswered(ctx context.Context, db Scanner, table string, from, to time.Time, team string, fn func(Answered) error) (pages int, err error) {
	names := map[string]string{"#st": attrStatus, "#cms": attrCompleted, "#usage": attrUsage}
	values := map[string]types.AttributeValue{
		":done": str(statusCompleted), ":from": num(from.UnixMilli()), ":to": num(to.UnixMilli() - 1),
	}
	filter := "#st = :done AND #cms BETWEEN :from AND :to AND attribute_exists(#usage)"
	if team != "" {
		names["#team"], values[":team"] = usageTeam, str(team)
		filter += " AND #usage.#team = :team"
	}
	in := &dynamodb.ScanInput{
		TableName: aws.String(table), FilterExpression: aws.String(filter),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ProjectionExpression: aws.String("#pk, #cms, #usage"),
	}
	names["#pk"] = attrKey
	for {
		out, err := db.Scan(ctx, in)
		if err != nil {
			return pages, fmt.Errorf("scan %s (page %d): %w", table, pages+1, err)
		}
		pages++
		for _, item := range out.Items {
			u, err := usageOf(item[attrUsage])
			if err != nil {
				return pages, fmt.Errorf("record %s: %w", stringAttr(item, attrKey), err)
			}
			a := Answered{Key: stringAttr(item, attrKey), Completed: time.UnixMilli(numAttr(item, attrCompleted)).UTC(), Usage: u}
			if err := fn(a); err != nil {
				return pages, err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return pages, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

package install

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// dynamoAPI is the part of the DynamoDB client the store calls.
type dynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var (
	_ dynamoAPI = (*dynamodb.Client)(nil)
	_ Store     = (*DynamoStore)(nil)
)

// DynamoStore is the Store of the stack: the Installations table of infra/template.yaml, key
// pk (S) = T#<team> or E#<enterprise>. Every write that depends on what was read is a
// conditional write; reads are strongly consistent, so a waiter sees a refresh at once.
// Errors name the key and the operation, never a token.
type DynamoStore struct {
	db    dynamoAPI
	table string
	now   func() time.Time
}

// NewDynamoStore returns the store of table; now stamps InstalledAt and UpdatedAt (nil:
// time.Now).
func NewDynamoStore(db dynamoAPI, table string, now func() time.Time) *DynamoStore {
	if now == nil {
		now = time.Now
	}
	return &DynamoStore{db: db, table: table, now: now}
}

// The attributes.
const (
	aKey          = "pk"
	aTeam         = "team_id"
	aEnterprise   = "enterprise_id"
	aIsEnterprise = "is_enterprise_install"
	aBotToken     = "bot_token"
	aBotUser      = "bot_user_id"
	aBotID        = "bot_id"
	aAppID        = "app_id"
	aScopes       = "scopes" // comma-separated, as Slack writes them
	aRefresh      = "refresh_token"
	aExpires      = "expires_at" // unix milliseconds
	aStatus       = "status"
	aReason       = "status_reason"
	aInstalled    = "installed_at"
	aUpdated      = "updated_at"
	aVersion      = "version"
	aLeaseUntil   = "lease_until"
	aLeaseOwner   = "lease_owner"
)

func sv(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func nv(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func ms(t time.Time) int64 { return t.UnixMilli() }

// update builds an UpdateExpression; every attribute goes through a name placeholder
// (status is a reserved word).
type update struct {
	set, remove []string
	names       map[string]string
	values      map[string]types.AttributeValue
}

func newUpdate() *update {
	return &update{names: map[string]string{}, values: map[string]types.AttributeValue{}}
}

func (u *update) name(a string) string { u.names["#"+a] = a; return "#" + a }

func (u *update) value(v types.AttributeValue) string {
	p := ":v" + strconv.Itoa(len(u.values))
	u.values[p] = v
	return p
}

func (u *update) setS(a, s string) {
	if s == "" {
		u.remove = append(u.remove, u.name(a))
		return
	}
	u.set = append(u.set, u.name(a)+" = "+u.value(sv(s)))
}

func (u *update) setTime(a string, t time.Time) {
	if t.IsZero() {
		u.remove = append(u.remove, u.name(a))
		return
	}
	u.set = append(u.set, u.name(a)+" = "+u.value(nv(ms(t))))
}

func (u *update) expr(a, e string) { u.set = append(u.set, u.name(a)+" = "+e) }

func (u *update) dropLease() { u.remove = append(u.remove, u.name(aLeaseUntil), u.name(aLeaseOwner)) }

func (u *update) bumpVersion() {
	v := u.name(aVersion)
	u.expr(aVersion, "if_not_exists("+v+", "+u.value(nv(0))+") + "+u.value(nv(1)))
}

func (u *update) String() string {
	var b strings.Builder
	if len(u.set) > 0 {
		b.WriteString("SET " + strings.Join(u.set, ", "))
	}
	if len(u.remove) > 0 {
		b.WriteString(" REMOVE " + strings.Join(u.remove, ", "))
	}
	return b.String()
}

func (s *DynamoStore) run(ctx context.Context, key string, u *update, cond string, ret bool) (map[string]types.AttributeValue, error) {
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       map[string]types.AttributeValue{aKey: sv(key)},
		UpdateExpression:          aws.String(u.String()),
		ExpressionAttributeNames:  u.names,
		ExpressionAttributeValues: u.values,
	}
	if cond != "" {
		in.ConditionExpression = aws.String(cond)
	}
	if ret {
		in.ReturnValues = types.ReturnValueAllNew
	}
	out, err := s.db.UpdateItem(ctx, in)
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return nil, ErrConflict
		}
		return nil, err
	}
	return out.Attributes, nil
}

// Save implements Store.
func (s *DynamoStore) Save(ctx context.Context, inst Installation) (Installation, error) {
	if err := inst.validate(); err != nil {
		return Installation{}, err
	}
	now := s.now().UTC()
	u := newUpdate()
	u.setS(aTeam, inst.TeamID)
	u.setS(aEnterprise, inst.EnterpriseID)
	u.expr(aIsEnterprise, u.value(&types.AttributeValueMemberBOOL{Value: inst.IsEnterpriseInstall}))
	u.setS(aBotToken, inst.BotToken)
	u.setS(aBotUser, inst.BotUserID)
	u.setS(aBotID, inst.BotID)
	u.setS(aAppID, inst.AppID)
	u.setS(aScopes, strings.Join(inst.Scopes, ","))
	u.setS(aRefresh, inst.RefreshToken)
	u.setTime(aExpires, inst.ExpiresAt)
	u.setS(aStatus, string(StatusActive))
	u.setS(aReason, "")
	u.expr(aInstalled, "if_not_exists("+u.name(aInstalled)+", "+u.value(nv(ms(now)))+")")
	u.setTime(aUpdated, now)
	u.bumpVersion()
	u.dropLease()
	item, err := s.run(ctx, inst.Key(), u, "", true)
	if err != nil {
		return Installation{}, fmt.Errorf("install: saving %s: %w", inst.Key(), err)
	}
	return decode(item)
}

// Get implements Store.
func (s *DynamoStore) Get(ctx context.Context, key string) (Installation, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            map[string]types.AttributeValue{aKey: sv(key)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Installation{}, fmt.Errorf("install: reading %s: %w", key, err)
	}
	if len(out.Item) == 0 {
		return Installation{}, fmt.Errorf("%w under %s", ErrNotFound, key)
	}
	return decode(out.Item)
}

func (s *DynamoStore) setStatus(ctx context.Context, key string, status Status, reason string, erase bool) error {
	u := newUpdate()
	u.setS(aStatus, string(status))
	u.setS(aReason, reason)
	u.setTime(aUpdated, s.now())
	u.bumpVersion()
	u.dropLease()
	if erase {
		u.remove = append(u.remove, u.name(aBotToken), u.name(aRefresh))
	}
	_, err := s.run(ctx, key, u, "attribute_exists("+u.name(aKey)+")", false)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("%w under %s", ErrNotFound, key)
	}
	if err != nil {
		return fmt.Errorf("install: marking %s %s: %w", key, status, err)
	}
	return nil
}

// Disable implements Store.
func (s *DynamoStore) Disable(ctx context.Context, key, reason string) error {
	return s.setStatus(ctx, key, StatusDisabled, reason, false)
}

// Uninstall implements Store.
func (s *DynamoStore) Uninstall(ctx context.Context, key, reason string) error {
	return s.setStatus(ctx, key, StatusUninstalled, reason, true)
}

// Delete implements Store.
func (s *DynamoStore) Delete(ctx context.Context, key string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table),
		Key:       map[string]types.AttributeValue{aKey: sv(key)},
	})
	if err != nil {
		return fmt.Errorf("install: deleting %s: %w", key, err)
	}
	return nil
}

// TakeRefreshLease implements Store.
func (s *DynamoStore) TakeRefreshLease(ctx context.Context, key string, version int64, owner string, now, until time.Time) error {
	u := newUpdate()
	u.setTime(aLeaseUntil, until)
	u.setS(aLeaseOwner, owner)
	lease := u.name(aLeaseUntil)
	cond := u.name(aVersion) + " = " + u.value(nv(version)) +
		" AND " + u.name(aStatus) + " = " + u.value(sv(string(StatusActive))) +
		" AND (attribute_not_exists(" + lease + ") OR " + lease + " < " + u.value(nv(ms(now))) + ")"
	_, err := s.run(ctx, key, u, cond, false)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("%w: refresh lease of %s at version %d not taken", ErrConflict, key, version)
	}
	if err != nil {
		return fmt.Errorf("install: taking the refresh lease of %s: %w", key, err)
	}
	return nil
}

// CompleteRefresh implements Store.
func (s *DynamoStore) CompleteRefresh(ctx context.Context, key string, version int64, owner string, r Refreshed, now time.Time) (Installation, error) {
	u := newUpdate()
	u.setS(aBotToken, r.AccessToken)
	u.setS(aRefresh, r.RefreshToken)
	u.setTime(aExpires, r.ExpiresAt(now))
	u.setTime(aUpdated, now)
	u.bumpVersion()
	u.dropLease()
	cond := u.name(aVersion) + " = " + u.value(nv(version)) + " AND " + u.name(aLeaseOwner) + " = " + u.value(sv(owner))
	item, err := s.run(ctx, key, u, cond, true)
	if errors.Is(err, ErrConflict) {
		return Installation{}, fmt.Errorf("%w: refresh of %s at version %d not stored: lease lost", ErrConflict, key, version)
	}
	if err != nil {
		return Installation{}, fmt.Errorf("install: storing the refresh of %s: %w", key, err)
	}
	return decode(item)
}

// ReleaseRefreshLease implements Store.
func (s *DynamoStore) ReleaseRefreshLease(ctx context.Context, key, owner string) error {
	u := newUpdate()
	u.dropLease()
	_, err := s.run(ctx, key, u, u.name(aLeaseOwner)+" = "+u.value(sv(owner)), false)
	if err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("install: releasing the refresh lease of %s: %w", key, err)
	}
	return nil
}

// DisableIfVersion implements Store.
func (s *DynamoStore) DisableIfVersion(ctx context.Context, key string, version int64, reason string, now time.Time) error {
	u := newUpdate()
	u.setS(aStatus, string(StatusDisabled))
	u.setS(aReason, reason)
	u.setTime(aUpdated, now)
	u.bumpVersion()
	u.dropLease()
	_, err := s.run(ctx, key, u, u.name(aVersion)+" = "+u.value(nv(version)), false)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("%w: %s moved past version %d", ErrConflict, key, version)
	}
	if err != nil {
		return fmt.Errorf("install: disabling %s: %w", key, err)
	}
	return nil
}

// decode reads an item; a malformed one is an error naming the attribute, never its value.
func decode(item map[string]types.AttributeValue) (Installation, error) {
	var inst Installation
	var bad []string
	str := func(a string) string {
		switch v := item[a].(type) {
		case nil:
		case *types.AttributeValueMemberS:
			return v.Value
		default:
			bad = append(bad, a)
		}
		return ""
	}
	num := func(a string) int64 {
		switch v := item[a].(type) {
		case nil:
		case *types.AttributeValueMemberN:
			n, err := strconv.ParseInt(v.Value, 10, 64)
			if err == nil {
				return n
			}
			bad = append(bad, a)
		default:
			bad = append(bad, a)
		}
		return 0
	}
	tm := func(a string) time.Time {
		if n := num(a); n != 0 {
			return time.UnixMilli(n).UTC()
		}
		return time.Time{}
	}
	key := str(aKey)
	inst.TeamID = str(aTeam)
	inst.EnterpriseID = str(aEnterprise)
	if b, ok := item[aIsEnterprise].(*types.AttributeValueMemberBOOL); ok {
		inst.IsEnterpriseInstall = b.Value
	}
	inst.BotToken = str(aBotToken)
	inst.BotUserID = str(aBotUser)
	inst.BotID = str(aBotID)
	inst.AppID = str(aAppID)
	if sc := str(aScopes); sc != "" {
		inst.Scopes = strings.Split(sc, ",")
	}
	inst.RefreshToken = str(aRefresh)
	inst.ExpiresAt = tm(aExpires)
	inst.Status = Status(str(aStatus))
	inst.StatusReason = str(aReason)
	inst.InstalledAt = tm(aInstalled)
	inst.UpdatedAt = tm(aUpdated)
	inst.Version = num(aVersion)
	inst.RefreshLeaseUntil = tm(aLeaseUntil)
	inst.RefreshLeaseOwner = str(aLeaseOwner)
	if len(bad) > 0 {
		return Installation{}, fmt.Errorf("install: item %s has malformed attributes %v", key, bad)
	}
	return inst, nil
}

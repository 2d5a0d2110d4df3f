package engine

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/slackrelay/slackrelay/shared/envelope"
	"github.com/slackrelay/slackrelay/shared/logging"
)

// tenants keeps one batch's tenants apart: a tenant (the workspace, or the org of an
// org-wide install) runs at most limit records at once, so one busy workspace cannot take
// every slot of the batch; and once a record of a tenant meets a rate limit (Slack's are per
// workspace), that tenant's records not yet started go back to the queue for the Retry-After
// without running, while the other tenants' records go on.
//
// The records start in the batch's order, except that one whose tenant is at its bound is
// passed over for the next record of another tenant until a slot of its own frees.
type tenants struct {
	limit   int // 0: no bound
	mu      sync.Mutex
	freed   *sync.Cond
	running map[string]int
	until   map[string]time.Time // rate limited until
}

func newTenants(limit int) *tenants {
	ts := &tenants{limit: max(limit, 0), running: map[string]int{}, until: map[string]time.Time{}}
	ts.freed = sync.NewCond(&ts.mu)
	return ts
}

// fitTo lifts the bound for a batch where it makes room for no one: a batch of one tenant
// (always so with one workspace), and a batch no larger than its slots, where every record
// starts at once anyway. Bounding a tenant there only makes the batch last longer, and the
// next receive, where the other tenants' messages wait, comes later.
func (ts *tenants) fitTo(pending []*message, slots int) {
	if len(pending) <= slots {
		ts.limit = 0
		return
	}
	for _, m := range pending[1:] {
		if m.tenantKey != pending[0].tenantKey {
			return
		}
	}
	ts.limit = 0
}

// next removes from pending and returns the first record whose tenant has a free slot,
// waiting for a slot to free when every pending record's tenant is at its bound. The
// record's tenant then counts it as running until done(key).
func (ts *tenants) next(pending *[]*message) *message {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for {
		for i, m := range *pending {
			if ts.limit == 0 || ts.running[m.tenantKey] < ts.limit {
				*pending = append((*pending)[:i], (*pending)[i+1:]...)
				ts.running[m.tenantKey]++
				return m
			}
		}
		ts.freed.Wait()
	}
}

// done gives back the slot of a record of tenant key.
func (ts *tenants) done(key string) {
	ts.mu.Lock()
	ts.running[key]--
	ts.mu.Unlock()
	ts.freed.Broadcast()
}

// rateLimited holds tenant key's records that have not started until until.
func (ts *tenants) rateLimited(key string, until time.Time) {
	ts.mu.Lock()
	if until.After(ts.until[key]) {
		ts.until[key] = until
	}
	ts.mu.Unlock()
}

// waitFor reports how long a record of tenant key must wait before it may start (0: none).
func (ts *tenants) waitFor(key string, now time.Time) time.Duration {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return max(ts.until[key].Sub(now), 0)
}

// tenantOf is the tenant of a record: its MessageGroupId (the receiver sets it to the
// tenant), else the receiver's TeamId attribute, else the team (or enterprise) in its
// envelope. An undecodable record has none ("" is then a tenant of its own).
func tenantOf(rec *events.SQSMessage) string {
	if g := rec.Attributes["MessageGroupId"]; g != "" {
		return g
	}
	if a, ok := rec.MessageAttributes[envelope.AttrTeamID]; ok && a.StringValue != nil && *a.StringValue != "" {
		return *a.StringValue
	}
	env, err := envelope.Decode([]byte(rec.Body))
	if err != nil {
		return ""
	}
	if env.TeamID == "" {
		return env.EnterpriseID
	}
	return env.TeamID
}

// heldBack settles a record whose tenant met a rate limit earlier in this batch: it goes
// back to the queue for the rest of the wait without running.
func (m *message) heldBack(ctx context.Context, wait time.Duration) bool {
	m.log = m.p.c.Log.With(logging.KeyRequestID, m.rec.MessageId, logging.KeyTeamID, m.tenantKey)
	m.log.Info("this tenant met a rate limit earlier in the batch; the record waits for it without running", "retry_after", wait.String())
	m.p.c.Metrics.Count("TenantRateLimited", 1)
	return m.retryLater(ctx, wait)
}

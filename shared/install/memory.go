package install

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Store in memory, for tests and the local world. It keeps the DynamoStore's
// contract (contract_test.go), conditional writes included.
type MemoryStore struct {
	mu    sync.Mutex
	items map[string]Installation
	now   func() time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store; now stamps InstalledAt and UpdatedAt (nil: time.Now).
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{items: map[string]Installation{}, now: now}
}

func clone(i Installation) Installation {
	i.Scopes = slices.Clone(i.Scopes)
	if len(i.Scopes) == 0 {
		i.Scopes = nil
	}
	return i
}

// msUTC keeps times as DynamoStore does: UTC, to the millisecond.
func msUTC(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

// Save implements Store.
func (m *MemoryStore) Save(_ context.Context, inst Installation) (Installation, error) {
	if err := inst.validate(); err != nil {
		return Installation{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := msUTC(m.now())
	old, found := m.items[inst.Key()]
	inst = clone(inst)
	inst.ExpiresAt = msUTC(inst.ExpiresAt)
	inst.Status, inst.StatusReason = StatusActive, ""
	inst.InstalledAt, inst.UpdatedAt = now, now
	if found {
		inst.InstalledAt = old.InstalledAt
	}
	inst.Version = old.Version + 1
	inst.RefreshLeaseUntil, inst.RefreshLeaseOwner = time.Time{}, ""
	m.items[inst.Key()] = inst
	return clone(inst), nil
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, key string) (Installation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst, ok := m.items[key]
	if !ok {
		return Installation{}, fmt.Errorf("%w under %s", ErrNotFound, key)
	}
	return clone(inst), nil
}

func (m *MemoryStore) setStatus(key string, status Status, reason string, erase bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst, ok := m.items[key]
	if !ok {
		return fmt.Errorf("%w under %s", ErrNotFound, key)
	}
	inst.Status, inst.StatusReason = status, reason
	if erase {
		inst.BotToken, inst.RefreshToken = "", ""
	}
	inst.Version++
	inst.UpdatedAt = msUTC(m.now())
	inst.RefreshLeaseUntil, inst.RefreshLeaseOwner = time.Time{}, ""
	m.items[key] = inst
	return nil
}

// Disable implements Store.
func (m *MemoryStore) Disable(_ context.Context, key, reason string) error {
	return m.setStatus(key, StatusDisabled, reason, false)
}

// Uninstall implements Store.
func (m *MemoryStore) Uninstall(_ context.Context, key, reason string) error {
	return m.setStatus(key, StatusUninstalled, reason, true)
}

// Delete implements Store.
func (m *MemoryStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.items, key)
	return nil
}

// TakeRefreshLease implements Store.
func (m *MemoryStore) TakeRefreshLease(_ context.Context, key string, version int64, owner string, now, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst, ok := m.items[key]
	if !ok || inst.Version != version || inst.Status != StatusActive || (inst.RefreshLeaseOwner != "" && !inst.RefreshLeaseUntil.Before(now)) {
		return fmt.Errorf("%w: refresh lease of %s at version %d not taken", ErrConflict, key, version)
	}
	inst.RefreshLeaseOwner, inst.RefreshLeaseUntil = owner, msUTC(until)
	m.items[key] = inst
	return nil
}

// CompleteRefresh implements Store.
func (m *MemoryStore) CompleteRefresh(_ context.Context, key string, version int64, owner string, r Refreshed, now time.Time) (Installation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst, ok := m.items[key]
	if !ok || inst.Version != version || inst.RefreshLeaseOwner != owner {
		return Installation{}, fmt.Errorf("%w: refresh of %s at version %d not stored: lease lost", ErrConflict, key, version)
	}
	inst.BotToken, inst.RefreshToken, inst.ExpiresAt = r.AccessToken, r.RefreshToken, msUTC(r.ExpiresAt(now))
	inst.Version++
	inst.UpdatedAt = msUTC(now)
	inst.RefreshLeaseUntil, inst.RefreshLeaseOwner = time.Time{}, ""
	m.items[key] = inst
	return clone(inst), nil
}

// ReleaseRefreshLease implements Store.
func (m *MemoryStore) ReleaseRefreshLease(_ context.Context, key, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst, ok := m.items[key]
	if ok && inst.RefreshLeaseOwner == owner {
		inst.RefreshLeaseUntil, inst.RefreshLeaseOwner = time.Time{}, ""
		m.items[key] = inst
	}
	return nil
}

// DisableIfVersion implements Store.
func (m *MemoryStore) DisableIfVersion(_ context.Context, key string, version int64, reason string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst, ok := m.items[key]
	if !ok || inst.Version != version {
		return fmt.Errorf("%w: %s moved past version %d", ErrConflict, key, version)
	}
	inst.Status, inst.StatusReason = StatusDisabled, reason
	inst.Version++
	inst.UpdatedAt = msUTC(now)
	inst.RefreshLeaseUntil, inst.RefreshLeaseOwner = time.Time{}, ""
	m.items[key] = inst
	return nil
}

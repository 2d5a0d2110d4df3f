package threadmemory

import (
	"context"
	"slices"
	"sync"
	"time"
)

// NewMemory returns a thread memory kept in this process, for tests: the same logic as
// NewDynamo's over a map, with the same conditional writes. now is its clock (nil: time.Now).
func NewMemory(limits Limits, now func() time.Time) *Store {
	return newStore(&memoryBackend{records: map[string]record{}}, limits, now)
}

type memoryBackend struct {
	mu      sync.Mutex
	records map[string]record
}

func (m *memoryBackend) load(_ context.Context, id string) (record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.records[id]
	r.turns = slices.Clone(r.turns)
	return r, nil
}

func (m *memoryBackend) save(_ context.Context, id string, rec record, prev int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records[id].version != prev {
		return errConflict
	}
	rec.version = prev + 1
	rec.turns = slices.Clone(rec.turns)
	m.records[id] = rec
	return nil
}

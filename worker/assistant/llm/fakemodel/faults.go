package fakemodel

// Faults is the faults a stand-in injects into its next requests, each for a number of them,
// oldest first. The zero value holds none. It is not safe for concurrent use: the stand-in
// holds its own lock around it, with the rest of its state.
type Faults[F any] struct {
	queue []queued[F]
}

type queued[F any] struct {
	fault     F
	remaining int
}

// Add makes f apply to the next n requests after those of the faults already added (n ≤ 0:
// none).
func (q *Faults[F]) Add(n int, f F) {
	if n > 0 {
		q.queue = append(q.queue, queued[F]{f, n})
	}
}

// Next returns the fault for the request now starting, or nil.
func (q *Faults[F]) Next() *F {
	if len(q.queue) == 0 {
		return nil
	}
	f := q.queue[0].fault
	if q.queue[0].remaining--; q.queue[0].remaining <= 0 {
		q.queue = q.queue[1:]
	}
	return &f
}

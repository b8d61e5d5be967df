package ring

import (
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// SPSC is a bounded single-producer, single-consumer ring.
//
// One goroutine pushes and one goroutine pops (see the package comment). Each
// side keeps a private copy of the other side's index and reloads the shared
// one only when the copy says the ring is full (producer) or empty (consumer),
// so in steady state each side touches the other's cache line once per lap or
// per batch instead of once per element.
type SPSC[T any] struct {
	_ cpu.CacheLinePad

	// Read-only after NewSPSC; shared by both sides without invalidation.
	slots []T
	mask  uint64

	_ cpu.CacheLinePad

	// Producer line: written by the producer, tail read by the consumer.
	tail      atomic.Uint64 // next index to write; everything below is published
	headCache uint64        // producer's last view of head; head >= headCache

	_ cpu.CacheLinePad

	// Consumer line: written by the consumer, head read by the producer.
	head      atomic.Uint64 // next index to read; everything below is free
	tailCache uint64        // consumer's last view of tail; tail >= tailCache

	_ cpu.CacheLinePad
}

// NewSPSC returns an empty ring of size slots. size must be a power of two
// >= 2; anything else panics.
func NewSPSC[T any](size int) *SPSC[T] {
	checkSize("NewSPSC", size)
	return &SPSC[T]{
		slots: make([]T, size),
		mask:  uint64(size - 1),
	}
}

// Cap returns the number of slots.
func (r *SPSC[T]) Cap() int { return len(r.slots) }

// Len returns the number of elements in the ring. It is exact only when
// neither side is running; otherwise it is a snapshot in [0, Cap()].
func (r *SPSC[T]) Len() int {
	// Load head before tail: tail only grows and never passes below head, so
	// a head read first can be no greater than the tail read after it and the
	// difference cannot underflow. Ordering only; no data is read through it.
	h := r.head.Load()
	t := r.tail.Load()
	return int(min(t-h, uint64(len(r.slots))))
}

// Push appends v and reports whether there was room. Producer only.
func (r *SPSC[T]) Push(v T) bool {
	// Only the producer stores tail, so this load sees its own last store;
	// it is atomic because the consumer loads tail concurrently.
	t := r.tail.Load()
	size := uint64(len(r.slots))
	if t-r.headCache >= size {
		// Acquire the consumer's release in Pop/PopBatch: its read and
		// zeroing of the slot we are about to overwrite happen-before our
		// write below.
		r.headCache = r.head.Load()
		if t-r.headCache >= size {
			return false
		}
	}
	r.slots[t&r.mask] = v
	// Release: the slot write above happens-before any consumer load of tail
	// that observes t+1, and so before the consumer reads the slot.
	r.tail.Store(t + 1)
	return true
}

// PushWith is PushBounded that fills the slot in place: fill gets the
// slot (holding whatever an earlier lap left there) and writes what the
// consumer will read. Producer only. Writing only the fields in use keeps
// a large element from costing a cache-line transfer per unused line.
func (r *SPSC[T]) PushWith(limit int, fill func(*T)) bool {
	// Own index: see Push.
	t := r.tail.Load()
	bound := uint64(min(limit, len(r.slots)))
	if t-r.headCache >= bound {
		// Acquire the consumer's frees; see Push.
		r.headCache = r.head.Load()
		if t-r.headCache >= bound {
			return false
		}
	}
	fill(&r.slots[t&r.mask])
	// Release: fill's writes happen-before the consumer's load of tail
	// that observes t+1.
	r.tail.Store(t + 1)
	return true
}

// PopWith hands the oldest element to use in place, then frees its slot
// without zeroing it: for elements that hold no pointers (nothing for the
// garbage collector to keep alive), read only where they are used.
// Consumer only. It reports false, without calling use, when the ring is
// empty.
func (r *SPSC[T]) PopWith(use func(*T)) bool {
	// Own index: see Pop.
	h := r.head.Load()
	if h == r.tailCache {
		// Acquire the producer's slot writes; see Pop.
		r.tailCache = r.tail.Load()
		if h == r.tailCache {
			return false
		}
	}
	use(&r.slots[h&r.mask])
	// Release: use's reads happen-before the producer's load of head that
	// observes h+1, and so before it reuses the slot.
	r.head.Store(h + 1)
	return true
}

// PushBounded is Push with the ring held to limit elements (limit ≤ Cap):
// it refuses when limit are already queued. Producer only. Unlike
// comparing Len with limit before Push, it reads the consumer's index only
// when its cached view says the bound is reached, so a producer far from
// the bound causes no cache-line transfer for it.
func (r *SPSC[T]) PushBounded(v T, limit int) bool {
	// Own index: see Push.
	t := r.tail.Load()
	bound := uint64(min(limit, len(r.slots)))
	if t-r.headCache >= bound {
		// Acquire the consumer's frees; see Push.
		r.headCache = r.head.Load()
		if t-r.headCache >= bound {
			return false
		}
	}
	r.slots[t&r.mask] = v
	// Release: see Push.
	r.tail.Store(t + 1)
	return true
}

// PushBatch appends as many elements of vs as fit, in order, publishes them
// with one store and returns how many were pushed. Producer only.
func (r *SPSC[T]) PushBatch(vs []T) int {
	// Own index: see Push.
	t := r.tail.Load()
	size := uint64(len(r.slots))
	free := size - (t - r.headCache)
	if free < uint64(len(vs)) {
		// Acquire the consumer's frees; see Push.
		r.headCache = r.head.Load()
		free = size - (t - r.headCache)
	}
	n := int(min(free, uint64(len(vs))))
	if n == 0 {
		return 0
	}
	i := int(t & r.mask)
	c := copy(r.slots[i:], vs[:n])
	copy(r.slots, vs[c:n])
	// Release: all n slot writes above happen-before the consumer's load of
	// tail that observes t+n; one store publishes the whole batch.
	r.tail.Store(t + uint64(n))
	return n
}

// Pop removes and returns the oldest element; ok is false when the ring is
// empty. Consumer only.
func (r *SPSC[T]) Pop() (v T, ok bool) {
	// Only the consumer stores head, so this load sees its own last store;
	// it is atomic because the producer loads head concurrently.
	h := r.head.Load()
	if h == r.tailCache {
		// Acquire the producer's release in Push/PushBatch: its slot
		// writes below the loaded tail happen-before our reads.
		r.tailCache = r.tail.Load()
		if h == r.tailCache {
			return v, false
		}
	}
	p := &r.slots[h&r.mask]
	v = *p
	var zero T
	*p = zero
	// Release: our read and zeroing of the slot happen-before the producer's
	// load of head that observes h+1, and so before it reuses the slot.
	r.head.Store(h + 1)
	return v, true
}

// PopBatch removes up to len(out) of the oldest elements into out, frees
// their slots with one store and returns how many were popped. Consumer only.
func (r *SPSC[T]) PopBatch(out []T) int {
	// Own index: see Pop.
	h := r.head.Load()
	avail := r.tailCache - h
	if avail < uint64(len(out)) {
		// Acquire the producer's slot writes; see Pop.
		r.tailCache = r.tail.Load()
		avail = r.tailCache - h
	}
	n := int(min(avail, uint64(len(out))))
	if n == 0 {
		return 0
	}
	i := int(h & r.mask)
	c := copy(out[:n], r.slots[i:])
	copy(out[c:n], r.slots)
	clear(r.slots[i : i+c])
	clear(r.slots[:n-c])
	// Release: the reads and zeroing of all n slots happen-before the
	// producer's load of head that observes h+n; one store frees the batch.
	r.head.Store(h + uint64(n))
	return n
}

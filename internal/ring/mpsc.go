package ring

import (
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// mpscSlot is one cell of an MPSC ring. seq says whose turn the cell is, for
// the position pos that maps to it (pos&mask == index):
//
//	seq == pos      free: the producer that reserves pos may write it
//	seq == pos+1    published: the consumer at pos may read it
//	anything else   another lap's turn (full for producers, empty for the consumer)
//
// The consumer frees a cell by setting seq to pos+size, the next lap's pos.
type mpscSlot[T any] struct {
	seq atomic.Uint64
	val T
}

// MPSC is a bounded multi-producer, single-consumer ring after Dmitry Vyukov's
// bounded MPMC queue, specialised to one consumer.
//
// Producers reserve positions by advancing tail with a compare-and-swap, write
// their cells, then publish each cell through its sequence number. The consumer
// takes cells strictly in position order and only once published, so a
// producer that has reserved a cell but not yet published it holds up the
// consumer (Pop reports empty) rather than being skipped: delivery is FIFO by
// reservation and each producer's pushes stay in order.
type MPSC[T any] struct {
	_ cpu.CacheLinePad

	// Read-only after NewMPSC.
	slots []mpscSlot[T]
	mask  uint64

	_ cpu.CacheLinePad

	// Producers' line: contended by all producers, read by Len.
	tail atomic.Uint64 // next position to reserve

	_ cpu.CacheLinePad

	// Consumer's line: written by the consumer, read by Len.
	head atomic.Uint64 // next position to consume

	_ cpu.CacheLinePad
}

// NewMPSC returns an empty ring of size slots. size must be a power of two
// >= 2 (with one slot, "free for the next lap" and "published" would be the
// same sequence number); anything else panics.
func NewMPSC[T any](size int) *MPSC[T] {
	checkSize("NewMPSC", size)
	r := &MPSC[T]{
		slots: make([]mpscSlot[T], size),
		mask:  uint64(size - 1),
	}
	for i := range r.slots {
		// Not yet shared: the ring becomes visible to other goroutines only
		// through whatever publishes r, which orders these stores first.
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

// Cap returns the number of slots.
func (r *MPSC[T]) Cap() int { return len(r.slots) }

// Len returns the number of reserved elements, including ones whose producer
// has not yet published them. It is exact only when the ring is quiescent;
// otherwise it is a snapshot in [0, Cap()].
func (r *MPSC[T]) Len() int {
	// Load head before tail: head never passes tail and tail only grows, so
	// the difference cannot underflow. Ordering only; no cell is read.
	h := r.head.Load()
	t := r.tail.Load()
	return int(min(t-h, uint64(len(r.slots))))
}

// Push appends v and reports whether there was room. Any goroutine.
func (r *MPSC[T]) Push(v T) bool {
	// A starting guess only; the CAS below validates it.
	pos := r.tail.Load()
	for {
		s := &r.slots[pos&r.mask]
		// Acquire the consumer's release of this cell (its Store of
		// pos): its read and zeroing of the previous lap's value
		// happen-before our write below.
		seq := s.seq.Load()
		switch d := int64(seq - pos); {
		case d == 0:
			// Reserve pos. Success makes us the only writer of the
			// cell for this lap: every other producer's CAS from pos
			// now fails. The cell was free when we loaded seq, and
			// only the owner of pos can change it, so it still is.
			if r.tail.CompareAndSwap(pos, pos+1) {
				s.val = v
				// Release: the value write happens-before the
				// consumer's load of seq that observes pos+1.
				s.seq.Store(pos + 1)
				return true
			}
			// Lost the race: another producer took pos; re-read the
			// tail it left. Atomic because producers race on it.
			pos = r.tail.Load()
		case d < 0:
			// The cell still holds the previous lap's element: full.
			return false
		default:
			// Another producer already reserved pos since we loaded
			// tail; catch up. Atomic because producers race on it.
			pos = r.tail.Load()
		}
	}
}

// PushBatch appends as many elements of vs as fit, in order, and returns how
// many were pushed. Any goroutine. It reserves all of them with a single CAS
// when no other producer intervenes; the elements then sit contiguously in the
// ring and no other producer's element is interleaved with them.
func (r *MPSC[T]) PushBatch(vs []T) int {
	if len(vs) == 0 {
		return 0
	}
	n := min(len(vs), len(r.slots))
	// A starting guess only; the CAS below validates it.
	pos := r.tail.Load()
	for {
		// Count the free cells from pos on. Each Load acquires the
		// consumer's release of that cell, as in Push. A cell counted
		// free stays free until someone reserves its position, which
		// would move tail past pos and fail our CAS.
		k := 0
		var d int64
		for ; k < n; k++ {
			seq := r.slots[(pos+uint64(k))&r.mask].seq.Load()
			if d = int64(seq - (pos + uint64(k))); d != 0 {
				break
			}
		}
		if k == 0 {
			if d < 0 {
				return 0 // full
			}
			// Another producer reserved pos already; catch up.
			// Atomic because producers race on it.
			pos = r.tail.Load()
			continue
		}
		// Reserve [pos, pos+k) at once; see Push for why success makes
		// the cells ours.
		if !r.tail.CompareAndSwap(pos, pos+uint64(k)) {
			// Atomic because producers race on it.
			pos = r.tail.Load()
			continue
		}
		for i := range k {
			p := pos + uint64(i)
			s := &r.slots[p&r.mask]
			s.val = vs[i]
			// Release, per cell: the value write happens-before the
			// consumer's load of seq that observes p+1. Publishing
			// in position order lets the consumer start on the
			// batch's head while we finish its tail.
			s.seq.Store(p + 1)
		}
		return k
	}
}

// Pop removes and returns the oldest element; ok is false when the ring is
// empty or its oldest reserved cell is not yet published. Consumer only.
func (r *MPSC[T]) Pop() (v T, ok bool) {
	// Only the consumer stores head, so this sees its own last store; atomic
	// because Len loads head from any goroutine.
	h := r.head.Load()
	s := &r.slots[h&r.mask]
	// Acquire the producer's release (its Store of h+1): its value write
	// happens-before our read.
	if s.seq.Load() != h+1 {
		return v, false
	}
	v = s.val
	var zero T
	s.val = zero
	// Release: our read and zeroing happen-before the next lap's producer's
	// load of seq that observes h+size, so it can overwrite the cell.
	s.seq.Store(h + uint64(len(r.slots)))
	// Consumer progress for Len only; the cells' seq carry all ordering the
	// producers need, so this store publishes no data.
	r.head.Store(h + 1)
	return v, true
}

// PopBatch removes up to len(out) of the oldest published elements into out,
// in order, and returns how many were popped. It stops at the first cell not
// yet published. Consumer only.
func (r *MPSC[T]) PopBatch(out []T) int {
	// Own index; see Pop.
	h := r.head.Load()
	size := uint64(len(r.slots))
	n := min(len(out), len(r.slots))
	var zero T
	i := 0
	for ; i < n; i++ {
		p := h + uint64(i)
		s := &r.slots[p&r.mask]
		// Acquire the producer's value write; see Pop.
		if s.seq.Load() != p+1 {
			break
		}
		out[i] = s.val
		s.val = zero
		// Release the cell to the next lap's producer; see Pop.
		s.seq.Store(p + size)
	}
	if i > 0 {
		// Len only, once per batch; see Pop.
		r.head.Store(h + uint64(i))
	}
	return i
}

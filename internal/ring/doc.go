// Package ring holds usrpt's lock-free bounded rings, and with them every ring
// atomic in the project: nothing outside this package publishes data between
// cores with hand-written atomics.
//
// Two rings are offered, both fixed-size, allocation-free after construction,
// and generic over the element type:
//
//   - SPSC: exactly one producer goroutine and one consumer goroutine. Used
//     between two reactors (locked, pinned OS threads) for point-to-point
//     messages and ping-pong.
//   - MPSC: any number of producer goroutines and exactly one consumer
//     goroutine. Used by the control plane and by other reactors to post
//     messages to one reactor, which drains it in bounded batches.
//
// # Concurrency contract
//
// Push and PushBatch may be called only by the producer side (for SPSC, one
// goroutine at a time, ever; for MPSC, any goroutine). Pop and PopBatch may be
// called only by the single consumer goroutine. Passing a side from one
// goroutine to another needs a happens-before edge supplied by the caller (a
// channel send, a WaitGroup, a mutex). Len and Cap may be called from any
// goroutine; Len is exact only when the ring is quiescent and otherwise a
// snapshot that may be stale by the time it returns.
//
// Every value pushed happens-before the Pop that returns it, so a producer may
// hand over ownership of memory through the ring without further
// synchronisation. Elements are delivered in FIFO order: for SPSC in push
// order, for MPSC in the order producers reserved their slots, which keeps each
// producer's own pushes in order. A consumer never skips a slot that a producer
// has reserved but not yet published; it waits for it (reports empty) instead.
//
// Neither side ever waits for the other: a push into a full ring reports it
// (false or a short count) and a pop from an empty one reports that, and the
// caller decides whether to retry, drop or back off. MPSC producers racing for
// the same slot retry their compare-and-swap, which is lock-free: one of them
// always succeeds.
// Popped slots are zeroed so the ring does not keep pointers alive for the GC.
//
// # Indices
//
// Head and tail are free-running uint64 counters masked with size-1 on access,
// as in liburing; the ring size is therefore a power of two. A uint64 does not
// wrap in the life of a process, but the arithmetic is written to be correct
// across the wrap anyway (differences, never comparisons) and the tests run it
// there.
//
// # Memory ordering
//
// Go's sync/atomic operations are sequentially consistent, which is stronger
// than the acquire/release pairs these algorithms need; each atomic operation
// carries a comment naming the happens-before edge it exists for. Producer and
// consumer indices live on separate cache lines, and each ring is padded at both
// ends so that two rings allocated next to each other do not share a line.
package ring

// Package mem is usrpt's RAM disk engine: a device backed by one off-heap
// internal/hugemem Region, zero-filled when opened, so that a gigabyte RAM
// disk is neither on the Go heap nor scanned by the garbage collector. It
// serves as a fast real-data backend for tests, demos and benchmarks of the
// path above storage.
//
// Every request is carried out inside Submit with a memory copy (read, write)
// or a clear (discard and write-zeroes, which both leave zeroes behind), and
// completes at the next Poll. Flush and FUA are no-ops: memory is as durable
// as the device gets. Out-of-range requests complete with EINVAL and unknown
// operations with EOPNOTSUPP, through ioengine.CheckRange. Offsets and
// lengths need not be block-aligned.
//
// Concurrency: a Device may be shared by reactors, each with its own Queue,
// and queues on different goroutines run at the same time with no locks, as
// the queues of a real disk do. Requests to disjoint ranges never interfere.
// Overlapping requests in flight at once, on one queue or on several, are the
// initiator's problem as on a real disk: a read may see part of a concurrent
// write, and two overlapping writes may leave a mix of both. SCSI initiators
// order such requests themselves.
//
// Close unmaps the memory; it refuses while any queue is open, so that no
// queue can touch unmapped memory.
package mem

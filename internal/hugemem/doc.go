// Package hugemem is usrpt's only off-heap allocator: aligned buffer memory
// mapped with mmap, on 2 MiB hugepages when the kernel has them and on base
// pages otherwise.
//
// It owns two things. A Region is one anonymous mapping, registered once with
// io_uring (fixed buffers) and with the RDMA protection domain (a memory
// region), and unmapped by Close once nothing is out. A Pool is a fixed set of
// equal-sized buffers carved from a disjoint slice of a Region, handed out by
// Get and returned by Put in O(1) with no allocation.
//
// Ownership: a Pool has exactly one owner, the per-core reactor that uses it,
// and is used without locks; Get and Put are not safe for concurrent use.
// Region.Split gives each reactor its own pool starting on its own page (its
// own hugepage when the Region is huge), so reactors share no pages. Between
// Get and Put a buffer belongs to whoever holds the Buf, which is usually the
// kernel or the NIC for the duration of an I/O. Creating pools and closing the
// Region are control-plane operations; Close must happen after the reactors
// have stopped, and it refuses while any buffer is out.
//
// Why off-heap: the kernel and the NIC keep the addresses of registered
// buffers long after the call that registered them, which Go-heap memory does
// not allow (cgo's pointer rules forbid C retaining Go pointers, and the
// collector may free and reuse memory that Go code no longer references while
// a device still writes into it). mmap also gives what the heap cannot: page
// alignment for O_DIRECT, hugepages that cut TLB and IOMMU misses and the
// number of pages a NIC must pin, NUMA placement, mlock, and MADV_DONTFORK so
// a fork never copy-on-writes pinned pages. Gigabytes of buffers outside the
// heap also keep them out of the garbage collector's pacing.
package hugemem

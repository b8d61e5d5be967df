package hugemem

import (
	"fmt"
	"sync"

	"github.com/dustin/go-humanize"
)

// RegionConfig says what Map maps.
type RegionConfig struct {
	// Size in bytes; Map rounds it up to the page size it uses.
	Size int
	// Pages picks hugepages or base pages.
	Pages PagePolicy
	// Node is the NUMA node to prefer, or -1 for none. It is best effort
	// (mbind with MPOL_PREFERRED): a failure shows as NodeBound() == false,
	// not as an error. Note that 0 prefers node 0.
	Node int
	// Lock mlocks the region. Failure is an error: registered memory that
	// can be swapped is a bug waiting for load.
	Lock bool
}

// Region is one anonymous mapping. Its accessors are safe for concurrent use;
// NewPool, Split and Close are control-plane calls serialised by a mutex.
type Region struct {
	mem       []byte
	pageSize  int
	huge      bool
	nodeBound bool

	mu     sync.Mutex // guards pools and closed
	pools  []*Pool
	closed bool
}

// Bytes is the whole mapping, for registration with io_uring or a NIC. It
// must not be used after Close.
func (r *Region) Bytes() []byte { return r.mem }

// Len is the mapped length: RegionConfig.Size rounded up to PageSize.
func (r *Region) Len() int { return len(r.mem) }

// PageSize is the size of the pages backing the region: HugePageSize when
// Huge, else the base page size.
func (r *Region) PageSize() int { return r.pageSize }

// Huge reports whether the region is backed by 2 MiB hugepages.
func (r *Region) Huge() bool { return r.huge }

// NodeBound reports whether the NUMA preference in RegionConfig.Node took.
func (r *Region) NodeBound() bool { return r.nodeBound }

func (r *Region) String() string {
	kind := "base"
	if r.huge {
		kind = "2 MiB huge"
	}
	return fmt.Sprintf("%s on %s pages", humanize.IBytes(uint64(len(r.mem))), kind)
}

// Close unmaps the region. It refuses, with an error wrapping ErrInUse,
// while any pool carved from it has buffers out, so nothing is unmapped under
// an in-flight I/O. The owners of those pools must have stopped (Close reads
// their counters without synchronisation); afterwards their Get returns false.
// Closing twice returns nil.
func (r *Region) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	out, busy := 0, 0
	for _, p := range r.pools {
		if n := p.InUse(); n > 0 {
			out += n
			busy++
		}
	}
	if out > 0 {
		return fmt.Errorf("hugemem: close %s region: %d buffers out in %d of %d pools: %w",
			humanize.IBytes(uint64(len(r.mem))), out, busy, len(r.pools), ErrInUse)
	}
	for _, p := range r.pools {
		// Nothing left to Get from unmapped memory, and nothing to Put.
		p.n, p.count = 0, 0
	}
	r.closed = true
	if err := munmap(r.mem); err != nil {
		return fmt.Errorf("hugemem: unmap %s: %w", humanize.IBytes(uint64(len(r.mem))), err)
	}
	return nil
}

// SplitLen is the region length Split needs for pools pools of countPerPool
// buffers of bufSize bytes on pages of pageSize bytes. Sizing a region for
// PagesAuto with pageSize HugePageSize is enough for either outcome.
func SplitLen(bufSize, countPerPool, pools, pageSize int) (int, error) {
	span, err := poolSpan(bufSize, countPerPool, pageSize)
	if err != nil {
		return 0, err
	}
	if pools <= 0 {
		return 0, fmt.Errorf("hugemem: split into %d pools: want at least one", pools)
	}
	if span > maxInt/pools {
		return 0, fmt.Errorf("hugemem: split %d pools of %d × %s: size overflows", pools, countPerPool, humanize.IBytes(uint64(bufSize)))
	}
	return span * pools, nil
}

// poolSpan is the bytes one pool of Split takes: its buffers rounded up to
// whole pages so the next pool starts on a page of its own.
func poolSpan(bufSize, count, pageSize int) (int, error) {
	if err := checkShape(bufSize, count); err != nil {
		return 0, err
	}
	if pageSize <= 0 || pageSize%bufAlign != 0 {
		return 0, fmt.Errorf("hugemem: page size %d: want a positive multiple of %d", pageSize, bufAlign)
	}
	stride := roundUp(bufSize, bufAlign)
	if count > maxInt/stride {
		return 0, fmt.Errorf("hugemem: pool of %d × %s: size overflows", count, humanize.IBytes(uint64(bufSize)))
	}
	n := stride * count
	if n > maxInt-pageSize {
		return 0, fmt.Errorf("hugemem: pool of %d × %s: size overflows", count, humanize.IBytes(uint64(bufSize)))
	}
	return roundUp(n, pageSize), nil
}

// Split carves pools disjoint pools of countPerPool buffers of bufSize bytes
// from the start of the region, one per reactor. Each pool starts on a page
// boundary (a hugepage boundary when Huge), so no two reactors share a page.
// SplitLen says how large the region must be.
func (r *Region) Split(bufSize, countPerPool, pools int) ([]*Pool, error) {
	need, err := SplitLen(bufSize, countPerPool, pools, r.pageSize)
	if err != nil {
		return nil, err
	}
	if need > len(r.mem) {
		return nil, fmt.Errorf("hugemem: split %d pools of %d × %s: need %s, region has %s",
			pools, countPerPool, humanize.IBytes(uint64(bufSize)),
			humanize.IBytes(uint64(need)), humanize.IBytes(uint64(len(r.mem))))
	}
	span := need / pools
	out := make([]*Pool, 0, pools)
	for k := range pools {
		p, err := NewPool(r, k*span, bufSize, countPerPool)
		if err != nil {
			r.forget(out)
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// forget drops pools that a failed Split made, so their range is free again.
func (r *Region) forget(ps []*Pool) {
	if len(ps) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.pools[:0]
	for _, p := range r.pools {
		drop := false
		for _, q := range ps {
			drop = drop || p == q
		}
		if !drop {
			kept = append(kept, p)
		}
	}
	clear(r.pools[len(kept):])
	r.pools = kept
}

const maxInt = int(^uint(0) >> 1)

// roundUp rounds n up to a multiple of m; the caller ensures it does not
// overflow.
func roundUp(n, m int) int { return (n + m - 1) / m * m }

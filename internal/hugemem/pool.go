package hugemem

import (
	"fmt"
	"math"

	"github.com/dustin/go-humanize"
)

const (
	// bufAlign is the alignment of every buffer and of every pool's offset:
	// the page size O_DIRECT and NIC registration care about.
	bufAlign = 4096
	// sectorSize is the granule of a buffer's size: the smallest logical
	// block an O_DIRECT transfer can be.
	sectorSize = 512
)

// Buf is one buffer of a Pool. Data is the region's bytes for buffer Index,
// bufSize long; it may be resliced shorter (Data[:n]) but must keep its start
// to be Put back.
type Buf struct {
	Index uint32
	Data  []byte
}

// Pool is a fixed set of equal buffers in a slice of a Region. It has one
// owner: Get, Put and the counters are not safe for concurrent use.
type Pool struct {
	region  *Region
	mem     []byte // the pool's slice of the region
	offset  int    // of mem in the region
	bufSize int
	stride  int // bufSize rounded up to bufAlign
	count   int

	free []uint32 // stack of free indices; free[:n] are free
	n    int
	out  []uint64 // bitmap: bit i set while buffer i is out
}

// NewPool carves count buffers of bufSize bytes from r starting at offset.
// offset must be a multiple of 4096 and bufSize a multiple of 512. Buffers
// start every bufSize bytes rounded up to 4096, so each is 4096-aligned; a
// bufSize that is not a multiple of 4096 leaves the rest of its 4 KiB unused.
// The range must lie inside r and not overlap another pool of r.
func NewPool(r *Region, offset, bufSize, count int) (*Pool, error) {
	if r == nil {
		return nil, fmt.Errorf("hugemem: new pool: nil region")
	}
	if err := checkShape(bufSize, count); err != nil {
		return nil, err
	}
	if offset < 0 || offset%bufAlign != 0 {
		return nil, fmt.Errorf("hugemem: new pool at offset %d: want a non-negative multiple of %d", offset, bufAlign)
	}
	stride := roundUp(bufSize, bufAlign)
	// Overflow-safe: compare counts against what fits rather than
	// multiplying the caller's numbers.
	size := len(r.mem)
	if offset > size || bufSize > size-offset || count-1 > (size-offset-bufSize)/stride {
		return nil, fmt.Errorf("hugemem: new pool of %d × %s at offset %d: out of the %s region",
			count, humanize.IBytes(uint64(bufSize)), offset, humanize.IBytes(uint64(size)))
	}
	end := offset + (count-1)*stride + bufSize

	p := &Pool{
		region:  r,
		mem:     r.mem[offset:end:end],
		offset:  offset,
		bufSize: bufSize,
		stride:  stride,
		count:   count,
		free:    make([]uint32, count),
		n:       count,
		out:     make([]uint64, (count+63)/64),
	}
	// Lowest index on top: the first Gets walk the memory in order.
	for k := range p.free {
		p.free[k] = uint32(count - 1 - k)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("hugemem: new pool: %w", ErrClosed)
	}
	for _, q := range r.pools {
		if offset < q.offset+len(q.mem) && q.offset < end {
			return nil, fmt.Errorf("hugemem: new pool at [%d, %d): overlaps the pool at [%d, %d)",
				offset, end, q.offset, q.offset+len(q.mem))
		}
	}
	r.pools = append(r.pools, p)
	return p, nil
}

func checkShape(bufSize, count int) error {
	if bufSize <= 0 || bufSize%sectorSize != 0 {
		return fmt.Errorf("hugemem: buffer size %d: want a positive multiple of %d", bufSize, sectorSize)
	}
	if count <= 0 || uint64(count) > math.MaxUint32 {
		return fmt.Errorf("hugemem: buffer count %d: want 1 to %d", count, uint64(math.MaxUint32))
	}
	return nil
}

// Get takes a free buffer in O(1) without allocating, or reports false when
// the pool is exhausted.
func (p *Pool) Get() (Buf, bool) {
	if p.n == 0 {
		return Buf{}, false
	}
	p.n--
	i := p.free[p.n]
	p.out[i>>6] |= 1 << (i & 63)
	off := int(i) * p.stride
	end := off + p.bufSize
	return Buf{Index: i, Data: p.mem[off:end:end]}, true
}

// Put returns a buffer taken by Get. A buffer that is not out of this pool
// (put twice, or from elsewhere) is a broken invariant and panics.
func (p *Pool) Put(b Buf) {
	i := b.Index
	// &b.Data[:1][0] is safe: cap(b.Data) == bufSize > 0 was checked first.
	if uint64(i) >= uint64(p.count) || cap(b.Data) != p.bufSize ||
		&b.Data[:1][0] != &p.mem[int(i)*p.stride] {
		badPut(b, "is not from this pool")
	}
	w, bit := i>>6, uint64(1)<<(i&63)
	if p.out[w]&bit == 0 {
		badPut(b, "is not out (double Put)")
	}
	p.out[w] &^= bit
	p.free[p.n] = i
	p.n++
}

// badPut panics; it is apart from Put to keep the formatting off the hot path.
//
//go:noinline
func badPut(b Buf, why string) {
	panic(fmt.Sprintf("hugemem: Put of buffer %d (cap %d) that %s", b.Index, cap(b.Data), why))
}

// Buf is the full bufSize bytes of buffer i, whether out or free.
func (p *Pool) Buf(i uint32) []byte {
	off := int(i) * p.stride
	end := off + p.bufSize
	return p.mem[off:end:end]
}

// Offset is the offset of buffer i in the Region, for registration math
// (io_uring fixed-buffer offsets, MR addresses).
func (p *Pool) Offset(i uint32) int {
	if uint64(i) >= uint64(p.count) {
		panic(fmt.Sprintf("hugemem: Offset of buffer %d of %d", i, p.count))
	}
	return p.offset + int(i)*p.stride
}

// BufSize is the length of each buffer.
func (p *Pool) BufSize() int { return p.bufSize }

// Stride is the distance between the starts of consecutive buffers: BufSize
// rounded up to 4096.
func (p *Pool) Stride() int { return p.stride }

// Count is the number of buffers in the pool; 0 once the Region is closed.
func (p *Pool) Count() int { return p.count }

// Free is the number of buffers Get can still hand out.
func (p *Pool) Free() int { return p.n }

// InUse is the number of buffers out.
func (p *Pool) InUse() int { return p.count - p.n }

// Region is the region the pool was carved from.
func (p *Pool) Region() *Region { return p.region }

// Len is the bytes of the region the pool spans, from its offset.
func (p *Pool) Len() int { return len(p.mem) }

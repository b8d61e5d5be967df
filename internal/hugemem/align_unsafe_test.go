package hugemem

import (
	"testing"
	"unsafe"
)

// addr is the address of b's first byte. Sound: the bytes are mmap'd, outside
// the Go heap, and the uintptr is only compared, never turned back.
func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

func TestBuffersAligned(t *testing.T) {
	for _, bufSize := range []int{512, 4096, 4096 + 512, 64 << 10, 128<<10 + 512} {
		need, err := SplitLen(bufSize, 7, 3, HugePageSize)
		if err != nil {
			t.Fatal(err)
		}
		r := mapT(t, RegionConfig{Size: need, Pages: PagesAuto, Node: -1})
		base := addr(r.Bytes())
		if base%uintptr(r.PageSize()) != 0 {
			t.Fatalf("region at %#x is not aligned to its %d-byte pages", base, r.PageSize())
		}
		ps, err := r.Split(bufSize, 7, 3)
		if err != nil {
			t.Fatal(err)
		}
		for k, p := range ps {
			if a := addr(p.Buf(0)); a%uintptr(r.PageSize()) != 0 {
				t.Errorf("size %d: pool %d starts at %#x, not on a %d-byte page", bufSize, k, a, r.PageSize())
			}
			for {
				b, ok := p.Get()
				if !ok {
					break
				}
				a := addr(b.Data)
				if a%bufAlign != 0 {
					t.Errorf("size %d: pool %d buffer %d at %#x is not %d-aligned", bufSize, k, b.Index, a, bufAlign)
				}
				if off := int(a - base); off != p.Offset(b.Index) {
					t.Errorf("size %d: pool %d buffer %d at region offset %d, Offset says %d", bufSize, k, b.Index, off, p.Offset(b.Index))
				}
				defer p.Put(b)
			}
		}
	}
}

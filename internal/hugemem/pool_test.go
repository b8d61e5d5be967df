package hugemem

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

// mapT maps a region for a test and unmaps it at the end; it skips where
// Map is not supported.
func mapT(t testing.TB, cfg RegionConfig) *Region {
	t.Helper()
	r, err := Map(cfg)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil && !errors.Is(err, ErrInUse) {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

func smallRegion(t testing.TB, size int) *Region {
	return mapT(t, RegionConfig{Size: size, Pages: PagesSmall, Node: -1})
}

func TestNewPoolValidation(t *testing.T) {
	r := smallRegion(t, 1<<20)
	tests := []struct {
		name                   string
		offset, bufSize, count int
		ok                     bool
	}{
		{"whole region", 0, 4096, 256, true},
		{"at offset", 8192, 4096, 254, true},
		{"sector buffers, padded stride", 0, 512, 256, true},
		{"last buffer without padding", 0, 4096 + 512, 128, true},
		{"odd-sized but in range", 1<<20 - 4096, 512, 1, true},
		{"zero size", 0, 0, 1, false},
		{"negative size", 0, -512, 1, false},
		{"size not a sector multiple", 0, 1000, 1, false},
		{"zero count", 0, 4096, 0, false},
		{"negative count", 0, 4096, -1, false},
		{"count over uint32", 0, 4096, int(min(uint64(math.MaxUint32)+1, uint64(maxInt))), false},
		{"misaligned offset", 512, 4096, 1, false},
		{"negative offset", -4096, 4096, 1, false},
		{"offset past end", 2 << 20, 4096, 1, false},
		{"offset at end", 1 << 20, 4096, 1, false},
		{"one buffer too many", 0, 4096, 257, false},
		{"one buffer too many at offset", 4096, 4096, 256, false},
		{"buffer larger than region", 0, 2 << 20, 1, false},
		{"size times count overflows", 0, 1 << 20, maxInt>>20 + 1, false},
		{"max size", 0, math.MaxInt - math.MaxInt%4096, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPool(r, tt.offset, tt.bufSize, tt.count)
			if (err == nil) != tt.ok {
				t.Fatalf("NewPool(%d, %d, %d) = %v, want ok=%v", tt.offset, tt.bufSize, tt.count, err, tt.ok)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "hugemem: ") {
					t.Errorf("error %q lacks the package prefix", err)
				}
				return
			}
			if p.Count() != tt.count || p.Free() != tt.count || p.InUse() != 0 || p.BufSize() != tt.bufSize {
				t.Errorf("pool count %d free %d inuse %d size %d", p.Count(), p.Free(), p.InUse(), p.BufSize())
			}
			last := uint32(tt.count - 1)
			if end := p.Offset(last) + p.BufSize(); end > r.Len() {
				t.Errorf("last buffer ends at %d, past the %d-byte region", end, r.Len())
			}
			r.forget([]*Pool{p}) // free the range for the next case
		})
	}
	if _, err := NewPool(nil, 0, 4096, 1); err == nil {
		t.Error("NewPool(nil region): no error")
	}
}

func TestNewPoolOverlap(t *testing.T) {
	r := smallRegion(t, 1<<20)
	if _, err := NewPool(r, 4096, 4096, 4); err != nil { // [4096, 20480)
		t.Fatal(err)
	}
	for _, tt := range []struct {
		offset, count int
		ok            bool
	}{
		{0, 1, true},       // [0, 4096): ends where the first begins
		{0, 2, false},      // reaches into it
		{8192, 1, false},   // inside it
		{16384, 2, false},  // starts in its last buffer
		{20480, 1, true},   // starts where it ends
		{20480, 1, false},  // the same range twice
		{24576, 10, true},  // beyond
		{1 << 19, 1, true}, // far beyond
	} {
		_, err := NewPool(r, tt.offset, 4096, tt.count)
		if (err == nil) != tt.ok {
			t.Errorf("NewPool(offset %d, count %d) = %v, want ok=%v", tt.offset, tt.count, err, tt.ok)
		}
	}
}

func TestSplitDisjoint(t *testing.T) {
	const bufSize, count, pools = 8192 + 512, 37, 5
	page := os.Getpagesize()
	need, err := SplitLen(bufSize, count, pools, page)
	if err != nil {
		t.Fatal(err)
	}
	r := smallRegion(t, need)
	ps, err := r.Split(bufSize, count, pools)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != pools {
		t.Fatalf("Split made %d pools, want %d", len(ps), pools)
	}
	type span struct{ pool, lo, hi int }
	var spans []span
	for k, p := range ps {
		if p.Region() != r || p.Count() != count || p.BufSize() != bufSize {
			t.Errorf("pool %d: region %p count %d size %d", k, p.Region(), p.Count(), p.BufSize())
		}
		if p.Offset(0)%r.PageSize() != 0 {
			t.Errorf("pool %d starts at %d, not on a %d-byte page", k, p.Offset(0), r.PageSize())
		}
		for i := range uint32(count) {
			lo := p.Offset(i)
			spans = append(spans, span{k, lo, lo + bufSize})
		}
	}
	for a := range spans {
		for b := a + 1; b < len(spans); b++ {
			x, y := spans[a], spans[b]
			if x.lo < y.hi && y.lo < x.hi {
				t.Fatalf("buffer [%d, %d) of pool %d overlaps [%d, %d) of pool %d", x.lo, x.hi, x.pool, y.lo, y.hi, y.pool)
			}
		}
	}
	// No two pools share a page.
	for k := 1; k < pools; k++ {
		prevLast := (ps[k-1].Offset(count-1) + bufSize - 1) / r.PageSize()
		if first := ps[k].Offset(0) / r.PageSize(); first <= prevLast {
			t.Errorf("pool %d starts on page %d, pool %d ends on page %d", k, first, k-1, prevLast)
		}
	}
}

func TestSplitErrors(t *testing.T) {
	r := smallRegion(t, 1<<20)
	for _, tt := range []struct {
		name                  string
		bufSize, count, pools int
	}{
		{"zero pools", 4096, 1, 0},
		{"bad size", 100, 1, 1},
		{"zero count", 4096, 0, 1},
		{"too large", 4096, 128, 3},
		{"overflow", 1 << 30, 1 << 30, 1 << 30},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := r.Split(tt.bufSize, tt.count, tt.pools); err == nil {
				t.Error("no error")
			}
		})
	}
	// A failed Split leaves no pools behind: the next one fits.
	if _, err := r.Split(4096, 64, 4); err != nil {
		t.Errorf("Split after failures: %v", err)
	}
	// And a Split over pools already there fails without keeping any.
	if _, err := r.Split(4096, 64, 2); err == nil {
		t.Error("second Split over the same range: no error")
	}
	if n := len(r.pools); n != 4 {
		t.Errorf("region has %d pools, want 4", n)
	}
}

func TestSplitLen(t *testing.T) {
	for _, tt := range []struct {
		bufSize, count, pools, page, want int
	}{
		{4096, 1, 1, 4096, 4096},
		{512, 3, 2, 4096, 2 * 3 * 4096},
		{128 << 10, 16, 4, HugePageSize, 4 * HugePageSize},
		{128 << 10, 17, 4, HugePageSize, 8 * HugePageSize},
	} {
		got, err := SplitLen(tt.bufSize, tt.count, tt.pools, tt.page)
		if err != nil || got != tt.want {
			t.Errorf("SplitLen(%d, %d, %d, %d) = %d, %v; want %d", tt.bufSize, tt.count, tt.pools, tt.page, got, err, tt.want)
		}
	}
	if _, err := SplitLen(4096, 1, 1, 1000); err == nil {
		t.Error("SplitLen with a 1000-byte page: no error")
	}
	if _, err := SplitLen(1<<20, 1<<30, 1<<20, 4096); err == nil {
		t.Error("SplitLen overflow: no error")
	}
}

func TestGetPutExhaustion(t *testing.T) {
	r := smallRegion(t, 64<<10)
	p, err := NewPool(r, 0, 4096, 16)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	var bufs []Buf
	for range p.Count() {
		b, ok := p.Get()
		if !ok {
			t.Fatalf("Get failed with %d free", p.Free())
		}
		if seen[b.Index] {
			t.Fatalf("buffer %d handed out twice", b.Index)
		}
		seen[b.Index] = true
		if len(b.Data) != 4096 || cap(b.Data) != 4096 {
			t.Errorf("buffer %d: len %d cap %d", b.Index, len(b.Data), cap(b.Data))
		}
		if &b.Data[0] != &p.Buf(b.Index)[0] || &b.Data[0] != &r.Bytes()[p.Offset(b.Index)] {
			t.Errorf("buffer %d: Data, Buf and Offset disagree", b.Index)
		}
		bufs = append(bufs, b)
	}
	if b, ok := p.Get(); ok {
		t.Fatalf("Get from an exhausted pool returned buffer %d", b.Index)
	}
	if p.Free() != 0 || p.InUse() != 16 {
		t.Errorf("exhausted: free %d inuse %d", p.Free(), p.InUse())
	}
	// A resliced buffer still goes back.
	bufs[0].Data = bufs[0].Data[:512]
	for _, b := range bufs {
		p.Put(b)
	}
	if p.Free() != 16 || p.InUse() != 0 {
		t.Errorf("after Put: free %d inuse %d", p.Free(), p.InUse())
	}
	if _, ok := p.Get(); !ok {
		t.Error("Get after Put failed")
	}
}

func TestPutPanics(t *testing.T) {
	r := smallRegion(t, 1<<20)
	ps, err := r.Split(4096, 8, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, q := ps[0], ps[1]
	b, _ := p.Get()
	other, _ := q.Get()
	tests := []struct {
		name string
		buf  Buf
	}{
		{"never out", Buf{Index: 5, Data: p.Buf(5)}},
		{"index out of range", Buf{Index: 8, Data: b.Data}},
		{"another pool's buffer", other},
		{"another pool's buffer with our index", Buf{Index: b.Index, Data: other.Data}},
		{"data of a different buffer", Buf{Index: b.Index, Data: p.Buf(b.Index + 1)}},
		{"heap memory", Buf{Index: b.Index, Data: make([]byte, 4096)}},
		{"nil data", Buf{Index: b.Index}},
		{"shifted data", Buf{Index: b.Index, Data: b.Data[512:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !panics(func() { p.Put(tt.buf) }) {
				t.Error("Put did not panic")
			}
		})
	}
	p.Put(b)
	if !panics(func() { p.Put(b) }) {
		t.Error("double Put did not panic")
	}
	if p.Free() != 8 {
		t.Errorf("free %d after panicking Puts, want 8", p.Free())
	}
	q.Put(other)
}

func panics(f func()) (did bool) {
	defer func() { did = recover() != nil }()
	f()
	return false
}

func TestCloseRefusesWhileOut(t *testing.T) {
	r, err := Map(RegionConfig{Size: 1 << 20, Pages: PagesSmall, Node: -1})
	if errors.Is(err, ErrNotSupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ps, err := r.Split(4096, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ps[1].Get()
	err = r.Close()
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "1 buffers out in 1 of 2 pools") {
		t.Fatalf("Close with a buffer out = %v", err)
	}
	b.Data[0] = 1 // still mapped
	ps[1].Put(b)
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, p := range ps {
		if _, ok := p.Get(); ok {
			t.Error("Get after Close handed out a buffer")
		}
		if p.Free() != 0 || p.InUse() != 0 {
			t.Errorf("after Close: free %d inuse %d", p.Free(), p.InUse())
		}
	}
	if !panics(func() { ps[1].Put(b) }) {
		t.Error("Put after Close did not panic")
	}
	if _, err := NewPool(r, 0, 4096, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("NewPool after Close = %v, want ErrClosed", err)
	}
}

func TestWriteEveryByte(t *testing.T) {
	const bufSize, count, pools = 4096 + 1024, 9, 3
	need, err := SplitLen(bufSize, count, pools, HugePageSize)
	if err != nil {
		t.Fatal(err)
	}
	r := mapT(t, RegionConfig{Size: need, Pages: PagesAuto, Node: -1})
	ps, err := r.Split(bufSize, count, pools)
	if err != nil {
		t.Fatal(err)
	}
	tag := func(k int, i uint32) byte { return byte(k*count + int(i) + 1) }
	var out [pools][]Buf
	for k, p := range ps {
		for {
			b, ok := p.Get()
			if !ok {
				break
			}
			for j := range b.Data {
				b.Data[j] = tag(k, b.Index)
			}
			out[k] = append(out[k], b)
		}
	}
	for k, p := range ps {
		for _, b := range out[k] {
			want := tag(k, b.Index)
			for j, c := range p.Buf(b.Index) {
				if c != want {
					t.Fatalf("pool %d buffer %d byte %d = %d, want %d", k, b.Index, j, c, want)
				}
			}
			p.Put(b)
		}
	}
}

func TestGetPutAllocs(t *testing.T) {
	r := smallRegion(t, 1<<20)
	p, err := NewPool(r, 0, 4096, 64)
	if err != nil {
		t.Fatal(err)
	}
	var held [32]Buf
	allocs := testing.AllocsPerRun(1000, func() {
		for i := range held {
			held[i], _ = p.Get()
		}
		for i := range held {
			p.Put(held[i])
		}
	})
	if allocs != 0 {
		t.Errorf("Get/Put allocate %v times per run, want 0", allocs)
	}
	if p.Free() != 64 {
		t.Errorf("free %d, want 64", p.Free())
	}
}

func BenchmarkGetPut(b *testing.B) {
	r := smallRegion(b, 1<<20)
	p, err := NewPool(r, 0, 4096, 256)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		buf, _ := p.Get()
		p.Put(buf)
	}
}

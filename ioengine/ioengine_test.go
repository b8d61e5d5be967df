package ioengine_test

import (
	"errors"
	"math"
	"math/big"
	"syscall"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
)

func TestOpString(t *testing.T) {
	tests := []struct {
		op   ioengine.Op
		want string
	}{
		{ioengine.OpRead, "read"},
		{ioengine.OpWrite, "write"},
		{ioengine.OpFlush, "flush"},
		{ioengine.OpDiscard, "discard"},
		{ioengine.OpWriteZeroes, "write-zeroes"},
		{5, "Op(5)"},
		{255, "Op(255)"},
	}
	for _, tt := range tests {
		if got := tt.op.String(); got != tt.want {
			t.Errorf("Op(%d).String() = %q, want %q", uint8(tt.op), got, tt.want)
		}
	}
}

func TestOpSet(t *testing.T) {
	tests := []struct {
		set  ioengine.OpSet
		want string
	}{
		{0, ""},
		{ioengine.Ops(), ""},
		{ioengine.Ops(ioengine.OpRead), "read"},
		{ioengine.Ops(ioengine.OpWriteZeroes, ioengine.OpRead), "read,write-zeroes"},
		{ioengine.Ops(ioengine.OpRead, ioengine.OpRead), "read"},
		{ioengine.AllOps, "read,write,flush,discard,write-zeroes"},
		{0xff, "read,write,flush,discard,write-zeroes"}, // bits past the last op mean nothing
	}
	for _, tt := range tests {
		if got := tt.set.String(); got != tt.want {
			t.Errorf("OpSet(%#x).String() = %q, want %q", uint8(tt.set), got, tt.want)
		}
	}
	s := ioengine.Ops(ioengine.OpWrite, ioengine.OpDiscard)
	for op := ioengine.Op(0); op < 255; op++ {
		want := op == ioengine.OpWrite || op == ioengine.OpDiscard
		if s.Has(op) != want {
			t.Errorf("%v.Has(%v) = %v", s, op, !want)
		}
		if op > ioengine.OpWriteZeroes && (ioengine.AllOps.Has(op) || ioengine.OpSet(0xff).Has(op)) {
			t.Errorf("Has(%v) of an operation that does not exist", op)
		}
	}
}

func TestRequestResult(t *testing.T) {
	buf := make([]byte, 4096)
	tests := []struct {
		name  string
		r     ioengine.Request
		ok    bool
		errno syscall.Errno // the Errno Err wraps, if any
		short bool          // Err wraps ErrShort
	}{
		{"read in full", ioengine.Request{Op: ioengine.OpRead, Buf: buf, N: 4096}, true, 0, false},
		{"write in full", ioengine.Request{Op: ioengine.OpWrite, Buf: buf, N: 4096}, true, 0, false},
		{"empty read", ioengine.Request{Op: ioengine.OpRead}, true, 0, false},
		{"short read", ioengine.Request{Op: ioengine.OpRead, Buf: buf, N: 512}, false, 0, true},
		{"short write", ioengine.Request{Op: ioengine.OpWrite, Buf: buf, N: 0}, false, 0, true},
		{"long read", ioengine.Request{Op: ioengine.OpRead, Buf: buf, N: 8192}, false, 0, true},
		{"read EIO", ioengine.Request{Op: ioengine.OpRead, Buf: buf, Errno: syscall.EIO}, false, syscall.EIO, false},
		{"errno wins over N", ioengine.Request{Op: ioengine.OpWrite, Buf: buf, N: 4096, Errno: syscall.ENOSPC}, false, syscall.ENOSPC, false},
		{"flush", ioengine.Request{Op: ioengine.OpFlush}, true, 0, false},
		{"flush ignores N", ioengine.Request{Op: ioengine.OpFlush, N: 7}, true, 0, false},
		{"flush EIO", ioengine.Request{Op: ioengine.OpFlush, Errno: syscall.EIO}, false, syscall.EIO, false},
		{"discard ignores N", ioengine.Request{Op: ioengine.OpDiscard, Len: 4096, N: 0}, true, 0, false},
		{"write-zeroes EOPNOTSUPP", ioengine.Request{Op: ioengine.OpWriteZeroes, Len: 1, Errno: syscall.EOPNOTSUPP}, false, syscall.EOPNOTSUPP, false},
		{"unknown op", ioengine.Request{Op: 9, Errno: syscall.EOPNOTSUPP}, false, syscall.EOPNOTSUPP, false},
	}
	for _, tt := range tests {
		r := tt.r
		if got := r.OK(); got != tt.ok {
			t.Errorf("%s: OK() = %v, want %v", tt.name, got, tt.ok)
		}
		err := r.Err()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Err() = %v, want ok %v", tt.name, err, tt.ok)
		}
		if tt.errno != 0 {
			var e syscall.Errno
			if !errors.As(err, &e) || e != tt.errno || !errors.Is(err, tt.errno) {
				t.Errorf("%s: Err() = %v, want %v", tt.name, err, tt.errno)
			}
		}
		if got := errors.Is(err, ioengine.ErrShort); got != tt.short {
			t.Errorf("%s: errors.Is(Err(), ErrShort) = %v (%v)", tt.name, got, err)
		}
	}
}

func TestRequestSizeAndComplete(t *testing.T) {
	buf := make([]byte, 1000)
	tests := []struct {
		r    ioengine.Request
		want int64
	}{
		{ioengine.Request{Op: ioengine.OpRead, Buf: buf, Len: 5}, 1000},
		{ioengine.Request{Op: ioengine.OpWrite, Buf: buf[:10], Len: 5}, 10},
		{ioengine.Request{Op: ioengine.OpFlush, Buf: buf, Len: 5}, 0},
		{ioengine.Request{Op: ioengine.OpDiscard, Buf: buf, Len: 5}, 5},
		{ioengine.Request{Op: ioengine.OpWriteZeroes, Len: -3}, -3},
	}
	for _, tt := range tests {
		if got := tt.r.Size(); got != tt.want {
			t.Errorf("%v Size() = %d, want %d", tt.r.Op, got, tt.want)
		}
	}
	r := ioengine.Request{Op: ioengine.OpRead, Buf: buf, User: 7}
	r.Complete(1000, 0)
	if r.N != 1000 || r.Errno != 0 || !r.OK() || r.User != 7 {
		t.Errorf("Complete(1000, 0): %+v", r)
	}
	r.Complete(0, syscall.EIO)
	if r.N != 0 || r.Errno != syscall.EIO || r.OK() {
		t.Errorf("Complete(0, EIO): %+v", r)
	}
}

// The success paths of OK and Err are on the data path: no allocation.
func TestResultDoesNotAllocate(t *testing.T) {
	r := &ioengine.Request{Op: ioengine.OpRead, Buf: make([]byte, 512), N: 512}
	e := &ioengine.Request{Op: ioengine.OpRead, Errno: syscall.EIO}
	allocs := testing.AllocsPerRun(100, func() {
		if !r.OK() || r.Err() != nil || e.OK() || e.Err() == nil {
			panic("wrong result")
		}
	})
	if allocs != 0 {
		t.Errorf("OK and Err allocate %v times", allocs)
	}
}

func TestCheckRange(t *testing.T) {
	const size = 1 << 20
	buf := make([]byte, 4096)
	all := ioengine.AllOps
	tests := []struct {
		name string
		r    ioengine.Request
		ops  ioengine.OpSet
		want syscall.Errno
	}{
		{"read at 0", ioengine.Request{Op: ioengine.OpRead, Buf: buf}, all, 0},
		{"read at the end", ioengine.Request{Op: ioengine.OpRead, Offset: size - 4096, Buf: buf}, all, 0},
		{"empty read at the end", ioengine.Request{Op: ioengine.OpRead, Offset: size}, all, 0},
		{"read across the end", ioengine.Request{Op: ioengine.OpRead, Offset: size - 4095, Buf: buf}, all, syscall.EINVAL},
		{"read past the end", ioengine.Request{Op: ioengine.OpRead, Offset: size + 1}, all, syscall.EINVAL},
		{"negative offset", ioengine.Request{Op: ioengine.OpWrite, Offset: -1, Buf: buf}, all, syscall.EINVAL},
		{"overflowing end", ioengine.Request{Op: ioengine.OpWrite, Offset: math.MaxInt64 - 100, Buf: buf}, all, syscall.EINVAL},
		{"discard of the device", ioengine.Request{Op: ioengine.OpDiscard, Len: size}, all, 0},
		{"discard of too much", ioengine.Request{Op: ioengine.OpDiscard, Len: size + 1}, all, syscall.EINVAL},
		{"negative length", ioengine.Request{Op: ioengine.OpWriteZeroes, Len: -1}, all, syscall.EINVAL},
		{"length MaxInt64", ioengine.Request{Op: ioengine.OpWriteZeroes, Offset: 1, Len: math.MaxInt64}, all, syscall.EINVAL},
		{"flush ignores the range", ioengine.Request{Op: ioengine.OpFlush, Offset: -5, Len: -5}, all, 0},
		{"unsupported wins", ioengine.Request{Op: ioengine.OpDiscard, Offset: -1}, ioengine.Ops(ioengine.OpRead), syscall.EOPNOTSUPP},
		{"unsupported flush", ioengine.Request{Op: ioengine.OpFlush}, ioengine.Ops(ioengine.OpRead), syscall.EOPNOTSUPP},
		{"unknown op", ioengine.Request{Op: 200}, 0xff, syscall.EOPNOTSUPP},
	}
	for _, tt := range tests {
		if got := ioengine.CheckRange(&tt.r, size, tt.ops); got != tt.want {
			t.Errorf("%s: CheckRange = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// FuzzCheckRange: for any request and device, CheckRange does not panic,
// answers EOPNOTSUPP exactly for operations outside the set, and accepts a
// range exactly when it lies inside the device, computed without overflow.
func FuzzCheckRange(f *testing.F) {
	f.Add(uint8(ioengine.OpRead), int64(0), int64(0), uint16(4096), int64(1<<20), uint8(ioengine.AllOps))
	f.Add(uint8(ioengine.OpWrite), int64(1<<20-4096), int64(0), uint16(4096), int64(1<<20), uint8(ioengine.AllOps))
	f.Add(uint8(ioengine.OpWrite), int64(math.MaxInt64), int64(0), uint16(1), int64(math.MaxInt64), uint8(ioengine.AllOps))
	f.Add(uint8(ioengine.OpDiscard), int64(1), int64(math.MaxInt64), uint16(0), int64(math.MaxInt64), uint8(ioengine.AllOps))
	f.Add(uint8(ioengine.OpWriteZeroes), int64(math.MinInt64), int64(math.MinInt64), uint16(0), int64(-1), uint8(0xff))
	f.Add(uint8(ioengine.OpFlush), int64(-1), int64(-1), uint16(0), int64(0), uint8(ioengine.AllOps))
	f.Add(uint8(ioengine.OpDiscard), int64(0), int64(1), uint16(0), int64(1<<20), uint8(ioengine.Ops(ioengine.OpRead)))
	f.Add(uint8(250), int64(0), int64(0), uint16(0), int64(1), uint8(0xff))
	buf := make([]byte, math.MaxUint16)
	f.Fuzz(func(t *testing.T, op uint8, offset, length int64, bufLen uint16, size int64, ops uint8) {
		r := &ioengine.Request{Op: ioengine.Op(op), Offset: offset, Len: length, Buf: buf[:bufLen]}
		set := ioengine.OpSet(ops)
		got := ioengine.CheckRange(r, size, set)

		var want syscall.Errno
		switch {
		case !set.Has(r.Op):
			want = syscall.EOPNOTSUPP
		case r.Op == ioengine.OpFlush:
		default:
			// The range [offset, offset+n) must lie inside [0, size); in
			// big integers, which cannot overflow.
			n := r.Size()
			end := new(big.Int).Add(big.NewInt(offset), big.NewInt(n))
			if offset < 0 || n < 0 || end.Cmp(big.NewInt(size)) > 0 {
				want = syscall.EINVAL
			}
		}
		if got != want {
			t.Fatalf("CheckRange(%v at %d, size %d, device %d, ops %v) = %v, want %v",
				r.Op, offset, r.Size(), size, set, got, want)
		}
		if got == 0 && r.Op != ioengine.OpFlush {
			// Accepted: a slice of a device of size bytes cannot fail.
			if r.Offset < 0 || r.Size() < 0 || r.Offset > size || r.Size() > size-r.Offset {
				t.Fatalf("accepted %v of %d at %d on a %d-byte device", r.Op, r.Size(), r.Offset, size)
			}
		}
	})
}

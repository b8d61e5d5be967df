package faulty

import (
	"math"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
)

func TestOverlaps(t *testing.T) {
	const from, to = 4096, 8192
	buf := make([]byte, 4096)
	tests := []struct {
		name string
		r    ioengine.Request
		want bool
	}{
		{"before", ioengine.Request{Op: ioengine.OpRead, Offset: 0, Buf: buf}, false},
		{"last byte in", ioengine.Request{Op: ioengine.OpRead, Offset: 1, Buf: buf}, true},
		{"inside", ioengine.Request{Op: ioengine.OpWrite, Offset: from, Buf: buf}, true},
		{"first byte after", ioengine.Request{Op: ioengine.OpRead, Offset: to, Buf: buf}, false},
		{"covering", ioengine.Request{Op: ioengine.OpDiscard, Offset: 0, Len: 1 << 20}, true},
		{"empty read inside", ioengine.Request{Op: ioengine.OpRead, Offset: from}, true},
		{"empty read at end", ioengine.Request{Op: ioengine.OpRead, Offset: to}, false},
		{"flush at 0", ioengine.Request{Op: ioengine.OpFlush}, false},
		{"flush inside", ioengine.Request{Op: ioengine.OpFlush, Offset: from + 1}, true},
		{"negative length", ioengine.Request{Op: ioengine.OpDiscard, Offset: from, Len: -5}, true},
		{"MaxInt64 offset", ioengine.Request{Op: ioengine.OpRead, Offset: math.MaxInt64, Buf: buf}, false},
		{"MaxInt64 length", ioengine.Request{Op: ioengine.OpDiscard, Offset: 1, Len: math.MaxInt64}, true},
		{"MaxInt64 length past", ioengine.Request{Op: ioengine.OpDiscard, Offset: to, Len: math.MaxInt64}, false},
		{"MinInt64 offset", ioengine.Request{Op: ioengine.OpRead, Offset: math.MinInt64, Buf: buf}, false},
		{"MinInt64 offset, MaxInt64 length", ioengine.Request{Op: ioengine.OpDiscard, Offset: math.MinInt64, Len: math.MaxInt64}, false},
		{"negative offset into range", ioengine.Request{Op: ioengine.OpDiscard, Offset: -10, Len: from + 11}, true},
		{"negative offset short of range", ioengine.Request{Op: ioengine.OpDiscard, Offset: -10, Len: from + 10}, false},
	}
	for _, tt := range tests {
		if got := overlaps(&tt.r, from, to); got != tt.want {
			t.Errorf("%s: overlaps = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestOverlapsAtTheTop(t *testing.T) {
	r := ioengine.Request{Op: ioengine.OpDiscard, Offset: math.MaxInt64 - 1, Len: 1}
	if !overlaps(&r, math.MaxInt64-2, math.MaxInt64) {
		t.Error("a request inside a range ending at MaxInt64 does not overlap it")
	}
	r.Offset, r.Len = math.MaxInt64-10, math.MaxInt64
	if !overlaps(&r, math.MaxInt64-2, math.MaxInt64) {
		t.Error("a request whose end overflows does not overlap a range it starts before")
	}
}

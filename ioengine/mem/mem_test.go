package mem_test

import (
	"bytes"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/enginetest"
	"github.com/usrpt/usrpt/ioengine/mem"
)

// openT opens a RAM disk that is closed when the test ends, after the
// queues opened since.
func openT(t testing.TB, size int64, bs int) ioengine.Device {
	t.Helper()
	d, err := mem.Open(size, bs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func TestConformance(t *testing.T) {
	for _, bs := range []int{512, 4096} {
		t.Run(strconv.Itoa(bs), func(t *testing.T) {
			enginetest.Run(t, func(t *testing.T) ioengine.Device {
				d, err := mem.Open(8<<20, bs)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}, enginetest.Options{
				PersistsData:        true,
				SupportsDiscard:     true,
				SupportsWriteZeroes: true,
				ZeroesDiscard:       true,
				MaxDepth:            mem.MaxDepth,
				SizeBytes:           8 << 20,
				BlockSize:           bs,
			})
		})
	}
}

func TestOpenValidation(t *testing.T) {
	tests := []struct {
		size int64
		bs   int
		ok   bool
	}{
		{4096, 512, true},
		{512, 512, true},
		{3 << 20, 4096, true},
		{0, 512, false},
		{-4096, 4096, false},
		{1000, 512, false},
		{512, 4096, false},
		{4096, 2048, false},
		{1 << 62, 4096 * 3, false},
	}
	for _, tt := range tests {
		d, err := mem.Open(tt.size, tt.bs)
		if (err == nil) != tt.ok {
			t.Errorf("Open(%d, %d): err = %v, want ok %v", tt.size, tt.bs, err, tt.ok)
		}
		if err == nil {
			info := d.Info()
			if info.Engine != "mem" || info.SizeBytes != tt.size || info.BlockSize != tt.bs || info.Ops != ioengine.AllOps || info.Options == "" {
				t.Errorf("Open(%d, %d).Info() = %+v", tt.size, tt.bs, info)
			}
			if err := d.Close(); err != nil {
				t.Error(err)
			}
		}
	}
}

// A fresh disk reads as zeroes, and requests need not be block-aligned.
func TestZeroFilledAndUnaligned(t *testing.T) {
	const size = 1 << 20
	d := openT(t, size, 512)
	q := enginetest.NewQueue(t, d, 4)
	buf := bytes.Repeat([]byte{0xff}, size)
	r := &ioengine.Request{Op: ioengine.OpRead, Buf: buf}
	enginetest.Exec(t, q, r)
	if !r.OK() || !bytes.Equal(buf, make([]byte, size)) {
		t.Fatalf("a fresh disk does not read as zeroes (%v)", r.Err())
	}

	w := &ioengine.Request{Op: ioengine.OpWrite, Offset: 1001, Buf: []byte("hello, disk")}
	z := &ioengine.Request{Op: ioengine.OpWriteZeroes, Offset: 1003, Len: 2}
	rd := &ioengine.Request{Op: ioengine.OpRead, Offset: 1000, Buf: make([]byte, 13)}
	enginetest.Exec(t, q, w, z)
	enginetest.Exec(t, q, rd)
	if want := "\x00he\x00\x00o, disk\x00"; string(rd.Buf) != want || !rd.OK() {
		t.Errorf("unaligned write, zero, read: got %q, want %q", rd.Buf, want)
	}
}

func TestCloseOrder(t *testing.T) {
	d, err := mem.Open(1<<20, 4096)
	if err != nil {
		t.Fatal(err)
	}
	q, err := d.NewQueue(ioengine.QueueConfig{Depth: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err == nil {
		t.Fatal("Device.Close with a queue open succeeded: the queue would touch unmapped memory")
	}
	r := &ioengine.Request{Op: ioengine.OpWrite, Buf: make([]byte, 4096)}
	if k := q.Submit([]*ioengine.Request{r}); k != 1 {
		t.Fatalf("Submit = %d", k)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if k := q.Submit([]*ioengine.Request{r}); k != 0 {
		t.Errorf("Submit on a closed queue = %d", k)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Device.Close: %v", err)
	}
	if _, err := d.NewQueue(ioengine.QueueConfig{Depth: 1}); err == nil {
		t.Error("NewQueue on a closed device succeeded")
	}
}

// The RAM disk lives off the Go heap: opening 256 MiB grows the heap by
// nothing like that.
func TestOffHeap(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := openT(t, 256<<20, 4096)
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
		t.Errorf("opening a 256 MiB RAM disk grew the Go heap by %d bytes", grew)
	}
	q := enginetest.NewQueue(t, d, 1)
	r := &ioengine.Request{Op: ioengine.OpRead, Offset: 256<<20 - 4096, Buf: make([]byte, 4096)}
	enginetest.Exec(t, q, r)
	if !r.OK() {
		t.Fatal(r.Err())
	}
}

func TestOutOfRangeLeavesDataAlone(t *testing.T) {
	d := openT(t, 1<<20, 512)
	q := enginetest.NewQueue(t, d, 4)
	w := &ioengine.Request{Op: ioengine.OpWrite, Offset: 1<<20 - 512, Buf: bytes.Repeat([]byte{7}, 512)}
	enginetest.Exec(t, q, w)
	bad := &ioengine.Request{Op: ioengine.OpWriteZeroes, Offset: 1<<20 - 512, Len: 1024}
	r := &ioengine.Request{Op: ioengine.OpRead, Offset: 1<<20 - 512, Buf: make([]byte, 512)}
	enginetest.Exec(t, q, bad, r)
	if bad.Errno != syscall.EINVAL {
		t.Errorf("write-zeroes across the end: Errno %v, want EINVAL", bad.Errno)
	}
	if !bytes.Equal(r.Buf, w.Buf) {
		t.Error("a refused write-zeroes changed the data")
	}
}

func BenchmarkMemRead4K(b *testing.B) {
	for _, depth := range []int{1, 32} {
		b.Run("qd"+strconv.Itoa(depth), func(b *testing.B) {
			d := openT(b, 256<<20, 4096)
			enginetest.Bench(b, d, ioengine.OpRead, 4096, depth)
		})
	}
}

func BenchmarkMemWrite4K(b *testing.B) {
	d := openT(b, 256<<20, 4096)
	enginetest.Bench(b, d, ioengine.OpWrite, 4096, 1)
}

package null_test

import (
	"bytes"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/enginetest"
	"github.com/usrpt/usrpt/ioengine/null"
)

func open(t testing.TB, size int64, bs int) ioengine.Device {
	t.Helper()
	d, err := null.Open(size, bs)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// openT opens a device that is closed when the test ends, after the
// queues opened since.
func openT(t testing.TB, size int64, bs int) ioengine.Device {
	t.Helper()
	d := open(t, size, bs)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func TestConformance(t *testing.T) {
	for _, bs := range []int{512, 4096} {
		t.Run(map[int]string{512: "512", 4096: "4096"}[bs], func(t *testing.T) {
			enginetest.Run(t, func(t *testing.T) ioengine.Device { return open(t, 64<<20, bs) },
				enginetest.Options{
					SupportsDiscard:     true,
					SupportsWriteZeroes: true,
					MaxDepth:            null.MaxDepth,
					SizeBytes:           64 << 20,
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
		{1 << 40, 4096, true},
		{0, 512, false},
		{-512, 512, false},
		{1000, 512, false},
		{512, 4096, false},
		{4096, 1024, false},
		{4096, 0, false},
		{4096, -512, false},
	}
	for _, tt := range tests {
		d, err := null.Open(tt.size, tt.bs)
		if (err == nil) != tt.ok {
			t.Errorf("Open(%d, %d): err = %v, want ok %v", tt.size, tt.bs, err, tt.ok)
		}
		if err == nil {
			if info := d.Info(); info.Engine != "null" || info.SizeBytes != tt.size || info.BlockSize != tt.bs || info.Ops != ioengine.AllOps {
				t.Errorf("Open(%d, %d).Info() = %+v", tt.size, tt.bs, info)
			}
			if err := d.Close(); err != nil {
				t.Error(err)
			}
		}
	}
}

// Reads leave the buffer as it was, and requests of any size and alignment
// complete.
func TestReadLeavesBuffer(t *testing.T) {
	d := openT(t, 1<<20, 512)
	q := enginetest.NewQueue(t, d, 4)
	buf := bytes.Repeat([]byte{0x5a}, 1000)
	r := &ioengine.Request{Op: ioengine.OpRead, Offset: 3, Buf: buf}
	enginetest.Exec(t, q, r)
	if !r.OK() || r.N != 1000 {
		t.Fatalf("unaligned read: N %d, %v", r.N, r.Err())
	}
	if !bytes.Equal(buf, bytes.Repeat([]byte{0x5a}, 1000)) {
		t.Error("a null read changed the buffer")
	}
	if q.WaitFD() != -1 {
		t.Errorf("WaitFD() = %d, want -1", q.WaitFD())
	}
}

// The queue's own closed state is tested in syncq; here, the device's
// bookkeeping of its queues.
func TestCloseOrder(t *testing.T) {
	d := open(t, 1<<20, 512)
	q, err := d.NewQueue(ioengine.QueueConfig{Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err == nil {
		t.Error("Device.Close with a queue open succeeded")
	}
	r := &ioengine.Request{Op: ioengine.OpFlush}
	if k := q.Submit([]*ioengine.Request{r}); k != 1 {
		t.Fatalf("Submit = %d", k)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Queue.Close: %v", err)
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

func BenchmarkNullQD1(b *testing.B) {
	d := openT(b, 1<<30, 512)
	enginetest.Bench(b, d, ioengine.OpRead, 4096, 1)
}

func BenchmarkNullQD32(b *testing.B) {
	d := openT(b, 1<<30, 512)
	enginetest.Bench(b, d, ioengine.OpRead, 4096, 32)
}

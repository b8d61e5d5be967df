package psync_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/blockfile"
	"github.com/usrpt/usrpt/ioengine/blockfile/blockfiletest"
	"github.com/usrpt/usrpt/ioengine/enginetest"
	"github.com/usrpt/usrpt/ioengine/psync"
)

const devBytes = 8 << 20

// openFile opens a psync device on a new file of devBytes in dir ("" for
// t.TempDir()) and closes it when the test ends.
func openFile(t testing.TB, dir string, cfg psync.Config) ioengine.Device {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = blockfiletest.File(t, dir, "psync.img", devBytes)
	}
	d, err := psync.Open(cfg)
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

func direct(path string) psync.Config {
	return psync.Config{Config: blockfile.Config{Path: path, Direct: true}}
}

func TestConformance(t *testing.T) {
	targets := map[string]func(t *testing.T) string{
		"tempdir": func(t *testing.T) string {
			return blockfiletest.File(t, "", "psync.img", devBytes)
		},
		"tmpfs": func(t *testing.T) string {
			return blockfiletest.File(t, blockfiletest.ShmDir(t), "psync.img", devBytes)
		},
		"loop4k": func(t *testing.T) string {
			return blockfiletest.Loop(t, blockfiletest.LoopConfig{SizeBytes: devBytes, BlockSize: 4096, Direct: true})
		},
	}
	// One worker count per target keeps the suite fast: flushes and FUA
	// writes reach the disk under ext4 and the loop device.
	workerCounts := map[string]int{"tempdir": 2, "tmpfs": 1, "loop4k": 3}
	for name, target := range targets {
		{
			workers := workerCounts[name]
			t.Run(fmt.Sprintf("%s/workers=%d", name, workers), func(t *testing.T) {
				target(t) // skips here, not inside the suite, when the target is missing
				opts := enginetest.Options{
					PersistsData:        true,
					SupportsDiscard:     true,
					SupportsWriteZeroes: true,
					ZeroesDiscard:       true, // files punch holes; a loop device over a file does too
					MaxDepth:            psync.MaxDepth,
					SizeBytes:           devBytes,
				}
				enginetest.Run(t, func(t *testing.T) ioengine.Device {
					cfg := direct(target(t))
					cfg.Workers = workers
					d, err := psync.Open(cfg)
					if err != nil {
						t.Fatal(err)
					}
					return d
				}, opts)
			})
		}
	}
}

func TestInfo(t *testing.T) {
	d := openFile(t, "", direct(""))
	info := d.Info()
	if info.Engine != "psync" || info.Options != "workers=2,direct" || !info.Direct || info.SizeBytes != devBytes {
		t.Errorf("Info() = %+v", info)
	}
	if !strings.HasSuffix(info.Path, "psync.img") || info.Ops != ioengine.AllOps {
		t.Errorf("Info() = %+v", info)
	}
	f := d.(*psync.Device).File()
	if f.Fd < 0 || f.SizeBytes != devBytes {
		t.Errorf("File() = %v", f)
	}

	ro := openFile(t, "", psync.Config{Config: blockfile.Config{Path: blockfiletest.File(t, "", "ro.img", devBytes), ReadOnly: true}, Workers: 3})
	if info := ro.Info(); info.Options != "workers=3,readonly" || info.Ops != ioengine.Ops(ioengine.OpRead, ioengine.OpFlush) {
		t.Errorf("read-only Info() = %+v", info)
	}
	for _, op := range []ioengine.Op{ioengine.OpWrite, ioengine.OpDiscard, ioengine.OpWriteZeroes} {
		if ro.Supports(op) {
			t.Errorf("read-only device supports %v", op)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	p := blockfiletest.File(t, "", "x.img", devBytes)
	for _, tc := range []struct {
		cfg  psync.Config
		want string
	}{
		{psync.Config{Config: blockfile.Config{Path: p}, Workers: psync.MaxWorkers + 1}, "workers"},
		{psync.Config{Config: blockfile.Config{Path: p}, Workers: -1}, "workers"},
		{psync.Config{Config: blockfile.Config{Path: p + ".missing"}}, "no such file"},
		{psync.Config{Config: blockfile.Config{Path: "/proc/version", ReadOnly: true, Direct: true}}, "--direct=0"},
	} {
		d, err := psync.Open(tc.cfg)
		if err == nil {
			d.Close()
			t.Errorf("%+v: no error", tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %q does not say %q", tc.cfg, err, tc.want)
		}
	}
	d := openFile(t, "", direct(""))
	for _, depth := range []int{0, -1, psync.MaxDepth + 1} {
		if q, err := d.NewQueue(ioengine.QueueConfig{Depth: depth}); err == nil {
			q.Close()
			t.Errorf("depth %d: no error", depth)
		}
	}
}

// exec runs reqs to completion on q and fails the test on a lost request.
func exec(t testing.TB, q ioengine.Queue, reqs ...*ioengine.Request) {
	t.Helper()
	enginetest.Exec(t, q, reqs...)
}

func TestReadWriteOps(t *testing.T) {
	d := openFile(t, "", direct(""))
	bs := d.Info().BlockSize
	bufs := enginetest.NewBuffers(t, 4, 4*bs)
	q := enginetest.NewQueue(t, d, 4, bufs)
	w, r := bufs.Bufs[0], bufs.Bufs[1]
	enginetest.Fill(w, 1)

	t.Run("write FUA and read back", func(t *testing.T) {
		wr := &ioengine.Request{Op: ioengine.OpWrite, Flags: ioengine.FlagFUA, Offset: int64(bs), Buf: w}
		rd := &ioengine.Request{Op: ioengine.OpRead, Offset: int64(bs), Buf: r}
		exec(t, q, wr)
		exec(t, q, rd)
		if !wr.OK() || !rd.OK() || wr.N != int64(len(w)) || rd.N != int64(len(r)) {
			t.Fatalf("write %v (%d), read %v (%d)", wr.Err(), wr.N, rd.Err(), rd.N)
		}
		if !bytes.Equal(w, r) {
			t.Fatal("read back other data")
		}
	})
	t.Run("flush", func(t *testing.T) {
		fl := &ioengine.Request{Op: ioengine.OpFlush}
		exec(t, q, fl)
		if !fl.OK() || fl.N != 0 {
			t.Fatalf("flush: %v, N %d", fl.Err(), fl.N)
		}
	})
	for _, op := range []ioengine.Op{ioengine.OpDiscard, ioengine.OpWriteZeroes} {
		t.Run(op.String(), func(t *testing.T) {
			exec(t, q, &ioengine.Request{Op: ioengine.OpWrite, Offset: 0, Buf: w})
			z := &ioengine.Request{Op: op, Offset: int64(bs), Len: int64(2 * bs)}
			rd := &ioengine.Request{Op: ioengine.OpRead, Offset: 0, Buf: r}
			exec(t, q, z)
			exec(t, q, rd)
			if !z.OK() || z.N != z.Len || !rd.OK() {
				t.Fatalf("%v: %v (N %d), read %v", op, z.Err(), z.N, rd.Err())
			}
			want := bytes.Clone(w)
			clear(want[bs : 3*bs])
			if !bytes.Equal(r, want) {
				t.Fatalf("after %v of blocks 1-2 the data is not as expected", op)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	d := openFile(t, "", direct(""))
	info := d.Info()
	bs := info.BlockSize
	bufs := enginetest.NewBuffers(t, 2, 4*bs)
	q := enginetest.NewQueue(t, d, 4, bufs)
	buf := bufs.Bufs[0]
	// Write the blocks read below: ext4 checks O_DIRECT alignment only
	// where blocks are mapped, and reads of a hole succeed regardless.
	enginetest.Fill(bufs.Bufs[1], 3)
	w := &ioengine.Request{Op: ioengine.OpWrite, Buf: bufs.Bufs[1]}
	if exec(t, q, w); !w.OK() {
		t.Fatalf("write: %v", w.Err())
	}
	for _, tc := range []struct {
		name string
		r    ioengine.Request
		want syscall.Errno
	}{
		{"misaligned offset", ioengine.Request{Op: ioengine.OpRead, Offset: int64(bs / 2), Buf: buf[:bs]}, unix.EINVAL},
		{"partial block", ioengine.Request{Op: ioengine.OpWrite, Buf: buf[:bs/2]}, unix.EINVAL},
		{"beyond the end", ioengine.Request{Op: ioengine.OpRead, Offset: info.SizeBytes, Buf: buf[:bs]}, unix.EINVAL},
		{"across the end", ioengine.Request{Op: ioengine.OpWrite, Offset: info.SizeBytes - int64(bs), Buf: buf[:2*bs]}, unix.EINVAL},
		{"negative offset", ioengine.Request{Op: ioengine.OpRead, Offset: -int64(bs), Buf: buf[:bs]}, unix.EINVAL},
		{"discard overflow", ioengine.Request{Op: ioengine.OpDiscard, Offset: int64(bs), Len: 1<<63 - 1}, unix.EINVAL},
		{"unknown op", ioengine.Request{Op: 99}, unix.EOPNOTSUPP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			r.User = 42
			exec(t, q, &r)
			if r.Errno != tc.want || r.User != 42 {
				t.Errorf("errno %v (N %d) user %d, want %v", r.Errno, r.N, r.User, tc.want)
			}
		})
	}
	// A buffer off its memory alignment (hugemem memory moved by 512 bytes,
	// then by one) is EINVAL where the kernel enforces dio_mem_align; ext4
	// on virtio-blk and tmpfs accept it. Either way the data must be right.
	for _, shift := range []int{512, 1} {
		r := &ioengine.Request{Op: ioengine.OpRead, Buf: buf[shift : shift+bs]}
		exec(t, q, r)
		switch {
		case r.Errno == unix.EINVAL:
			t.Logf("buffer misaligned by %d: EINVAL", shift)
		case !r.OK():
			t.Errorf("buffer misaligned by %d: %v", shift, r.Err())
		case !bytes.Equal(r.Buf, bufs.Bufs[1][:bs]):
			t.Errorf("buffer misaligned by %d: read other data", shift)
		default:
			t.Logf("buffer misaligned by %d: accepted by the kernel (memory alignment %d reported)", shift, d.(*psync.Device).File().MemAlign)
		}
	}
}

// A 4096-byte-block device refuses an offset aligned to 512 only.
func TestMisaligned512On4K(t *testing.T) {
	node := blockfiletest.Loop(t, blockfiletest.LoopConfig{SizeBytes: devBytes, BlockSize: 4096, Direct: true})
	d := openFile(t, "", direct(node))
	if bs := d.Info().BlockSize; bs != 4096 {
		t.Fatalf("block size %d", bs)
	}
	bufs := enginetest.NewBuffers(t, 1, 8192)
	q := enginetest.NewQueue(t, d, 1, bufs)
	r := &ioengine.Request{Op: ioengine.OpRead, Offset: 512, Buf: bufs.Bufs[0][:4096]}
	exec(t, q, r)
	if r.Errno != unix.EINVAL {
		t.Errorf("read at 512 of a 4K device: %v", r.Err())
	}
	r = &ioengine.Request{Op: ioengine.OpRead, Offset: 4096, Buf: bufs.Bufs[0][512 : 512+4096]}
	exec(t, q, r)
	t.Logf("buffer misaligned by 512 on a 4K device: %v", r.Err())
}

// A file cut short under the engine makes a short read, reported as such.
func TestShortRead(t *testing.T) {
	p := blockfiletest.File(t, "", "short.img", devBytes)
	d := openFile(t, "", psync.Config{Config: blockfile.Config{Path: p}})
	if err := os.Truncate(p, devBytes-2048); err != nil {
		t.Fatal(err)
	}
	bufs := enginetest.NewBuffers(t, 1, 4096)
	q := enginetest.NewQueue(t, d, 1, bufs)
	r := &ioengine.Request{Op: ioengine.OpRead, Offset: devBytes - 4096, Buf: bufs.Bufs[0]}
	exec(t, q, r)
	if r.Errno != 0 || r.N != 2048 || !errors.Is(r.Err(), ioengine.ErrShort) {
		t.Errorf("N %d errno %v err %v", r.N, r.Errno, r.Err())
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	p := blockfiletest.File(t, "", "ro.img", devBytes)
	d := openFile(t, "", psync.Config{Config: blockfile.Config{Path: p, ReadOnly: true, Direct: true}})
	bufs := enginetest.NewBuffers(t, 1, 4096)
	q := enginetest.NewQueue(t, d, 2, bufs)
	w := &ioengine.Request{Op: ioengine.OpWrite, Buf: bufs.Bufs[0]}
	rd := &ioengine.Request{Op: ioengine.OpRead, Buf: bufs.Bufs[0]}
	exec(t, q, w, rd)
	if w.Errno != unix.EOPNOTSUPP || !rd.OK() {
		t.Errorf("write %v, read %v", w.Err(), rd.Err())
	}
}

func Test128InFlight(t *testing.T) {
	d := openFile(t, "", direct(""))
	bs := d.Info().BlockSize
	const depth = 128
	bufs := enginetest.NewBuffers(t, depth, bs)
	q := enginetest.NewQueue(t, d, depth, bufs)
	reqs := make([]*ioengine.Request, depth+1)
	for i := range reqs {
		reqs[i] = &ioengine.Request{Op: ioengine.OpRead, Offset: int64(i * bs), Buf: bufs.Bufs[i%depth], User: uint64(i)}
	}
	if k := q.Submit(reqs); k != depth {
		t.Fatalf("Submit took %d of %d", k, len(reqs))
	}
	if q.Inflight() != depth {
		t.Fatalf("Inflight %d", q.Inflight())
	}
	out := make([]*ioengine.Request, depth)
	seen := make([]bool, depth)
	deadline := time.Now().Add(10 * time.Second)
	for got := 0; got < depth; {
		n := q.Poll(out)
		for _, r := range out[:n] {
			if seen[r.User] || !r.OK() {
				t.Fatalf("request %d: seen %v, %v", r.User, seen[r.User], r.Err())
			}
			seen[r.User] = true
		}
		got += n
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d back", got, depth)
		}
	}
	if q.Inflight() != 0 {
		t.Fatalf("Inflight %d", q.Inflight())
	}
}

// waitGoroutines waits for the goroutine count to come back to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before the queues", runtime.NumGoroutine(), base)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseInflight(t *testing.T) {
	d := openFile(t, "", direct(""))
	bs := d.Info().BlockSize
	const depth = 64
	bufs := enginetest.NewBuffers(t, depth, 4*bs)
	base := runtime.NumGoroutine()
	for round := range 20 {
		q, err := d.NewQueue(ioengine.QueueConfig{Depth: depth})
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			if n := runtime.NumGoroutine(); n != base+psync.DefaultWorkers {
				t.Errorf("%d goroutines with a queue open, %d before", n, base)
			}
		}
		reqs := make([]*ioengine.Request, depth)
		for i := range reqs {
			reqs[i] = &ioengine.Request{Op: ioengine.Op(i % 2), Flags: ioengine.FlagFUA, Offset: int64(i * 4 * bs), Buf: bufs.Bufs[i]}
		}
		reqs[0].Offset = -1 // refused in Submit, never polled
		if k := q.Submit(reqs); k != depth {
			t.Fatalf("Submit took %d", k)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs[1:] {
			if !r.OK() {
				t.Fatalf("request at %d closed in flight: %v", r.Offset, r.Err())
			}
		}
		if k := q.Submit(reqs); k != 0 {
			t.Fatalf("Submit after Close took %d", k)
		}
		if err := q.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	waitGoroutines(t, base)

	// The device refuses to close under an open queue.
	q, err := d.NewQueue(ioengine.QueueConfig{Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err == nil {
		t.Error("Device.Close with a queue open: no error")
	}
	q.Close()
	waitGoroutines(t, base)
}

// TestWaitFD sleeps on the queue's eventfd for every completion, as an
// adaptive reactor does, with and without spinning workers: a lost wakeup
// hangs a round and fails the test.
func TestWaitFD(t *testing.T) {
	for _, spin := range []time.Duration{-1, psync.DefaultSpin} {
		t.Run(fmt.Sprint("spin=", spin), func(t *testing.T) {
			cfg := direct("")
			cfg.Spin = spin
			d := openFile(t, "", cfg)
			bs := d.Info().BlockSize
			bufs := enginetest.NewBuffers(t, 4, bs)
			q := enginetest.NewQueue(t, d, 4, bufs)
			fd := q.WaitFD()
			if fd < 0 {
				t.Fatal("no WaitFD")
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			reqs := make([]*ioengine.Request, 4)
			for i := range reqs {
				reqs[i] = &ioengine.Request{Op: ioengine.OpRead, Offset: int64(i * bs), Buf: bufs.Bufs[i]}
			}
			out := make([]*ioengine.Request, 4)
			sleeps, spurious := 0, 0
			for round := range 500 {
				batch := reqs[:1+round%4]
				if k := q.Submit(batch); k != len(batch) {
					t.Fatalf("Submit took %d", k)
				}
				woke := false
				for got := 0; got < len(batch); {
					n := q.Poll(out)
					if woke && n == 0 {
						spurious++
					}
					woke = false
					got += n
					if n > 0 || got == len(batch) {
						continue
					}
					// Nothing ready after an empty Poll: sleep until the
					// queue says there is.
					sleeps++
					woke = true
					if c, err := unix.Poll(pfd, 10_000); err != nil && err != unix.EINTR || c == 0 {
						t.Fatalf("round %d: no wakeup within 10 s (%d of %d back, %d in flight): %v", round, got, len(batch), q.Inflight(), err)
					}
				}
			}
			t.Logf("%d sleeps in 500 rounds, %d woke to nothing", sleeps, spurious)
			// A wakeup may find nothing when the owner reaped the
			// completion between arming and the worker's write, but
			// rarely; an efd left readable would make nearly every one.
			if spurious > sleeps/4+5 {
				t.Errorf("%d of %d wakeups found nothing to poll", spurious, sleeps)
			}
			// Idle now: the fd must not stay readable, or an adaptive
			// reactor would spin on it.
			q.Poll(out)
			if c, _ := unix.Poll(pfd, 0); c != 0 {
				q.Poll(out)
				if c, _ := unix.Poll(pfd, 0); c != 0 {
					t.Error("WaitFD stays readable on an idle queue")
				}
			}
		})
	}
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	d := openFile(t, "", direct(""))
	bs := d.Info().BlockSize
	for _, depth := range []int{1, 32} {
		t.Run(fmt.Sprint("QD", depth), func(t *testing.T) {
			bufs := enginetest.NewBuffers(t, depth, bs)
			q := enginetest.NewQueue(t, d, depth, bufs)
			q.WaitFD() // the wakeup path too
			reqs := make([]*ioengine.Request, depth)
			for i := range reqs {
				reqs[i] = &ioengine.Request{Op: ioengine.Op(i % 2), Offset: int64(i * bs), Buf: bufs.Bufs[i]}
			}
			// One durable write per cycle: the path must not allocate, but
			// each one waits for the disk.
			if depth > 1 {
				reqs[1].Flags = ioengine.FlagFUA
			}
			out := make([]*ioengine.Request, depth)
			cycle := func() {
				q.Submit(reqs)
				for got := 0; got < depth; {
					got += q.Poll(out)
				}
			}
			cycle()
			if a := testing.AllocsPerRun(50, cycle); a != 0 {
				t.Errorf("%v allocations per cycle of %d requests", a, depth)
			}
		})
	}
}

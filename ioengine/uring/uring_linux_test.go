package uring

import (
	"bytes"
	"errors"
	"math"
	"math/bits"
	"os"
	"path/filepath"
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
)

func TestProbe(t *testing.T) {
	err := Probe()
	if err != nil && !errors.Is(err, ErrNotSupported) {
		t.Errorf("Probe() = %v, which does not wrap ErrNotSupported", err)
	}
	t.Logf("Probe() = %v", err)
}

func TestSetupError(t *testing.T) {
	for _, errno := range []syscall.Errno{unix.ENOSYS, unix.EPERM, unix.ENOMEM} {
		err := setupError(errno)
		if !errors.Is(err, ErrNotSupported) || !errors.Is(err, errno) {
			t.Errorf("setupError(%v) = %v: want it to wrap ErrNotSupported and the errno", errno, err)
		}
	}
	if err := setupError(unix.EINVAL); errors.Is(err, ErrNotSupported) {
		t.Errorf("setupError(EINVAL) = %v wraps ErrNotSupported; a bad flag is not unavailability", err)
	}
}

// TestConformance runs the shared suite. The suite drives queues from
// goroutines it does not lock to OS threads, so the device is opened with
// NoSingleIssuer; the SINGLE_ISSUER path is covered by the tests below,
// which lock their thread as a reactor does.
func TestConformance(t *testing.T) {
	needUring(t)
	const size = 8 << 20
	zeroes := tempFS(t) != unix.TMPFS_MAGIC
	for _, direct := range []bool{true, false} {
		name := "direct"
		if !direct {
			name = "buffered"
		}
		t.Run(name, func(t *testing.T) {
			enginetest.Run(t, func(t *testing.T) ioengine.Device {
				return openFile(t, Config{Direct: direct, NoSingleIssuer: true}, size)
			}, enginetest.Options{
				PersistsData:        true,
				SupportsDiscard:     true,
				SupportsWriteZeroes: zeroes,
				ZeroesDiscard:       true, // a punched hole in a file reads as zeroes
				MaxDepth:            maxEntries,
				SizeBytes:           size,
			})
		})
	}
}

func TestInfo(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 1<<20)
	info := d.Info()
	t.Logf("Info() = %+v", info)
	if info.Engine != "uring" || info.SizeBytes != 1<<20 || !info.Direct || info.Path == "" {
		t.Errorf("Info() = %+v", info)
	}
	for _, name := range flagNames(d.flags) {
		if !strings.Contains(info.Options, name) {
			t.Errorf("Options %q lacks setup flag %s", info.Options, name)
		}
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	t.Logf("kernel %s: setup flags %s", unix.ByteSliceToString(uts.Release[:]), strings.Join(flagNames(d.flags), ","))
	q := newQ(t, d, 4, enginetest.NewBuffers(t, 1, 4096).Region)
	if got := d.Info().Options; !strings.HasSuffix(got, ",fixedfiles,fixedbufs") {
		t.Errorf("Options after NewQueue = %q, want fixedfiles,fixedbufs at the end", got)
	}
	if q.r.flags != d.flags {
		t.Errorf("queue ring flags %#x, Open's probe ring %#x", q.r.flags, d.flags)
	}
}

// TestReadWriteFixed writes and reads back through registered buffers and
// the registered file, with FUA on half the writes and a flush between.
func TestReadWriteFixed(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 4<<20)
	const n = 16
	bufs := enginetest.NewBuffers(t, 2*n, 8192)
	q := newQ(t, d, n, bufs.Region)
	if got := q.Options(); got != "fixedfiles,fixedbufs" {
		t.Fatalf("Options() = %q", got)
	}
	w := make([]*ioengine.Request, n)
	r := make([]*ioengine.Request, n)
	for i := range n {
		w[i] = &ioengine.Request{Op: ioengine.OpWrite, Offset: int64(i) * 64 << 10, Buf: bufs.Bufs[i], User: uint64(i)}
		if i%2 == 1 {
			w[i].Flags = ioengine.FlagFUA
		}
		enginetest.Fill(w[i].Buf, uint64(i))
		r[i] = &ioengine.Request{Op: ioengine.OpRead, Offset: w[i].Offset, Buf: bufs.Bufs[n+i]}
	}
	run(t, q, w...)
	mustOK(t, "write", w...)
	flush := &ioengine.Request{Op: ioengine.OpFlush}
	run(t, q, flush)
	mustOK(t, "flush", flush)
	run(t, q, r...)
	mustOK(t, "read", r...)
	for i := range n {
		if !bytes.Equal(r[i].Buf, w[i].Buf) {
			t.Errorf("block %d reads back other data than written", i)
		}
	}
	if q.stats.fixed != 2*n || q.stats.unfixed != 0 {
		t.Errorf("%d fixed and %d plain reads/writes, want %d and 0", q.stats.fixed, q.stats.unfixed, 2*n)
	}
}

// TestUnregisteredBuffer: a buffer outside QueueConfig.Buffers goes as plain
// READ/WRITE and works.
func TestUnregisteredBuffer(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 1<<20)
	reg := enginetest.NewBuffers(t, 1, 4096)
	other := enginetest.NewBuffers(t, 2, 4096)
	q := newQ(t, d, 4, reg.Region)
	enginetest.Fill(other.Bufs[0], 9)
	w := &ioengine.Request{Op: ioengine.OpWrite, Offset: 8192, Buf: other.Bufs[0]}
	rd := &ioengine.Request{Op: ioengine.OpRead, Offset: 8192, Buf: other.Bufs[1]}
	run(t, q, w)
	run(t, q, rd)
	mustOK(t, "unregistered", w, rd)
	if !bytes.Equal(rd.Buf, w.Buf) {
		t.Error("read back other data than written")
	}
	if q.stats.unfixed != 2 || q.stats.fixed != 0 {
		t.Errorf("%d plain and %d fixed, want 2 and 0", q.stats.unfixed, q.stats.fixed)
	}
}

// TestFixedBufsOff: buffers the kernel cannot pin for writing (a read-only
// mapping) fail registration; the queue says so and works unregistered.
func TestFixedBufsOff(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 1<<20)
	ro, err := unix.Mmap(-1, 0, 1<<16, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(ro) })
	q := newQ(t, d, 4, ro)
	if got := q.Options(); !strings.HasPrefix(got, "fixedfiles,fixedbufs=off: register 1 buffers: ") {
		t.Fatalf("Options() = %q, want fixedbufs=off with the reason", got)
	}
	t.Logf("Options() = %q", q.Options())
	if got := d.Info().Options; !strings.Contains(got, "fixedbufs=off") {
		t.Errorf("Info().Options = %q", got)
	}
	bufs := enginetest.NewBuffers(t, 1, 4096)
	rd := &ioengine.Request{Op: ioengine.OpRead, Buf: bufs.Bufs[0]}
	run(t, q, rd)
	mustOK(t, "read", rd)

	q2 := newQ(t, d, 4)
	if got := q2.Options(); got != "fixedfiles,fixedbufs=off: no QueueConfig.Buffers" {
		t.Errorf("Options() without buffers = %q", got)
	}
}

func TestPlanBuffers(t *testing.T) {
	if bits.UintSize < 64 {
		t.Skip("SKIP: the cases need a 64-bit address space")
	}
	// Variables, not constants, so the file compiles where uintptr is 32 bits.
	shift, G := 40, uintptr(maxBufLen)
	base := uintptr(1) << shift
	p, err := planBuffers([]span{{base, base + 2*G + G/2}, {base + 8*G, base + 8*G + 4096}, {base, base}})
	if err != nil {
		t.Fatal(err)
	}
	if p.iovecs != 4 || len(p.regions) != 2 || p.regions[1].first != 3 {
		t.Fatalf("plan = %+v, want 4 iovecs, the second region from index 3", p)
	}
	for _, c := range []struct {
		addr uintptr
		n    int
		idx  uint16
		ok   bool
	}{
		{base, 4096, 0, true},
		{base + G - 4096, 4096, 0, true},
		{base + G - 4096, 8192, 0, false}, // straddles iovecs 0 and 1
		{base + G, 4096, 1, true},
		{base + 2*G + G/2 - 4096, 4096, 2, true},
		{base + 2*G + G/2 - 4096, 8192, 0, false}, // runs off the region
		{base + 8*G, 4096, 3, true},
		{base + 8*G + 4096, 4096, 0, false},
		{base - 4096, 4096, 0, false},
		{base, 0, 0, false},
	} {
		idx, ok := fixedIndex(p.regions, c.addr, c.n)
		if ok != c.ok || (ok && idx != c.idx) {
			t.Errorf("fixedIndex(base%+d, %d) = %d, %v; want %d, %v", int64(c.addr-base), c.n, idx, ok, c.idx, c.ok)
		}
	}
	if _, err := planBuffers([]span{{base, base + (maxBuffers+1)*G}}); err == nil {
		t.Error("planBuffers of more than the kernel's buffer limit succeeded")
	}
}

func TestDiscardWriteZeroes(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 1<<20)
	bufs := enginetest.NewBuffers(t, 2, 64<<10)
	q := newQ(t, d, 4, bufs.Region)
	for _, op := range []ioengine.Op{ioengine.OpDiscard, ioengine.OpWriteZeroes} {
		if !d.Supports(op) {
			t.Logf("%v not supported on %s", op, os.TempDir())
			continue
		}
		w := &ioengine.Request{Op: ioengine.OpWrite, Offset: 128 << 10, Buf: bufs.Bufs[0]}
		enginetest.Fill(w.Buf, uint64(op))
		z := &ioengine.Request{Op: op, Offset: w.Offset + 16<<10, Len: 32 << 10}
		rd := &ioengine.Request{Op: ioengine.OpRead, Offset: w.Offset, Buf: bufs.Bufs[1]}
		run(t, q, w)
		run(t, q, z)
		run(t, q, rd)
		mustOK(t, op.String(), w, z, rd)
		if z.N != z.Len {
			t.Errorf("%v: N = %d, want %d", op, z.N, z.Len)
		}
		want := bytes.Clone(w.Buf)
		clear(want[16<<10 : 48<<10])
		if !bytes.Equal(rd.Buf, want) {
			t.Errorf("%v: the range does not read back as zeroes with the rest intact", op)
		}
	}
}

// TestUnsupportedLearned: tmpfs has no ZERO_RANGE. Open says so, and a
// request completes with EOPNOTSUPP without reaching the kernel.
func TestUnsupportedLearned(t *testing.T) {
	lockThread(t)
	if statfsType(t, "/dev/shm") != unix.TMPFS_MAGIC {
		t.Skip("SKIP: /dev/shm is not tmpfs")
	}
	dir, err := os.MkdirTemp("/dev/shm", "uring-test")
	if err != nil {
		t.Skipf("SKIP: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	d := openFile(t, Config{Path: filepath.Join(dir, "disk")}, 1<<20)
	if d.Supports(ioengine.OpWriteZeroes) || !d.Supports(ioengine.OpDiscard) {
		t.Fatalf("tmpfs: Ops = %v, want discard without write-zeroes", d.Info().Ops)
	}
	q := newQ(t, d, 2)
	z := &ioengine.Request{Op: ioengine.OpWriteZeroes, Len: 4096}
	run(t, q, z)
	if z.Errno != unix.EOPNOTSUPP {
		t.Errorf("write-zeroes on tmpfs: %v, want EOPNOTSUPP", z.Err())
	}
	// learnUnsupported narrows Supports after a kernel EOPNOTSUPP.
	d.learnUnsupported(ioengine.OpDiscard)
	if d.Supports(ioengine.OpDiscard) || !d.Supports(ioengine.OpRead) {
		t.Errorf("after learning: Ops = %v", d.Info().Ops)
	}
}

// TestShortReadAtEOF: a file that shrinks under the device gives a short
// read, typed through Request.Err.
func TestShortReadAtEOF(t *testing.T) {
	lockThread(t)
	path := filepath.Join(t.TempDir(), "disk")
	d := openFile(t, Config{Path: path}, 16384)
	if err := os.Truncate(path, 8192+100); err != nil {
		t.Fatal(err)
	}
	q := newQ(t, d, 2)
	rd := &ioengine.Request{Op: ioengine.OpRead, Offset: 8192, Buf: make([]byte, 4096)}
	run(t, q, rd)
	if rd.Errno != 0 || rd.N != 100 || rd.OK() || !errors.Is(rd.Err(), ioengine.ErrShort) {
		t.Errorf("read across EOF: N %d, Errno %v, Err %v; want 100 bytes, ErrShort", rd.N, rd.Errno, rd.Err())
	}
	past := &ioengine.Request{Op: ioengine.OpRead, Offset: 12288, Buf: make([]byte, 4096)}
	run(t, q, past)
	if past.N != 0 || past.Errno != 0 || !errors.Is(past.Err(), ioengine.ErrShort) {
		t.Errorf("read past EOF: N %d, Err %v", past.N, past.Err())
	}
}

// TestMisalignedDirect: O_DIRECT refuses a file offset, and a buffer
// address, off the filesystem's alignment; the kernel's EINVAL arrives as
// the request's Errno.
func TestMisalignedDirect(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 1<<20)
	bufs := enginetest.NewBuffers(t, 1, 8192)
	q := newQ(t, d, 2, bufs.Region)
	// Data first: the kernel zero-fills a hole without checking alignment.
	w := &ioengine.Request{Op: ioengine.OpWrite, Buf: bufs.Bufs[0]}
	run(t, q, w)
	mustOK(t, "write", w)
	rd := &ioengine.Request{Op: ioengine.OpRead, Offset: 100, Buf: bufs.Bufs[0][:4096]}
	run(t, q, rd)
	if rd.Errno != unix.EINVAL {
		t.Errorf("O_DIRECT read at offset 100: %v, want EINVAL", rd.Err())
	}
	var stx unix.Statx_t
	if err := unix.Statx(d.f.Fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx); err != nil || stx.Dio_mem_align <= 1 {
		t.Logf("dio_mem_align %d: buffer alignment not checked", stx.Dio_mem_align)
		return
	}
	rd = &ioengine.Request{Op: ioengine.OpRead, Offset: 0, Buf: bufs.Bufs[0][1:4097]}
	run(t, q, rd)
	if rd.Errno != unix.EINVAL {
		t.Errorf("O_DIRECT read into a buffer at +1 (dio_mem_align %d): %v, want EINVAL", stx.Dio_mem_align, rd.Err())
	}
}

// TestRangeNoSyscall: requests that fail CheckRange, or need no I/O,
// complete at the next Poll without an io_uring_enter.
func TestRangeNoSyscall(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 1<<20)
	bufs := enginetest.NewBuffers(t, 1, 4096)
	q := newQ(t, d, 8, bufs.Region)
	reqs := []*ioengine.Request{
		{Op: ioengine.OpRead, Offset: 1 << 20, Buf: bufs.Bufs[0]},
		{Op: ioengine.OpWrite, Offset: -4096, Buf: bufs.Bufs[0]},
		{Op: ioengine.OpRead, Offset: math.MaxInt64 - 100, Buf: bufs.Bufs[0]},
		{Op: ioengine.OpDiscard, Offset: 4096, Len: 1 << 20},
		{Op: ioengine.Op(9)},
		{Op: ioengine.OpDiscard, Offset: 4096},
	}
	want := []syscall.Errno{unix.EINVAL, unix.EINVAL, unix.EINVAL, unix.EINVAL, unix.EOPNOTSUPP, 0}
	out := make([]*ioengine.Request, 8)
	if k := q.Submit(reqs); k != len(reqs) {
		t.Fatalf("Submit took %d of %d", k, len(reqs))
	}
	if n := q.Poll(out); n != len(reqs) {
		t.Fatalf("Poll returned %d of %d", n, len(reqs))
	}
	for i, r := range reqs {
		if r.Errno != want[i] || out[i] != r {
			t.Errorf("request %d (%v at %d): Errno %v, want %v", i, r.Op, r.Offset, r.Errno, want[i])
		}
	}
	if q.stats.enters != 0 {
		t.Errorf("%d io_uring_enter calls for requests that need none", q.stats.enters)
	}
	for range 10 {
		q.Poll(out)
	}
	if q.stats.enters != 0 {
		t.Errorf("%d io_uring_enter calls from Polls of an idle queue", q.stats.enters)
	}

	ro := openFile(t, Config{Direct: true, ReadOnly: true, Path: d.cfg.Path}, 0)
	rq := newQ(t, ro, 2)
	w := &ioengine.Request{Op: ioengine.OpWrite, Buf: bufs.Bufs[0]}
	run(t, rq, w)
	if w.Errno != unix.EOPNOTSUPP || ro.Supports(ioengine.OpWrite) || !ro.Supports(ioengine.OpFlush) {
		t.Errorf("write on a read-only device: %v (Ops %v), want EOPNOTSUPP", w.Err(), ro.Info().Ops)
	}
}

// TestInflight128 keeps 128 reads in flight and reaps them through small out
// slices, so the CQ holds completions across Polls.
func TestInflight128(t *testing.T) {
	lockThread(t)
	const depth = 128
	d := openFile(t, Config{Direct: true}, 4<<20)
	bufs := enginetest.NewBuffers(t, depth, 4096)
	q := newQ(t, d, depth, bufs.Region)
	all := make([]*ioengine.Request, depth)
	for i := range all {
		all[i] = &ioengine.Request{Op: ioengine.OpWrite, Offset: int64(i) * 8192, Buf: bufs.Bufs[i], User: uint64(i)}
		enginetest.Fill(all[i].Buf, uint64(i)+1000)
	}
	run(t, q, all...)
	mustOK(t, "write", all...)
	for i, r := range all {
		r.Op = ioengine.OpRead
		clear(r.Buf)
		r.User = uint64(i) | 0xabc<<32
	}
	if k := q.Submit(all); k != depth {
		t.Fatalf("Submit took %d of %d", k, depth)
	}
	if k := q.Submit(all[:1]); k != 0 {
		t.Fatalf("Submit into a full queue took %d", k)
	}
	enters := q.stats.enters
	// Send them, then let all complete before reaping: under DEFER_TASKRUN
	// the kernel runs at most 20 completions per io_uring_enter and must
	// flag the rest (IORING_SQ_TASKRUN) for the Polls that follow.
	q.Poll(nil)
	time.Sleep(50 * time.Millisecond)
	seen := make([]bool, depth)
	out := make([]*ioengine.Request, 5)
	deadline := time.Now().Add(10 * time.Second)
	for back := 0; back < depth; {
		n := q.Poll(out)
		for _, r := range out[:n] {
			i := int(r.User & 0xffffffff)
			if r.User>>32 != 0xabc || seen[i] {
				t.Fatalf("request User %#x back twice or changed", r.User)
			}
			seen[i] = true
			want := make([]byte, 4096)
			enginetest.Fill(want, uint64(i)+1000)
			if !r.OK() || !bytes.Equal(r.Buf, want) {
				t.Fatalf("read %d: %v, or other data than written", i, r.Err())
			}
		}
		back += n
		if q.Inflight() != depth-back {
			t.Fatalf("Inflight() = %d with %d back", q.Inflight(), back)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d back after 10 s", back, depth)
		}
	}
	t.Logf("128 reads: %d io_uring_enter calls (%d busy), flags %s", q.stats.enters-enters, q.stats.busy, strings.Join(flagNames(q.r.flags), ","))
}

// TestWrongThread: a SINGLE_ISSUER ring used from another OS thread gets
// EEXIST from the kernel; the requests complete with it, Err says why, and
// the ring works again from its own thread.
func TestWrongThread(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 1<<20)
	if d.flags&setupSingleIssuer == 0 {
		t.Skip("SKIP: this kernel has no IORING_SETUP_SINGLE_ISSUER")
	}
	bufs := enginetest.NewBuffers(t, 1, 4096)
	q := newQ(t, d, 4, bufs.Region)
	rd := &ioengine.Request{Op: ioengine.OpRead, Buf: bufs.Bufs[0]}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // another thread than the test's, which is locked
		defer runtime.UnlockOSThread()
		out := make([]*ioengine.Request, 1)
		q.Submit([]*ioengine.Request{rd})
		if n := q.Poll(out); n != 1 || rd.Errno != unix.EEXIST {
			t.Errorf("Poll from another thread: %d back, Errno %v; want the request with EEXIST", n, rd.Errno)
		}
	}()
	<-done
	if err := q.Err(); !errors.Is(err, ErrWrongThread) || !errors.Is(err, unix.EEXIST) {
		t.Errorf("Err() = %v, want ErrWrongThread and EEXIST", err)
	} else {
		t.Logf("Err() = %v", err)
	}
	rd.Errno = 0
	run(t, q, rd)
	mustOK(t, "read from the creating thread", rd)
}

// TestNoSingleIssuer: without SINGLE_ISSUER a queue may move between
// goroutines (and OS threads), one at a time.
func TestNoSingleIssuer(t *testing.T) {
	d := openFile(t, Config{Direct: true, NoSingleIssuer: true}, 1<<20)
	if d.flags&(setupSingleIssuer|setupDeferTaskrun|setupCoopTaskrun) != 0 {
		t.Fatalf("NoSingleIssuer: setup flags %v", flagNames(d.flags))
	}
	bufs := enginetest.NewBuffers(t, 8, 4096)
	q := newQ(t, d, 8, bufs.Region)
	for i := range 8 {
		rd := &ioengine.Request{Op: ioengine.OpRead, Offset: int64(i) * 4096, Buf: bufs.Bufs[i]}
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread() // a fresh thread each time
			q.Submit([]*ioengine.Request{rd})
			q.Poll(nil) // sends it from this thread
		}()
		<-done
		out := make([]*ioengine.Request, 1)
		deadline := time.Now().Add(10 * time.Second)
		for q.Poll(out) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("read not back after 10 s")
			}
		}
		mustOK(t, "read", rd)
	}
	if err := q.Err(); err != nil {
		t.Error(err)
	}
}

// TestWaitFD: the eventfd turns readable when a completion is ready, so a
// reactor can sleep on it.
func TestWaitFD(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 1<<20)
	bufs := enginetest.NewBuffers(t, 1, 4096)
	q := newQ(t, d, 2, bufs.Region)
	fd := q.WaitFD()
	if fd < 0 {
		t.Fatal("WaitFD() = -1")
	}
	rd := &ioengine.Request{Op: ioengine.OpRead, Offset: 4096, Buf: bufs.Bufs[0]}
	out := make([]*ioengine.Request, 1)
	q.Submit([]*ioengine.Request{rd})
	n := q.Poll(out) // sends it
	if n == 0 {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		k, err := unix.Poll(pfd, 5000)
		if err != nil || k != 1 {
			t.Fatalf("poll(WaitFD) = %d, %v: no wakeup within 5 s", k, err)
		}
		var b [8]byte
		if _, err := unix.Read(fd, b[:]); err != nil {
			t.Fatalf("read eventfd: %v", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for n == 0 && time.Now().Before(deadline) {
			n = q.Poll(out)
		}
	}
	if n != 1 {
		t.Fatal("the read did not come back after the eventfd fired")
	}
	mustOK(t, "read", rd)
}

// TestZeroAllocs: a steady-state submit and poll of a 4 KiB read allocates
// nothing.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 1<<20)
	bufs := enginetest.NewBuffers(t, 1, 4096)
	q := newQ(t, d, 1, bufs.Region)
	reqs := []*ioengine.Request{{Op: ioengine.OpRead, Buf: bufs.Bufs[0]}}
	out := make([]*ioengine.Request, 1)
	off := int64(0)
	cycle := func() {
		reqs[0].Offset = off
		off = (off + 4096) % (1 << 20)
		q.Submit(reqs)
		for q.Poll(out) == 0 {
		}
	}
	cycle()
	if a := testing.AllocsPerRun(1000, cycle); a != 0 {
		t.Errorf("submit+poll of a 4 KiB read: %v allocations", a)
	}
	mustOK(t, "read", reqs...)
}

// TestCloseWaits: Close with requests in flight waits for them, then the
// device closes; a device with an open queue refuses to close.
func TestCloseWaits(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 1<<20)
	bufs := enginetest.NewBuffers(t, 16, 4096)
	qi, err := d.NewQueue(ioengine.QueueConfig{Depth: 16, Buffers: [][]byte{bufs.Region}})
	if err != nil {
		t.Fatal(err)
	}
	q := qi.(*Queue)
	if err := d.Close(); err == nil {
		t.Fatal("Device.Close with a queue open succeeded")
	}
	reqs := make([]*ioengine.Request, 16)
	for i := range reqs {
		reqs[i] = &ioengine.Request{Op: ioengine.Op(i % 2), Offset: int64(i) * 4096, Buf: bufs.Bufs[i]}
	}
	if k := q.Submit(reqs); k != 16 {
		t.Fatalf("Submit took %d", k)
	}
	q.Poll(nil) // in the kernel now, never reaped
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if q.inKernel != 0 {
		t.Errorf("Close returned with %d requests in the kernel", q.inKernel)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := q.Submit(reqs); n != 0 {
		t.Errorf("Submit after Close took %d", n)
	}
}

// TestSQPoll checks SQPOLL for correctness only (it is slow on small
// shared machines; see the package comment), including the wakeup of a
// poller gone idle.
func TestSQPoll(t *testing.T) {
	d := openFile(t, Config{Direct: true, SQPoll: true, SQPollCPU: -1, SQPollIdle: time.Millisecond}, 1<<20)
	if !strings.Contains(d.Info().Options, "sqpoll") {
		t.Fatalf("Options = %q", d.Info().Options)
	}
	bufs := enginetest.NewBuffers(t, 2, 4096)
	q := newQ(t, d, 2, bufs.Region)
	for i := range 3 {
		w := &ioengine.Request{Op: ioengine.OpWrite, Offset: int64(i) * 4096, Buf: bufs.Bufs[0]}
		rd := &ioengine.Request{Op: ioengine.OpRead, Offset: int64(i) * 4096, Buf: bufs.Bufs[1]}
		enginetest.Fill(w.Buf, uint64(i))
		run(t, q, w)
		run(t, q, rd)
		mustOK(t, "sqpoll", w, rd)
		if !bytes.Equal(w.Buf, rd.Buf) {
			t.Error("read back other data than written")
		}
		time.Sleep(20 * time.Millisecond) // let the SQPOLL thread sleep
	}
	t.Logf("%d io_uring_enter calls (wakeups) for 6 requests", q.stats.enters)
}

// TestIOPoll: on devices without poll queues (every one on the development
// VM) each read completes with EOPNOTSUPP; none is lost, and flush and
// fallocate are not offered.
func TestIOPoll(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true, IOPoll: true}, 1<<20)
	if d.Supports(ioengine.OpFlush) || d.Supports(ioengine.OpDiscard) || !d.Supports(ioengine.OpRead) {
		t.Errorf("IOPOLL Ops = %v, want read and write only", d.Info().Ops)
	}
	bufs := enginetest.NewBuffers(t, 1, 4096)
	q := newQ(t, d, 2, bufs.Region)
	w := &ioengine.Request{Op: ioengine.OpWrite, Buf: bufs.Bufs[0]}
	rd := &ioengine.Request{Op: ioengine.OpRead, Buf: bufs.Bufs[0]}
	run(t, q, w)
	run(t, q, rd)
	for _, r := range []*ioengine.Request{w, rd} {
		if !r.OK() && r.Errno != unix.EOPNOTSUPP {
			t.Errorf("IOPOLL %v: %v, want success or EOPNOTSUPP", r.Op, r.Err())
		}
		t.Logf("IOPOLL %v: %v", r.Op, r.Err())
	}
	t.Logf("options %s", d.Info().Options)
}

func TestOpenErrors(t *testing.T) {
	needUring(t)
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	// Not a whole number of blocks: an error, not a silent round-down.
	odd := filepath.Join(dir, "odd")
	if err := os.WriteFile(odd, make([]byte, 8192+100), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no path", Config{}, "no path"},
		{"missing", Config{Path: filepath.Join(dir, "missing")}, "no such file"},
		{"create without size", Config{Path: filepath.Join(dir, "new"), Create: true}, "give a size"},
		{"size not a block multiple", Config{Path: small, SizeBytes: 1000}, "not a multiple"},
		{"file not a block multiple", Config{Path: odd}, "not a multiple"},
		{"larger without create", Config{Path: small, SizeBytes: 1 << 20}, "set create"},
		{"negative size", Config{Path: small, SizeBytes: -512}, "negative"},
		{"directory", Config{Path: dir}, "is a directory"},
		{"char device", Config{Path: "/dev/null"}, "not a regular file or a block device"},
		{"create read-only", Config{Path: small, Create: true, ReadOnly: true, SizeBytes: 8192}, "exclude each other"},
	} {
		d, err := Open(c.cfg)
		if err == nil {
			_ = d.Close()
			t.Errorf("%s: Open succeeded", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to say %q", c.name, err, c.want)
		}
	}
	// procfs refuses O_DIRECT; the error names the way around it.
	d, err := Open(Config{Path: "/proc/version", Direct: true, ReadOnly: true})
	if err == nil {
		_ = d.Close()
		t.Error("O_DIRECT open of /proc/version succeeded")
	} else if !errors.Is(err, ErrDirectUnsupported) || !errors.Is(err, blockfile.ErrDirectUnsupported) ||
		!errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "--direct=0") {
		t.Errorf("O_DIRECT open of /proc/version: %v, want ErrDirectUnsupported (and EINVAL) naming --direct=0", err)
	} else {
		t.Log(err)
	}

	// A file larger than the size exposes only its first SizeBytes.
	d, err = Open(Config{Path: small, SizeBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Info().SizeBytes; got != 4096 {
		t.Errorf("SizeBytes = %d, want 4096", got)
	}
	_ = d.Close()
}

// TestProbeKeepsData: the discard probe at Open punches past the end of the
// file, not past SizeBytes, so a file larger than the device keeps its tail.
func TestProbeKeepsData(t *testing.T) {
	needUring(t)
	path := filepath.Join(t.TempDir(), "big")
	data := bytes.Repeat([]byte{0xa5}, 16384)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(Config{Path: path, SizeBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("Open changed the file beyond SizeBytes (%d bytes now)", len(got))
	}
}

// TestBlockDevice opens a loop device (root only): its size and logical
// block size come from the device, a writable open claims it exclusively,
// and I/O goes through.
func TestBlockDevice(t *testing.T) {
	needUring(t)
	lockThread(t)
	const size = 4 << 20
	node := blockfiletest.Loop(t, blockfiletest.LoopConfig{SizeBytes: size, BlockSize: 4096, Direct: true})
	di, err := Open(Config{Path: node, Direct: true})
	if errors.Is(err, ErrDirectUnsupported) {
		t.Skipf("SKIP: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	d := di.(*device)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Device.Close: %v", err)
		}
	})
	info := d.Info()
	t.Logf("%s: Info() = %+v", d.f, info)
	if d.f.Kind != blockfile.Block || info.SizeBytes != size || info.BlockSize != 4096 {
		t.Errorf("Info() = %+v (kind %v), want a %d-byte block device of 4096-byte blocks", info, d.f.Kind, size)
	}
	if other, err := Open(Config{Path: node}); err == nil {
		_ = other.Close()
		t.Error("a second writable open of the device succeeded; want EBUSY (O_EXCL)")
	} else if !errors.Is(err, unix.EBUSY) {
		t.Errorf("second writable open: %v, want EBUSY", err)
	}
	bufs := enginetest.NewBuffers(t, 2, 4096)
	enginetest.Fill(bufs.Bufs[0], 7)
	q := newQ(t, d, 2, bufs.Region)
	w := &ioengine.Request{Op: ioengine.OpWrite, Offset: 8192, Buf: bufs.Bufs[0]}
	run(t, q, w)
	mustOK(t, "write", w)
	rd := &ioengine.Request{Op: ioengine.OpRead, Offset: 8192, Buf: bufs.Bufs[1]}
	run(t, q, rd)
	mustOK(t, "read", rd)
	if !bytes.Equal(bufs.Bufs[0], bufs.Bufs[1]) {
		t.Error("read back differs from what was written")
	}
}

// TestEnterErrorCompletes: when io_uring_enter fails for good (here EBADF,
// the ring fd closed behind the queue's back), the requests it was sending
// complete with the errno instead of being lost, and Err reports it.
func TestEnterErrorCompletes(t *testing.T) {
	lockThread(t)
	d := openFile(t, Config{Direct: true}, 1<<20)
	bufs := enginetest.NewBuffers(t, 4, 4096)
	q := newQ(t, d, 4, bufs.Region)
	if err := unix.Close(q.r.fd); err != nil {
		t.Fatal(err)
	}
	q.r.fd = -1 // the mappings stay valid; every enter now fails with EBADF
	reqs := make([]*ioengine.Request, 4)
	for i := range reqs {
		reqs[i] = &ioengine.Request{Op: ioengine.OpRead, Offset: int64(i) * 4096, Buf: bufs.Bufs[i]}
	}
	run(t, q, reqs...)
	for i, r := range reqs {
		if r.Errno != unix.EBADF {
			t.Errorf("request %d: %v, want EBADF", i, r.Err())
		}
	}
	if err := q.Err(); !errors.Is(err, unix.EBADF) {
		t.Errorf("Err() = %v, want EBADF", err)
	}
	if q.Inflight() != 0 || q.inKernel != 0 {
		t.Errorf("Inflight() = %d, %d in the kernel", q.Inflight(), q.inKernel)
	}
}

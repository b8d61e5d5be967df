package enginetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/usrpt/usrpt/ioengine"
)

// Options says what the engine under test can do; the suite holds it to
// exactly that.
type Options struct {
	// PersistsData: a read returns what the last write to those bytes
	// stored. False for null, whose reads return the buffer untouched.
	PersistsData bool
	// SupportsDiscard and SupportsWriteZeroes make those operations
	// required. When false the suite still tests them if Supports says so,
	// and expects EOPNOTSUPP if it does not.
	SupportsDiscard     bool
	SupportsWriteZeroes bool
	// ZeroesDiscard: a discarded range reads back as zeroes (mem does;
	// files and disks need not).
	ZeroesDiscard bool
	// MaxDepth is the largest QueueConfig.Depth NewQueue accepts: the
	// suite checks that it works and that MaxDepth+1 is refused. 0 skips
	// both checks. The in-flight tests use min(128, MaxDepth).
	MaxDepth int
	// SizeBytes and BlockSize, when not 0, are what Info must report.
	SizeBytes int64
	BlockSize int
}

// allOps are ioengine's operations, in order.
var allOps = []ioengine.Op{ioengine.OpRead, ioengine.OpWrite, ioengine.OpFlush, ioengine.OpDiscard, ioengine.OpWriteZeroes}

// Run runs the conformance suite, each subtest on a device of its own from
// open. open is called on the subtest's t and must return a device of at
// least MinSizeBytes, or fail t; Run closes the device at the end of the
// subtest (open may register more cleanup, such as removing a file, with
// t.Cleanup). The devices need not be fresh: the suite writes before it
// reads.
//
// Beyond what package ioengine spells out, the suite holds engines to this:
//   - Submit on a queue with f free slots accepts exactly min(len(reqs), f),
//     and 0 when full;
//   - a request that succeeds has N == Size(): len(Buf) for reads and
//     writes, Len for discard and write-zeroes, 0 for flush;
//   - empty requests inside the device succeed, at its very end too: a
//     zero-length read or write, a discard or write-zeroes of Len 0;
//   - a request refused by CheckRange completes with N == 0;
//   - Queue.Close returns with requests still in flight, and the device
//     then closes cleanly.
func Run(t *testing.T, open func(t *testing.T) ioengine.Device, opts Options) {
	s := &suite{open: open, opts: opts}
	for _, st := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Info", s.info},
		{"QueueConfig", s.queueConfig},
		{"ReadWrite", s.readWrite},
		{"Flush", s.flush},
		{"DiscardWriteZeroes", s.discardWriteZeroes},
		{"Range", s.outOfRange},
		{"Unsupported", s.unsupported},
		{"Inflight", s.inflight},
		{"NonBlocking", s.nonBlocking},
		{"CloseInflight", s.closeInflight},
		{"Concurrent", s.concurrent},
		{"Faults", s.faults},
		{"ZeroAllocs", s.zeroAllocs},
	} {
		t.Run(st.name, func(t *testing.T) {
			// A queue is created, used and closed on one locked OS thread,
			// as on a reactor, so that engines that tie a ring to its
			// thread (io_uring's SINGLE_ISSUER) pass as configured. The
			// unlock is the first cleanup registered, so it runs last.
			runtime.LockOSThread()
			t.Cleanup(runtime.UnlockOSThread)
			st.fn(t)
		})
	}
}

type suite struct {
	open func(t *testing.T) ioengine.Device
	opts Options
}

// device opens a device with s.open and closes it when the test ends.
func (s *suite) device(t *testing.T) (ioengine.Device, ioengine.Info) {
	t.Helper()
	d := s.rawDevice(t)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Device.Close: %v", err)
		}
	})
	return d, d.Info()
}

// rawDevice opens a device the caller closes.
func (s *suite) rawDevice(t *testing.T) ioengine.Device {
	t.Helper()
	d := s.open(t)
	if d == nil {
		t.Fatal("open returned a nil Device")
	}
	if info := d.Info(); info.SizeBytes < MinSizeBytes {
		_ = d.Close()
		t.Fatalf("open returned a %d-byte device; the suite needs at least %d", info.SizeBytes, MinSizeBytes)
	}
	return d
}

// depth is the queue depth of the in-flight tests.
func (s *suite) depth() int {
	if s.opts.MaxDepth > 0 {
		return min(128, s.opts.MaxDepth)
	}
	return 128
}

func (s *suite) info(t *testing.T) {
	d, info := s.device(t)
	if info.Engine == "" {
		t.Error("Info().Engine is empty")
	}
	if info.BlockSize != 512 && info.BlockSize != 4096 {
		t.Errorf("Info().BlockSize = %d, want 512 or 4096", info.BlockSize)
	}
	if info.BlockSize > 0 && info.SizeBytes%int64(info.BlockSize) != 0 {
		t.Errorf("Info().SizeBytes = %d, not a multiple of the %d-byte block", info.SizeBytes, info.BlockSize)
	}
	if s.opts.SizeBytes != 0 && info.SizeBytes != s.opts.SizeBytes {
		t.Errorf("Info().SizeBytes = %d, want %d", info.SizeBytes, s.opts.SizeBytes)
	}
	if s.opts.BlockSize != 0 && info.BlockSize != s.opts.BlockSize {
		t.Errorf("Info().BlockSize = %d, want %d", info.BlockSize, s.opts.BlockSize)
	}
	for _, op := range allOps {
		if got, want := d.Supports(op), info.Ops.Has(op); got != want {
			t.Errorf("Supports(%v) = %v, but Info().Ops = %v", op, got, info.Ops)
		}
	}
	required := []ioengine.Op{ioengine.OpRead, ioengine.OpWrite, ioengine.OpFlush}
	if s.opts.SupportsDiscard {
		required = append(required, ioengine.OpDiscard)
	}
	if s.opts.SupportsWriteZeroes {
		required = append(required, ioengine.OpWriteZeroes)
	}
	for _, op := range required {
		if !d.Supports(op) {
			t.Errorf("Supports(%v) = false, want true", op)
		}
	}
	for _, op := range []ioengine.Op{5, 7, 8, 200, 255} {
		if d.Supports(op) {
			t.Errorf("Supports(%v) = true for an operation that does not exist", op)
		}
	}
}

func (s *suite) queueConfig(t *testing.T) {
	d, _ := s.device(t)
	bad := []int{0, -1, math.MinInt}
	if s.opts.MaxDepth > 0 && s.opts.MaxDepth < math.MaxInt {
		bad = append(bad, s.opts.MaxDepth+1)
	}
	for _, depth := range bad {
		if q, err := d.NewQueue(ioengine.QueueConfig{Depth: depth}); err == nil {
			_ = q.Close()
			t.Errorf("NewQueue(Depth %d) succeeded, want an error", depth)
		}
	}
	good := []int{1}
	if s.opts.MaxDepth > 1 {
		good = append(good, s.opts.MaxDepth)
	}
	for _, depth := range good {
		q := NewQueue(t, d, depth)
		if n := q.Inflight(); n != 0 {
			t.Errorf("new queue of depth %d: Inflight() = %d", depth, n)
		}
		if fd := q.WaitFD(); fd < -1 {
			t.Errorf("new queue of depth %d: WaitFD() = %d", depth, fd)
		}
		out := make([]*ioengine.Request, 4)
		if n := q.Poll(out); n != 0 {
			t.Errorf("new queue of depth %d: Poll returned %d", depth, n)
		}
		if n := q.Submit(nil); n != 0 {
			t.Errorf("Submit(nil) = %d", n)
		}
	}
}

// extent is a block-aligned byte range of a device.
type extent struct{ off, n int64 }

// layout picks count disjoint extents of 1 to maxBlocks blocks each, spread
// over [base, base+size): one per equal slot, the first at base and the last
// ending at base+size.
func layout(rng *rand.Rand, base, size int64, bs, count, maxBlocks int) []extent {
	blocks := size / int64(bs)
	slot := blocks / int64(count)
	out := make([]extent, count)
	for i := range out {
		n := 1 + rng.Int64N(min(int64(maxBlocks), slot))
		start := int64(i) * slot
		switch i {
		case 0:
		case count - 1:
			start = blocks - n
		default:
			start += rng.Int64N(slot - n + 1)
		}
		out[i] = extent{off: base + start*int64(bs), n: n * int64(bs)}
	}
	return out
}

// requests makes n requests and returns pointers to them.
func requests(n int) []*ioengine.Request {
	rs := make([]ioengine.Request, n)
	ps := make([]*ioengine.Request, n)
	for i := range rs {
		rs[i].User = uint64(i)<<32 | 0xc0ffee
		ps[i] = &rs[i]
	}
	return ps
}

// expectOK fails unless every request succeeded in full.
func expectOK(t testing.TB, what string, reqs []*ioengine.Request) {
	t.Helper()
	for i, r := range reqs {
		if !r.OK() {
			t.Fatalf("%s: request %d (%v of %d at %d): %v", what, i, r.Op, r.Size(), r.Offset, r.Err())
		}
		if r.Err() != nil {
			t.Fatalf("%s: request %d: OK() but Err() = %v", what, i, r.Err())
		}
		if want := r.Size(); r.N != want {
			t.Fatalf("%s: request %d (%v of %d at %d): N = %d, want %d", what, i, r.Op, r.Size(), r.Offset, r.N, want)
		}
	}
}

const garbage = 0xa5

func (s *suite) readWrite(t *testing.T) {
	d, info := s.device(t)
	const count, maxBlocks = 48, 16
	bs := info.BlockSize
	ext := layout(rand.New(rand.NewPCG(1, 1)), 0, info.SizeBytes, bs, count, maxBlocks)
	wbufs := NewBuffers(t, count, maxBlocks*bs)
	rbufs := NewBuffers(t, count, maxBlocks*bs)
	q := NewQueue(t, d, min(32, s.depth()), wbufs, rbufs)

	seeds := make([]uint64, count)
	writes, reads := requests(count), requests(count)
	for pass := range 3 {
		for i, e := range ext {
			if pass > 0 && i%pass != 0 {
				continue // later passes rewrite a subset: the rest must keep the old data
			}
			seeds[i] = uint64(pass*1000 + i + 1)
			w := writes[i]
			w.Op, w.Offset, w.Buf = ioengine.OpWrite, e.off, wbufs.Bufs[i][:e.n]
			w.Flags = 0
			if (i+pass)%2 == 0 {
				w.Flags = ioengine.FlagFUA
			}
			Fill(w.Buf, seeds[i])
		}
		batch := writes
		if pass > 0 {
			batch = nil
			for i := 0; i < count; i += pass {
				batch = append(batch, writes[i])
			}
		}
		Exec(t, q, batch...)
		expectOK(t, "write", batch)

		for i, e := range ext {
			r := reads[i]
			r.Op, r.Offset, r.Buf = ioengine.OpRead, e.off, rbufs.Bufs[i][:e.n]
			for j := range r.Buf {
				r.Buf[j] = garbage
			}
		}
		Exec(t, q, reads...)
		expectOK(t, "read", reads)
		if !s.opts.PersistsData {
			continue
		}
		want := make([]byte, maxBlocks*bs)
		for i, r := range reads {
			Fill(want[:len(r.Buf)], seeds[i])
			if !bytes.Equal(r.Buf, want[:len(r.Buf)]) {
				t.Fatalf("pass %d: read of %d bytes at %d does not return what was written (FUA %v)",
					pass, len(r.Buf), r.Offset, writes[i].Flags&ioengine.FlagFUA != 0)
			}
		}
	}

	// Empty transfers inside the device, the end included, succeed.
	empty := requests(4)
	for i, off := range []int64{0, int64(bs), info.SizeBytes - int64(bs), info.SizeBytes} {
		empty[i].Op, empty[i].Offset, empty[i].Buf = ioengine.Op(i%2), off, rbufs.Bufs[i][:0]
	}
	Exec(t, q, empty...)
	expectOK(t, "empty transfer", empty)
}

func (s *suite) flush(t *testing.T) {
	d, info := s.device(t)
	if !d.Supports(ioengine.OpFlush) {
		t.Skip("flush not supported") // Info reports this as a failure
	}
	bufs := NewBuffers(t, 1, info.BlockSize)
	q := NewQueue(t, d, 4, bufs)
	reqs := requests(4)
	reqs[0].Op = ioengine.OpFlush
	reqs[1].Op, reqs[1].Buf = ioengine.OpWrite, bufs.Bufs[0]
	// A flush has no range: whatever Offset and Len hold is ignored.
	reqs[2].Op, reqs[2].Offset, reqs[2].Len = ioengine.OpFlush, -1, -1
	reqs[3].Op, reqs[3].Offset, reqs[3].Len = ioengine.OpFlush, math.MaxInt64, math.MaxInt64
	Exec(t, q, reqs[:2]...)
	Exec(t, q, reqs[2:]...)
	expectOK(t, "flush", reqs)
}

func (s *suite) discardWriteZeroes(t *testing.T) {
	d, info := s.device(t)
	bs := int64(info.BlockSize)
	const blocks = 64
	bufs := NewBuffers(t, 2, blocks*int(bs))
	q := NewQueue(t, d, 4, bufs)
	tested := 0
	for _, op := range []ioengine.Op{ioengine.OpWriteZeroes, ioengine.OpDiscard} {
		if !d.Supports(op) {
			continue // Unsupported checks the EOPNOTSUPP
		}
		tested++
		base := info.SizeBytes/2 - info.SizeBytes/2%bs
		seed := uint64(op) + 77
		w, z, r := requests(1)[0], requests(1)[0], requests(1)[0]
		w.Op, w.Offset, w.Buf = ioengine.OpWrite, base, bufs.Bufs[0]
		Fill(w.Buf, seed)
		Exec(t, q, w)
		expectOK(t, "write", []*ioengine.Request{w})

		// The middle half of what was written.
		z.Op, z.Offset, z.Len = op, base+blocks/4*bs, blocks/2*bs
		Exec(t, q, z)
		expectOK(t, op.String(), []*ioengine.Request{z})

		r.Op, r.Offset, r.Buf = ioengine.OpRead, base, bufs.Bufs[1]
		Exec(t, q, r)
		expectOK(t, "read after "+op.String(), []*ioengine.Request{r})
		if s.opts.PersistsData {
			lo, hi := blocks/4*bs, blocks/4*bs+blocks/2*bs
			if !bytes.Equal(r.Buf[:lo], w.Buf[:lo]) || !bytes.Equal(r.Buf[hi:], w.Buf[hi:]) {
				t.Errorf("%v of [%d, %d) changed bytes outside it", op, base+lo, base+hi)
			}
			if op == ioengine.OpWriteZeroes || s.opts.ZeroesDiscard {
				if i := bytes.IndexFunc(r.Buf[lo:hi], func(c rune) bool { return c != 0 }); i >= 0 {
					t.Errorf("%v of [%d, %d): byte %d reads back non-zero", op, base+lo, base+hi, base+lo+int64(i))
				}
			}
		}

		// Empty ranges, the end of the device included, and a large one.
		edge := requests(3)
		edge[0].Op, edge[0].Offset = op, 0
		edge[1].Op, edge[1].Offset = op, info.SizeBytes
		edge[2].Op, edge[2].Offset, edge[2].Len = op, 0, min(info.SizeBytes, 1<<20)
		Exec(t, q, edge...)
		expectOK(t, op.String()+" edge", edge)
	}
	if tested == 0 {
		t.Skip("neither discard nor write-zeroes supported")
	}
}

// badRange is a request outside every device of size bytes.
type badRange struct {
	name string
	off  int64
	n    int64 // Len, or len(Buf) for reads and writes
}

func (s *suite) outOfRange(t *testing.T) {
	d, info := s.device(t)
	size, bs := info.SizeBytes, int64(info.BlockSize)
	bufs := NewBuffers(t, 1, 2*int(bs))
	cases := []badRange{
		{"negative offset", -bs, bs},
		{"offset -1", -1, bs},
		{"offset MinInt64", math.MinInt64, bs},
		{"at the end", size, bs},
		{"across the end", size - bs, 2 * bs},
		{"past the end", size + bs, bs},
		{"offset MaxInt64", math.MaxInt64, 1},
		{"end overflows", math.MaxInt64 - bs + 1, bs},
		{"aligned near MaxInt64", math.MaxInt64 &^ (bs - 1), bs},
		{"aligned end overflows", math.MaxInt64&^(bs-1) - bs, 2 * bs},
		{"length MaxInt64", bs, math.MaxInt64},
		{"length MaxInt64 at 0", 0, math.MaxInt64},
		{"negative length", 0, -bs},
		{"length MinInt64", bs, math.MinInt64},
		{"length past the end", 0, size + bs},
	}
	q := NewQueue(t, d, len(cases), bufs)
	for _, op := range []ioengine.Op{ioengine.OpRead, ioengine.OpWrite, ioengine.OpDiscard, ioengine.OpWriteZeroes} {
		var reqs []*ioengine.Request
		var names []string
		for _, c := range cases {
			r := &ioengine.Request{Op: op, Offset: c.off, User: uint64(len(reqs))}
			if op == ioengine.OpRead || op == ioengine.OpWrite {
				if c.n < 0 || c.n > int64(len(bufs.Bufs[0])) {
					continue // a buffer cannot say it
				}
				r.Buf = bufs.Bufs[0][:c.n]
			} else {
				r.Len = c.n
			}
			reqs = append(reqs, r)
			names = append(names, c.name)
		}
		Exec(t, q, reqs...)
		want := syscall.EINVAL
		if !d.Supports(op) {
			want = syscall.EOPNOTSUPP
		}
		for i, r := range reqs {
			if r.Errno != want || r.N != 0 || r.OK() {
				t.Errorf("%v %s (offset %d, size %d): Errno %v, N %d; want %v, 0", op, names[i], r.Offset, r.Size(), r.Errno, r.N, want)
			} else if err := r.Err(); !errors.Is(err, want) {
				t.Errorf("%v %s: Err() = %v, want %v", op, names[i], err, want)
			}
		}
	}
}

func (s *suite) unsupported(t *testing.T) {
	d, info := s.device(t)
	bufs := NewBuffers(t, 1, info.BlockSize)
	q := NewQueue(t, d, 16, bufs)
	var reqs []*ioengine.Request
	for _, op := range append(allOps, 5, 6, 200, 255) {
		if d.Supports(op) {
			continue
		}
		r := &ioengine.Request{Op: op, Len: int64(info.BlockSize), User: uint64(op)}
		if op == ioengine.OpRead || op == ioengine.OpWrite {
			r.Buf = bufs.Bufs[0]
		}
		reqs = append(reqs, r)
	}
	Exec(t, q, reqs...)
	for _, r := range reqs {
		if r.Errno != syscall.EOPNOTSUPP || r.N != 0 {
			t.Errorf("unsupported %v: Errno %v, N %d; want EOPNOTSUPP, 0", r.Op, r.Errno, r.N)
		}
		if err := r.Err(); !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Errorf("unsupported %v: Err() = %v", r.Op, err)
		}
	}
}

// inflight fills a queue to its depth again and again: Submit must take
// exactly the free depth and nothing when full; every request must come back
// once, through out slices of several lengths, with its User intact.
func (s *suite) inflight(t *testing.T) {
	d, info := s.device(t)
	depth := s.depth()
	total := 3 * depth
	bs := int64(info.BlockSize)
	bufs := NewBuffers(t, total, int(bs))
	q := NewQueue(t, d, depth, bufs)
	rng := rand.New(rand.NewPCG(3, 3))
	blocks := info.SizeBytes / bs
	perm := rng.Perm(int(min(blocks, 1<<20)))
	reqs := requests(total)
	for i, r := range reqs {
		switch {
		case i%16 == 15:
			r.Op = ioengine.OpFlush
		case i%3 == 1:
			r.Op = ioengine.OpWrite
			Fill(bufs.Bufs[i], uint64(i))
		default:
			r.Op = ioengine.OpRead
		}
		if r.Op != ioengine.OpFlush {
			// Distinct blocks: no two requests in flight overlap.
			r.Offset, r.Buf = int64(perm[i%len(perm)])*bs, bufs.Bufs[i]
		}
		r.User = rng.Uint64()
	}
	c := newChecker(reqs)
	outs := [][]*ioengine.Request{make([]*ioengine.Request, 1), make([]*ioengine.Request, 7), make([]*ioengine.Request, depth)}
	deadline := time.Now().Add(Timeout)
	sawFull := false
	for round := 0; c.returned < total; round++ {
		for c.submitted < total {
			want := min(total-c.submitted, depth-q.Inflight())
			k := q.Submit(reqs[c.submitted:])
			if k != want {
				t.Fatalf("Submit of %d requests with %d of %d free accepted %d, want %d",
					total-c.submitted, depth-q.Inflight()+k, depth, k, want)
			}
			if err := c.accepted(k); err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				break
			}
		}
		if q.Inflight() == depth {
			sawFull = true
			if k := q.Submit(reqs[c.submitted:min(c.submitted+1, total)]); k != 0 {
				t.Fatalf("Submit into a full queue (Inflight() = depth = %d) accepted %d", depth, k)
			}
			if n := q.Poll(nil); n != 0 {
				t.Fatalf("Poll(nil) returned %d", n)
			}
		}
		if err := c.inflight(q); err != nil {
			t.Fatal(err)
		}
		out := outs[round%len(outs)]
		n := q.Poll(out)
		if err := c.polled(out, n); err != nil {
			t.Fatal(err)
		}
		if err := c.inflight(q); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%v: %d of %d returned, Inflight() = %d", errLost, c.returned, total, q.Inflight())
			}
			runtime.Gosched()
		}
	}
	if !sawFull {
		t.Errorf("the queue never filled to its depth %d", depth)
	}
	expectOK(t, "in flight", reqs)
	if n := q.Poll(make([]*ioengine.Request, 4)); n != 0 {
		t.Errorf("Poll of an idle queue returned %d", n)
	}
}

// nonBlocking drives a queue on another goroutine under a watchdog: a
// Submit or Poll that blocks fails the test instead of hanging it.
func (s *suite) nonBlocking(t *testing.T) {
	d, info := s.device(t)
	const depth = 4
	bufs := NewBuffers(t, depth+1, info.BlockSize)
	reqs := requests(depth + 1)
	for i, r := range reqs {
		r.Op, r.Offset, r.Buf = ioengine.OpRead, int64(i*info.BlockSize), bufs.Bufs[i]
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		done <- onQueue(d, depth, bufs, func(q ioengine.Queue) error {
			out := make([]*ioengine.Request, depth+1)
			for range 1000 {
				if n := q.Poll(out); n != 0 {
					return errors.New("queue: Poll of an idle queue returned requests")
				}
			}
			if k := q.Submit(reqs); k != depth {
				return errors.New("queue: Submit into an empty queue did not fill it")
			}
			if k := q.Submit(reqs[depth:]); k != 0 {
				return errors.New("queue: Submit into a full queue accepted a request")
			}
			for back := 0; back < depth; {
				n := q.Poll(out)
				back += n
				if n == 0 {
					runtime.Gosched()
				}
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(Timeout):
		t.Fatalf("NewQueue, Submit, Poll or Close did not return within %v: they must never block", Timeout)
	}
}

// onQueue opens a queue of depth on d, runs fn on it and closes it, all on
// the calling goroutine, and returns the first error.
func onQueue(d ioengine.Device, depth int, bufs *Buffers, fn func(q ioengine.Queue) error) (err error) {
	q, err := d.NewQueue(ioengine.QueueConfig{Depth: depth, Buffers: [][]byte{bufs.Region}})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := q.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("Queue.Close: %w", cerr)
		}
	}()
	return fn(q)
}

// closeInflight closes a queue with requests accepted and never polled:
// Close must wait for them as needed and return, and the device must close.
func (s *suite) closeInflight(t *testing.T) {
	d, info := s.device(t)
	const depth = 8
	bufs := NewBuffers(t, depth, info.BlockSize)
	reqs := requests(depth)
	for i, r := range reqs {
		r.Op, r.Offset, r.Buf = ioengine.Op(i%2), int64(i*info.BlockSize), bufs.Bufs[i]
	}
	finished := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		finished <- onQueue(d, depth, bufs, func(q ioengine.Queue) error {
			if k := q.Submit(reqs); k != depth {
				return fmt.Errorf("queue: Submit accepted %d of %d", k, depth)
			}
			return nil // onQueue closes q with all of them in flight
		})
	}()
	select {
	case err := <-finished:
		if err != nil {
			t.Errorf("Close with requests in flight: %v", err)
		}
	case <-time.After(Timeout):
		t.Fatalf("Close with requests in flight did not return within %v", Timeout)
	}
}

// concurrent runs a queue on each of two goroutines against disjoint halves
// of one device, each writing and reading back its own data.
func (s *suite) concurrent(t *testing.T) {
	d, info := s.device(t)
	const workers, rounds, count, maxBlocks = 2, 16, 16, 8
	bs := info.BlockSize
	half := info.SizeBytes / workers / int64(bs) * int64(bs)
	errs := make(chan error, workers)
	for g := range workers {
		wb := NewBuffers(t, count, maxBlocks*bs)
		rb := NewBuffers(t, count, maxBlocks*bs)
		go func() {
			errs <- s.worker(d, g, int64(g)*half, half, wb, rb, rounds, count, maxBlocks)
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func (s *suite) worker(d ioengine.Device, g int, base, size int64, wb, rb *Buffers, rounds, count, maxBlocks int) (err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	q, err := d.NewQueue(ioengine.QueueConfig{Depth: count / 2, Buffers: [][]byte{wb.Region, rb.Region}})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := q.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	bs := d.Info().BlockSize
	rng := rand.New(rand.NewPCG(uint64(g), 9))
	writes, reads := requests(count), requests(count)
	want := make([]byte, maxBlocks*bs)
	for round := range rounds {
		ext := layout(rng, base, size, bs, count, maxBlocks)
		for i, e := range ext {
			w, r := writes[i], reads[i]
			w.Op, w.Offset, w.Buf = ioengine.OpWrite, e.off, wb.Bufs[i][:e.n]
			r.Op, r.Offset, r.Buf = ioengine.OpRead, e.off, rb.Bufs[i][:e.n]
			Fill(w.Buf, uint64(g<<24|round<<12|i))
		}
		if err := execute(q, writes, 0); err != nil {
			return err
		}
		if err := execute(q, reads, 3); err != nil {
			return err
		}
		for i, r := range reads {
			if !writes[i].OK() || !r.OK() {
				return errors.Join(writes[i].Err(), r.Err())
			}
			if !s.opts.PersistsData {
				continue
			}
			Fill(want[:len(r.Buf)], uint64(g<<24|round<<12|i))
			if !bytes.Equal(r.Buf, want[:len(r.Buf)]) {
				return errors.New("a queue on another goroutine read back other data than it wrote to its own range")
			}
		}
	}
	return nil
}

// zeroAllocs runs submit-and-poll cycles of a preallocated batch in steady
// state and requires no allocation at all.
func (s *suite) zeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	d, info := s.device(t)
	const batch = 32
	bs := info.BlockSize
	bufs := NewBuffers(t, batch, bs)
	q := NewQueue(t, d, 2*batch, bufs)
	reqs := requests(batch)
	for i, r := range reqs {
		r.Op, r.Offset, r.Buf = ioengine.Op(i%2), int64(i*bs), bufs.Bufs[i]
	}
	reqs[batch-1].Op, reqs[batch-1].Buf = ioengine.OpFlush, nil
	out := make([]*ioengine.Request, batch)
	stuck := false
	cycle := func() {
		start := time.Now()
		sub, got := 0, 0
		for spins := 1; got < batch; spins++ {
			k := 0
			if sub < batch {
				k = q.Submit(reqs[sub:])
				sub += k
			}
			n := q.Poll(out)
			got += n
			if k == 0 && n == 0 {
				if spins%1024 == 0 && time.Since(start) > Timeout {
					stuck = true
					return
				}
				runtime.Gosched()
			}
		}
	}
	cycle() // warm up: lazy setup may allocate once
	allocs := testing.AllocsPerRun(100, cycle)
	if stuck {
		t.Fatal(errLost)
	}
	expectOK(t, "cycle", reqs)
	if allocs != 0 {
		t.Errorf("a submit-and-poll cycle of %d requests allocates %v times", batch, allocs)
	}
}

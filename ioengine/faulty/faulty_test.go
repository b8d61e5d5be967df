package faulty_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/enginetest"
	"github.com/usrpt/usrpt/ioengine/faulty"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/ioengine/null"
)

func openMem(t testing.TB) ioengine.Device {
	t.Helper()
	d, err := mem.Open(8<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// wrapT wraps d and closes the wrapper (and so d) when the test ends.
func wrapT(t testing.TB, d ioengine.Device, rules ...faulty.Rule) *faulty.Device {
	t.Helper()
	f := faulty.Wrap(d, rules...)
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

// A wrapper whose rule injects nothing is the engine it wraps.
func TestConformance(t *testing.T) {
	t.Run("mem", func(t *testing.T) {
		enginetest.Run(t, func(t *testing.T) ioengine.Device {
			return faulty.Wrap(openMem(t), faulty.Rule{})
		}, enginetest.Options{
			PersistsData:        true,
			SupportsDiscard:     true,
			SupportsWriteZeroes: true,
			ZeroesDiscard:       true,
			MaxDepth:            mem.MaxDepth,
		})
	})
	t.Run("null", func(t *testing.T) {
		enginetest.Run(t, func(t *testing.T) ioengine.Device {
			d, err := null.Open(8<<20, 4096)
			if err != nil {
				t.Fatal(err)
			}
			// Selects something and injects nothing.
			return faulty.Wrap(d, faulty.Rule{Ops: ioengine.Ops(ioengine.OpRead), Probability: 0.5, Seed: 3})
		}, enginetest.Options{MaxDepth: null.MaxDepth})
	})
}

func TestInfo(t *testing.T) {
	inner := openMem(t)
	d := wrapT(t, inner)
	if got := d.Info().Engine; got != "mem+faulty" {
		t.Errorf("Engine = %q", got)
	}
	if d.Unwrap() != inner {
		t.Error("Unwrap is not the wrapped device")
	}
	if !d.Supports(ioengine.OpDiscard) || d.Supports(9) {
		t.Error("Supports is not the wrapped device's")
	}
	if _, err := d.NewQueue(ioengine.QueueConfig{Depth: 0}); err == nil {
		t.Error("NewQueue(Depth 0) succeeded")
	}
	if _, err := d.NewQueue(ioengine.QueueConfig{Depth: mem.MaxDepth + 1}); err == nil {
		t.Error("NewQueue(Depth MaxDepth+1) succeeded: the inner refusal was lost")
	}
}

func TestWrapPanicsOnNonsense(t *testing.T) {
	bad := map[string]faulty.Rule{
		"negative offset":     {Offset: -1, Len: 1},
		"negative length":     {Len: -1},
		"range overflows":     {Offset: math.MaxInt64, Len: 1},
		"probability above 1": {Probability: 1.5},
		"negative probabilty": {Probability: -0.1},
		"NaN probability":     {Probability: math.NaN()},
		"negative delay":      {Delay: -1},
		"errno and short":     {Errno: syscall.EIO, Short: true},
	}
	for name, r := range bad {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Wrap did not panic", name)
				}
			}()
			faulty.Wrap(openMem(t), r)
		}()
	}
}

// poll polls q once for one request, returning it or nil.
func poll(q ioengine.Queue) *ioengine.Request {
	out := make([]*ioengine.Request, 1)
	if q.Poll(out) == 1 {
		return out[0]
	}
	return nil
}

// Over mem, which completes at the first Poll, a request delayed by k comes
// back at Poll k+1, whether the device ran it or a rule failed it.
func TestDelayIsExact(t *testing.T) {
	for _, errno := range []syscall.Errno{0, syscall.EIO} {
		for k := range 4 {
			d := wrapT(t, openMem(t), faulty.Rule{Delay: k, Errno: errno})
			q := enginetest.NewQueue(t, d, 1)
			r := &ioengine.Request{Op: ioengine.OpFlush, User: 42}
			if q.Submit([]*ioengine.Request{r}) != 1 {
				t.Fatal("Submit refused")
			}
			for i := 1; i <= k; i++ {
				if got := poll(q); got != nil {
					t.Fatalf("errno %v delay %d: back at poll %d", errno, k, i)
				}
			}
			if got := poll(q); got != r || r.Errno != errno || r.User != 42 {
				t.Fatalf("errno %v delay %d: not back (or wrong) at poll %d: %+v", errno, k, k+1, got)
			}
			if q.Inflight() != 0 {
				t.Fatalf("Inflight() = %d after the request came back", q.Inflight())
			}
		}
	}
}

func TestLimitAndRange(t *testing.T) {
	d := wrapT(t, openMem(t),
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Limit: 2, Errno: syscall.ENOSPC},
		faulty.Rule{Offset: 8192, Len: 4096, Errno: syscall.EIO},
	)
	q := enginetest.NewQueue(t, d, 8)
	buf := make([]byte, 4096)
	reqs := []*ioengine.Request{
		{Op: ioengine.OpWrite, Offset: 8192, Buf: buf},    // ENOSPC (limit 1 of 2)
		{Op: ioengine.OpWrite, Offset: 0, Buf: buf},       // ENOSPC (limit 2 of 2)
		{Op: ioengine.OpWrite, Offset: 0, Buf: buf},       // ok
		{Op: ioengine.OpWrite, Offset: 8192, Buf: buf},    // EIO: in the range
		{Op: ioengine.OpRead, Offset: 4096, Buf: buf},     // ok: ends where the range starts
		{Op: ioengine.OpRead, Offset: 12288, Buf: buf},    // ok: starts where it ends
		{Op: ioengine.OpDiscard, Offset: 12287, Len: 1},   // EIO: its last byte
		{Op: ioengine.OpWriteZeroes, Offset: 0, Len: 1e6}, // EIO: covers it
	}
	want := []syscall.Errno{syscall.ENOSPC, syscall.ENOSPC, 0, syscall.EIO, 0, 0, syscall.EIO, syscall.EIO}
	enginetest.Exec(t, q, reqs...)
	for i, r := range reqs {
		if r.Errno != want[i] {
			t.Errorf("request %d (%v at %d): Errno %v, want %v", i, r.Op, r.Offset, r.Errno, want[i])
		}
	}
	st := d.Stats()
	if st.Errors != 5 || st.Fired[0] != 2 || st.Fired[1] != 3 || st.Requests != 8 {
		t.Errorf("Stats() = %+v", st)
	}
}

// A failure of the device wins over a Short rule, and a short request keeps
// its buffer whole.
func TestShortKeepsDeviceErrors(t *testing.T) {
	d := wrapT(t, openMem(t), faulty.Rule{Short: true})
	q := enginetest.NewQueue(t, d, 4)
	buf := make([]byte, 4096)
	bad := &ioengine.Request{Op: ioengine.OpRead, Offset: 8 << 20, Buf: buf}
	good := &ioengine.Request{Op: ioengine.OpWrite, Offset: 0, Buf: buf}
	flush := &ioengine.Request{Op: ioengine.OpFlush}
	enginetest.Exec(t, q, bad, good, flush)
	if bad.Errno != syscall.EINVAL || bad.N != 0 {
		t.Errorf("out-of-range read under a Short rule: Errno %v, N %d", bad.Errno, bad.N)
	}
	if good.N != 2048 || len(good.Buf) != 4096 || !errors.Is(good.Err(), ioengine.ErrShort) {
		t.Errorf("short write: N %d, len %d, Err() %v", good.N, len(good.Buf), good.Err())
	}
	if !flush.OK() {
		t.Errorf("a Short rule touched a flush: %v", flush.Err())
	}
	if st := d.Stats(); st.Shorts != 2 || st.Fired[0] != 2 {
		t.Errorf("Stats() = %+v, want 2 shorts (the flush is not selected)", st)
	}
}

// The same seed gives the same faults.
func TestProbabilityIsReproducible(t *testing.T) {
	run := func(seed uint64) []syscall.Errno {
		d := wrapT(t, openMem(t), faulty.Rule{Probability: 0.3, Seed: seed, Errno: syscall.EIO})
		q := enginetest.NewQueue(t, d, 64)
		reqs := make([]*ioengine.Request, 64)
		for i := range reqs {
			reqs[i] = &ioengine.Request{Op: ioengine.OpFlush}
		}
		enginetest.Exec(t, q, reqs...)
		got := make([]syscall.Errno, len(reqs))
		n := 0
		for i, r := range reqs {
			got[i] = r.Errno
			if r.Errno != 0 {
				n++
			}
		}
		if n < 5 || n > 40 {
			t.Errorf("seed %d: %d of 64 failed at probability 0.3", seed, n)
		}
		return got
	}
	a, b, c := run(1), run(1), run(2)
	if !equal(a, b) {
		t.Error("the same seed gave different faults")
	}
	if equal(a, c) {
		t.Error("different seeds gave the same faults")
	}
}

func equal(a, b []syscall.Errno) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// slow is an engine that completes requests out of order after a few
// polls, and whose Submit sometimes takes fewer requests than it has room
// for: the wrapper must lose nothing over it.
type slow struct{ seed uint64 }

type slowQueue struct {
	depth   int
	rng     *rand.Rand
	pending []slowReq
}

type slowReq struct {
	r     *ioengine.Request
	polls int
}

func (s *slow) Info() ioengine.Info {
	return ioengine.Info{Engine: "slow", SizeBytes: 1 << 20, BlockSize: 512, Ops: ioengine.AllOps}
}
func (s *slow) Supports(op ioengine.Op) bool { return ioengine.AllOps.Has(op) }
func (s *slow) Close() error                 { return nil }
func (s *slow) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	if cfg.Depth < 1 {
		return nil, errors.New("bad depth")
	}
	return &slowQueue{depth: cfg.Depth, rng: rand.New(rand.NewPCG(s.seed, 0))}, nil
}

func (q *slowQueue) Submit(reqs []*ioengine.Request) int {
	k := min(len(reqs), q.depth-len(q.pending))
	if k > 0 && q.rng.IntN(4) == 0 {
		k = q.rng.IntN(k + 1)
	}
	for _, r := range reqs[:k] {
		if e := ioengine.CheckRange(r, 1<<20, ioengine.AllOps); e != 0 {
			r.Complete(0, e)
		} else {
			r.Complete(r.Size(), 0)
		}
		q.pending = append(q.pending, slowReq{r, 1 + q.rng.IntN(4)})
	}
	return k
}

func (q *slowQueue) Poll(out []*ioengine.Request) int {
	n := 0
	q.rng.Shuffle(len(q.pending), func(i, j int) { q.pending[i], q.pending[j] = q.pending[j], q.pending[i] })
	kept := q.pending[:0]
	for _, p := range q.pending {
		if p.polls--; p.polls <= 0 && n < len(out) {
			out[n] = p.r
			n++
		} else {
			kept = append(kept, p)
		}
	}
	q.pending = kept
	return n
}

func (q *slowQueue) Inflight() int { return len(q.pending) }
func (q *slowQueue) WaitFD() int   { return -1 }
func (q *slowQueue) Close() error  { return nil }

func TestNeverLosesARequest(t *testing.T) {
	for seed := range uint64(20) {
		d := faulty.Wrap(&slow{seed: seed},
			faulty.Rule{Ops: ioengine.Ops(ioengine.OpRead), Probability: 0.2, Seed: seed, Errno: syscall.EIO, Delay: int(seed % 3)},
			faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Probability: 0.3, Seed: seed, Short: true, Delay: int(seed % 4)},
			faulty.Rule{Every: 3, Delay: 2},
			faulty.Rule{Offset: 4096, Len: 8192, Errno: syscall.ENOSPC},
			faulty.Rule{Every: 7, Short: true},
		)
		depth := 1 + int(seed)%16
		q, err := d.NewQueue(ioengine.QueueConfig{Depth: depth})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 1))
		buf := make([]byte, 4096)
		reqs := make([]*ioengine.Request, 300)
		for i := range reqs {
			r := &ioengine.Request{Op: ioengine.Op(rng.IntN(5)), Offset: rng.Int64N(300) * 512, User: rng.Uint64()}
			r.Buf, r.Len = buf[:512*rng.IntN(9)], 512*rng.Int64N(9)
			reqs[i] = r
		}
		enginetest.Exec(t, q, reqs...)
		for i, r := range reqs {
			if err := r.Err(); err != nil && !errors.Is(err, ioengine.ErrShort) &&
				!errors.Is(err, syscall.EIO) && !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EINVAL) {
				t.Errorf("seed %d request %d: unexpected %v", seed, i, err)
			}
		}
		if st := d.Stats(); st.Requests != uint64(len(reqs)) {
			t.Errorf("seed %d: Stats().Requests = %d for %d requests", seed, st.Requests, len(reqs))
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Injecting faults allocates nothing either.
func TestZeroAllocsWithFaults(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	d := wrapT(t, openMem(t),
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpRead), Every: 3, Errno: syscall.EIO, Delay: 1},
		faulty.Rule{Ops: ioengine.Ops(ioengine.OpWrite), Probability: 0.5, Seed: 1, Short: true},
		faulty.Rule{Every: 2, Delay: 2},
	)
	bufs := enginetest.NewBuffers(t, 16, 4096)
	q := enginetest.NewQueue(t, d, 16, bufs)
	reqs := make([]*ioengine.Request, 16)
	for i := range reqs {
		reqs[i] = &ioengine.Request{Op: ioengine.Op(i % 2), Offset: int64(i) * 4096, Buf: bufs.Bufs[i]}
	}
	out := make([]*ioengine.Request, 16)
	cycle := func() {
		sub, got := 0, 0
		for i := 0; got < len(reqs) && i < 1e6; i++ {
			sub += q.Submit(reqs[sub:])
			got += q.Poll(out)
			runtime.Gosched()
		}
	}
	cycle()
	if allocs := testing.AllocsPerRun(50, cycle); allocs != 0 {
		t.Errorf("a cycle of 16 requests with faults allocates %v times", allocs)
	}
	if st := d.Stats(); st.Errors == 0 || st.Shorts == 0 || st.Delays == 0 {
		t.Errorf("the rules did not all fire: %+v", st)
	}
}

func TestStatsCopy(t *testing.T) {
	d := wrapT(t, openMem(t), faulty.Rule{}, faulty.Rule{})
	st := d.Stats()
	st.Fired[0] = 99
	if d.Stats().Fired[0] != 0 {
		t.Error("Stats shares its slice with the device")
	}
	if !strings.Contains(d.Info().Engine, "mem") {
		t.Error("Info lost the inner engine's name")
	}
}

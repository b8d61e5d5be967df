package enginetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/ioengine"
)

// Timeout bounds every wait of the suite: a request not back from Poll by
// then is lost as far as the suite is concerned.
const Timeout = 10 * time.Second

// MinSizeBytes is the smallest device Run accepts from its open function.
const MinSizeBytes = 4 << 20

// Buffers is off-heap test memory from internal/hugemem: Bufs are buffers
// of one size, each 4096-aligned, carved from Region.
type Buffers struct {
	// Region is the whole mapping, for QueueConfig.Buffers.
	Region []byte
	// Bufs are the buffers, in order of their address.
	Bufs [][]byte
}

// NewBuffers maps count buffers of size bytes (a positive multiple of 512)
// and unmaps them when the test ends. It skips the test where hugemem cannot
// map (operating systems other than Linux).
func NewBuffers(t testing.TB, count, size int) *Buffers {
	t.Helper()
	stride := (size + 4095) &^ 4095
	r, err := hugemem.Map(hugemem.RegionConfig{Size: count * stride, Pages: hugemem.PagesAuto, Node: -1})
	if errors.Is(err, hugemem.ErrNotSupported) {
		t.Skipf("enginetest: %v", err)
	}
	if err != nil {
		t.Fatalf("enginetest: buffers: %v", err)
	}
	p, err := hugemem.NewPool(r, 0, size, count)
	if err != nil {
		_ = r.Close()
		t.Fatalf("enginetest: buffers: %v", err)
	}
	b := &Buffers{Region: r.Bytes(), Bufs: make([][]byte, count)}
	got := make([]hugemem.Buf, count)
	for i := range got {
		got[i], _ = p.Get() // count buffers fit: NewPool checked
		b.Bufs[i] = got[i].Data
	}
	t.Cleanup(func() {
		for _, g := range got {
			p.Put(g)
		}
		if err := r.Close(); err != nil {
			t.Errorf("enginetest: unmap buffers: %v", err)
		}
	})
	return b
}

// NewQueue opens a queue of depth on d, told about the buffers' regions,
// and closes it when the test ends.
func NewQueue(t testing.TB, d ioengine.Device, depth int, bufs ...*Buffers) ioengine.Queue {
	t.Helper()
	cfg := ioengine.QueueConfig{Depth: depth}
	for _, b := range bufs {
		cfg.Buffers = append(cfg.Buffers, b.Region)
	}
	q, err := d.NewQueue(cfg)
	if err != nil {
		t.Fatalf("NewQueue(depth %d): %v", depth, err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Queue.Close: %v", err)
		}
	})
	return q
}

// Exec submits reqs on q, an idle queue, as fast as it takes them, and
// polls until every one is back. It fails the test if a request comes back
// twice, comes back without having been accepted, is not back within
// Timeout, or has its User changed; or if Submit, Poll or Inflight return a
// count at odds with the requests. It says nothing about the requests'
// results: check them after.
func Exec(t testing.TB, q ioengine.Queue, reqs ...*ioengine.Request) {
	t.Helper()
	if err := execute(q, reqs, 0); err != nil {
		t.Fatal(err)
	}
}

// Fill fills buf with a pattern drawn from seed: the same seed gives the
// same bytes, and different seeds give different bytes.
func Fill(buf []byte, seed uint64) {
	g := rand.NewPCG(seed, 0x9e3779b97f4a7c15)
	var w [8]byte
	for len(buf) > 0 {
		binary.LittleEndian.PutUint64(w[:], g.Uint64())
		buf = buf[copy(buf, w[:]):]
	}
}

// execute is Exec returning an error, for goroutines other than the test's.
// pollLen, when positive, caps the out slice given to Poll.
func execute(q ioengine.Queue, reqs []*ioengine.Request, pollLen int) error {
	if n := q.Inflight(); n != 0 {
		return fmt.Errorf("exec: queue not idle: Inflight() = %d", n)
	}
	c := newChecker(reqs)
	if c.err != nil {
		return c.err
	}
	if pollLen <= 0 || pollLen > len(reqs) {
		pollLen = max(len(reqs), 1)
	}
	out := make([]*ioengine.Request, pollLen)
	deadline := time.Now().Add(Timeout)
	for c.returned < len(reqs) {
		k := 0
		if c.submitted < len(reqs) {
			k = q.Submit(reqs[c.submitted:])
			if err := c.accepted(k); err != nil {
				return err
			}
		}
		n := q.Poll(out)
		if err := c.polled(out, n); err != nil {
			return err
		}
		if err := c.inflight(q); err != nil {
			return err
		}
		if k == 0 && n == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("exec: %v: %d of %d requests submitted, %d returned, Inflight() = %d",
					errLost, c.submitted, len(reqs), c.returned, q.Inflight())
			}
			runtime.Gosched()
		}
	}
	return nil
}

var errLost = errors.New("requests not back from Poll within the timeout")

// checker tracks a batch of requests through a queue: each must be accepted
// in order and returned exactly once with its User intact.
type checker struct {
	reqs      []*ioengine.Request
	index     map[*ioengine.Request]int
	users     []uint64
	back      []bool
	submitted int
	returned  int
	err       error
}

func newChecker(reqs []*ioengine.Request) *checker {
	c := &checker{
		reqs:  reqs,
		index: make(map[*ioengine.Request]int, len(reqs)),
		users: make([]uint64, len(reqs)),
		back:  make([]bool, len(reqs)),
	}
	for i, r := range reqs {
		if r == nil {
			c.err = fmt.Errorf("exec: request %d is nil", i)
			return c
		}
		if j, dup := c.index[r]; dup {
			c.err = fmt.Errorf("exec: requests %d and %d are the same request", j, i)
			return c
		}
		c.index[r] = i
		c.users[i] = r.User
	}
	return c
}

func (c *checker) accepted(k int) error {
	if k < 0 || k > len(c.reqs)-c.submitted {
		return fmt.Errorf("queue: Submit of %d requests returned %d", len(c.reqs)-c.submitted, k)
	}
	c.submitted += k
	return nil
}

func (c *checker) polled(out []*ioengine.Request, n int) error {
	if n < 0 || n > len(out) {
		return fmt.Errorf("queue: Poll into %d slots returned %d", len(out), n)
	}
	for _, r := range out[:n] {
		i, ok := c.index[r]
		switch {
		case !ok:
			return fmt.Errorf("queue: Poll returned a request that was never submitted (%p)", r)
		case i >= c.submitted:
			return fmt.Errorf("queue: Poll returned request %d, which Submit had not accepted", i)
		case c.back[i]:
			return fmt.Errorf("queue: Poll returned request %d (%v at %d) twice", i, r.Op, r.Offset)
		case r.User != c.users[i]:
			return fmt.Errorf("request %d came back with User %#x, submitted with %#x", i, r.User, c.users[i])
		}
		c.back[i] = true
		c.returned++
	}
	return nil
}

func (c *checker) inflight(q ioengine.Queue) error {
	if got, want := q.Inflight(), c.submitted-c.returned; got != want {
		return fmt.Errorf("Inflight() = %d with %d accepted and %d returned", got, c.submitted, c.returned)
	}
	return nil
}

// Bench measures requests of op and size bytes kept depth deep on d, with
// block-aligned offsets spread over the device: b.N requests in all. It
// reports ns/op (one op is one I/O), allocs/op, IOPS and throughput.
func Bench(b *testing.B, d ioengine.Device, op ioengine.Op, size, depth int) {
	b.Helper()
	info := d.Info()
	bs := int64(info.BlockSize)
	if int64(size) > info.SizeBytes || size%info.BlockSize != 0 {
		b.Fatalf("bench: %d-byte requests on a %d-byte device of %d-byte blocks", size, info.SizeBytes, bs)
	}
	bufs := NewBuffers(b, depth, size)
	// The queue lives on one locked thread, as on a reactor; Close is
	// deferred rather than left to b.Cleanup, which may run elsewhere.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	q, err := d.NewQueue(ioengine.QueueConfig{Depth: depth, Buffers: [][]byte{bufs.Region}})
	if err != nil {
		b.Fatalf("bench: NewQueue(depth %d): %v", depth, err)
	}
	defer func() {
		if err := q.Close(); err != nil {
			b.Errorf("bench: Queue.Close: %v", err)
		}
	}()
	rng := rand.New(rand.NewPCG(1, 2))
	offsets := make([]int64, 4096)
	for i := range offsets {
		offsets[i] = rng.Int64N((info.SizeBytes-int64(size))/bs+1) * bs
	}
	reqs := make([]ioengine.Request, depth)
	free := make([]*ioengine.Request, depth) // free[:nfree] are idle
	for i := range reqs {
		r := &reqs[i]
		r.Op, r.User = op, uint64(i)
		switch op {
		case ioengine.OpRead, ioengine.OpWrite:
			r.Buf = bufs.Bufs[i]
			Fill(r.Buf, uint64(i))
		default:
			r.Len = int64(size)
		}
		free[i] = r
	}
	nfree := depth
	out := make([]*ioengine.Request, depth)
	next := 0

	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	issued, done := 0, 0
	for done < b.N {
		if m := min(nfree, b.N-issued); m > 0 {
			for _, r := range free[:m] {
				r.Offset = offsets[next&(len(offsets)-1)]
				next++
			}
			k := q.Submit(free[:m])
			copy(free, free[k:nfree])
			nfree -= k
			issued += k
		}
		n := q.Poll(out)
		for _, r := range out[:n] {
			if !r.OK() {
				b.Fatalf("bench: %v at %d: %v", r.Op, r.Offset, r.Err())
			}
			free[nfree] = r
			nfree++
		}
		done += n
	}
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "IOPS")
	}
}

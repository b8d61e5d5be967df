package bench

import (
	"sync/atomic"
	"syscall"

	"github.com/usrpt/usrpt/ioengine"
)

// fakeDev is an in-test engine. Without data it is a null device (reads
// return the buffer untouched); with data it is a RAM disk. Completions are
// immediate: Submit queues, Poll carries out and returns. Hooks inject
// faults. Queues never allocate after NewQueue.
type fakeDev struct {
	name string
	size int64
	bs   int
	data []byte // nil: keep nothing

	// corrupt, when set, may change what a read returns (after the copy).
	corrupt func(off int64, buf []byte)
	// fail, when set, may make a request fail (errno) or come up short
	// (n < len(buf)); it returns 0, -1 for a normal completion.
	fail func(r *ioengine.Request) (syscall.Errno, int64)

	queues atomic.Int32
	closed atomic.Bool
}

func newFakeNull(size int64) *fakeDev { return &fakeDev{name: "fake", size: size, bs: 512} }

func newFakeMem(size int64) *fakeDev {
	return &fakeDev{name: "fakemem", size: size, bs: 512, data: make([]byte, size)}
}

func (d *fakeDev) Info() ioengine.Info {
	return ioengine.Info{Engine: d.name, SizeBytes: d.size, BlockSize: d.bs, Ops: ioengine.Ops(ioengine.OpRead, ioengine.OpWrite), Options: "test"}
}

func (d *fakeDev) Supports(op ioengine.Op) bool {
	return op == ioengine.OpRead || op == ioengine.OpWrite
}

func (d *fakeDev) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	d.queues.Add(1)
	return &fakeQueue{d: d, depth: cfg.Depth, pending: make([]*ioengine.Request, 0, cfg.Depth)}, nil
}

func (d *fakeDev) Close() error {
	d.closed.Store(true)
	return nil
}

type fakeQueue struct {
	d       *fakeDev
	depth   int
	pending []*ioengine.Request
	closed  bool
}

func (q *fakeQueue) Submit(reqs []*ioengine.Request) int {
	n := min(len(reqs), q.depth-len(q.pending))
	q.pending = append(q.pending, reqs[:n]...)
	return n
}

func (q *fakeQueue) Poll(out []*ioengine.Request) int {
	n := min(len(out), len(q.pending))
	for i, r := range q.pending[:n] {
		q.exec(r)
		out[i] = r
	}
	q.pending = q.pending[:copy(q.pending, q.pending[n:])]
	return n
}

func (q *fakeQueue) exec(r *ioengine.Request) {
	d := q.d
	if e := ioengine.CheckRange(r, d.size, ioengine.Ops(ioengine.OpRead, ioengine.OpWrite)); e != 0 {
		r.Complete(0, e)
		return
	}
	if d.fail != nil {
		if e, n := d.fail(r); e != 0 || n >= 0 {
			r.Complete(max(n, 0), e)
			return
		}
	}
	if d.data != nil {
		if r.Op == ioengine.OpWrite {
			copy(d.data[r.Offset:], r.Buf)
		} else {
			copy(r.Buf, d.data[r.Offset:])
		}
	}
	if r.Op == ioengine.OpRead && d.corrupt != nil {
		d.corrupt(r.Offset, r.Buf)
	}
	r.Complete(int64(len(r.Buf)), 0)
}

func (q *fakeQueue) Inflight() int { return len(q.pending) }
func (q *fakeQueue) WaitFD() int   { return -1 }
func (q *fakeQueue) Close() error {
	q.closed = true
	return nil
}

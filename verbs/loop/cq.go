package loop

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/usrpt/usrpt/internal/ring"
	"github.com/usrpt/usrpt/verbs"
)

// cqe is one completion in a CQ's ring. A send completion names its QP and
// the token ring and sequence number of its WR, so that Poll can free the
// send queue slots it completes.
type cqe struct {
	wc  verbs.WC
	qp  *qp
	tok *ring.SPSC[uint64]
	seq uint64
}

type staged struct {
	e   cqe
	due uint64
}

type cq struct {
	dev  *device
	ring *ring.MPSC[cqe]

	// Consumer side: touched by Poll only.
	scratch   []cqe
	stage     []staged // DelayCompletions: completions held back
	stHead    int
	stN       int
	polls     uint64
	fatalSent bool

	// kick asks the next Poll to service the QPs of the CQ (flushes of QPs
	// in ERR, RNR retries). Stored by whoever makes such work, swapped out
	// by Poll; it carries no data (the work itself is under the QPs' locks).
	kick atomic.Bool
	// overflow: a completion found the ring full. Set by any producer,
	// read by producers (to drop) and by Poll (to report).
	overflow atomic.Bool
	// delay is the number of Polls each completion is held back.
	delay  atomic.Int64
	closed atomic.Bool

	mu  sync.Mutex // writers of qps
	qps atomic.Pointer[[]*qp]
}

func (d *device) CreateCQ(entries int) (verbs.CQ, error) {
	if entries < 1 || entries > maxCQE {
		return nil, fmt.Errorf("loop: CQ of %d entries: %w", entries, verbs.ErrInvalid)
	}
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, verbs.ErrClosed
	}
	size := pow2(entries)
	c := &cq{dev: d, ring: ring.NewMPSC[cqe](size), scratch: make([]cqe, min(size, 256)), stage: make([]staged, size)}
	c.qps.Store(new([]*qp))
	return c, nil
}

func pow2(n int) int {
	if n < 2 {
		return 2
	}
	return 1 << bits.Len(uint(n-1))
}

func (c *cq) attach(q *qp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.qps.Load()
	for _, x := range old {
		if x == q {
			return
		}
	}
	nw := append(old[:len(old):len(old)], q)
	// Release: Poll's Load sees the complete QP.
	c.qps.Store(&nw)
}

func (c *cq) detach(q *qp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.qps.Load()
	nw := make([]*qp, 0, len(old))
	for _, x := range old {
		if x != q {
			nw = append(nw, x)
		}
	}
	c.qps.Store(&nw)
}

func (c *cq) Close() error {
	if len(*c.qps.Load()) > 0 {
		return fmt.Errorf("loop: CQ still used by a QP (EBUSY): %w", verbs.ErrInvalid)
	}
	c.closed.Store(true)
	return nil
}

// push adds a completion; any goroutine. A full ring puts the CQ in error
// for good and every QP using it into ERR.
// pushBatch is push for several completions, in order, with one ring
// reservation when nothing interleaves.
func (c *cq) pushBatch(es []cqe) {
	if c.overflow.Load() {
		return
	}
	n := c.ring.PushBatch(es)
	for _, e := range es[n:] {
		c.push(e) // full: push sees the overflow
	}
}

func (c *cq) push(e cqe) {
	if c.overflow.Load() {
		return
	}
	if c.ring.Push(e) {
		return
	}
	if c.overflow.Swap(true) {
		return
	}
	for _, q := range *c.qps.Load() {
		q.toErr()
	}
}

func (c *cq) Poll(wcs []verbs.WC) int {
	if c.kick.Load() && c.kick.Swap(false) {
		if c.service() {
			c.kick.Store(true)
		}
	}
	if c.delay.Load() != 0 || c.stN != 0 {
		return c.pollDelayed(wcs)
	}
	n := 0
	for n < len(wcs) {
		k := min(len(wcs)-n, len(c.scratch))
		got := c.ring.PopBatch(c.scratch[:k])
		for i := range got {
			e := &c.scratch[i]
			wcs[n+i] = e.wc
			if e.tok != nil {
				retire(e)
			}
			*e = cqe{}
		}
		n += got
		if got < k {
			break
		}
	}
	if n < len(wcs) && c.overflow.Load() && !c.fatalSent {
		c.fatalSent = true
		wcs[n] = verbs.WC{Status: verbs.WCFatalErr}
		n++
	}
	return n
}

// retire frees the send queue slots up to and including e's WR.
func retire(e *cqe) {
	// The QP's token ring is replaced when the QP is reset; completions
	// from before the reset free nothing in the new one.
	if e.qp.tok.Load() != e.tok {
		return
	}
	for {
		t, ok := e.tok.Pop()
		if !ok || t >= e.seq {
			return
		}
	}
}

func (c *cq) pollDelayed(wcs []verbs.WC) int {
	c.polls++
	d := uint64(max(c.delay.Load(), 0))
	for c.stN < len(c.stage) {
		k := min(len(c.scratch), len(c.stage)-c.stN)
		got := c.ring.PopBatch(c.scratch[:k])
		for i := range got {
			c.stage[(c.stHead+c.stN)%len(c.stage)] = staged{e: c.scratch[i], due: c.polls + d}
			c.scratch[i] = cqe{}
			c.stN++
		}
		if got < k {
			break
		}
	}
	n := 0
	for n < len(wcs) && c.stN > 0 && c.stage[c.stHead].due <= c.polls {
		s := &c.stage[c.stHead]
		wcs[n] = s.e.wc
		if s.e.tok != nil {
			retire(&s.e)
		}
		*s = staged{}
		c.stHead = (c.stHead + 1) % len(c.stage)
		c.stN--
		n++
	}
	if n < len(wcs) && c.stN == 0 && c.overflow.Load() && !c.fatalSent && c.ring.Len() == 0 {
		c.fatalSent = true
		wcs[n] = verbs.WC{Status: verbs.WCFatalErr}
		n++
	}
	return n
}

// service flushes QPs in ERR and retries RNR-stalled sends; it reports
// whether work remains for a later Poll.
func (c *cq) service() bool {
	more := false
	for _, q := range *c.qps.Load() {
		if q.sendCQ == c && q.serviceSend() {
			more = true
		}
		if q.recvCQ == c && q.rq != nil && q.State() == verbs.QPErr {
			q.flushRecv()
		}
	}
	return more
}

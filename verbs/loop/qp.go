package loop

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/usrpt/usrpt/internal/ring"
	"github.com/usrpt/usrpt/verbs"
	"golang.org/x/sys/cpu"
)

// recvEntry is a posted receive: its SGEs are copied at post time.
type recvEntry struct {
	id  uint64
	n   uint8
	sge [maxSGE]verbs.SGE
}

// recvQueue is a QP's receive queue or an SRQ. The owner pushes (SPSC
// producer, no lock); consumers (the peer's sender, the flusher) hold mu.
type recvQueue struct {
	// Read by the producer on every post.
	ring   *ring.SPSC[recvEntry]
	max    int
	maxSGE int
	pd     *pd

	// mu is written by the consumer on every delivery: on a line of its
	// own, or each delivery would take the producer's line away.
	_  cpu.CacheLinePad
	mu sync.Mutex
	_  cpu.CacheLinePad
}

func newRecvQueue(p *pd, maxWR, maxSGE int) *recvQueue {
	return &recvQueue{ring: ring.NewSPSC[recvEntry](pow2(maxWR)), max: maxWR, maxSGE: maxSGE, pd: p}
}

func (r *recvQueue) checkRecv(w *verbs.RecvWR) error {
	if len(w.SGL) > r.maxSGE {
		return fmt.Errorf("loop: receive with %d SGEs, the queue allows %d: %w", len(w.SGL), r.maxSGE, verbs.ErrInvalid)
	}
	return nil
}

// take pops the oldest receive into e, copying only the SGEs it uses: the
// entry was written by another core, and each line of it read is a
// transfer. Consumer side, under r.mu.
func (r *recvQueue) take(e *recvEntry) bool {
	return r.ring.PopWith(func(s *recvEntry) {
		e.id, e.n = s.id, s.n
		copy(e.sge[:min(int(s.n), len(s.sge))], s.sge[:])
	})
}

// post pushes wrs; producer side.
func (r *recvQueue) post(wrs []verbs.RecvWR) (int, error) {
	for i := range wrs {
		w := &wrs[i]
		if err := r.checkRecv(w); err != nil {
			return i, err
		}
		// The cached count over-counts by receives consumed since it was
		// taken: conservative.
		if !r.ring.PushWith(r.max, func(e *recvEntry) {
			e.id, e.n = w.ID, uint8(len(w.SGL))
			copy(e.sge[:], w.SGL)
		}) {
			return i, verbs.ErrQueueFull
		}
	}
	return len(wrs), nil
}

type srq struct {
	q      *recvQueue
	closed atomic.Bool
}

func (p *pd) CreateSRQ(maxWR, maxSGE int) (verbs.SRQ, error) {
	if maxWR < 1 || maxWR > maxQPWR || maxSGE < 0 || maxSGE > maxSGE_ {
		return nil, fmt.Errorf("loop: SRQ of %d WRs × %d SGEs: %w", maxWR, maxSGE, verbs.ErrInvalid)
	}
	if p.isClosed() {
		return nil, verbs.ErrClosed
	}
	return &srq{q: newRecvQueue(p, maxWR, maxSGE)}, nil
}

const maxSGE_ = maxSGE

func (s *srq) PostRecv(wrs []verbs.RecvWR) (int, error) {
	if s.closed.Load() {
		return 0, verbs.ErrClosed
	}
	return s.q.post(wrs)
}

func (s *srq) Close() error {
	s.closed.Store(true)
	return nil
}

// sqSlot is a posted send WR waiting to execute (or executed, until its
// slot is reused). Its SGEs and inline data are copies.
type sqSlot struct {
	id         uint64
	op         verbs.Opcode
	flags      verbs.SendFlags
	remoteAddr uint64
	rkey       uint32
	imm        uint32
	invRKey    uint32
	nsge       int
	sge        [maxSGE]verbs.SGE
	inline     []byte // the data, for SendInline (cap QPConfig.MaxInline)
	seq        uint64
	started    bool // RNR retries counted from here
	rnrLeft    uint8
	wait       int // Polls of the send CQ before the next try
}

type sendQueue struct {
	mu    sync.Mutex
	slots []sqSlot
	head  uint64 // seq of the next WR to execute
	tail  uint64 // seq of the next WR posted
}

type qp struct {
	dev    *device
	pd     *pd
	cfg    verbs.QPConfig
	qpn    uint32
	sendCQ *cq
	recvCQ *cq
	srq    *srq
	rq     *recvQueue // nil with an SRQ

	// mu orders state transitions. Lock order: sq.mu, then any rq mu, then mu.
	mu sync.Mutex
	// state is read by the peer's sender and the CQ pollers; stored under mu.
	state atomic.Uint32
	// Set at INIT and RTR, read by the peer's sender.
	access atomic.Uint32
	minRNR atomic.Uint32
	// peer is set at RTR and read by the sender and the send CQ's poller.
	peer atomic.Pointer[qp]
	link atomic.Pointer[link]

	// Fault injection: the next fail sends complete with failStatus.
	fail       atomic.Int32
	failStatus atomic.Uint32

	// The poster's own state, written on every PostSend: away from the
	// fields above, which the peer's sender reads on every delivery.
	_  cpu.CacheLinePad
	sq sendQueue
	// Under sq.mu: RTS attributes.
	rnrRetry    uint8
	retryCnt    uint8
	maxRdAtomic int
	// tok holds one token (the seq) per posted send WR until a completion
	// for it or a later WR is polled: the poster pushes, the send CQ's
	// Poll pops. Replaced at RESET.
	tok atomic.Pointer[ring.SPSC[uint64]]

	// Under sq.mu: receive completions for the peer staged during one run
	// and pushed with one ring reservation (cq.pushBatch) when it returns,
	// before any other completion that could land in the same CQ.
	pend   []cqe
	pendCQ *cq
	_      cpu.CacheLinePad

	closed atomic.Bool
}

// pendMax bounds the completions one run stages.
const pendMax = 32

// stage queues e for c, flushing what is staged for another CQ first.
func (q *qp) stage(c *cq, e cqe) {
	if q.pendCQ != c {
		q.flushPend()
		q.pendCQ = c
	}
	q.pend = append(q.pend, e)
	if len(q.pend) == cap(q.pend) {
		q.flushPend()
	}
}

// flushPend pushes the staged completions, in order.
func (q *qp) flushPend() {
	if len(q.pend) > 0 {
		q.pendCQ.pushBatch(q.pend)
		clear(q.pend)
		q.pend = q.pend[:0]
	}
}

func (p *pd) CreateQP(cfg verbs.QPConfig) (verbs.QP, error) {
	bad := func(what string, v int) (verbs.QP, error) {
		return nil, fmt.Errorf("loop: CreateQP %s %d: %w", what, v, verbs.ErrInvalid)
	}
	scq, ok1 := cfg.SendCQ.(*cq)
	rcq, ok2 := cfg.RecvCQ.(*cq)
	if !ok1 || !ok2 || scq.dev != p.dev || rcq.dev != p.dev || scq.closed.Load() || rcq.closed.Load() {
		return nil, fmt.Errorf("loop: CreateQP needs CQs of the same loop device: %w", verbs.ErrInvalid)
	}
	switch {
	case cfg.MaxSendWR < 0 || cfg.MaxSendWR > maxQPWR:
		return bad("MaxSendWR", cfg.MaxSendWR)
	case cfg.SRQ == nil && (cfg.MaxRecvWR < 0 || cfg.MaxRecvWR > maxQPWR):
		return bad("MaxRecvWR", cfg.MaxRecvWR)
	case cfg.MaxSendSGE < 0 || cfg.MaxSendSGE > maxSGE:
		return bad("MaxSendSGE", cfg.MaxSendSGE)
	case cfg.MaxRecvSGE < 0 || cfg.MaxRecvSGE > maxSGE:
		return bad("MaxRecvSGE", cfg.MaxRecvSGE)
	case cfg.MaxInline < 0 || cfg.MaxInline > maxInline:
		return bad("MaxInline", cfg.MaxInline)
	}
	q := &qp{dev: p.dev, pd: p, cfg: cfg, sendCQ: scq, recvCQ: rcq, pend: make([]cqe, 0, pendMax)}
	if cfg.SRQ != nil {
		s, ok := cfg.SRQ.(*srq)
		if !ok || s.q.pd.dev != p.dev || s.closed.Load() {
			return nil, fmt.Errorf("loop: CreateQP needs an SRQ of the same loop device: %w", verbs.ErrInvalid)
		}
		q.srq = s
	} else {
		q.rq = newRecvQueue(p, cfg.MaxRecvWR, cfg.MaxRecvSGE)
	}
	q.sq.slots = make([]sqSlot, cfg.MaxSendWR)
	if cfg.MaxInline > 0 {
		buf := make([]byte, cfg.MaxSendWR*cfg.MaxInline)
		for i := range q.sq.slots {
			q.sq.slots[i].inline = buf[i*cfg.MaxInline : i*cfg.MaxInline : (i+1)*cfg.MaxInline]
		}
	}
	q.tok.Store(ring.NewSPSC[uint64](pow2(cfg.MaxSendWR)))
	if p.isClosed() {
		return nil, verbs.ErrClosed
	}
	f := p.dev.fab
	f.mu.Lock()
	if len(f.qps) >= maxQP {
		f.mu.Unlock()
		return nil, fmt.Errorf("loop: %d QPs: %w", maxQP, verbs.ErrQueueFull)
	}
	for f.qps[f.nextQPN&0xffffff] != nil || f.nextQPN&0xffffff < 2 {
		f.nextQPN++
	}
	q.qpn = f.nextQPN & 0xffffff
	f.nextQPN++
	f.qps[q.qpn] = q
	f.mu.Unlock()
	scq.attach(q)
	rcq.attach(q)
	return q, nil
}

func (q *qp) QPN() uint32          { return q.qpn }
func (q *qp) State() verbs.QPState { return verbs.QPState(q.state.Load()) }

// receiving reports whether the QP accepts incoming requests.
func (q *qp) receiving() bool {
	s := q.State()
	return s == verbs.QPRTR || s == verbs.QPRTS
}

func (q *qp) recvQueue() *recvQueue {
	if q.srq != nil {
		return q.srq.q
	}
	return q.rq
}

// toErr moves the QP to ERR after an error completion, a peer's NAK, a
// disconnect or a CQ overflow; the QP's CQ pollers flush it. A QP in RESET
// (not connected) is left alone. Any goroutine.
func (q *qp) toErr() {
	q.mu.Lock()
	s := q.State()
	if s != verbs.QPReset && s != verbs.QPErr {
		q.state.Store(uint32(verbs.QPErr))
	}
	q.mu.Unlock()
	q.kick()
}

func (q *qp) kick() {
	q.sendCQ.kick.Store(true)
	q.recvCQ.kick.Store(true)
}

func (q *qp) Modify(a verbs.QPAttr) error {
	if q.closed.Load() {
		return verbs.ErrClosed
	}
	q.sq.mu.Lock()
	defer q.sq.mu.Unlock()
	if q.rq != nil {
		q.rq.mu.Lock()
		defer q.rq.mu.Unlock()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	cur := q.State()
	bad := func() error {
		return fmt.Errorf("loop: QP %#x %v → %v: %w", q.qpn, cur, a.State, verbs.ErrState)
	}
	switch a.State {
	case verbs.QPReset:
		q.sq.head = q.sq.tail
		q.tok.Store(ring.NewSPSC[uint64](pow2(q.cfg.MaxSendWR)))
		if q.rq != nil {
			for {
				if _, ok := q.rq.ring.Pop(); !ok {
					break
				}
			}
		}
		q.peer.Store(nil)
		q.access.Store(0)
	case verbs.QPInit:
		if cur != verbs.QPReset && cur != verbs.QPInit {
			return bad()
		}
		if a.Access&^accessAll != 0 {
			return fmt.Errorf("loop: QP access %#x: %w", a.Access, verbs.ErrInvalid)
		}
		q.access.Store(uint32(a.Access))
	case verbs.QPRTR:
		if cur != verbs.QPInit {
			return bad()
		}
		switch a.PathMTU {
		case 0, 256, 512, 1024, 2048, 4096:
		default:
			return fmt.Errorf("loop: path MTU %d: %w", a.PathMTU, verbs.ErrInvalid)
		}
		if a.MaxDestRdAtomic < 0 || a.MaxDestRdAtomic > maxRdAtomic || a.MinRNRTimer > 31 {
			return fmt.Errorf("loop: RTR attributes: %w", verbs.ErrInvalid)
		}
		f := q.dev.fab
		f.mu.Lock()
		p := f.qps[a.DestQPN]
		f.mu.Unlock()
		if p == nil || p == q {
			return fmt.Errorf("loop: no QP %#x in the fabric: %w", a.DestQPN, verbs.ErrInvalid)
		}
		q.peer.Store(p)
		q.minRNR.Store(uint32(a.MinRNRTimer))
	case verbs.QPRTS:
		if cur != verbs.QPRTR && cur != verbs.QPRTS {
			return bad()
		}
		if a.RetryCnt > 7 || a.RNRRetry > 7 || a.MaxRdAtomic < 0 || a.MaxRdAtomic > maxRdAtomic {
			return fmt.Errorf("loop: RTS attributes: %w", verbs.ErrInvalid)
		}
		q.rnrRetry, q.retryCnt, q.maxRdAtomic = a.RNRRetry, a.RetryCnt, a.MaxRdAtomic
	case verbs.QPErr:
	default:
		return bad()
	}
	q.state.Store(uint32(a.State))
	if a.State == verbs.QPErr {
		q.kick()
	}
	return nil
}

func (q *qp) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	if l := q.link.Load(); l != nil {
		l.close()
	}
	q.toErr()
	f := q.dev.fab
	f.mu.Lock()
	delete(f.qps, q.qpn)
	f.mu.Unlock()
	q.sendCQ.detach(q)
	q.recvCQ.detach(q)
	return nil
}

func (q *qp) PostRecv(wrs []verbs.RecvWR) (int, error) {
	if q.rq == nil {
		return 0, fmt.Errorf("loop: PostRecv on a QP with an SRQ: %w", verbs.ErrInvalid)
	}
	switch q.State() {
	case verbs.QPInit, verbs.QPRTR, verbs.QPRTS:
		return q.rq.post(wrs)
	case verbs.QPErr:
		// As hardware: a receive posted in ERR is flushed at once, after
		// those already queued.
		for i := range wrs {
			if err := q.rq.checkRecv(&wrs[i]); err != nil {
				q.flushRecv()
				return i, err
			}
		}
		q.rq.mu.Lock()
		q.flushRecvLocked()
		for i := range wrs {
			q.recvCQ.push(cqe{wc: verbs.WC{ID: wrs[i].ID, Status: verbs.WCWRFlushErr, Op: verbs.WCRecv, QPN: q.qpn}})
		}
		q.rq.mu.Unlock()
		return len(wrs), nil
	}
	return 0, fmt.Errorf("loop: PostRecv in %v: %w", q.State(), verbs.ErrState)
}

func (q *qp) flushRecv() {
	q.rq.mu.Lock()
	q.flushRecvLocked()
	q.rq.mu.Unlock()
}

func (q *qp) flushRecvLocked() {
	if q.State() != verbs.QPErr {
		return
	}
	for {
		e, ok := q.rq.ring.Pop()
		if !ok {
			return
		}
		q.recvCQ.push(cqe{wc: verbs.WC{ID: e.id, Status: verbs.WCWRFlushErr, Op: verbs.WCRecv, QPN: q.qpn}})
	}
}

func (q *qp) checkSend(w *verbs.SendWR) error {
	if w.Op > verbs.OpRDMARead {
		return fmt.Errorf("loop: opcode %v: %w", w.Op, verbs.ErrInvalid)
	}
	if len(w.SGL) > q.cfg.MaxSendSGE {
		return fmt.Errorf("loop: send with %d SGEs, the QP allows %d: %w", len(w.SGL), q.cfg.MaxSendSGE, verbs.ErrInvalid)
	}
	if w.Flags&verbs.SendInline != 0 {
		if w.Op == verbs.OpRDMARead {
			return fmt.Errorf("loop: inline RDMA READ: %w", verbs.ErrInvalid)
		}
		n := 0
		for _, s := range w.SGL {
			n += int(s.Len)
		}
		if n > q.cfg.MaxInline {
			return fmt.Errorf("loop: %d bytes inline, the QP allows %d: %w", n, q.cfg.MaxInline, verbs.ErrInvalid)
		}
	}
	return nil
}

func (q *qp) PostSend(wrs []verbs.SendWR) (int, error) {
	q.sq.mu.Lock()
	defer q.sq.mu.Unlock()
	if s := q.State(); s != verbs.QPRTS {
		return 0, fmt.Errorf("loop: PostSend in %v: %w", s, verbs.ErrState)
	}
	tok := q.tok.Load()
	for i := range wrs {
		w := &wrs[i]
		if err := q.checkSend(w); err != nil {
			q.run()
			return i, err
		}
		// Len over-counts by slots freed this instant: conservative.
		if tok.Len() >= q.cfg.MaxSendWR {
			q.run()
			return i, verbs.ErrQueueFull
		}
		seq := q.sq.tail
		s := &q.sq.slots[seq%uint64(len(q.sq.slots))]
		s.id, s.op, s.flags = w.ID, w.Op, w.Flags
		s.remoteAddr, s.rkey, s.imm, s.invRKey = w.RemoteAddr, w.RKey, w.Imm, w.InvRKey
		s.seq, s.started, s.wait = seq, false, 0
		if w.Flags&verbs.SendInline != 0 {
			s.nsge = 0
			s.inline = s.inline[:0]
			for _, g := range w.SGL {
				s.inline = append(s.inline, rawBytes(g.Addr, g.Len)...)
			}
		} else {
			s.nsge = copy(s.sge[:], w.SGL)
		}
		tok.Push(seq)
		q.sq.tail++
	}
	q.run()
	return len(wrs), nil
}

// serviceSend is the send CQ poller's part: flush pending WRs of a QP in
// ERR, retry an RNR-stalled one when its wait is over. It reports whether
// WRs remain pending.
func (q *qp) serviceSend() bool {
	q.sq.mu.Lock()
	defer q.sq.mu.Unlock()
	if q.sq.head == q.sq.tail {
		return false
	}
	switch q.State() {
	case verbs.QPErr:
		for q.sq.head != q.sq.tail {
			s := q.slot(q.sq.head)
			q.complete(s, verbs.WCWRFlushErr)
			q.sq.head++
		}
		return false
	case verbs.QPRTS:
		s := q.slot(q.sq.head)
		if s.wait > 0 {
			s.wait--
		}
		q.run()
		return q.sq.head != q.sq.tail
	}
	return false
}

func (q *qp) slot(seq uint64) *sqSlot { return &q.sq.slots[seq%uint64(len(q.sq.slots))] }

func wcOpOf(op verbs.Opcode) verbs.WCOpcode {
	switch op {
	case verbs.OpRDMAWrite, verbs.OpRDMAWriteWithImm:
		return verbs.WCRDMAWrite
	case verbs.OpRDMARead:
		return verbs.WCRDMARead
	}
	return verbs.WCSend
}

// complete pushes the send completion of s; under sq.mu.
func (q *qp) complete(s *sqSlot, st verbs.WCStatus) {
	q.sendCQ.push(cqe{
		wc:  verbs.WC{ID: s.id, Status: st, Op: wcOpOf(s.op), QPN: q.qpn},
		qp:  q,
		tok: q.tok.Load(),
		seq: s.seq,
	})
}

func remoteErr(st verbs.WCStatus) bool {
	return st == verbs.WCRemAccessErr || st == verbs.WCRemInvReqErr || st == verbs.WCRemOpErr
}

// run executes pending WRs in order until the queue is empty, one stalls
// on RNR, or one fails; under sq.mu.
func (q *qp) run() {
	q.runSends()
	q.flushPend()
}

func (q *qp) runSends() {
	for q.sq.head != q.sq.tail {
		if q.State() != verbs.QPRTS {
			return // ERR: the send CQ's Poll flushes the rest
		}
		s := q.slot(q.sq.head)
		if s.wait > 0 {
			return
		}
		st, rnr := q.exec(s)
		if rnr {
			if !s.started {
				s.started, s.rnrLeft = true, q.rnrRetry
			}
			if q.rnrRetry != 7 {
				if s.rnrLeft == 0 {
					q.sq.head++
					q.flushPend()
					q.complete(s, verbs.WCRNRRetryExcErr)
					q.toErr()
					return
				}
				s.rnrLeft--
			}
			t := int(q.peer.Load().minRNR.Load())
			if t == 0 {
				t = 32
			}
			s.wait = t
			q.sendCQ.kick.Store(true)
			return
		}
		q.sq.head++
		if st != verbs.WCSuccess || s.flags&verbs.SendSignaled != 0 || q.cfg.SigAll {
			if st != verbs.WCSuccess || q.pendCQ == q.sendCQ {
				q.flushPend() // one CQ keeps completion order
			}
			q.complete(s, st)
		}
		if st != verbs.WCSuccess {
			if p := q.peer.Load(); p != nil && remoteErr(st) {
				p.toErr()
			}
			q.toErr()
			return
		}
	}
}

func localStatus(e regionErr) verbs.WCStatus {
	if e == regionRange {
		return verbs.WCLocLenErr
	}
	return verbs.WCLocProtErr
}

// segments resolves sges in q's device, each needing access need.
func (q *qp) segments(dst *[maxSGE][]byte, sges []verbs.SGE, need verbs.Access) (int, uint64, verbs.WCStatus) {
	n := 0
	var total uint64
	for i := range sges {
		g := &sges[i]
		if g.Len == 0 {
			continue
		}
		b, e := q.dev.region(g.LKey, q.pd, g.Addr, uint64(g.Len), need)
		if e != regionOK {
			return 0, 0, localStatus(e)
		}
		dst[n] = b
		n++
		total += uint64(g.Len)
	}
	if total > maxMsgSize {
		return 0, 0, verbs.WCLocLenErr
	}
	return n, total, verbs.WCSuccess
}

// scatter copies the bytes of src segments into dst segments, in order.
func scatter(dst, src [][]byte) {
	di, doff := 0, 0
	for _, s := range src {
		for len(s) > 0 {
			for doff == len(dst[di]) {
				di, doff = di+1, 0
			}
			c := copy(dst[di][doff:], s)
			s = s[c:]
			doff += c
		}
	}
}

// exec executes one WR against the peer; rnr reports that it needs a
// receive the peer has not posted.
func (q *qp) exec(s *sqSlot) (st verbs.WCStatus, rnr bool) {
	if n := q.fail.Load(); n > 0 && q.fail.CompareAndSwap(n, n-1) {
		return verbs.WCStatus(q.failStatus.Load()), false
	}
	p := q.peer.Load()
	if p == nil || !p.receiving() {
		return verbs.WCRetryExcErr, false
	}
	var src [maxSGE][]byte
	nsrc := 0
	var total uint64
	if s.op != verbs.OpRDMARead {
		if s.flags&verbs.SendInline != 0 {
			src[0], nsrc, total = s.inline, 1, uint64(len(s.inline))
		} else {
			var st verbs.WCStatus
			nsrc, total, st = q.segments(&src, s.sge[:s.nsge], 0)
			if st != verbs.WCSuccess {
				return st, false
			}
		}
	}
	switch s.op {
	case verbs.OpSend, verbs.OpSendWithImm, verbs.OpSendWithInv:
		return q.deliver(p, s, src[:nsrc], total)
	case verbs.OpRDMAWrite, verbs.OpRDMAWriteWithImm:
		var dst []byte
		if total > 0 {
			if verbs.Access(p.access.Load())&verbs.AccessRemoteWrite == 0 {
				return verbs.WCRemAccessErr, false
			}
			var e regionErr
			dst, e = p.dev.region(s.rkey, p.pd, s.remoteAddr, total, verbs.AccessRemoteWrite)
			if e != regionOK {
				return verbs.WCRemAccessErr, false
			}
		}
		if s.op == verbs.OpRDMAWrite {
			scatter([][]byte{dst}, src[:nsrc])
			return verbs.WCSuccess, false
		}
		return q.deliverImm(p, s, dst, src[:nsrc], total)
	default: // verbs.OpRDMARead
		var dst [maxSGE][]byte
		ndst, total, st := q.segments(&dst, s.sge[:s.nsge], verbs.AccessLocalWrite)
		if st != verbs.WCSuccess {
			return st, false
		}
		if total == 0 {
			return verbs.WCSuccess, false
		}
		if verbs.Access(p.access.Load())&verbs.AccessRemoteRead == 0 {
			return verbs.WCRemAccessErr, false
		}
		b, e := p.dev.region(s.rkey, p.pd, s.remoteAddr, total, verbs.AccessRemoteRead)
		if e != regionOK {
			return verbs.WCRemAccessErr, false
		}
		scatter(dst[:ndst], [][]byte{b})
		return verbs.WCSuccess, false
	}
}

// deliver executes a SEND: it consumes a receive of the peer and scatters
// the data over it.
func (q *qp) deliver(p *qp, s *sqSlot, src [][]byte, total uint64) (verbs.WCStatus, bool) {
	rq := p.recvQueue()
	// The lock covers taking the receive; once it is ours, nobody else
	// can flush it, and the copy into it needs no lock.
	rq.mu.Lock()
	if !p.receiving() {
		rq.mu.Unlock()
		return verbs.WCRetryExcErr, false
	}
	var e recvEntry
	ok := rq.take(&e)
	rq.mu.Unlock()
	if !ok {
		return 0, true
	}
	var dst [maxSGE][]byte
	n := 0
	var room uint64
	st := verbs.WCSuccess
	for i := range int(e.n) {
		g := &e.sge[i]
		if g.Len == 0 {
			continue
		}
		b, re := p.dev.region(g.LKey, rq.pd, g.Addr, uint64(g.Len), verbs.AccessLocalWrite)
		if re != regionOK {
			st = localStatus(re)
			break
		}
		dst[n] = b
		n++
		room += uint64(g.Len)
	}
	if st == verbs.WCSuccess && room < total {
		st = verbs.WCLocLenErr
	}
	wc := verbs.WC{ID: e.id, Status: st, Op: verbs.WCRecv, QPN: p.qpn}
	if st != verbs.WCSuccess {
		q.flushPend()
		p.recvCQ.push(cqe{wc: wc})
		p.toErr()
		if st == verbs.WCLocLenErr {
			return verbs.WCRemInvReqErr, false
		}
		return verbs.WCRemOpErr, false
	}
	scatter(dst[:n], src)
	wc.Len = uint32(total)
	switch s.op {
	case verbs.OpSendWithImm:
		wc.Flags, wc.Imm = verbs.WCWithImm, s.imm
	case verbs.OpSendWithInv:
		wc.Flags, wc.InvRKey = verbs.WCWithInv, s.invRKey
	}
	q.stage(p.recvCQ, cqe{wc: wc})
	return verbs.WCSuccess, false
}

// deliverImm finishes an RDMA WRITE with immediate: it consumes a receive
// (whose SGEs are not used) and writes the data.
func (q *qp) deliverImm(p *qp, s *sqSlot, dst []byte, src [][]byte, total uint64) (verbs.WCStatus, bool) {
	rq := p.recvQueue()
	rq.mu.Lock()
	if !p.receiving() {
		rq.mu.Unlock()
		return verbs.WCRetryExcErr, false
	}
	var e recvEntry
	ok := rq.take(&e)
	rq.mu.Unlock()
	if !ok {
		return 0, true
	}
	scatter([][]byte{dst}, src)
	q.stage(p.recvCQ, cqe{wc: verbs.WC{ID: e.id, Op: verbs.WCRecvRDMAWithImm, Flags: verbs.WCWithImm, Len: uint32(total), Imm: s.imm, QPN: p.qpn}})
	return verbs.WCSuccess, false
}

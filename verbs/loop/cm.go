package loop

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/usrpt/usrpt/verbs"
)

// cmMinRNRTimer is the RNR timer the CM gives a QP (Polls of the sender's
// send CQ between retries; see the package comment).
const cmMinRNRTimer = 1

type listener struct {
	dev    *device
	addr   string
	reqs   chan *request
	closed chan struct{}
	once   sync.Once
}

func (d *device) Listen(addr string) (verbs.Listener, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, verbs.ErrClosed
	}
	f := d.fab
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.listeners[addr]; ok {
		return nil, fmt.Errorf("loop: listen %q: %w", addr, ErrAddrInUse)
	}
	l := &listener{dev: d, addr: addr, reqs: make(chan *request, 128), closed: make(chan struct{})}
	f.listeners[addr] = l
	if d.listeners == nil {
		d.listeners = map[*listener]struct{}{}
	}
	d.listeners[l] = struct{}{}
	return l, nil
}

func (l *listener) Addr() string { return l.addr }

func (l *listener) Accept(ctx context.Context) (*verbs.ConnRequest, error) {
	select {
	case r := <-l.reqs:
		return r.connRequest(), nil
	case <-l.closed:
		return nil, verbs.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *listener) Close() error {
	f := l.dev.fab
	f.mu.Lock()
	if f.listeners[l.addr] == l {
		delete(f.listeners, l.addr)
	}
	first := false
	l.once.Do(func() { first = true; close(l.closed) })
	// No Connect sends to the channel any more (it does so under f.mu):
	// refuse those still waiting.
	for {
		select {
		case r := <-l.reqs:
			r.answer(reply{err: verbs.ErrUnreachable})
			continue
		default:
		}
		break
	}
	f.mu.Unlock()
	if first {
		l.dev.mu.Lock()
		delete(l.dev.listeners, l)
		l.dev.mu.Unlock()
	}
	return nil
}

// request is a connection request between Connect and Accept or Reject.
type request struct {
	l     *listener
	from  *device
	qp    *qp
	param verbs.ConnParam

	mu    sync.Mutex
	state int // reqWaiting, reqAnswered, reqCancelled
	reply chan reply
	rtu   chan error
}

const (
	reqWaiting = iota
	reqAnswered
	reqCancelled
)

type reply struct {
	err     error
	reject  bool
	priv    []byte
	qpn     uint32
	peer    verbs.Peer
	rdAtom  int // the connector's MaxRdAtomic
	dstAtom int // the connector's MaxDestRdAtomic
	link    *link
}

func peerOf(d *device) verbs.Peer { return verbs.Peer{GID: d.attr.GID, GUID: d.attr.NodeGUID} }

func (r *request) connRequest() *verbs.ConnRequest {
	return &verbs.ConnRequest{
		Peer:        peerOf(r.from),
		PrivateData: r.param.PrivateData,
		Param:       r.param,
		Device:      r.l.dev,
		Answer:      r,
	}
}

// take claims the request for an answer.
func (r *request) take() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != reqWaiting {
		return fmt.Errorf("loop: connection request no longer pending: %w", verbs.ErrClosed)
	}
	r.state = reqAnswered
	return nil
}

func (r *request) answer(rep reply) {
	r.mu.Lock()
	r.state = reqAnswered
	r.mu.Unlock()
	r.reply <- rep
}

func (r *request) Reject(priv []byte) error {
	if len(priv) > maxPrivRej {
		return fmt.Errorf("loop: %d bytes of reject private data (at most %d): %w", len(priv), maxPrivRej, verbs.ErrInvalid)
	}
	if err := r.take(); err != nil {
		return err
	}
	r.reply <- reply{reject: true, priv: slices.Clone(priv)}
	return nil
}

func (r *request) Accept(qpi verbs.QP, param verbs.ConnParam) (verbs.Conn, error) {
	q, ok := qpi.(*qp)
	if !ok || q.dev != r.l.dev {
		return nil, fmt.Errorf("loop: Accept needs a QP of the listening device: %w", verbs.ErrInvalid)
	}
	if len(param.PrivateData) > maxPrivRep {
		return nil, fmt.Errorf("loop: %d bytes of accept private data (at most %d): %w", len(param.PrivateData), maxPrivRep, verbs.ErrInvalid)
	}
	if st := q.State(); st != verbs.QPReset && st != verbs.QPInit {
		return nil, fmt.Errorf("loop: Accept with a QP in %v: %w", st, verbs.ErrState)
	}
	if err := r.take(); err != nil {
		return nil, err
	}
	// Negotiation as rdma_cm: each side's reads outstanding at the other
	// are bounded by what the other accepts.
	accRR := min(int(param.ResponderResources), int(r.param.InitiatorDepth), maxRdAtomic)
	accID := min(int(param.InitiatorDepth), int(r.param.ResponderResources), maxRdAtomic)
	err := q.bringUp(r.qp.qpn, accRR, -1, param)
	if err != nil {
		r.reply <- reply{err: fmt.Errorf("loop: the acceptor failed: %w", err)}
		return nil, err
	}
	l := &link{done: make(chan struct{}), a: r.qp, b: q}
	q.link.Store(l)
	r.reply <- reply{priv: slices.Clone(param.PrivateData), qpn: q.qpn, peer: peerOf(q.dev), rdAtom: accRR, dstAtom: accID, link: l}
	if err := <-r.rtu; err != nil {
		q.toErr()
		return nil, err
	}
	if err := q.bringUp(0, 0, accID, param); err != nil {
		l.close()
		return nil, err
	}
	agreed := verbs.ConnParam{ResponderResources: uint8(accRR), InitiatorDepth: uint8(accID), RetryCount: param.RetryCount, RNRRetryCount: param.RNRRetryCount}
	return &conn{q: q, peer: peerOf(r.from), priv: r.param.PrivateData, param: agreed, l: l}, nil
}

// bringUp moves q to INIT and RTR towards dest, with respRes reads the peer
// may have outstanding at it, when initAtomic < 0; otherwise to RTS with
// initAtomic reads outstanding at the peer. As rdma_cm, remote read is
// granted only with responder resources.
func (q *qp) bringUp(dest uint32, respRes, initAtomic int, param verbs.ConnParam) error {
	if initAtomic >= 0 {
		return q.Modify(verbs.QPAttr{State: verbs.QPRTS, RetryCnt: min(param.RetryCount, 7), RNRRetry: min(param.RNRRetryCount, 7), MaxRdAtomic: initAtomic, Timeout: 14})
	}
	acc := verbs.AccessLocalWrite | verbs.AccessRemoteWrite
	if respRes > 0 {
		acc |= verbs.AccessRemoteRead
	}
	if err := q.Modify(verbs.QPAttr{State: verbs.QPInit, Access: acc}); err != nil {
		return err
	}
	return q.Modify(verbs.QPAttr{State: verbs.QPRTR, DestQPN: dest, PathMTU: 4096, MaxDestRdAtomic: respRes, MinRNRTimer: cmMinRNRTimer})
}

func (d *device) Connect(ctx context.Context, addr string, qpi verbs.QP, cfg verbs.ConnParam) (verbs.Conn, error) {
	q, ok := qpi.(*qp)
	if !ok || q.dev != d {
		return nil, fmt.Errorf("loop: Connect needs a QP of the device: %w", verbs.ErrInvalid)
	}
	if len(cfg.PrivateData) > maxPrivReq {
		return nil, fmt.Errorf("loop: %d bytes of request private data (at most %d): %w", len(cfg.PrivateData), maxPrivReq, verbs.ErrInvalid)
	}
	if st := q.State(); st != verbs.QPReset && st != verbs.QPInit {
		return nil, fmt.Errorf("loop: Connect with a QP in %v: %w", st, verbs.ErrState)
	}
	cfg.PrivateData = slices.Clone(cfg.PrivateData)
	f := d.fab
	f.mu.Lock()
	l := f.listeners[addr]
	if l == nil {
		f.mu.Unlock()
		return nil, fmt.Errorf("loop: connect %q: %w", addr, verbs.ErrUnreachable)
	}
	r := &request{l: l, from: d, qp: q, param: cfg, reply: make(chan reply, 1), rtu: make(chan error, 1)}
	select {
	case l.reqs <- r:
	default:
		f.mu.Unlock()
		return nil, fmt.Errorf("loop: connect %q: backlog full: %w", addr, verbs.ErrUnreachable)
	}
	f.mu.Unlock()
	var rep reply
	select {
	case rep = <-r.reply:
	case <-ctx.Done():
		r.mu.Lock()
		if r.state == reqWaiting {
			r.state = reqCancelled
			r.mu.Unlock()
			return nil, ctx.Err()
		}
		r.mu.Unlock()
		rep = <-r.reply
	}
	switch {
	case rep.err != nil:
		return nil, rep.err
	case rep.reject:
		return nil, &verbs.RejectError{Reason: verbs.RejectConsumer, PrivateData: rep.priv}
	}
	err := q.bringUp(rep.qpn, rep.dstAtom, -1, cfg)
	if err == nil {
		err = q.bringUp(0, 0, rep.rdAtom, cfg)
	}
	if err != nil {
		q.toErr()
		r.rtu <- fmt.Errorf("loop: the connector failed: %w", err)
		return nil, err
	}
	q.link.Store(rep.link)
	r.rtu <- nil
	agreed := verbs.ConnParam{ResponderResources: uint8(rep.dstAtom), InitiatorDepth: uint8(rep.rdAtom), RetryCount: cfg.RetryCount, RNRRetryCount: cfg.RNRRetryCount}
	return &conn{q: q, peer: rep.peer, priv: rep.priv, param: agreed, l: rep.link}, nil
}

// link is one connection, shared by both sides' Conns.
type link struct {
	done chan struct{}
	once sync.Once
	a, b *qp
}

func (l *link) close() {
	l.once.Do(func() {
		l.a.toErr()
		l.b.toErr()
		close(l.done)
	})
}

type conn struct {
	q     *qp
	peer  verbs.Peer
	priv  []byte
	param verbs.ConnParam // negotiated, without private data
	l     *link
}

func (c *conn) QP() verbs.QP           { return c.q }
func (c *conn) Peer() verbs.Peer       { return c.peer }
func (c *conn) PrivateData() []byte    { return c.priv }
func (c *conn) Param() verbs.ConnParam { return c.param }
func (c *conn) Done() <-chan struct{}  { return c.l.done }
func (c *conn) Disconnect() error      { c.l.close(); return nil }

package loop

import (
	"errors"
	"testing"

	"github.com/usrpt/usrpt/verbs"
)

func TestRNRRetryThenSuccess(t *testing.T) {
	a, b := connectPair(t, defaultOpts())
	a.postSend(t,
		verbs.SendWR{ID: 1, Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: []verbs.SGE{a.sge(0, 8)}},
		// RC ordering: the write waits behind the stalled send.
		verbs.SendWR{ID: 2, Op: verbs.OpRDMAWrite, Flags: verbs.SendSignaled, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()},
	)
	wcs := make([]verbs.WC, 4)
	for range 50 {
		if n := a.scq.Poll(wcs); n != 0 {
			t.Fatalf("completion before a receive: %+v", wcs[:n])
		}
	}
	b.postRecv(t, 3, b.sge(0, 64))
	sc := poll(t, a.scq, 2)
	if sc[0].ID != 1 || sc[0].Status != verbs.WCSuccess || sc[1].ID != 2 || sc[1].Status != verbs.WCSuccess {
		t.Fatalf("%+v", sc)
	}
	poll(t, b.rcq, 1)
}

func TestRNRRetryExceeded(t *testing.T) {
	for _, retries := range []uint8{0, 1, 3} {
		o := defaultOpts()
		o.param.RNRRetryCount = retries
		a, b := connectPair(t, o)
		a.postSend(t, verbs.SendWR{ID: 1, Op: verbs.OpSend, SGL: []verbs.SGE{a.sge(0, 8)}}, verbs.SendWR{ID: 2, Op: verbs.OpSend})
		// cmMinRNRTimer Polls per retry.
		wcs := make([]verbs.WC, 4)
		polls := 0
		var got []verbs.WC
		for len(got) < 2 && polls < 1000 {
			n := a.scq.Poll(wcs)
			got = append(got, wcs[:n]...)
			polls++
		}
		if len(got) != 2 || got[0].ID != 1 || got[0].Status != verbs.WCRNRRetryExcErr || got[1].Status != verbs.WCWRFlushErr {
			t.Fatalf("retries %d: %+v", retries, got)
		}
		if polls < int(retries)*cmMinRNRTimer {
			t.Fatalf("retries %d exceeded after %d polls", retries, polls)
		}
		if a.qp.State() != verbs.QPErr || b.qp.State() != verbs.QPRTS {
			t.Fatalf("states %v %v", a.qp.State(), b.qp.State())
		}
	}
}

func TestRNRInfinite(t *testing.T) {
	a, b := connectPair(t, defaultOpts()) // RNRRetryCount 7
	a.postSend(t, verbs.SendWR{ID: 1, Op: verbs.OpRDMAWriteWithImm, Flags: verbs.SendSignaled})
	none(t, a.scq)
	none(t, a.scq)
	b.postRecv(t, 1)
	poll(t, a.scq, 1)
}

func TestSendQueueFull(t *testing.T) {
	o := defaultOpts()
	o.qp.MaxSendWR = 4
	a, b := connectPair(t, o)
	w := verbs.SendWR{Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()}
	wrs := []verbs.SendWR{w, w, w, w, w}
	n, err := a.qp.PostSend(wrs)
	if n != 4 || !errors.Is(err, verbs.ErrQueueFull) {
		t.Fatalf("posted %d: %v", n, err)
	}
	// Unsignaled WRs keep their slots until a later signaled one is polled.
	none(t, a.scq)
	if _, err := a.qp.PostSend(wrs[:1]); !errors.Is(err, verbs.ErrQueueFull) {
		t.Fatal(err)
	}
	// Make room by resetting is not needed: a signaled WR cannot be
	// posted either, so use a fresh pair with one slot spare.
	o.qp.MaxSendWR = 5
	a, b = connectPair(t, o)
	w.RemoteAddr, w.RKey, w.SGL = b.mr.Addr(), b.mr.RKey(), []verbs.SGE{a.sge(0, 8)}
	s := w
	s.Flags = verbs.SendSignaled
	if n, err := a.qp.PostSend([]verbs.SendWR{w, w, w, w, s}); n != 5 || err != nil {
		t.Fatal(n, err)
	}
	if _, err := a.qp.PostSend(wrs[:1]); !errors.Is(err, verbs.ErrQueueFull) {
		t.Fatal(err)
	}
	poll(t, a.scq, 1) // frees all five
	if n, err := a.qp.PostSend([]verbs.SendWR{w, w, w, w, s}); n != 5 || err != nil {
		t.Fatal(n, err)
	}
}

func TestPostErrors(t *testing.T) {
	o := defaultOpts()
	o.qp.MaxRecvWR = 2
	a, _ := connectPair(t, o)
	five := make([]verbs.SGE, 5)
	big := make([]byte, 129)
	for _, c := range []struct {
		name string
		wr   verbs.SendWR
	}{
		{"too many SGEs", verbs.SendWR{Op: verbs.OpSend, SGL: five}},
		{"inline too long", verbs.SendWR{Op: verbs.OpSend, Flags: verbs.SendInline, SGL: []verbs.SGE{{Addr: addrOf(big), Len: 129}}}},
		{"inline read", verbs.SendWR{Op: verbs.OpRDMARead, Flags: verbs.SendInline}},
		{"bad opcode", verbs.SendWR{Op: 99}},
	} {
		n, err := a.qp.PostSend([]verbs.SendWR{{Op: verbs.OpRDMAWrite}, c.wr})
		if n != 1 || !errors.Is(err, verbs.ErrInvalid) {
			t.Errorf("%s: posted %d: %v", c.name, n, err)
		}
	}
	if n, err := a.qp.PostRecv([]verbs.RecvWR{{}, {SGL: five}}); n != 1 || !errors.Is(err, verbs.ErrInvalid) {
		t.Errorf("recv SGEs: %d %v", n, err)
	}
	if n, err := a.qp.PostRecv([]verbs.RecvWR{{}, {}}); n != 1 || !errors.Is(err, verbs.ErrQueueFull) {
		t.Errorf("recv full: %d %v", n, err)
	}
}

func TestStateMachine(t *testing.T) {
	f := NewFabric()
	s := newSide(t, f, "x", defaultOpts())
	peer := newSide(t, f, "y", defaultOpts())
	q := s.qp
	steps := []struct {
		attr verbs.QPAttr
		ok   bool
	}{
		{verbs.QPAttr{State: verbs.QPRTR, DestQPN: peer.qp.QPN()}, false},
		{verbs.QPAttr{State: verbs.QPRTS}, false},
		{verbs.QPAttr{State: verbs.QPInit, Access: verbs.AccessRemoteWrite}, true},
		{verbs.QPAttr{State: verbs.QPInit}, true},
		{verbs.QPAttr{State: verbs.QPRTS}, false},
		{verbs.QPAttr{State: verbs.QPRTR, DestQPN: 0xfffff}, false}, // no such QP
		{verbs.QPAttr{State: verbs.QPRTR, DestQPN: peer.qp.QPN(), PathMTU: 1000}, false},
		{verbs.QPAttr{State: verbs.QPRTR, DestQPN: peer.qp.QPN(), PathMTU: 1024}, true},
		{verbs.QPAttr{State: verbs.QPInit}, false},
		{verbs.QPAttr{State: verbs.QPRTS, RNRRetry: 8}, false},
		{verbs.QPAttr{State: verbs.QPRTS, RNRRetry: 7}, true},
		{verbs.QPAttr{State: verbs.QPRTS, RetryCnt: 3}, true},
		{verbs.QPAttr{State: verbs.QPSQD}, false},
		{verbs.QPAttr{State: verbs.QPErr}, true},
		{verbs.QPAttr{State: verbs.QPRTS}, false},
		{verbs.QPAttr{State: verbs.QPInit}, false},
		{verbs.QPAttr{State: verbs.QPReset}, true},
		{verbs.QPAttr{State: verbs.QPInit}, true},
	}
	for i, st := range steps {
		before := q.State()
		err := q.Modify(st.attr)
		if (err == nil) != st.ok {
			t.Fatalf("step %d: %v → %v: %v", i, before, st.attr.State, err)
		}
		if err == nil && q.State() != st.attr.State {
			t.Fatalf("step %d: in %v", i, q.State())
		}
		if err != nil && q.State() != before {
			t.Fatalf("step %d: failed but moved to %v", i, q.State())
		}
	}
	// Posting by state.
	if _, err := q.PostSend([]verbs.SendWR{{}}); !errors.Is(err, verbs.ErrState) {
		t.Fatal("PostSend in INIT:", err)
	}
	if _, err := q.PostRecv([]verbs.RecvWR{{}}); err != nil {
		t.Fatal("PostRecv in INIT:", err)
	}
	q.Modify(verbs.QPAttr{State: verbs.QPReset})
	if _, err := q.PostRecv([]verbs.RecvWR{{}}); !errors.Is(err, verbs.ErrState) {
		t.Fatal("PostRecv in RESET:", err)
	}
}

// TestManualConnect connects two QPs with Modify alone and checks the
// flushes of Modify(ERR), including receives posted in ERR.
func TestManualConnectAndFlush(t *testing.T) {
	f := NewFabric()
	a := newSide(t, f, "a", defaultOpts())
	b := newSide(t, f, "b", defaultOpts())
	for _, p := range [][2]*side{{a, b}, {b, a}} {
		q := p[0].qp
		for _, attr := range []verbs.QPAttr{
			{State: verbs.QPInit, Access: verbs.AccessRemoteWrite | verbs.AccessRemoteRead},
			{State: verbs.QPRTR, DestQPN: p[1].qp.QPN(), MinRNRTimer: 2},
		} {
			if err := q.Modify(attr); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range []*side{a, b} {
		if err := s.qp.Modify(verbs.QPAttr{State: verbs.QPRTS, RNRRetry: 7}); err != nil {
			t.Fatal(err)
		}
	}
	b.postRecv(t, 1, b.sge(0, 64))
	a.postSend(t, verbs.SendWR{ID: 1, Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: []verbs.SGE{a.sge(0, 8)}})
	poll(t, a.scq, 1)
	poll(t, b.rcq, 1)

	// a: a stalled send and a write behind it; receives; then ERR.
	a.postRecv(t, 10)
	a.postRecv(t, 11)
	a.postSend(t, verbs.SendWR{ID: 2, Op: verbs.OpSend}, verbs.SendWR{ID: 3, Op: verbs.OpRDMAWrite})
	if err := a.qp.Modify(verbs.QPAttr{State: verbs.QPErr}); err != nil {
		t.Fatal(err)
	}
	a.postRecv(t, 12) // flushed at once, after 10 and 11
	sc := poll(t, a.scq, 2)
	if sc[0].ID != 2 || sc[1].ID != 3 || sc[0].Status != verbs.WCWRFlushErr || sc[1].Status != verbs.WCWRFlushErr {
		t.Fatalf("%+v", sc)
	}
	rc := poll(t, a.rcq, 3)
	for i, wc := range rc {
		if wc.ID != uint64(10+i) || wc.Status != verbs.WCWRFlushErr || wc.QPN != a.qp.QPN() {
			t.Fatalf("%+v", rc)
		}
	}
	if _, err := a.qp.PostSend([]verbs.SendWR{{}}); !errors.Is(err, verbs.ErrState) {
		t.Fatal(err)
	}
	// b's sends to a QP in ERR fail as a lost peer would.
	b.postSend(t, verbs.SendWR{ID: 4, Op: verbs.OpRDMAWrite})
	if wc := poll(t, b.scq, 1)[0]; wc.Status != verbs.WCRetryExcErr {
		t.Fatalf("%+v", wc)
	}
}

func TestSRQ(t *testing.T) {
	f := NewFabric()
	o := defaultOpts()
	b := newSide(t, f, "b", o)
	srq, err := b.pd.CreateSRQ(8, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Two QPs of b on the SRQ, each connected by hand to a QP of its own.
	var senders []*side
	var rqps []verbs.QP
	for i := range 2 {
		a := newSide(t, f, "a", o)
		cfg := o.qp
		cfg.SendCQ, cfg.RecvCQ, cfg.SRQ = b.scq, b.rcq, srq
		rq, err := b.pd.CreateQP(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rq.PostRecv([]verbs.RecvWR{{}}); !errors.Is(err, verbs.ErrInvalid) {
			t.Fatal("PostRecv on an SRQ QP:", err)
		}
		linkQPs(t, a.qp, rq)
		senders = append(senders, a)
		rqps = append(rqps, rq)
		_ = i
	}
	if _, err := srq.PostRecv([]verbs.RecvWR{{ID: 1, SGL: []verbs.SGE{b.sge(0, 8)}}, {ID: 2, SGL: []verbs.SGE{b.sge(8, 8)}}}); err != nil {
		t.Fatal(err)
	}
	senders[1].postSend(t, verbs.SendWR{Op: verbs.OpSend, SGL: []verbs.SGE{senders[1].sge(0, 8)}})
	senders[0].postSend(t, verbs.SendWR{Op: verbs.OpSend, SGL: []verbs.SGE{senders[0].sge(0, 8)}})
	rc := poll(t, b.rcq, 2)
	if rc[0].ID != 1 || rc[0].QPN != rqps[1].QPN() || rc[1].ID != 2 || rc[1].QPN != rqps[0].QPN() {
		t.Fatalf("%+v", rc)
	}
}

// linkQPs connects a and b by hand (INIT, RTR, RTS on both).
func linkQPs(t testing.TB, a, b verbs.QP) {
	t.Helper()
	for _, p := range [][2]verbs.QP{{a, b}, {b, a}} {
		for _, attr := range []verbs.QPAttr{
			{State: verbs.QPInit, Access: verbs.AccessRemoteWrite | verbs.AccessRemoteRead},
			{State: verbs.QPRTR, DestQPN: p[1].QPN(), MinRNRTimer: 1},
		} {
			if err := p[0].Modify(attr); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, q := range []verbs.QP{a, b} {
		if err := q.Modify(verbs.QPAttr{State: verbs.QPRTS, RNRRetry: 7}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCQOverflow(t *testing.T) {
	o := defaultOpts()
	o.cqSize = 4 // rounds to 4
	a, b := connectPair(t, o)
	w := verbs.SendWR{Op: verbs.OpRDMAWrite, Flags: verbs.SendSignaled, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()}
	for i := range 5 {
		w.ID = uint64(i)
		a.postSend(t, w)
	}
	if a.qp.State() != verbs.QPErr {
		t.Fatalf("QP in %v after overflow", a.qp.State())
	}
	wcs := poll(t, a.scq, 5)
	for i := range 4 {
		if wcs[i].ID != uint64(i) || wcs[i].Status != verbs.WCSuccess {
			t.Fatalf("%+v", wcs)
		}
	}
	if wcs[4] != (verbs.WC{Status: verbs.WCFatalErr}) {
		t.Fatalf("%+v", wcs[4])
	}
	none(t, a.scq)
}

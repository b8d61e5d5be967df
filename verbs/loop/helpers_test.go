package loop

import (
	"context"
	"testing"
	"time"

	"github.com/usrpt/usrpt/verbs"
)

// side is one end of a test connection.
type side struct {
	dev  verbs.Device
	pd   verbs.PD
	scq  verbs.CQ
	rcq  verbs.CQ
	qp   verbs.QP
	mr   verbs.MR
	conn verbs.Conn
}

type pairOpts struct {
	qp       verbs.QPConfig // CQs filled in
	cqSize   int
	access   verbs.Access
	param    verbs.ConnParam
	accParam verbs.ConnParam
	bufSize  int
}

func defaultOpts() pairOpts {
	return pairOpts{
		qp:       verbs.QPConfig{MaxSendWR: 64, MaxRecvWR: 64, MaxSendSGE: 4, MaxRecvSGE: 4, MaxInline: 128},
		cqSize:   256,
		access:   verbs.AccessLocalWrite | verbs.AccessRemoteWrite | verbs.AccessRemoteRead,
		param:    verbs.ConnParam{ResponderResources: 4, InitiatorDepth: 4, RetryCount: 7, RNRRetryCount: 7},
		accParam: verbs.ConnParam{ResponderResources: 4, InitiatorDepth: 4, RetryCount: 7, RNRRetryCount: 7},
		bufSize:  1 << 16,
	}
}

func newSide(t testing.TB, f *Fabric, name string, o pairOpts) *side {
	t.Helper()
	d, err := f.NewDevice(name)
	if err != nil {
		t.Fatal(err)
	}
	s := &side{dev: d}
	if s.pd, err = d.AllocPD(); err != nil {
		t.Fatal(err)
	}
	if s.scq, err = d.CreateCQ(o.cqSize); err != nil {
		t.Fatal(err)
	}
	if s.rcq, err = d.CreateCQ(o.cqSize); err != nil {
		t.Fatal(err)
	}
	cfg := o.qp
	cfg.SendCQ, cfg.RecvCQ = s.scq, s.rcq
	if s.qp, err = s.pd.CreateQP(cfg); err != nil {
		t.Fatal(err)
	}
	if s.mr, err = s.pd.RegMR(make([]byte, o.bufSize), o.access); err != nil {
		t.Fatal(err)
	}
	return s
}

// connect builds a connected pair a (connector) and b (acceptor).
func connectPair(t testing.TB, o pairOpts) (a, b *side) {
	t.Helper()
	f := NewFabric()
	a = newSide(t, f, "a", o)
	b = newSide(t, f, "b", o)
	l, err := b.dev.Listen("b:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		req, err := l.Accept(ctx)
		if err != nil {
			errc <- err
			return
		}
		b.conn, err = req.Accept(b.qp, o.accParam)
		errc <- err
	}()
	a.conn, err = a.dev.Connect(ctx, "b:1", a.qp, o.param)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return a, b
}

func (s *side) sge(off, n int) verbs.SGE {
	return verbs.SGE{Addr: s.mr.Addr() + uint64(off), Len: uint32(n), LKey: s.mr.LKey()}
}

func (s *side) postRecv(t testing.TB, id uint64, sges ...verbs.SGE) {
	t.Helper()
	if _, err := s.qp.PostRecv([]verbs.RecvWR{{ID: id, SGL: sges}}); err != nil {
		t.Fatal(err)
	}
}

func (s *side) postSend(t testing.TB, wrs ...verbs.SendWR) {
	t.Helper()
	if n, err := s.qp.PostSend(wrs); err != nil {
		t.Fatalf("PostSend: %d posted: %v", n, err)
	}
}

// poll polls cq up to tries times until it has want completions.
func poll(t testing.TB, cq verbs.CQ, want int) []verbs.WC {
	t.Helper()
	var out []verbs.WC
	wcs := make([]verbs.WC, 16)
	for range 10000 {
		n := cq.Poll(wcs)
		out = append(out, wcs[:n]...)
		if len(out) >= want {
			break
		}
	}
	if len(out) != want {
		t.Fatalf("polled %d completions, want %d: %+v", len(out), want, out)
	}
	return out
}

// none checks that cq has nothing after a few polls.
func none(t testing.TB, cq verbs.CQ) {
	t.Helper()
	wcs := make([]verbs.WC, 16)
	for range 100 {
		if n := cq.Poll(wcs); n != 0 {
			t.Fatalf("unexpected completions: %+v", wcs[:n])
		}
	}
}

package loop

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usrpt/usrpt/verbs"
)

func TestConnectNegotiation(t *testing.T) {
	o := defaultOpts()
	o.param = verbs.ConnParam{PrivateData: []byte("login"), ResponderResources: 2, InitiatorDepth: 8, RNRRetryCount: 7}
	o.accParam = verbs.ConnParam{PrivateData: []byte("accepted"), ResponderResources: 3, InitiatorDepth: 0, RNRRetryCount: 7}
	a, b := connectPair(t, o)
	if string(a.conn.PrivateData()) != "accepted" || string(b.conn.PrivateData()) != "login" {
		t.Fatalf("private data %q %q", a.conn.PrivateData(), b.conn.PrivateData())
	}
	if a.conn.Peer().GUID != b.dev.Attr().NodeGUID || b.conn.Peer().GID != a.dev.Attr().GID || a.dev.Attr().GID == b.dev.Attr().GID {
		t.Fatal("peers")
	}
	if a.qp.State() != verbs.QPRTS || b.qp.State() != verbs.QPRTS || a.conn.QP() != a.qp {
		t.Fatal("states")
	}
	aq, bq := a.qp.(*qp), b.qp.(*qp)
	// a may read 3 at b (b's responder resources, bounded by a's depth 8);
	// b may read 0 at a, so a grants no remote read.
	if aq.maxRdAtomic != 3 || bq.maxRdAtomic != 0 {
		t.Fatalf("rd atomic %d %d", aq.maxRdAtomic, bq.maxRdAtomic)
	}
	if verbs.Access(aq.access.Load())&verbs.AccessRemoteRead != 0 || verbs.Access(bq.access.Load())&verbs.AccessRemoteRead == 0 {
		t.Fatal("remote read access")
	}
	b.postSend(t, verbs.SendWR{ID: 1, Op: verbs.OpRDMARead, SGL: []verbs.SGE{b.sge(0, 8)}, RemoteAddr: a.mr.Addr(), RKey: a.mr.RKey()})
	if wc := poll(t, b.scq, 1)[0]; wc.Status != verbs.WCRemAccessErr {
		t.Fatalf("%+v", wc)
	}
}

func TestDisconnect(t *testing.T) {
	for _, who := range []string{"connector", "acceptor", "drop", "close qp"} {
		t.Run(who, func(t *testing.T) {
			a, b := connectPair(t, defaultOpts())
			a.postRecv(t, 1)
			b.postRecv(t, 2)
			b.postRecv(t, 3)
			switch who {
			case "connector":
				a.conn.Disconnect()
			case "acceptor":
				b.conn.Disconnect()
			case "drop":
				if err := Drop(b.conn); err != nil {
					t.Fatal(err)
				}
			case "close qp":
				a.qp.Close()
			}
			for _, c := range []verbs.Conn{a.conn, b.conn} {
				select {
				case <-c.Done():
				case <-time.After(5 * time.Second):
					t.Fatal("Done not closed")
				}
			}
			if who != "close qp" {
				if wc := poll(t, a.rcq, 1)[0]; wc.ID != 1 || wc.Status != verbs.WCWRFlushErr {
					t.Fatalf("%+v", wc)
				}
			}
			rc := poll(t, b.rcq, 2)
			if rc[0].ID != 2 || rc[1].ID != 3 || rc[1].Status != verbs.WCWRFlushErr {
				t.Fatalf("%+v", rc)
			}
			if b.conn.Disconnect() != nil {
				t.Fatal("second disconnect")
			}
		})
	}
}

func TestCMErrors(t *testing.T) {
	f := NewFabric()
	o := defaultOpts()
	a := newSide(t, f, "a", o)
	b := newSide(t, f, "b", o)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.dev.Connect(ctx, "nowhere", a.qp, verbs.ConnParam{}); !errors.Is(err, verbs.ErrUnreachable) {
		t.Fatal(err)
	}
	l, err := b.dev.Listen("svc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.dev.Listen("svc"); !errors.Is(err, ErrAddrInUse) {
		t.Fatal(err)
	}
	if l.Addr() != "svc" {
		t.Fatal(l.Addr())
	}
	if _, err := a.dev.Connect(ctx, "svc", a.qp, verbs.ConnParam{PrivateData: make([]byte, 197)}); !errors.Is(err, verbs.ErrInvalid) {
		t.Fatal(err)
	}
	// Reject with private data.
	go func() {
		req, err := l.Accept(ctx)
		if err != nil {
			return
		}
		if req.Peer.GUID != a.dev.Attr().NodeGUID || string(req.PrivateData) != "hi" || req.Device != b.dev {
			req.Reject(nil)
			return
		}
		if req.Reject(make([]byte, 149)) == nil {
			panic("149 bytes of reject data taken")
		}
		req.Reject([]byte("no thanks"))
	}()
	_, err = a.dev.Connect(ctx, "svc", a.qp, verbs.ConnParam{PrivateData: []byte("hi")})
	var rej *verbs.RejectError
	if !errors.As(err, &rej) || rej.Reason != verbs.RejectConsumer || !bytes.Equal(rej.PrivateData, []byte("no thanks")) {
		t.Fatalf("%v", err)
	}
	if a.qp.State() != verbs.QPReset {
		t.Fatal(a.qp.State())
	}
	// A cancelled Connect leaves a request that can no longer be answered.
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { _, err := a.dev.Connect(cctx, "svc", a.qp, verbs.ConnParam{}); done <- err }()
	req, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ccancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if _, err := req.Accept(b.qp, verbs.ConnParam{}); err == nil {
		t.Fatal("accepted a cancelled request")
	}
	// Closing the listener frees the address and ends Accept.
	l.Close()
	if _, err := l.Accept(ctx); !errors.Is(err, verbs.ErrClosed) {
		t.Fatal(err)
	}
	if _, err := a.dev.Connect(ctx, "svc", a.qp, verbs.ConnParam{}); !errors.Is(err, verbs.ErrUnreachable) {
		t.Fatal(err)
	}
	l2, err := a.dev.Listen("svc")
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
}

func TestFailNext(t *testing.T) {
	a, b := connectPair(t, defaultOpts())
	if err := FailNext(a.qp, 1, verbs.WCRemOpErr); err != nil {
		t.Fatal(err)
	}
	b.postRecv(t, 1)
	a.postSend(t, verbs.SendWR{ID: 1, Op: verbs.OpSend}, verbs.SendWR{ID: 2, Op: verbs.OpSend})
	sc := poll(t, a.scq, 2)
	if sc[0].Status != verbs.WCRemOpErr || sc[1].Status != verbs.WCWRFlushErr {
		t.Fatalf("%+v", sc)
	}
	if b.qp.State() != verbs.QPErr {
		t.Fatal("peer not in ERR after a remote error")
	}
	if wc := poll(t, b.rcq, 1)[0]; wc.ID != 1 || wc.Status != verbs.WCWRFlushErr {
		t.Fatalf("%+v", wc)
	}
	if FailNext(a.qp, 1, verbs.WCSuccess) == nil {
		t.Fatal("FailNext with success")
	}
}

func TestDelayCompletions(t *testing.T) {
	a, b := connectPair(t, defaultOpts())
	if err := DelayCompletions(a.scq, 3); err != nil {
		t.Fatal(err)
	}
	w := verbs.SendWR{Op: verbs.OpRDMAWrite, Flags: verbs.SendSignaled, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()}
	w.ID = 1
	a.postSend(t, w)
	wcs := make([]verbs.WC, 4)
	if n := a.scq.Poll(wcs); n != 0 { // poll 1 sees it, due at poll 4
		t.Fatal(n)
	}
	w.ID = 2
	a.postSend(t, w)
	if n := a.scq.Poll(wcs); n != 0 {
		t.Fatal(n)
	}
	if n := a.scq.Poll(wcs); n != 0 {
		t.Fatal(n)
	}
	if n := a.scq.Poll(wcs); n != 1 || wcs[0].ID != 1 {
		t.Fatal(n, wcs[0])
	}
	DelayCompletions(a.scq, 0)
	if n := a.scq.Poll(wcs); n != 1 || wcs[0].ID != 2 {
		t.Fatal(n, wcs[0])
	}
	w.ID = 3
	a.postSend(t, w)
	if n := a.scq.Poll(wcs); n != 1 || wcs[0].ID != 3 {
		t.Fatal(n)
	}
}

package verbstest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
	"unsafe"

	"github.com/usrpt/usrpt/verbs"
)

// sgeAddr is the address of b[0], as an SGE or an MR names it. Sound: the
// memory is off-heap (Mem) and the address is only compared or handed to
// the backend, which the API says reads it during PostSend only.
func sgeAddr(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

func isErr(err, target error) bool { return errors.Is(err, target) }

func waitDone(t testing.TB, name string, c verbs.Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(WaitTimeout):
		t.Errorf("%s: Done not closed %v after the disconnect", name, WaitTimeout)
	}
}

func testCM(t *testing.T, fab Fabric) {
	t.Run("ReceivesPostedInInit", func(t *testing.T) {
		// rdma_cm users post receives while the QP is in INIT, before
		// rdma_accept or rdma_connect, so that the first message of either
		// side finds one. The CM keeps them and sets the access.
		pre := func(s *Side) {
			if err := s.QP.Modify(verbs.QPAttr{State: verbs.QPInit}); err != nil {
				t.Fatalf("Modify RESET -> INIT: %v", err)
			}
			PostRecv(t, s.QP, verbs.RecvWR{ID: 7, SGL: []verbs.SGE{s.SGE(0, 64)}})
		}
		p := Connect(t, fab, func(c *PairConfig) { c.BeforeAccept, c.BeforeConnect = pre, pre })
		c, s := p.Client, p.Server
		Fill(c.Buf()[100:140], 3)
		PostSend(t, c.QP, verbs.SendWR{ID: 1, Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: []verbs.SGE{c.SGE(100, 40)}})
		expectWC(t, PollOne(t, c.SendCQ), 1, verbs.WCSuccess, verbs.WCSend, c.QP.QPN())
		wc := PollOne(t, s.RecvCQ)
		expectWC(t, wc, 7, verbs.WCSuccess, verbs.WCRecv, s.QP.QPN())
		if wc.Len != 40 || !bytes.Equal(s.Buf()[:40], c.Buf()[100:140]) {
			t.Errorf("SEND into a receive posted in INIT: Len %d or data differs", wc.Len)
		}
		// RDMA into the accepting side still needs the access the CM grants.
		PostSend(t, c.QP, verbs.SendWR{ID: 2, Op: verbs.OpRDMAWrite, Flags: verbs.SendSignaled,
			SGL: []verbs.SGE{c.SGE(100, 8)}, RemoteAddr: s.Addr(200), RKey: s.MR.RKey()})
		expectWC(t, PollOne(t, c.SendCQ), 2, verbs.WCSuccess, verbs.WCRDMAWrite, c.QP.QPN())
	})
	t.Run("PrivateDataAndPeer", func(t *testing.T) {
		req := []byte("login request from the initiator")
		rsp := []byte("login response")
		p := Connect(t, fab, func(c *PairConfig) {
			c.Client.PrivateData = req
			c.Client.InitiatorDepth, c.Client.ResponderResources = 3, 2
			c.Server.PrivateData = rsp
		})
		c, s := p.Client, p.Server
		if !bytes.Equal(p.Request.PrivateData, req) {
			t.Errorf("ConnRequest.PrivateData = %q, want %q", p.Request.PrivateData, req)
		}
		if !bytes.Equal(s.Conn.PrivateData(), req) {
			t.Errorf("accepting Conn.PrivateData() = %q, want %q", s.Conn.PrivateData(), req)
		}
		if !bytes.Equal(c.Conn.PrivateData(), rsp) {
			t.Errorf("connecting Conn.PrivateData() = %q, want %q", c.Conn.PrivateData(), rsp)
		}
		if got := p.Request.Param; got.InitiatorDepth != 3 || got.ResponderResources != 2 || !bytes.Equal(got.PrivateData, req) {
			t.Errorf("ConnRequest.Param = %+v, want the requester's InitiatorDepth 3, ResponderResources 2 and private data", got)
		}
		// Negotiation: each side's READs outstanding at the other are
		// bounded by what the other accepts.
		if got := c.Conn.Param(); got.InitiatorDepth > 3 || got.ResponderResources > 2 || got.PrivateData != nil {
			t.Errorf("connecting Conn.Param() = %+v, want InitiatorDepth <= 3, ResponderResources <= 2", got)
		}
		if cp, sp := c.Conn.Param(), s.Conn.Param(); cp.InitiatorDepth != sp.ResponderResources || cp.ResponderResources != sp.InitiatorDepth {
			t.Errorf("the two sides disagree: client %+v, server %+v", cp, sp)
		}
		if p.Request.Device == nil {
			t.Errorf("ConnRequest.Device is nil")
		}
		if got := p.Request.Peer.GID; got != c.Attr.GID {
			t.Errorf("ConnRequest.Peer.GID = %x, want the client's %x", got, c.Attr.GID)
		}
		if got := s.Conn.Peer().GID; got != c.Attr.GID {
			t.Errorf("accepting Conn.Peer().GID = %x, want the client's %x", got, c.Attr.GID)
		}
		if got := c.Conn.Peer().GID; got != s.Attr.GID {
			t.Errorf("connecting Conn.Peer().GID = %x, want the server's %x", got, s.Attr.GID)
		}
		if c.Conn.QP() != c.QP || s.Conn.QP() != s.QP {
			t.Errorf("Conn.QP() is not the QP that was connected")
		}
		select {
		case <-c.Conn.Done():
			t.Errorf("Done closed on a live connection")
		default:
		}
		// Both directions carry data.
		Fill(s.Buf()[:50], 1)
		PostRecv(t, c.QP, verbs.RecvWR{ID: 1, SGL: []verbs.SGE{c.SGE(0, 64)}})
		PostSend(t, s.QP, verbs.SendWR{ID: 2, Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: []verbs.SGE{s.SGE(0, 50)}})
		expectWC(t, PollOne(t, s.SendCQ), 2, verbs.WCSuccess, verbs.WCSend, s.QP.QPN())
		wc := PollOne(t, c.RecvCQ)
		expectWC(t, wc, 1, verbs.WCSuccess, verbs.WCRecv, c.QP.QPN())
		if wc.Len != 50 || !bytes.Equal(c.Buf()[:50], s.Buf()[:50]) {
			t.Errorf("server to client SEND: Len %d or data differs", wc.Len)
		}
	})
	t.Run("Negotiation", func(t *testing.T) {
		p := Connect(t, fab, func(c *PairConfig) {
			c.Client.InitiatorDepth, c.Client.ResponderResources = 8, 4
			c.Server.InitiatorDepth, c.Server.ResponderResources = 16, 2
		})
		c, s := p.Client, p.Server
		limit := func(v int) uint8 {
			return uint8(min(v, c.Attr.MaxQPRdAtom, c.Attr.MaxQPInitRdAtom, s.Attr.MaxQPRdAtom, s.Attr.MaxQPInitRdAtom))
		}
		// The client may have min(8, the server's 2) READs at the server;
		// the server min(16, the client's 4) at the client.
		want := verbs.ConnParam{InitiatorDepth: limit(2), ResponderResources: limit(4)}
		if got := c.Conn.Param(); got.InitiatorDepth != want.InitiatorDepth || got.ResponderResources != want.ResponderResources {
			t.Errorf("client Param() = %+v, want InitiatorDepth %d, ResponderResources %d", got, want.InitiatorDepth, want.ResponderResources)
		}
		if got := s.Conn.Param(); got.InitiatorDepth != want.ResponderResources || got.ResponderResources != want.InitiatorDepth {
			t.Errorf("server Param() = %+v, want InitiatorDepth %d, ResponderResources %d", got, want.ResponderResources, want.InitiatorDepth)
		}
	})
	t.Run("Reject", func(t *testing.T) {
		cdev, sdev := fab.NewDevice(t), fab.NewDevice(t)
		cfg := PairConfig{QP: verbs.QPConfig{MaxSendWR: 4, MaxRecvWR: 4, MaxSendSGE: 1, MaxRecvSGE: 1}, MemSize: 4096, CQEntries: 16}
		client := NewSide(t, cdev, cfg)
		addr := fab.ListenAddr(t, sdev)
		l, err := sdev.Listen(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		defer cancel()
		rej := []byte("no such target")
		errc := make(chan error, 1)
		go func() {
			req, err := l.Accept(ctx)
			if err == nil {
				err = req.Reject(rej)
			}
			errc <- err
		}()
		conn, err := cdev.Connect(ctx, addr, client.QP, verbs.ConnParam{PrivateData: []byte("hi"), RNRRetryCount: 7, RetryCount: 7})
		if serr := <-errc; serr != nil {
			t.Errorf("server: %v", serr)
		}
		var re *verbs.RejectError
		switch {
		case err == nil:
			t.Errorf("Connect to a listener that rejects succeeded")
			_ = conn.Disconnect()
		case !errors.As(err, &re):
			t.Errorf("Connect: %v (%T), want a *verbs.RejectError", err, err)
		default:
			if re.Reason != verbs.RejectConsumer || !bytes.Equal(re.PrivateData, rej) {
				t.Errorf("RejectError{Reason: %d, PrivateData: %q}, want reason %d with %q", re.Reason, re.PrivateData, verbs.RejectConsumer, rej)
			}
		}
	})
	t.Run("NoListener", func(t *testing.T) {
		cdev, sdev := fab.NewDevice(t), fab.NewDevice(t)
		cfg := PairConfig{QP: verbs.QPConfig{MaxSendWR: 4, MaxRecvWR: 4, MaxSendSGE: 1, MaxRecvSGE: 1}, MemSize: 4096, CQEntries: 16}
		client := NewSide(t, cdev, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		defer cancel()
		conn, err := cdev.Connect(ctx, fab.ListenAddr(t, sdev), client.QP, verbs.ConnParam{})
		if err == nil {
			t.Errorf("Connect to an address nobody listens on succeeded")
			_ = conn.Disconnect()
		} else if ctx.Err() != nil {
			t.Errorf("Connect to an address nobody listens on waited for its context: %v", err)
		}
	})
	t.Run("ListenerClose", func(t *testing.T) {
		cdev, sdev := fab.NewDevice(t), fab.NewDevice(t)
		cfg := PairConfig{QP: verbs.QPConfig{MaxSendWR: 4, MaxRecvWR: 4, MaxSendSGE: 1, MaxRecvSGE: 1}, MemSize: 4096, CQEntries: 16}
		client := NewSide(t, cdev, cfg)
		addr := fab.ListenAddr(t, sdev)
		l, err := sdev.Listen(addr)
		if err != nil {
			t.Fatal(err)
		}
		if l.Addr() == "" {
			t.Errorf("Listener.Addr() is empty")
		}
		if l2, err := sdev.Listen(addr); err == nil {
			t.Errorf("a second Listen on %q succeeded", addr)
			_ = l2.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		defer cancel()
		errc := make(chan error, 1)
		go func() { _, err := l.Accept(ctx); errc <- err }()
		time.Sleep(time.Millisecond)
		if err := l.Close(); err != nil {
			t.Errorf("Listener.Close: %v", err)
		}
		select {
		case err := <-errc:
			if err == nil || ctx.Err() != nil {
				t.Errorf("Accept on a closed listener: %v, want an error at once", err)
			}
		case <-time.After(WaitTimeout):
			t.Fatalf("Accept still blocked after Close")
		}
		if conn, err := cdev.Connect(ctx, addr, client.QP, verbs.ConnParam{}); err == nil {
			t.Errorf("Connect to a closed listener succeeded")
			_ = conn.Disconnect()
		}
	})
	t.Run("AcceptContext", func(t *testing.T) {
		sdev := fab.NewDevice(t)
		l, err := sdev.Listen(fab.ListenAddr(t, sdev))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := l.Accept(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Accept past its context's deadline: %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("DisconnectFlushesReceives", func(t *testing.T) {
		p := Connect(t, fab)
		c, s := p.Client, p.Server
		for i := range 2 {
			PostRecv(t, c.QP, verbs.RecvWR{ID: uint64(10 + i), SGL: []verbs.SGE{c.SGE(0, 64)}})
			PostRecv(t, s.QP, verbs.RecvWR{ID: uint64(20 + i), SGL: []verbs.SGE{s.SGE(0, 64)}})
		}
		if err := c.Conn.Disconnect(); err != nil {
			t.Errorf("Disconnect: %v", err)
		}
		waitDone(t, "client", c.Conn)
		waitDone(t, "server", s.Conn)
		for i, wc := range PollN(t, c.RecvCQ, 2) {
			expectWC(t, wc, uint64(10+i), verbs.WCWRFlushErr, 0, c.QP.QPN())
		}
		for i, wc := range PollN(t, s.RecvCQ, 2) {
			expectWC(t, wc, uint64(20+i), verbs.WCWRFlushErr, 0, s.QP.QPN())
		}
		expectState(t, c.QP, verbs.QPErr)
		expectState(t, s.QP, verbs.QPErr)
	})
	t.Run("PeerDisconnectFlushesSends", func(t *testing.T) {
		p := Connect(t, fab) // RNR retry infinite: the SEND waits
		c, s := p.Client, p.Server
		PostSend(t, c.QP,
			verbs.SendWR{ID: 1, Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: []verbs.SGE{c.SGE(0, 8)}},
			verbs.SendWR{ID: 2, Op: verbs.OpRDMAWrite, Flags: verbs.SendSignaled, SGL: []verbs.SGE{c.SGE(0, 8)}, RemoteAddr: s.Addr(0), RKey: s.MR.RKey()})
		ExpectNoWC(t, c.SendCQ, 10*time.Millisecond, "a SEND waiting for a receive")
		if err := s.Conn.Disconnect(); err != nil {
			t.Errorf("Disconnect: %v", err)
		}
		waitDone(t, "server", s.Conn)
		waitDone(t, "client", c.Conn)
		wcs := PollN(t, c.SendCQ, 2)
		expectWC(t, wcs[0], 1, verbs.WCWRFlushErr, 0, c.QP.QPN())
		expectWC(t, wcs[1], 2, verbs.WCWRFlushErr, 0, c.QP.QPN())
		expectState(t, c.QP, verbs.QPErr)
		if err := c.Conn.Disconnect(); err != nil {
			t.Logf("second Disconnect, from the other side: %v", err)
		}
	})
}

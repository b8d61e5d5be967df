package loop

import (
	"testing"

	"github.com/usrpt/usrpt/verbs"
)

func TestSendRecv(t *testing.T) {
	a, b := connectPair(t, defaultOpts())
	copy(a.mr.Buf(), "hello, world")
	b.postRecv(t, 7, b.sge(100, 5), b.sge(200, 100))
	a.postSend(t, verbs.SendWR{ID: 1, Op: verbs.OpSendWithImm, Flags: verbs.SendSignaled, Imm: 42, SGL: []verbs.SGE{a.sge(0, 6), a.sge(6, 6)}})
	wc := poll(t, a.scq, 1)[0]
	if wc.ID != 1 || wc.Status != verbs.WCSuccess || wc.Op != verbs.WCSend || wc.QPN != a.qp.QPN() {
		t.Fatalf("send wc %+v", wc)
	}
	rc := poll(t, b.rcq, 1)[0]
	if rc.ID != 7 || rc.Status != verbs.WCSuccess || rc.Op != verbs.WCRecv || rc.Len != 12 || rc.Imm != 42 || rc.Flags != verbs.WCWithImm || rc.QPN != b.qp.QPN() {
		t.Fatalf("recv wc %+v", rc)
	}
	got := append(append([]byte{}, b.mr.Buf()[100:105]...), b.mr.Buf()[200:207]...)
	if string(got) != "hello, world" {
		t.Fatalf("got %q", got)
	}
}

func TestSendVariants(t *testing.T) {
	a, b := connectPair(t, defaultOpts())
	inl := []byte("inline data")
	copy(a.mr.Buf(), "0123456789")
	b.postRecv(t, 1, b.sge(0, 64))
	b.postRecv(t, 2, b.sge(64, 64))
	b.postRecv(t, 3, b.sge(128, 64))
	b.postRecv(t, 4) // zero-length receive for an empty send
	a.postSend(t,
		verbs.SendWR{ID: 1, Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: []verbs.SGE{a.sge(0, 10)}},
		verbs.SendWR{ID: 2, Op: verbs.OpSendWithInv, Flags: verbs.SendSignaled, InvRKey: 0x1234, SGL: []verbs.SGE{a.sge(0, 4)}},
		verbs.SendWR{ID: 3, Op: verbs.OpSend, Flags: verbs.SendSignaled | verbs.SendInline, SGL: []verbs.SGE{{Addr: addrOf(inl), Len: uint32(len(inl))}}},
		verbs.SendWR{ID: 4, Op: verbs.OpSend, Flags: verbs.SendSignaled},
	)
	inl[0] = 'X' // inline data was copied at post time
	sc := poll(t, a.scq, 4)
	for i, wc := range sc {
		if wc.ID != uint64(i+1) || wc.Status != verbs.WCSuccess {
			t.Fatalf("send %d: %+v", i, wc)
		}
	}
	rc := poll(t, b.rcq, 4)
	want := []verbs.WC{
		{ID: 1, Op: verbs.WCRecv, Len: 10, QPN: b.qp.QPN()},
		{ID: 2, Op: verbs.WCRecv, Len: 4, QPN: b.qp.QPN(), Flags: verbs.WCWithInv, InvRKey: 0x1234},
		{ID: 3, Op: verbs.WCRecv, Len: uint32(len(inl)), QPN: b.qp.QPN()},
		{ID: 4, Op: verbs.WCRecv, Len: 0, QPN: b.qp.QPN()},
	}
	for i := range want {
		if rc[i] != want[i] {
			t.Fatalf("recv %d: %+v, want %+v", i, rc[i], want[i])
		}
	}
	if string(b.mr.Buf()[128:128+len(inl)]) != "inline data" {
		t.Fatalf("inline: %q", b.mr.Buf()[128:128+len(inl)])
	}
}

func TestRDMA(t *testing.T) {
	a, b := connectPair(t, defaultOpts())
	copy(a.mr.Buf(), "write me")
	copy(b.mr.Buf()[1000:], "read me")
	b.postRecv(t, 9)
	a.postSend(t,
		verbs.SendWR{ID: 1, Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: b.mr.Addr() + 500, RKey: b.mr.RKey()},
		verbs.SendWR{ID: 2, Op: verbs.OpRDMAWriteWithImm, Flags: verbs.SendSignaled, Imm: 5, SGL: []verbs.SGE{a.sge(0, 5)}, RemoteAddr: b.mr.Addr() + 600, RKey: b.mr.RKey()},
		verbs.SendWR{ID: 3, Op: verbs.OpRDMARead, Flags: verbs.SendSignaled, SGL: []verbs.SGE{a.sge(100, 3), a.sge(200, 4)}, RemoteAddr: b.mr.Addr() + 1000, RKey: b.mr.RKey()},
	)
	sc := poll(t, a.scq, 2) // the first is unsignaled
	if sc[0].ID != 2 || sc[0].Op != verbs.WCRDMAWrite || sc[1].ID != 3 || sc[1].Op != verbs.WCRDMARead || sc[1].Status != verbs.WCSuccess {
		t.Fatalf("send completions %+v", sc)
	}
	rc := poll(t, b.rcq, 1)[0]
	if rc != (verbs.WC{ID: 9, Op: verbs.WCRecvRDMAWithImm, Flags: verbs.WCWithImm, Imm: 5, Len: 5, QPN: b.qp.QPN()}) {
		t.Fatalf("recv %+v", rc)
	}
	if string(b.mr.Buf()[500:508]) != "write me" || string(b.mr.Buf()[600:605]) != "write" {
		t.Fatalf("write: %q %q", b.mr.Buf()[500:508], b.mr.Buf()[600:605])
	}
	if string(a.mr.Buf()[100:103])+string(a.mr.Buf()[200:204]) != "read me" {
		t.Fatal("read")
	}
}

func TestSigAll(t *testing.T) {
	o := defaultOpts()
	o.qp.SigAll = true
	a, b := connectPair(t, o)
	a.postSend(t, verbs.SendWR{ID: 1, Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()})
	poll(t, a.scq, 1)
}

// TestErrors: every check and the status it completes with, on both sides.
func TestErrors(t *testing.T) {
	type tc struct {
		name     string
		setup    func(a, b *side) verbs.SendWR
		recv     bool           // b posts a 64-byte receive first
		want     verbs.WCStatus // sender's status
		wantRecv verbs.WCStatus // receiver's status of its receive
		peerErr  bool           // b's QP ends in ERR
	}
	otherMR := func(s *side, acc verbs.Access) verbs.MR {
		m, err := s.pd.RegMR(make([]byte, 4096), acc)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	otherPD := func(s *side) verbs.MR {
		p, _ := s.dev.AllocPD()
		m, err := p.RegMR(make([]byte, 4096), verbs.AccessLocalWrite|verbs.AccessRemoteWrite|verbs.AccessRemoteRead)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	cases := []tc{
		{name: "bad lkey", want: verbs.WCLocProtErr, setup: func(a, b *side) verbs.SendWR {
			return verbs.SendWR{Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{{Addr: a.mr.Addr(), Len: 8, LKey: a.mr.LKey() + 1}}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()}
		}},
		{name: "lkey of other pd", want: verbs.WCLocProtErr, setup: func(a, b *side) verbs.SendWR {
			m := otherPD(a)
			return verbs.SendWR{Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{{Addr: m.Addr(), Len: 8, LKey: m.LKey()}}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()}
		}},
		{name: "sge past region", want: verbs.WCLocLenErr, setup: func(a, b *side) verbs.SendWR {
			return verbs.SendWR{Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{a.sge(len(a.mr.Buf())-4, 8)}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()}
		}},
		{name: "sge before region", want: verbs.WCLocLenErr, setup: func(a, b *side) verbs.SendWR {
			return verbs.SendWR{Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{{Addr: a.mr.Addr() - 1, Len: 8, LKey: a.mr.LKey()}}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()}
		}},
		{name: "sge wraps", want: verbs.WCLocLenErr, setup: func(a, b *side) verbs.SendWR {
			return verbs.SendWR{Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{{Addr: ^uint64(0) - 2, Len: 8, LKey: a.mr.LKey()}}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()}
		}},
		{name: "read into read-only region", want: verbs.WCLocProtErr, setup: func(a, b *side) verbs.SendWR {
			m := otherMR(a, verbs.AccessRemoteRead)
			return verbs.SendWR{Op: verbs.OpRDMARead, SGL: []verbs.SGE{{Addr: m.Addr(), Len: 8, LKey: m.LKey()}}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()}
		}},
		{name: "bad rkey", want: verbs.WCRemAccessErr, peerErr: true, setup: func(a, b *side) verbs.SendWR {
			return verbs.SendWR{Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey() ^ 0x100}
		}},
		{name: "rkey of other pd", want: verbs.WCRemAccessErr, peerErr: true, setup: func(a, b *side) verbs.SendWR {
			m := otherPD(b)
			return verbs.SendWR{Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: m.Addr(), RKey: m.RKey()}
		}},
		{name: "write past remote region", want: verbs.WCRemAccessErr, peerErr: true, setup: func(a, b *side) verbs.SendWR {
			return verbs.SendWR{Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: b.mr.Addr() + uint64(len(b.mr.Buf())) - 4, RKey: b.mr.RKey()}
		}},
		{name: "write without remote write", want: verbs.WCRemAccessErr, peerErr: true, setup: func(a, b *side) verbs.SendWR {
			m := otherMR(b, verbs.AccessLocalWrite|verbs.AccessRemoteRead)
			return verbs.SendWR{Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: m.Addr(), RKey: m.RKey()}
		}},
		{name: "read without remote read", want: verbs.WCRemAccessErr, peerErr: true, setup: func(a, b *side) verbs.SendWR {
			m := otherMR(b, verbs.AccessLocalWrite|verbs.AccessRemoteWrite)
			return verbs.SendWR{Op: verbs.OpRDMARead, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: m.Addr(), RKey: m.RKey()}
		}},
		{name: "send longer than receive", recv: true, want: verbs.WCRemInvReqErr, wantRecv: verbs.WCLocLenErr, peerErr: true, setup: func(a, b *side) verbs.SendWR {
			return verbs.SendWR{Op: verbs.OpSend, SGL: []verbs.SGE{a.sge(0, 65)}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := connectPair(t, defaultOpts())
			if c.recv {
				b.postRecv(t, 77, b.sge(0, 64))
			}
			b.postRecv(t, 78, b.sge(0, 64)) // flushed when b goes to ERR
			w := c.setup(a, b)
			w.ID = 5
			// An unsignaled WR completes when it fails; the one behind
			// it is flushed.
			a.postSend(t, w, verbs.SendWR{ID: 6, Op: verbs.OpSend, Flags: verbs.SendSignaled})
			sc := poll(t, a.scq, 2)
			if sc[0].ID != 5 || sc[0].Status != c.want || sc[1].ID != 6 || sc[1].Status != verbs.WCWRFlushErr {
				t.Fatalf("send completions %+v, want %v then a flush", sc, c.want)
			}
			if a.qp.State() != verbs.QPErr {
				t.Fatalf("sender in %v", a.qp.State())
			}
			if got := b.qp.State() == verbs.QPErr; got != c.peerErr {
				t.Fatalf("receiver in %v", b.qp.State())
			}
			if c.peerErr {
				n := 1
				if c.recv {
					n = 2
				}
				rc := poll(t, b.rcq, n)
				if c.recv && (rc[0].ID != 77 || rc[0].Status != c.wantRecv) {
					t.Fatalf("receiver's completion %+v, want %v", rc[0], c.wantRecv)
				}
				if last := rc[n-1]; last.ID != 78 || last.Status != verbs.WCWRFlushErr {
					t.Fatalf("receiver's flush %+v", last)
				}
			} else {
				none(t, b.rcq)
			}
		})
	}
}

func TestRecvSGEErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		sge  func(b *side) verbs.SGE
		want verbs.WCStatus
		send verbs.WCStatus
	}{
		{"bad lkey", func(b *side) verbs.SGE { s := b.sge(0, 64); s.LKey++; return s }, verbs.WCLocProtErr, verbs.WCRemOpErr},
		{"past region", func(b *side) verbs.SGE { return b.sge(len(b.mr.Buf())-8, 64) }, verbs.WCLocLenErr, verbs.WCRemInvReqErr},
		{"no local write", func(b *side) verbs.SGE {
			m, _ := b.pd.RegMR(make([]byte, 128), verbs.AccessRemoteRead)
			return verbs.SGE{Addr: m.Addr(), Len: 64, LKey: m.LKey()}
		}, verbs.WCLocProtErr, verbs.WCRemOpErr},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := connectPair(t, defaultOpts())
			b.postRecv(t, 1, c.sge(b))
			a.postSend(t, verbs.SendWR{ID: 2, Op: verbs.OpSend, SGL: []verbs.SGE{a.sge(0, 16)}})
			if wc := poll(t, b.rcq, 1)[0]; wc.ID != 1 || wc.Status != c.want {
				t.Fatalf("recv %+v, want %v", wc, c.want)
			}
			if wc := poll(t, a.scq, 1)[0]; wc.ID != 2 || wc.Status != c.send {
				t.Fatalf("send %+v, want %v", wc, c.send)
			}
		})
	}
}

func TestStaleKeyAfterDereg(t *testing.T) {
	a, b := connectPair(t, defaultOpts())
	m, err := b.pd.RegMR(make([]byte, 128), verbs.AccessLocalWrite|verbs.AccessRemoteWrite)
	if err != nil {
		t.Fatal(err)
	}
	rkey, addr := m.RKey(), m.Addr()
	if err := m.Dereg(); err != nil {
		t.Fatal(err)
	}
	if err := m.Dereg(); err == nil {
		t.Fatal("second Dereg succeeded")
	}
	// The slot is reused with a new generation.
	m2, _ := b.pd.RegMR(make([]byte, 128), verbs.AccessLocalWrite|verbs.AccessRemoteWrite)
	if m2.RKey() == rkey {
		t.Fatal("same key after re-registration")
	}
	a.postSend(t, verbs.SendWR{ID: 1, Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{a.sge(0, 8)}, RemoteAddr: addr, RKey: rkey})
	if wc := poll(t, a.scq, 1)[0]; wc.Status != verbs.WCRemAccessErr {
		t.Fatalf("%+v", wc)
	}
}

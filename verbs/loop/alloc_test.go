package loop

import (
	"runtime"
	"sync"
	"testing"

	"github.com/usrpt/usrpt/verbs"
)

func TestZeroAllocs(t *testing.T) {
	a, b := connectPair(t, defaultOpts())
	wcs := make([]verbs.WC, 8)
	recv := []verbs.RecvWR{{ID: 1, SGL: []verbs.SGE{b.sge(0, 256)}}}
	send := []verbs.SendWR{{ID: 2, Op: verbs.OpSendWithImm, Flags: verbs.SendSignaled, SGL: []verbs.SGE{a.sge(0, 128)}}}
	inline := []verbs.SendWR{{ID: 2, Op: verbs.OpSend, Flags: verbs.SendSignaled | verbs.SendInline, SGL: []verbs.SGE{{Addr: a.mr.Addr(), Len: 64}}}}
	write := []verbs.SendWR{
		{ID: 3, Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{a.sge(0, 4096)}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()},
		{ID: 4, Op: verbs.OpRDMAWrite, Flags: verbs.SendSignaled, SGL: []verbs.SGE{a.sge(4096, 4096)}, RemoteAddr: b.mr.Addr() + 4096, RKey: b.mr.RKey()},
	}
	read := []verbs.SendWR{{ID: 5, Op: verbs.OpRDMARead, Flags: verbs.SendSignaled, SGL: []verbs.SGE{a.sge(0, 2048), a.sge(8192, 2048)}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()}}
	writeImm := []verbs.SendWR{{ID: 6, Op: verbs.OpRDMAWriteWithImm, Flags: verbs.SendSignaled, SGL: []verbs.SGE{a.sge(0, 512)}, RemoteAddr: b.mr.Addr(), RKey: b.mr.RKey()}}
	must := func(n int, err error) {
		if err != nil {
			t.Fatal(n, err)
		}
	}
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"send/recv", func() {
			must(b.qp.PostRecv(recv))
			must(a.qp.PostSend(send))
			if a.scq.Poll(wcs) != 1 || b.rcq.Poll(wcs) != 1 {
				t.Fatal("missing completion")
			}
		}},
		{"inline send", func() {
			must(b.qp.PostRecv(recv))
			must(a.qp.PostSend(inline))
			if a.scq.Poll(wcs) != 1 || b.rcq.Poll(wcs) != 1 {
				t.Fatal("missing completion")
			}
		}},
		{"write", func() {
			must(a.qp.PostSend(write))
			if a.scq.Poll(wcs) != 1 {
				t.Fatal("missing completion")
			}
		}},
		{"write with imm", func() {
			must(b.qp.PostRecv(recv))
			must(a.qp.PostSend(writeImm))
			if a.scq.Poll(wcs) != 1 || b.rcq.Poll(wcs) != 1 {
				t.Fatal("missing completion")
			}
		}},
		{"read", func() {
			must(a.qp.PostSend(read))
			if a.scq.Poll(wcs) != 1 {
				t.Fatal("missing completion")
			}
		}},
		{"empty poll", func() { a.scq.Poll(wcs) }},
	} {
		if n := testing.AllocsPerRun(1000, c.fn); n != 0 {
			t.Errorf("%s: %v allocations per run", c.name, n)
		}
	}
}

// TestTwoReactorsPingPong runs sender and receiver on two goroutines, each
// posting to its own QP and polling its own CQs: run it with -race.
func TestTwoReactorsPingPong(t *testing.T) {
	a, b := connectPair(t, defaultOpts())
	const rounds = 2000
	var wg sync.WaitGroup
	side := func(s *side, first bool, tag byte) {
		defer wg.Done()
		wcs := make([]verbs.WC, 8)
		recv := []verbs.RecvWR{{SGL: []verbs.SGE{s.sge(1024, 64)}}}
		send := []verbs.SendWR{
			{Op: verbs.OpRDMAWrite, SGL: []verbs.SGE{s.sge(0, 64)}, RemoteAddr: 0, RKey: 0},
			{Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: []verbs.SGE{s.sge(0, 8)}},
		}
		other := a
		if s == a {
			other = b
		}
		send[0].RemoteAddr, send[0].RKey = other.mr.Addr()+2048, other.mr.RKey()
		for i := range 8 {
			recv[0].ID = uint64(i)
			if _, err := s.qp.PostRecv(recv); err != nil {
				t.Error(err)
				return
			}
		}
		turn := first
		for i := 0; i < rounds; {
			if turn {
				buf := s.mr.Buf()
				for j := range 64 {
					buf[j] = tag + byte(i)
				}
				if _, err := s.qp.PostSend(send); err != nil {
					t.Error(err)
					return
				}
				turn = false
				i++
			}
			s.scq.Poll(wcs) // frees send slots
			if n := s.rcq.Poll(wcs); n > 0 {
				for _, wc := range wcs[:n] {
					if wc.Status != verbs.WCSuccess {
						t.Errorf("recv %+v", wc)
						return
					}
					// The write before the send has landed.
					if got := s.mr.Buf()[2048+63]; got != (tag^1)+byte(i-boolInt(first)) {
						t.Errorf("round %d: write not visible (%d)", i, got)
						return
					}
					if _, err := s.qp.PostRecv(recv); err != nil {
						t.Error(err)
						return
					}
				}
				turn = true
			}
			runtime.Gosched()
		}
		// The first side drains the peer's last message.
		for first && !turn && s.rcq.Poll(wcs) == 0 {
			runtime.Gosched()
		}
	}
	wg.Add(2)
	go side(a, true, 0)
	go side(b, false, 1)
	wg.Wait()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

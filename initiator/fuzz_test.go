package initiator

import (
	"context"
	"testing"

	"github.com/usrpt/usrpt/srp"
)

// FuzzRecv feeds arbitrary bytes to a live channel as if the target had
// sent them: nothing may panic, and the bookkeeping (slots, credits,
// commands in flight) must stay consistent whatever arrives.
func FuzzRecv(f *testing.F) {
	put := func(iu interface{ Put([]byte) int }) []byte {
		b := make([]byte, 256)
		return b[:iu.Put(b)]
	}
	live := srp.TagOf(0 | 1<<32) // slot 0, first use
	f.Add(put(&srp.Rsp{Tag: live, ReqLimDelta: 1}))
	f.Add(put(&srp.Rsp{Tag: live, ReqLimDelta: 1, Status: 2, Sense: make([]byte, 18)}))
	f.Add(put(&srp.Rsp{Tag: live, ReqLimDelta: 1, Flags: srp.DIUnder, DataInResCnt: 100}))
	f.Add(put(&srp.Rsp{Tag: srp.TagOf(1 | 1<<32), RespData: []byte{0, 0, 0, 0}}))
	f.Add(put(&srp.CredReq{Tag: srp.TagOf(7), ReqLimDelta: 5}))
	f.Add(put(&srp.AerReq{Tag: srp.TagOf(8), ReqLimDelta: 1, Sense: []byte{0x70, 0, 6}}))
	f.Add(put(&srp.TLogout{Reason: srp.LogoutInvalidIULen}))
	f.Add([]byte{byte(srp.OpRsp)})
	f.Add([]byte{0xC1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4})
	f.Add([]byte{})

	ft := newFakeTarget(f, fakeOpts{credits: 8})
	s, err := Login(context.Background(), ft.idev, ft.addr, testCfg())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Logout() })
	ft.setHold(true) // commands stay outstanding: their tags can match
	ch := s.Channels()[0]
	cmds := make([]*Command, 16)
	for i := range cmds {
		cmds[i] = &Command{CDB: []byte{0}}
	}
	pool := append([]*Command(nil), cmds...)
	out := make([]*Command, 16)

	f.Fuzz(func(t *testing.T, b []byte) {
		if ch.Err() != nil {
			if err := s.Reconnect(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		// Keep commands outstanding, then let the bytes arrive.
		pool = pool[ch.Submit(pool):]
		ch.mu.Lock()
		if ch.state == stateLive {
			buf := ch.recvBufs[0]
			ch.recv(buf[:copy(buf, b)])
		}
		checkChannel(t, ch)
		ch.mu.Unlock()
		n := ch.Poll(out)
		pool = append(pool, out[:n]...)
		ch.mu.Lock()
		checkChannel(t, ch)
		ch.mu.Unlock()
	})
}

// checkChannel checks the channel's invariants; c.mu is held.
func checkChannel(t *testing.T, c *Channel) {
	t.Helper()
	awaiting, cmds, sending := 0, 0, 0
	for i := range c.slots {
		sl := &c.slots[i]
		if sl.cmd != nil {
			awaiting++
			if sl.cmd.TMF == 0 {
				cmds++
			}
		}
		if sl.cmd != nil || sl.sending {
			sending++
		}
	}
	if c.state == stateLive {
		if c.inflight != c.doneN+awaiting {
			t.Fatalf("inflight %d, done %d + awaiting %d", c.inflight, c.doneN, awaiting)
		}
		if cmds != c.nCmds || c.nCmds > c.queue {
			t.Fatalf("commands %d counted %d queue %d", cmds, c.nCmds, c.queue)
		}
		if len(c.free)+sending != len(c.slots) {
			t.Fatalf("%d free + %d used != %d slots", len(c.free), sending, len(c.slots))
		}
		if c.credits < 0 {
			t.Fatalf("credits %d", c.credits)
		}
	}
	if c.doneN > len(c.done) || c.inflight > len(c.done) {
		t.Fatalf("done ring %d/%d, inflight %d", c.doneN, len(c.done), c.inflight)
	}
}

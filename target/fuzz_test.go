package target

import (
	"testing"
	"time"

	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/verbs"
)

// FuzzChannelIU sends arbitrary bytes as one IU on a fresh channel, then a
// TEST UNIT READY. Whatever the bytes, the target must answer per protocol
// — a response to the TUR, or the channel ended (SRP_T_LOGOUT) — never
// panic, and leave nothing behind once the channel is gone: buffers,
// requests, task management parts, channels. A second initiator keeps
// working throughout.
func FuzzChannelIU(f *testing.F) {
	r := newRig(f)
	good := r.hlogin(200)
	c := r.login(1)
	// Seeds: every IU type well formed, and broken ones.
	f.Add(c.cmd(1, rw16(false, 0, 8), srp.DataBuf{}, direct(c.desc(0, 4096))))
	f.Add(c.cmd(2, rw16(true, 0, 8), srp.DataBuf{Format: srp.FmtImmediate, Total: 4096, List: make([]byte, 4096)}, srp.DataBuf{}))
	f.Add(c.cmd(3, rw16(false, 0, 16), srp.DataBuf{}, indirect(c.desc(0, 4096), c.desc(8192, 4096))))
	f.Add(c.cmd(4, rw16(true, 0, 8), direct(srp.Desc{VA: 1, Key: 0xdead, Len: 4096}), srp.DataBuf{}))
	tm := srp.TskMgmt{Tag: srp.TagOf(5), Func: srp.TMFAbortTask, TaskTag: srp.TagOf(1)}
	b := make([]byte, srp.TskMgmtLen)
	tm.Put(b)
	f.Add(b)
	f.Add([]byte{byte(srp.OpILogout), 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{byte(srp.OpCredRsp), 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{byte(srp.OpCmd)})
	f.Add([]byte{0xff, 1, 2})
	c.close()
	f.Fuzz(func(t *testing.T, iu []byte) {
		if len(iu) == 0 || len(iu) > clientIULen {
			return // a SEND of nothing, or more than the target's receive: covered by the hostile suite
		}
		rt := *r // the same target; cleanups and failures go to this input's t
		rt.t = t
		c, err := rt.dial(defaultLogin(2))
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		h := &hc{client: c, t: t, iid: 2, nextTg: 1 << 40}
		tag := h.tag()
		trySend(c, 0, iu)
		// The target may have ended the channel already: then this fails.
		trySend(c, 1, h.cmdIU(tag, 0, make([]byte, 6), srp.DataBuf{}, srp.DataBuf{}))
		// Read until the TUR's response or the end of the channel.
		for {
			b := h.next(2 * time.Second)
			if b == nil {
				break // the channel ended (or the fuzzed IU stalled it: checked below)
			}
			op, _ := srp.Peek(b)
			if op == srp.OpTLogout {
				continue // the connection ends next
			}
			if op == srp.OpRsp {
				if rsp, err := srp.ParseRsp(b); err == nil && rsp.Tag.Uint64() == tag {
					break
				}
			}
		}
		c.close()
		good.t, good.client.t = t, t
		good.roundTrip()
		// Goroutines are not counted here: the fuzzing engine runs its
		// own beside the target (the hostile suite counts them).
		r.checkNoLeak(t, 1, -1)
	})
}

// trySend sends iu from send slot k, ignoring a refusal (the QP may be in
// the error state once the target ended the channel).
func trySend(c *client, k int, iu []byte) {
	b := c.sendSlot(k)
	n := copy(b, iu)
	sge := []verbs.SGE{{Addr: addrOf(b, 0), Len: uint32(n), LKey: c.mr.LKey()}}
	_, _ = c.qp.PostSend([]verbs.SendWR{{ID: 1 << 40, Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: sge}})
}

package target

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/verbs"
)

// hc is a raw client that keeps the credit books: every SRP_CMD and
// SRP_TSK_MGMT it sends costs a credit, every REQ_LIM_DELTA it receives
// (SRP_RSP, SRP_CRED_REQ) gives credits back. On a channel that is idle and
// alive the two must agree: nothing was lost or counted twice.
type hc struct {
	*client
	t      testing.TB
	iid    byte
	cmds   uint64 // SRP_CMD and SRP_TSK_MGMT sent
	deltas uint64 // REQ_LIM_DELTA received since login
	nextTg uint64
}

// hlogin logs initiator iid in (SINGLE, immediate data requested unless
// mod changes it) and clears the unit attention of LUN 0.
func (r *rig) hlogin(iid byte, mod ...func(*loginOpt)) *hc {
	r.t.Helper()
	o := defaultLogin(iid)
	for _, m := range mod {
		m(&o)
	}
	c, err := r.dial(o)
	if err != nil {
		r.t.Fatalf("login %d: %v", iid, err)
	}
	h := &hc{client: c, t: r.t, iid: iid, nextTg: 0x1000}
	h.clearUA(0)
	return h
}

func multi(o *loginOpt) { o.req.Flags = o.req.Flags&^srp.MultiChanMask | srp.MultiChanMulti }

// tag returns a fresh command tag.
func (h *hc) tag() uint64 { h.nextTg++; return h.nextTg }

// send sends iu, counting it as a credit spent when its type says so.
func (h *hc) send(iu []byte) {
	h.t.Helper()
	if len(iu) > 0 && (iu[0] == byte(srp.OpCmd) || iu[0] == byte(srp.OpTskMgmt)) {
		h.cmds++
	}
	h.client.send(iu)
}

// next returns the next IU other than SRP_CRED_REQ (which it answers),
// adding up credits; nil when nothing came within d or the channel ended.
func (h *hc) next(d time.Duration) []byte {
	for {
		b := h.client.recv(d)
		if b == nil {
			return nil
		}
		op, _ := srp.Peek(b)
		switch op {
		case srp.OpRsp:
			if r, err := srp.ParseRsp(b); err == nil {
				h.deltas += uint64(r.ReqLimDelta)
			}
		case srp.OpCredReq:
			cr, err := srp.ParseCredReq(b)
			if err != nil {
				h.t.Fatalf("SRP_CRED_REQ: %v", err)
			}
			h.deltas += uint64(cr.ReqLimDelta)
			rsp := srp.CredRsp{Tag: cr.Tag}
			var out [srp.CredRspLen]byte
			rsp.Put(out[:])
			h.client.send(out[:])
			continue
		}
		return b
	}
}

// rsp waits for the SRP_RSP of tag; any other IU fails the test.
func (h *hc) rsp(tag uint64) srp.Rsp {
	h.t.Helper()
	b := h.next(5 * time.Second)
	if b == nil {
		h.t.Fatalf("initiator %d: no SRP_RSP for tag %#x", h.iid, tag)
	}
	op, _ := srp.Peek(b)
	if op != srp.OpRsp {
		h.t.Fatalf("initiator %d: got %s, want SRP_RSP for tag %#x", h.iid, srp.Summary(b, h.imm), tag)
	}
	r, err := srp.ParseRsp(b)
	if err != nil {
		h.t.Fatalf("SRP_RSP: %v", err)
	}
	if r.Tag.Uint64() != tag {
		h.t.Fatalf("SRP_RSP tag %#x, want %#x", r.Tag.Uint64(), tag)
	}
	return r
}

// cmdIU builds an SRP_CMD for LUN lun.
func (h *hc) cmdIU(tag uint64, lun uint16, cdb []byte, out, in srp.DataBuf) []byte {
	h.t.Helper()
	l, _ := scsi.EncodeLUN(lun)
	cm := srp.Cmd{Tag: srp.TagOf(tag), LUN: l, CDB: cdb, DataOut: out, DataIn: in}
	b := make([]byte, clientIULen)
	n := cm.Put(b, h.imm)
	if n == 0 {
		h.t.Fatal("cannot encode SRP_CMD")
	}
	return b[:n]
}

func (h *hc) do(lun uint16, cdb []byte, out, in srp.DataBuf) srp.Rsp {
	h.t.Helper()
	tag := h.tag()
	h.send(h.cmdIU(tag, lun, cdb, out, in))
	return h.rsp(tag)
}

// tmfIU builds an SRP_TSK_MGMT.
func tmfIU(tag uint64, lun uint16, fn srp.TMFunc, taskTag uint64) []byte {
	l, _ := scsi.EncodeLUN(lun)
	tm := srp.TskMgmt{Tag: srp.TagOf(tag), LUN: l, Func: fn, TaskTag: srp.TagOf(taskTag)}
	b := make([]byte, srp.TskMgmtLen)
	tm.Put(b)
	return b
}

// tmf sends a task management function and returns its RSP_CODE.
func (h *hc) tmf(lun uint16, fn srp.TMFunc, taskTag uint64) srp.RspCode {
	h.t.Helper()
	tag := h.tag()
	h.send(tmfIU(tag, lun, fn, taskTag))
	r := h.rsp(tag)
	code, ok := r.TMRspCode()
	if !ok {
		h.t.Fatalf("TMF %v: SRP_RSP without response data: %+v", fn, r)
	}
	return code
}

// clearUA sends TEST UNIT READY to lun until GOOD.
func (h *hc) clearUA(lun uint16) {
	h.t.Helper()
	for range 8 {
		if r := h.do(lun, make([]byte, 6), srp.DataBuf{}, srp.DataBuf{}); r.Status == 0 {
			return
		}
	}
	h.t.Fatalf("initiator %d: unit attentions of LUN %d do not clear", h.iid, lun)
}

// roundLBA is where on LUN 0 initiator iid's round trips go: every
// initiator has its own blocks.
func roundLBA(iid byte) uint64 { return 4096 + uint64(iid)*64 }

// roundTrip writes 16 KiB with a pattern unique to this call, reads them
// back and compares: the channel serves, and data arrive intact.
func (h *hc) roundTrip() {
	h.t.Helper()
	h.nextTg++
	seed := byte(h.nextTg) ^ h.iid<<4
	w, rd := h.data[0:16384], h.data[65536:65536+16384]
	for i := range w {
		w[i] = byte(i*13) ^ seed
	}
	clear(rd)
	lba := roundLBA(h.iid)
	if r := h.do(0, rw16(true, lba, 32), direct(h.desc(0, len(w))), srp.DataBuf{}); r.Status != 0 {
		h.t.Fatalf("initiator %d: round-trip write: status %#x sense %x", h.iid, r.Status, r.Sense)
	}
	if r := h.do(0, rw16(false, lba, 32), srp.DataBuf{}, direct(h.desc(65536, len(rd)))); r.Status != 0 || r.Flags != 0 {
		h.t.Fatalf("initiator %d: round-trip read: %+v", h.iid, r)
	}
	if !bytes.Equal(w, rd) {
		h.t.Fatalf("initiator %d: round-trip data differ", h.iid)
	}
}

// checkCredits: every credit spent came back exactly once.
func (h *hc) checkCredits() {
	h.t.Helper()
	if h.deltas != h.cmds {
		h.t.Fatalf("initiator %d: REQ_LIM_DELTA summed to %d for %d commands", h.iid, h.deltas, h.cmds)
	}
}

// expectLogout: the next IU is SRP_T_LOGOUT with reason, then the
// connection ends.
func (h *hc) expectLogout(reason srp.TLogoutReason) {
	h.t.Helper()
	b := h.next(5 * time.Second)
	if b == nil {
		h.t.Fatalf("initiator %d: no SRP_T_LOGOUT (want reason %v)", h.iid, reason)
	}
	op, _ := srp.Peek(b)
	if op != srp.OpTLogout {
		h.t.Fatalf("initiator %d: got %s, want SRP_T_LOGOUT %v", h.iid, srp.Summary(b, h.imm), reason)
	}
	l, err := srp.ParseTLogout(b)
	if err != nil {
		h.t.Fatalf("SRP_T_LOGOUT: %v", err)
	}
	if l.Reason != reason {
		h.t.Fatalf("SRP_T_LOGOUT reason %v, want %v", l.Reason, reason)
	}
	h.expectGone()
}

// expectGone: nothing more arrives and the connection ends.
func (h *hc) expectGone() {
	h.t.Helper()
	select {
	case <-h.conn.Done():
	case <-time.After(5 * time.Second):
		h.t.Fatalf("initiator %d: the connection does not end", h.iid)
	}
	if b := h.next(50 * time.Millisecond); b != nil {
		h.t.Fatalf("initiator %d: %s after the end", h.iid, srp.Summary(b, h.imm))
	}
}

// expectCheck: the answer to tag is CHECK CONDITION, ILLEGAL REQUEST with
// asc/ascq, and nothing was transferred.
func (h *hc) expectCheck(tag uint64, asc, ascq uint8) {
	h.t.Helper()
	r := h.rsp(tag)
	k, a, q := senseKey(r)
	if r.Status != uint8(scsi.StatusCheckCondition) || k != scsi.KeyIllegalRequest || a != asc || q != ascq {
		h.t.Fatalf("got status %#x sense %v %02x/%02x, want CHECK CONDITION ILLEGAL REQUEST %02x/%02x", r.Status, k, a, q, asc, ascq)
	}
}

// iLogout sends SRP_I_LOGOUT; the target ends the channel without a word.
func (h *hc) iLogout() {
	h.t.Helper()
	l := srp.ILogout{Tag: srp.TagOf(0xdead)}
	var b [srp.ILogoutLen]byte
	l.Put(b[:])
	h.send(b[:])
	h.expectGone()
}

// sendRaw sends b, of any length, from the client's data memory at off.
func (h *hc) sendRaw(off int, b []byte) {
	h.t.Helper()
	n := copy(h.data[off:], b)
	sge := []verbs.SGE{{Addr: addrOf(h.data, off), Len: uint32(n), LKey: h.mr.LKey()}}
	if _, err := h.qp.PostSend([]verbs.SendWR{{ID: 1 << 40, Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: sge}}); err != nil {
		h.t.Fatalf("post send: %v", err)
	}
}

// --- the target's side ----------------------------------------------------

// chansOf returns the target's live channels of initiator iid.
func (r *rig) chansOf(iid byte) []*channel {
	r.tgt.mu.Lock()
	defer r.tgt.mu.Unlock()
	var out []*channel
	for _, ch := range r.tgt.chans {
		if ch.nx.iid[15] == iid {
			out = append(out, ch)
		}
	}
	return out
}

// leaks describes what the target holds beyond live idle channels: "" when
// every reactor's buffers are back, no request waits, no task management
// part is left, exactly live channels exist and each is idle with its
// credits and slots all home, and goroutines are back to g0 (< 0: not
// checked).
func (r *rig) leaks(live, g0 int) string {
	var p []string
	bad := func(f string, a ...any) { p = append(p, fmt.Sprintf(f, a...)) }
	chans := 0
	for _, rx := range r.tgt.rs {
		err := r.tgt.g.Call(rx.id, time.Second, func(*poller.Reactor) {
			if n := rx.small.InUse(); n != 0 {
				bad("reactor %d: %d small buffers out", rx.id, n)
			}
			if n := rx.large.InUse(); n != 0 {
				bad("reactor %d: %d large buffers out", rx.id, n)
			}
			if rx.bufWait.n != 0 {
				bad("reactor %d: %d requests wait for buffers", rx.id, rx.bufWait.n)
			}
			for i, tl := range rx.tmfs {
				if tl != nil {
					bad("reactor %d: task management part %d left", rx.id, i)
				}
			}
			if len(rx.outbox) != 0 {
				bad("reactor %d: %d answers in the outbox", rx.id, len(rx.outbox))
			}
			chans += len(rx.chans)
			reqs, used := 0, 0
			for _, x := range rx.reqTab {
				if x != nil {
					used++
				}
			}
			for _, ch := range rx.chans {
				reqs += len(ch.reqs)
				switch {
				case ch.state != chLive:
					bad("channel %d: state %d", ch.id, ch.state)
				case len(ch.free) != len(ch.reqs):
					bad("channel %d: %d of %d requests busy", ch.id, len(ch.reqs)-len(ch.free), len(ch.reqs))
				case ch.credits != ch.credits0 || ch.delta != 0:
					bad("channel %d: initiator holds %d credits (+%d owed), want %d", ch.id, ch.credits, ch.delta, ch.credits0)
				case ch.readWait.n != 0 || ch.sqWait.n != 0:
					bad("channel %d: %d wait for reads, %d for send slots", ch.id, ch.readWait.n, ch.sqWait.n)
				case ch.sqFree != ch.sqDepth || ch.ctlOut != 0:
					bad("channel %d: %d of %d send slots free, %d control IUs out", ch.id, ch.sqFree, ch.sqDepth, ch.ctlOut)
				case ch.recvPosted != len(ch.recvs):
					bad("channel %d: %d of %d receives posted", ch.id, ch.recvPosted, len(ch.recvs))
				}
			}
			if used != reqs {
				bad("reactor %d: %d requests in the table, %d in its channels", rx.id, used, reqs)
			}
		})
		if err != nil {
			bad("reactor %d: %v", rx.id, err)
		}
	}
	if chans != live {
		bad("%d channels on the reactors, want %d", chans, live)
	}
	r.tgt.mu.Lock()
	if n := len(r.tgt.chans); n != live {
		bad("%d channels in the target, want %d", n, live)
	}
	r.tgt.mu.Unlock()
	n := 0
	for _, s := range r.tgt.Sessions() {
		for _, c := range s.Channels {
			n++
			if c.State != "live" || c.Credits != r.tgt.cfg.Credits {
				bad("session %d channel %d: %s, %d credits", s.ID, c.ID, c.State, c.Credits)
			}
		}
	}
	if n != live {
		bad("Sessions shows %d channels, want %d", n, live)
	}
	if g0 >= 0 {
		if g := runtime.NumGoroutine(); g > g0 {
			bad("%d goroutines, %d before", g, g0)
		}
	}
	return strings.Join(p, "; ")
}

// checkNoLeak waits until leaks reports nothing.
func (r *rig) checkNoLeak(t testing.TB, live, g0 int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := r.leaks(live, g0)
		if s == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leak: %s", s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkFreed: the channels' verbs memory was deregistered (the control
// plane's free1 ran); the probe fails on a registered MR.
func checkFreed(t testing.TB, chs []*channel) {
	t.Helper()
	for _, ch := range chs {
		if err := ch.mr.Dereg(); !errors.Is(err, verbs.ErrClosed) {
			t.Fatalf("channel %d: its memory region is still registered", ch.id)
		}
	}
}

// gatedLUN is a mem LU whose engine queues return no completion while
// held is set: its reads and writes stay in the Executor until the test
// lets them go, long enough to abort them or to have many outstanding.
type gatedDevice struct {
	ioengine.Device
	held *atomic.Bool
}

type gatedQueue struct {
	ioengine.Queue
	held *atomic.Bool
}

func (d gatedDevice) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	q, err := d.Device.NewQueue(cfg)
	if err != nil {
		return nil, err
	}
	return gatedQueue{q, d.held}, nil
}

func (q gatedQueue) Poll(out []*ioengine.Request) int {
	if q.held.Load() {
		return 0
	}
	return q.Queue.Poll(out)
}

// addGatedLUN exports a gated LU at LUN n, held from the start. Call it
// before logging in: a new LUN raises unit attentions.
func (r *rig) addGatedLUN(n uint16) *atomic.Bool {
	r.t.Helper()
	eng, err := mem.Open(rigLUBytes, 512)
	if err != nil {
		r.t.Fatal(err)
	}
	held := new(atomic.Bool)
	held.Store(true)
	lu, err := scsi.NewLU(scsi.Config{Engine: gatedDevice{eng, held}, BlockSize: 512, Serial: fmt.Sprintf("gated%d", n)})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.tgt.AddLUN(n, lu); err != nil {
		r.t.Fatal(err)
	}
	// Cleanups run last-registered first: this one before newRig's closes
	// the target, so the LU is let go and taken off first.
	r.t.Cleanup(func() {
		held.Store(false)
		_ = r.tgt.RemoveLUN(n)
		_ = eng.Close()
	})
	return held
}

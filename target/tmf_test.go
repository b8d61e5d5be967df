package target

import (
	"encoding/binary"
	"testing"

	"time"

	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
)

func (c *client) tmf(tag uint64, fn srp.TMFunc, lun uint64, ref uint64) {
	tm := srp.TskMgmt{Tag: srp.TagOf(tag), LUN: lun, Func: fn, TaskTag: srp.TagOf(ref)}
	b := make([]byte, srp.TskMgmtLen)
	tm.Put(b)
	c.send(b)
}

func TestTaskManagementCodes(t *testing.T) {
	r := newRig(t)
	c := r.login(1)
	for _, tc := range []struct {
		fn   srp.TMFunc
		want srp.RspCode
	}{
		{srp.TMFAbortTask, srp.TMFComplete}, // no such task: nothing to abort
		{srp.TMFAbortTaskSet, srp.TMFComplete},
		{srp.TMFClearTaskSet, srp.TMFComplete},
		{srp.TMFLUNReset, srp.TMFComplete},
		{srp.TMFClearACA, srp.TMFNotSupported},
		{0x10, srp.TMFNotSupported},
	} {
		c.tmf(0x100+uint64(tc.fn), tc.fn, 0, 0x77)
		rsp := c.rspFor(0x100 + uint64(tc.fn))
		code, ok := rsp.TMRspCode()
		if !ok || code != tc.want {
			t.Errorf("%v: response code %#x (ok %v), want %#x", tc.fn, code, ok, tc.want)
		}
		if rsp.ReqLimDelta != 1 {
			t.Errorf("%v: delta %d", tc.fn, rsp.ReqLimDelta)
		}
	}
	// LUN RESET established a unit attention for the nexus.
	rsp := c.do(9, make([]byte, 6), srp.DataBuf{}, srp.DataBuf{})
	if k, asc, ascq := senseKey(rsp); k != scsi.KeyUnitAttention || asc != 0x29 || ascq != 0x03 {
		t.Fatalf("after LUN RESET: %+v, want UNIT ATTENTION 29/03", rsp)
	}
}

// TestAbortWaitingForBuffer aborts a command that waits for a data buffer
// on another reactor's channel of the same nexus: it gets no response,
// and its credit comes back with the TMF's.
func TestAbortWaitingForBuffer(t *testing.T) {
	// Writes to LUN 1 stay in its engine until the gate opens: the first
	// holds the reactor's only large buffer while the TMF arrives.
	r := newRig(t, func(c *Config) { c.LargeBufs = 1; c.RDMAReads = 1 })
	held := r.addGatedLUN(1)
	a := r.login(1)
	o := defaultLogin(1)
	o.req.Flags = srp.MultiChanMulti
	b, err := r.dial(o)
	if err != nil {
		t.Fatal(err)
	}
	lun1, _ := scsi.EncodeLUN(1)
	for tag := uint64(60); ; tag++ { // the nexus's POWER ON for LUN 1
		tur := a.cmd(tag, make([]byte, 6), srp.DataBuf{}, srp.DataBuf{})
		binary.BigEndian.PutUint64(tur[20:], lun1)
		a.send(tur)
		if a.rspFor(tag).Status == 0 {
			break
		}
	}
	// Four 1 MiB writes on b: one holds the reactor's only large buffer,
	// the others wait for it.
	const n = 1 << 20
	for k := range 4 {
		iu := b.cmd(uint64(k+1), rw16(true, uint64(k)*n/512, n/512), direct(b.desc(0, n)), srp.DataBuf{})
		binary.BigEndian.PutUint64(iu[20:], lun1) // SRP_CMD's LUN field
		b.send(iu)
	}
	waitFor(t, "three writes waiting for the buffer", func() bool { return r.tgt.Stats().Total.BufferWaits >= 3 })
	// ABORT TASK SET from channel a: b's channel is on the other reactor.
	// The held write is aborted in its engine; the answer waits for it to
	// leave, so the gate opens first.
	a.tmf(50, srp.TMFAbortTaskSet, lun1, 0)
	time.Sleep(50 * time.Millisecond)
	held.Store(false)
	rsp := a.rspFor(50)
	if code, _ := rsp.TMRspCode(); code != srp.TMFComplete {
		t.Fatalf("ABORT TASK SET: %+v", rsp)
	}
	// b sees responses for the writes that were not aborted and none for
	// the rest; every credit comes back in a response or a CRED_REQ.
	var delta uint32
	answered := 0
	for {
		iu := b.recv(300 * time.Millisecond)
		if iu == nil {
			break
		}
		switch op, _ := srp.Peek(iu); op {
		case srp.OpRsp:
			rr, _ := srp.ParseRsp(iu)
			delta += rr.ReqLimDelta
			answered++
		case srp.OpCredReq:
			cr, _ := srp.ParseCredReq(iu)
			delta += cr.ReqLimDelta
			cresp := srp.CredRsp{Tag: cr.Tag}
			buf := make([]byte, srp.CredRspLen)
			cresp.Put(buf)
			b.send(buf)
		default:
			t.Fatalf("unexpected %v", op)
		}
	}
	if answered != 0 {
		t.Fatalf("%d of the 4 aborted writes were answered", answered)
	}
	if delta != 4 {
		t.Fatalf("credits returned %d for 4 commands (%d answered)", delta, answered)
	}
	st := r.tgt.Stats()
	if st.Total.Aborted == 0 || st.Total.CredReqs == 0 {
		t.Fatalf("stats %+v", st.Total)
	}
}

// prOut builds PERSISTENT RESERVE OUT (service action sa, TYPE typ) with
// its 24-byte parameter list as immediate data.
func prOut(sa, typ byte, key, sak uint64) ([]byte, srp.DataBuf) {
	cdb := []byte{0x5F, sa, typ, 0, 0, 0, 0, 0, 24, 0}
	p := make([]byte, 24)
	binary.BigEndian.PutUint64(p[0:], key)
	binary.BigEndian.PutUint64(p[8:], sak)
	return cdb, srp.DataBuf{Format: srp.FmtImmediate, Total: 24, List: p}
}

// PREEMPT AND ABORT (Pacemaker's fence_scsi): the fenced-off initiator's
// write, held in the engine on another reactor, is aborted and gets no
// response; the PERSISTENT RESERVE OUT is answered only after it left the
// engine; the fenced-off initiator then hears COMMANDS CLEARED BY ANOTHER
// INITIATOR and REGISTRATIONS PREEMPTED and conflicts.
func TestPreemptAndAbort(t *testing.T) {
	r := newRig(t)
	held := r.addGatedLUN(1)
	v := r.hlogin(1) // the victim, on one reactor
	f := r.hlogin(2) // the fencer, on the other
	v.clearUA(1)
	f.clearUA(1)
	if cv, cf := r.chansOf(1), r.chansOf(2); len(cv) != 1 || len(cf) != 1 || cv[0].rx == cf[0].rx {
		t.Fatal("want the two initiators on different reactors")
	}
	const register, reserve, preemptAbort, typWE, typEA = 0x00, 0x01, 0x05, 0x01, 0x03
	for _, step := range []struct {
		h        *hc
		sa, typ  byte
		key, sak uint64
	}{{v, register, 0, 0, 0x1}, {f, register, 0, 0, 0x2}, {v, reserve, typWE, 0x1, 0}} {
		cdb, out := prOut(step.sa, step.typ, step.key, step.sak)
		if rsp := step.h.do(1, cdb, out, srp.DataBuf{}); rsp.Status != 0 {
			t.Fatalf("PR OUT %#x: %+v", step.sa, rsp)
		}
	}
	// The victim's write goes into the engine and stays there.
	wtag := v.tag()
	v.send(v.cmdIU(wtag, 1, rw16(true, 0, 8), srp.DataBuf{Format: srp.FmtImmediate, Total: 4096, List: make([]byte, 4096)}, srp.DataBuf{}))
	waitFor(t, "the write in the engine", func() bool { return r.tgt.Stats().Total.Commands >= 9 })
	// PREEMPT AND ABORT from the fencer: no answer while the write is held.
	ptag := f.tag()
	cdb, out := prOut(preemptAbort, typEA, 0x2, 0x1)
	f.send(f.cmdIU(ptag, 1, cdb, out, srp.DataBuf{}))
	if b := f.next(200 * time.Millisecond); b != nil {
		t.Fatalf("answered while the preempted write is in the engine: %s", srp.Summary(b, f.imm))
	}
	held.Store(false)
	if rsp := f.rsp(ptag); rsp.Status != 0 {
		t.Fatalf("PREEMPT AND ABORT: %+v", rsp)
	}
	// The write was aborted: no response for it.
	if b := v.next(200 * time.Millisecond); b != nil {
		t.Fatalf("the aborted write was answered: %s", srp.Summary(b, v.imm))
	}
	tur := v.do(1, make([]byte, 6), srp.DataBuf{}, srp.DataBuf{})
	if k, asc, ascq := senseKey(tur); k != scsi.KeyUnitAttention || asc != 0x2F || ascq != 0 {
		t.Fatalf("victim's first command: %+v, want COMMANDS CLEARED BY ANOTHER INITIATOR", tur)
	}
	tur = v.do(1, make([]byte, 6), srp.DataBuf{}, srp.DataBuf{})
	if k, asc, ascq := senseKey(tur); k != scsi.KeyUnitAttention || asc != 0x2A || ascq != 0x05 {
		t.Fatalf("victim's second command: %+v, want REGISTRATIONS PREEMPTED", tur)
	}
	w := v.do(1, rw16(true, 0, 8), srp.DataBuf{Format: srp.FmtImmediate, Total: 4096, List: make([]byte, 4096)}, srp.DataBuf{})
	if w.Status != uint8(scsi.StatusReservationConflict) {
		t.Fatalf("victim's write after the fence: %+v, want RESERVATION CONFLICT", w)
	}
	// Every credit the victim spent came back (the aborted write's with a
	// later response).
	v.checkCredits()
}

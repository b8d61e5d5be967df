package target

import (
	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/verbs"
)

// chanState only moves forward, as ib_srpt's channel states do.
type chanState uint8

const (
	chLive    chanState = iota // serving
	chClosing                  // draining: no new IUs, outstanding work completes or flushes
	chGone                     // drained and handed back to the control plane
)

// Work request IDs: the kind in the top bits, an index in the low 32.
const (
	wcRecv  = 1 // a receive buffer
	wcRsp   = 2 // a request's response (SRP_RSP): releases the request
	wcRead  = 3 // one of a request's RDMA READs
	wcWrite = 4 // a request's signaled RDMA WRITE (partial data-in)
	wcCtl   = 5 // a control IU: SRP_T_LOGOUT, SRP_CRED_REQ
)

func wrID(kind int, idx int32) uint64 { return uint64(kind)<<32 | uint64(uint32(idx)) }

// ctlBufs is the number of send buffers for control IUs: at most one
// SRP_CRED_REQ and one SRP_T_LOGOUT are outstanding.
const ctlBufs = 2

// extraRecvs are receives beyond the credits: the initiator's responses
// (SRP_CRED_RSP, SRP_AER_RSP), SRP_I_LOGOUT, and room to see a credit
// overrun as one rather than as a receiver-not-ready stall.
const extraRecvs = 4

// channel is one RDMA channel (RC connection) of an I_T nexus. After
// login it is owned by its reactor: every field below conn is the
// reactor's, except stats, which the control plane reads through a
// reactor message.
type channel struct {
	t  *Target
	rx *reactor
	nx *nexus
	id uint64

	conn     verbs.Conn
	qp       verbs.QP
	cq       verbs.CQ
	region   *hugemem.Region
	mr       verbs.MR
	lkey     uint32 // of the channel's region
	dataLKey uint32 // of the reactor's data buffers on this device

	maxITIU, maxTIIU int
	immOff           int // 0: no immediate data
	sqDepth          int
	credits0         int

	state   chanState
	reason  srp.TLogoutReason // why we end it, for the T_LOGOUT
	discReq bool              // Disconnect was asked for

	recvs      [][]byte
	recvPosted int
	rsp        [][]byte // per request
	ctl        [ctlBufs][]byte
	ctlOut     int // control IUs posted and not complete
	reqs       []request
	free       []int32

	credits    int    // credits the initiator holds, as we count them
	delta      uint32 // credits to return with the next response
	credReqOut bool   // an SRP_CRED_REQ awaits its SRP_CRED_RSP
	sqFree     int
	rdFree     int
	readWait   reqList // requests with RDMA READs to post
	sqWait     reqList // requests whose response waits for send slots

	// Requests whose SRP_RSP is posted, in posting order (a ring of
	// request indices); lastRsp is the batch index of the last response
	// in the batch being built, which flush makes signaled, or -1.
	sent            []int32
	sentHead, sentN int
	lastRsp         int

	// Batches, posted once per reactor iteration.
	wcs      []verbs.WC
	sendWRs  []verbs.SendWR
	sendSGEs []verbs.SGE
	recvWRs  []verbs.RecvWR
	recvSGEs []verbs.SGE

	stats ChannelStats
}

// ChannelStats are one channel's counters.
type ChannelStats struct {
	Commands      uint64 `json:"commands"`
	TaskMgmt      uint64 `json:"task_mgmt"`
	ReadBytes     uint64 `json:"read_bytes"`  // data-in sent to the initiator
	WriteBytes    uint64 `json:"write_bytes"` // data-out received
	CheckCond     uint64 `json:"check_condition"`
	Aborted       uint64 `json:"aborted"`
	BufferWaits   uint64 `json:"buffer_waits"`   // commands that waited for a data buffer
	SendWaits     uint64 `json:"send_waits"`     // responses that waited for send queue slots
	CreditOverrun uint64 `json:"credit_overrun"` // commands beyond the granted credits
	ProtocolErrs  uint64 `json:"protocol_errors"`
	CredReqs      uint64 `json:"cred_reqs"`
	TransportErrs uint64 `json:"transport_errors"` // error completions other than flushes
}

// --- receive side -------------------------------------------------------

// poll reaps the channel's completions and reports whether there were any.
func (ch *channel) poll() bool {
	n := ch.cq.Poll(ch.wcs)
	for i := range n {
		ch.complete(&ch.wcs[i])
	}
	return n > 0
}

func (ch *channel) complete(wc *verbs.WC) {
	kind, idx := int(wc.ID>>32), int32(uint32(wc.ID))
	ok := wc.Status == verbs.WCSuccess
	if !ok && wc.Status != verbs.WCWRFlushErr {
		ch.stats.TransportErrs++
	}
	if !ok && ch.state == chLive {
		// The QP is in the error state: nothing more will arrive.
		ch.close(srp.LogoutNone, false)
	}
	switch kind {
	case wcRecv:
		ch.recvPosted--
		if idx < 0 || int(idx) >= len(ch.recvs) {
			return
		}
		if !ok || ch.state != chLive {
			return // flushed, or draining: the buffer is not reposted
		}
		ch.received(idx, int(wc.Len))
	case wcRsp:
		// Responses are posted unsignaled but for the last of each batch
		// (flush): a completion stands for every response posted before
		// it, which RC completes in order.
		r := ch.req(idx)
		if r == nil || r.state != reqSending {
			return
		}
		for ch.sentN > 0 {
			q := &ch.reqs[ch.sent[ch.sentHead]]
			ch.sentHead = (ch.sentHead + 1) % len(ch.sent)
			ch.sentN--
			ch.sqFree += 1 + q.held
			q.held = 0
			ch.release(q)
			if q == r {
				break
			}
		}
	case wcRead:
		r := ch.req(idx)
		if r == nil {
			return
		}
		r.reads--
		ch.sqFree++
		ch.rdFree++
		if !ok {
			r.aborted = true
		}
		ch.afterRead(r)
	case wcWrite:
		r := ch.req(idx)
		if r == nil {
			return
		}
		if !r.wrSig {
			return
		}
		r.wrSig = false
		ch.sqFree += 1 + r.held
		r.held = 0
		if r.state == reqWaitSQ {
			if ch.state != chLive {
				ch.dropResponse(r)
				return
			}
			ch.respond(r)
		}
	case wcCtl:
		ch.ctlOut--
		ch.sqFree++
		if ch.state == chClosing && !ch.discReq {
			// The T_LOGOUT (or a CRED_REQ before it) is out: now end the connection.
			ch.disconnect()
		}
	}
}

func (ch *channel) req(idx int32) *request {
	if idx < 0 || int(idx) >= len(ch.reqs) {
		return nil
	}
	return &ch.reqs[idx]
}

// received handles the IU in receive buffer idx.
func (ch *channel) received(idx int32, n int) {
	b := ch.recvs[idx][:min(n, len(ch.recvs[idx]))]
	op, err := srp.Peek(b)
	if err != nil {
		// Empty: invalid IU length (8); a type byte no IU has: invalid
		// IU type (2).
		ch.protocolError(tlogoutOf(err))
		ch.repost(idx)
		return
	}
	switch op {
	case srp.OpCmd, srp.OpTskMgmt:
		if ch.credits <= 0 || len(ch.free) == 0 {
			ch.stats.CreditOverrun++
			ch.protocolError(srp.LogoutNone)
			ch.repost(idx)
			return
		}
		ch.credits--
		r := &ch.reqs[ch.free[len(ch.free)-1]]
		ch.free = ch.free[:len(ch.free)-1]
		r.recv, r.iu, r.state, r.t0 = idx, b, reqNew, ch.rx.now
		if op == srp.OpCmd {
			ch.command(r)
		} else {
			ch.taskMgmt(r)
		}
	case srp.OpILogout:
		ch.repost(idx)
		if _, err := srp.ParseILogout(b); err != nil {
			ch.protocolError(tlogoutOf(err))
			return
		}
		ch.close(srp.LogoutNone, false)
	case srp.OpCredRsp:
		ch.repost(idx)
		if _, err := srp.ParseCredRsp(b); err != nil {
			ch.protocolError(tlogoutOf(err))
			return
		}
		if !ch.credReqOut {
			ch.protocolError(srp.LogoutUnexpectedRsp)
			return
		}
		ch.credReqOut = false
	case srp.OpAerRsp:
		// usrpt sends no SRP_AER_REQ: nothing to answer.
		ch.repost(idx)
		ch.protocolError(srp.LogoutUnexpectedRsp)
	default:
		// SRP_LOGIN_REQ on a live channel, T→I IUs, unknown types.
		ch.repost(idx)
		ch.protocolError(srp.LogoutInvalidIUType)
	}
}

// protocolError ends the channel with SRP_T_LOGOUT: the initiator broke a
// rule that leaves the channel untrustworthy.
func (ch *channel) protocolError(reason srp.TLogoutReason) {
	ch.stats.ProtocolErrs++
	ch.close(reason, true)
}

// command starts an SRP_CMD.
func (ch *channel) command(r *request) {
	ch.stats.Commands++
	r.isTMF, r.table, r.imm = false, srp.Desc{}, nil
	c, err := srp.ParseCmd(r.iu, ch.immOff)
	r.tag, r.lun = c.Tag, c.LUN
	t := &r.task
	t.TMF, t.TMFLocal, t.RefTag = 0, false, 0
	if err != nil {
		e, _ := err.(srp.Error)
		if e.Answer() != srp.AnswerCheckCondition {
			ch.stats.ProtocolErrs++
			ch.release(r)
			ch.close(tlogoutOf(err), true)
			return
		}
		ch.failIU(r, scsi.ReasonInvalidFieldIU)
		return
	}
	t.Nexus, t.LUN, t.Tag, t.CDB = ch.nx.sn, c.LUN, c.Tag.Uint64(), c.CDB
	switch c.Attr {
	case srp.AttrSimple:
		t.Attr = scsi.AttrSimple
	case srp.AttrHeadOfQueue:
		t.Attr = scsi.AttrHeadOfQueue
	case srp.AttrACA:
		t.Attr = scsi.AttrACA
	default:
		t.Attr = scsi.AttrOrdered // as ib_srpt and SCST treat other values
	}
	var d *srp.DataBuf
	switch {
	case c.DataOut.Format != srp.FmtNone && c.DataIn.Format != srp.FmtNone:
		// No command usrpt implements is bidirectional.
		ch.failIU(r, scsi.ReasonInvalidFieldIU)
		return
	case c.DataOut.Format != srp.FmtNone:
		d, r.dataIn = &c.DataOut, false
	case c.DataIn.Format != srp.FmtNone:
		d, r.dataIn = &c.DataIn, true
	default:
		r.dataLen = 0
		ch.execute(r)
		return
	}
	total := d.Len()
	if uint64(total) > uint64(ch.t.cfg.MaxDataLen) {
		ch.failIU(r, scsi.ReasonInvalidFieldIU)
		return
	}
	r.dataLen = int(total)
	switch d.Format {
	case srp.FmtImmediate:
		ch.stats.WriteBytes += uint64(len(d.List))
		if a := ch.nx.sn.BufferAlign(c.LUN); a > 1 && (addrOf(d.List, 0)%uint64(a) != 0 || len(d.List)%a != 0) {
			// An O_DIRECT engine refuses the data where it is (at the
			// immediate data offset of the IU): it goes through an
			// aligned pool buffer.
			r.imm = d.List
			ch.rx.needBuffer(r)
			return
		}
		// Zero copy: the engine writes from the receive buffer, which
		// stays ours until the response is posted.
		r.data = d.List
		ch.execute(r)
		return
	case srp.FmtDirect:
		d.Desc.Put(r.direct[:])
		r.descs = r.direct[:]
	case srp.FmtIndirect:
		if d.Partial() {
			// The initiator's allow_ext_sg: the table is in its memory.
			if d.Desc.Len == 0 || uint64(d.Desc.Len) > uint64(ch.rx.small.BufSize()) || d.Desc.Len%srp.DirectDescLen != 0 {
				ch.failIU(r, scsi.ReasonInvalidFieldIU)
				return
			}
			r.table = d.Desc
		} else {
			r.descs = d.List
		}
	}
	if r.dataLen == 0 {
		ch.execute(r)
		return
	}
	ch.rx.needBuffer(r)
}

// failIU answers r with CHECK CONDITION without executing it.
func (ch *channel) failIU(r *request, reason scsi.Reason) {
	t := &r.task
	t.Status = scsi.StatusCheckCondition
	t.SenseLen = scsi.PutFixed(t.Sense[:], scsi.Sense{Reason: reason})
	t.Xfer, t.Resid, t.Residual, t.Reason, t.Aborted = 0, scsi.ResidNone, 0, reason, false
	ch.stats.CheckCond++
	r.dataLen = 0
	ch.respond(r)
}

// gotBuffer continues r once it has its data buffer (or the table buffer).
func (ch *channel) gotBuffer(r *request) {
	if r.aborted || ch.state != chLive {
		ch.finishAborted(r)
		return
	}
	if r.imm != nil {
		copy(r.data, r.imm)
		r.imm = nil
		ch.execute(r)
		return
	}
	if r.table.Len != 0 && r.descs == nil {
		r.state = reqFetchTable
		r.segIdx, r.segOff, r.bufOff, r.left = 0, 0, 0, int(r.table.Len)
		r.direct = [16]byte{}
		r.table.Put(r.direct[:])
		r.descs = r.direct[:]
		ch.postReads(r)
		return
	}
	ch.described(r)
}

// described moves r on once its descriptors are known and its buffer is
// there: a read executes, a write first reads its data-out.
func (ch *channel) described(r *request) {
	if r.dataIn {
		ch.execute(r)
		return
	}
	r.state = reqReading
	r.segIdx, r.segOff, r.bufOff, r.left = 0, 0, 0, r.dataLen
	ch.postReads(r)
}

// postReads posts r's next RDMA READs, as many as read and send slots
// allow; the rest wait in readWait.
func (ch *channel) postReads(r *request) {
	local := r.data
	lkey := ch.dataLKey
	if r.state == reqFetchTable {
		local = r.tblBuf.Data
	}
	for r.left > 0 {
		if ch.rdFree == 0 || ch.sqFree == 0 || len(ch.sendWRs) == cap(ch.sendWRs) {
			if r.listed == nil {
				ch.readWait.push(r)
			}
			return
		}
		d, n := r.nextSeg(ch.t.cfg.MaxRDMASize)
		if n == 0 {
			break
		}
		ch.rdFree--
		ch.sqFree--
		r.reads++
		ch.post(verbs.SendWR{
			ID: wrID(wcRead, r.idx), Op: verbs.OpRDMARead, Flags: verbs.SendSignaled,
			RemoteAddr: d.VA, RKey: d.Key,
		}, (addrOf(local, r.bufOff)), n, lkey)
		r.bufOff += n
	}
	if r.listed == &ch.readWait {
		ch.readWait.remove(r)
	}
	if r.left == 0 && r.reads == 0 {
		ch.afterRead(r)
	}
}

// afterRead moves r on once its reads are all complete.
func (ch *channel) afterRead(r *request) {
	if r.reads > 0 || (r.left > 0 && !r.aborted) {
		return
	}
	ch.readWait.remove(r)
	if r.aborted || ch.state != chLive {
		ch.finishAborted(r)
		return
	}
	switch r.state {
	case reqFetchTable:
		// The table is here: check it as the parser checks one in the IU.
		r.descs = r.tblBuf.Data[:r.table.Len]
		if r.descTotal() != uint64(r.dataLen) {
			ch.failIU(r, scsi.ReasonInvalidFieldIU)
			return
		}
		ch.described(r)
	case reqReading:
		ch.stats.WriteBytes += uint64(r.dataLen)
		ch.execute(r)
	}
}

// execute hands r's command to the reactor's Executor.
func (ch *channel) execute(r *request) {
	r.state = reqExecuting
	t := &r.task
	t.Data, t.DataLen = r.data, r.dataLen
	ch.rx.exec.Start(t)
}

// executed takes r back from the Executor.
func (ch *channel) executed(r *request) {
	t := &r.task
	if r.tmf != nil {
		r.tmf.resp = t.Response
		r.tmf.partDone()
		return
	}
	ch.rx.countLUN(r)
	if t.Aborted {
		ch.stats.Aborted++
		ch.finishAborted(r)
		return
	}
	if ch.state != chLive {
		ch.dropResponse(r)
		return
	}
	if t.Fence != nil {
		// PREEMPT AND ABORT: its answer waits until the preempted
		// nexuses' tasks are aborted on every reactor.
		f := t.Fence
		t.Fence = nil
		ch.rx.startFence(r, f)
		return
	}
	ch.answer(r)
}

// answer sends r's data-in and SRP_RSP.
func (ch *channel) answer(r *request) {
	t := &r.task
	if t.Status == scsi.StatusCheckCondition {
		ch.stats.CheckCond++
	}
	if r.dataIn && t.Xfer > 0 {
		r.segIdx, r.segOff, r.bufOff, r.left = 0, 0, 0, min(t.Xfer, r.dataLen)
		ch.stats.ReadBytes += uint64(r.left)
	} else {
		r.left = 0
	}
	ch.respond(r)
}

// respond posts r's data-in RDMA WRITEs and its SRP_RSP, as far as the
// send queue allows; the rest waits in sqWait.
func (ch *channel) respond(r *request) {
	for r.left > 0 {
		if ch.sqFree < 2 || len(ch.sendWRs)+2 > cap(ch.sendWRs) {
			// Not even one WRITE and the response fit. Make the last
			// WRITE posted signaled so its completion frees the slots.
			ch.waitSQ(r)
			return
		}
		d, n := r.nextSeg(ch.t.cfg.MaxRDMASize)
		if n == 0 {
			break
		}
		ch.sqFree--
		r.held++
		ch.post(verbs.SendWR{
			ID: wrID(wcWrite, r.idx), Op: verbs.OpRDMAWrite, RemoteAddr: d.VA, RKey: d.Key,
		}, (addrOf(r.data, r.bufOff)), n, ch.dataLKey)
		r.bufOff += n
	}
	if ch.sqFree < 1 || len(ch.sendWRs) == cap(ch.sendWRs) {
		ch.waitSQ(r)
		return
	}
	if r.listed == &ch.sqWait {
		ch.sqWait.remove(r)
	}
	buf := ch.rsp[r.idx]
	delta := 1 + ch.delta
	ch.delta = 0
	ch.credits += int(delta)
	var n int
	if r.isTMF {
		n = srp.PutTMRsp(buf, r.tag, delta, r.rspCode)
	} else {
		n = ch.putRsp(buf, r, delta)
	}
	ch.sqFree--
	r.state = reqSending
	// The receive buffer goes back first: the credit this response
	// returns may be used before its send completion is polled.
	ch.repost(r.recv)
	r.recv, r.iu = -1, nil
	ch.sent[(ch.sentHead+ch.sentN)%len(ch.sent)] = r.idx
	ch.sentN++
	ch.lastRsp = len(ch.sendWRs)
	ch.post(verbs.SendWR{ID: wrID(wcRsp, r.idx), Op: verbs.OpSend}, addrOf(buf, 0), n, ch.lkey)
}

// waitSQ parks r until send slots free up. Unsignaled WRITEs it already
// posted hold slots that only a later signaled completion frees: if r
// holds any, the last one it posted is made signaled.
func (ch *channel) waitSQ(r *request) {
	if r.held > 0 {
		if k := len(ch.sendWRs) - 1; k >= 0 && ch.sendWRs[k].ID == wrID(wcWrite, r.idx) {
			ch.sendWRs[k].Flags |= verbs.SendSignaled
			r.held-- // that WRITE's own slot comes back with its completion
			r.wrSig = true
			r.state = reqWaitSQ
			ch.stats.SendWaits++
			return // its completion calls respond again
		}
	}
	r.state = reqWaitSQ
	if r.listed == nil {
		ch.stats.SendWaits++
		ch.sqWait.push(r)
	}
}

// putRsp writes the SRP_RSP for r's finished command.
func (ch *channel) putRsp(b []byte, r *request, delta uint32) int {
	t := &r.task
	rsp := srp.Rsp{Tag: r.tag, ReqLimDelta: delta, Status: uint8(t.Status)}
	if t.SenseLen > 0 {
		rsp.Sense = t.Sense[:t.SenseLen]
	}
	if t.Resid != scsi.ResidNone {
		out := r.dataLen > 0 && !r.dataIn
		switch {
		case out && t.Resid == scsi.ResidOver:
			rsp.Flags, rsp.DataOutResCnt = srp.DOOver, t.Residual
		case out:
			rsp.Flags, rsp.DataOutResCnt = srp.DOUnder, t.Residual
		case t.Resid == scsi.ResidOver:
			rsp.Flags, rsp.DataInResCnt = srp.DIOver, t.Residual
		default:
			rsp.Flags, rsp.DataInResCnt = srp.DIUnder, t.Residual
		}
	}
	return rsp.Put(b[:ch.maxTIIU])
}

// post appends a send WR with one local SGE to the batch.
func (ch *channel) post(wr verbs.SendWR, addr uint64, n int, lkey uint32) {
	k := len(ch.sendWRs)
	ch.sendSGEs[k] = verbs.SGE{Addr: addr, Len: uint32(n), LKey: lkey}
	wr.SGL = ch.sendSGEs[k : k+1 : k+1]
	ch.sendWRs = append(ch.sendWRs, wr)
}

// repost queues receive buffer idx to be posted again.
func (ch *channel) repost(idx int32) {
	if idx < 0 || ch.state != chLive {
		return
	}
	k := len(ch.recvWRs)
	b := ch.recvs[idx]
	ch.recvSGEs[k] = verbs.SGE{Addr: addrOf(b, 0), Len: uint32(len(b)), LKey: ch.lkey}
	ch.recvWRs = append(ch.recvWRs, verbs.RecvWR{ID: wrID(wcRecv, idx), SGL: ch.recvSGEs[k : k+1 : k+1]})
}

// flush posts the iteration's batches: receives first, then sends.
func (ch *channel) flush() {
	if len(ch.recvWRs) > 0 {
		wrs := ch.recvWRs
		n, _ := ch.qp.PostRecv(wrs)
		ch.recvPosted += n
		// Refused receives (the QP is in error) are simply not posted.
		ch.recvWRs = ch.recvWRs[:0]
	}
	if len(ch.sendWRs) > 0 {
		wrs := ch.sendWRs
		if ch.lastRsp >= 0 {
			wrs[ch.lastRsp].Flags |= verbs.SendSignaled
			ch.lastRsp = -1
		}
		n, _ := ch.qp.PostSend(wrs)
		ch.sendWRs = ch.sendWRs[:0]
		if n < len(wrs) {
			// The QP is in error: the refused WRs complete as flushed,
			// so that their requests and slots are released exactly once.
			for i := n; i < len(wrs); i++ {
				if wrs[i].Flags&verbs.SendSignaled != 0 {
					wc := verbs.WC{ID: wrs[i].ID, Status: verbs.WCWRFlushErr}
					ch.complete(&wc)
				}
			}
			if ch.state == chLive {
				ch.close(srp.LogoutNone, false)
			}
		}
	}
}

// --- task management ------------------------------------------------------

func (ch *channel) taskMgmt(r *request) {
	ch.stats.TaskMgmt++
	r.isTMF, r.table, r.dataLen, r.dataIn = true, srp.Desc{}, 0, false
	tm, err := srp.ParseTskMgmt(r.iu)
	if err != nil {
		ch.stats.ProtocolErrs++
		ch.release(r)
		ch.close(tlogoutOf(err), true)
		return
	}
	r.tag, r.lun = tm.Tag, tm.LUN
	r.state = reqTMF
	t := &r.task
	t.Nexus, t.LUN, t.Tag, t.CDB, t.Data, t.DataLen = ch.nx.sn, tm.LUN, tm.Tag.Uint64(), nil, nil, 0
	t.TMFLocal, t.RefTag = false, tm.TaskTag.Uint64()
	switch tm.Func {
	case srp.TMFAbortTask:
		t.TMF = scsi.TMFAbortTask
	case srp.TMFAbortTaskSet:
		t.TMF = scsi.TMFAbortTaskSet
	case srp.TMFClearTaskSet:
		t.TMF = scsi.TMFClearTaskSet
	case srp.TMFLUNReset:
		t.TMF = scsi.TMFLUNReset
	case srp.TMFClearACA:
		t.TMF = scsi.TMFClearACA
	default:
		t.TMF = 0
		r.rspCode = srp.TMFNotSupported
		ch.respond(r)
		return
	}
	ch.rx.startTMF(r)
}

// tmfAnswered sends the answer of r's task management function.
func (ch *channel) tmfAnswered(r *request, resp scsi.TMFResponse) {
	r.tmf = nil
	if ch.state != chLive {
		ch.dropResponse(r)
		return
	}
	switch resp {
	case scsi.TMFComplete:
		r.rspCode = srp.TMFComplete
	case scsi.TMFRejected:
		r.rspCode = srp.TMFNotSupported
	default:
		r.rspCode = srp.TMFFailed
	}
	ch.respond(r)
}

// matches reports whether r, not yet executing, is a task that fan's
// function (of nexus nx on lun, and tag for ABORT TASK) aborts.
func (r *request) matches(fan *tmfFan) bool {
	if fan.fn == scsi.TMFFence {
		return fan.fence.Covers(r.task.Nexus, r.lun)
	}
	if r.lun != fan.lun {
		return false
	}
	switch fan.fn {
	case scsi.TMFAbortTask:
		return r.ch.nx == fan.nx && r.task.Tag == fan.tag
	case scsi.TMFAbortTaskSet:
		return r.ch.nx == fan.nx
	case scsi.TMFClearTaskSet, scsi.TMFLUNReset:
		return true
	}
	return false
}

// abortWaiting aborts the requests of ch that fan's function affects and
// that have not reached the Executor: waiting for a buffer, or reading
// their data-out (those finish when their reads complete).
func (ch *channel) abortWaiting(fan *tmfFan) {
	for i := range ch.reqs {
		r := &ch.reqs[i]
		switch r.state {
		case reqNeedBuffer, reqFetchTable, reqReading:
		default:
			continue
		}
		if r.aborted || r.isTMF || !r.matches(fan) {
			continue
		}
		r.aborted = true
		ch.stats.Aborted++
		switch {
		case r.state == reqNeedBuffer:
			ch.rx.bufWait.remove(r)
			ch.finishAborted(r)
		case r.reads == 0:
			ch.readWait.remove(r)
			ch.finishAborted(r)
		}
	}
}

// --- ends of requests -----------------------------------------------------

// finishAborted ends r without a response: its credit returns with the
// next one (SRP r16a 6.9; ib_srpt's srpt_aborted_task).
func (ch *channel) finishAborted(r *request) {
	if r.listed != nil {
		r.listed.remove(r)
	}
	ch.delta++
	ch.repost(r.recv)
	r.recv, r.iu = -1, nil
	ch.release(r)
}

// dropResponse ends r on a closing channel: no response can be sent.
func (ch *channel) dropResponse(r *request) {
	if r.listed != nil {
		r.listed.remove(r)
	}
	r.recv, r.iu = -1, nil
	ch.release(r)
}

// release returns r to the free list.
func (ch *channel) release(r *request) {
	if r.state == reqFree {
		return
	}
	if r.listed != nil {
		r.listed.remove(r)
	}
	// Data buffers come back only now: the RDMA WRITEs that read them
	// are complete once the response after them is.
	ch.rx.putTable(r)
	ch.rx.putBuffer(r)
	if r.held > 0 {
		// Unsignaled WRITEs of a request that ends without its response
		// (channel closing): their slots come back with the flush.
		ch.sqFree += r.held
		r.held = 0
	}
	r.state, r.aborted, r.tmf, r.rspCode, r.wrSig, r.reads = reqFree, false, nil, 0, false, 0
	r.task.Data, r.data, r.descs = nil, nil, nil
	ch.free = append(ch.free, r.idx)
}

// --- closing --------------------------------------------------------------

// close starts draining the channel. With logout it first sends
// SRP_T_LOGOUT with reason, then disconnects.
func (ch *channel) close(reason srp.TLogoutReason, logout bool) {
	if ch.state != chLive {
		return
	}
	ch.state = chClosing
	ch.reason = reason
	ch.recvWRs = ch.recvWRs[:0]
	// Requests that have not reached the Executor end now, or when their
	// reads flush; executing ones finish there; sending ones flush.
	for i := range ch.reqs {
		r := &ch.reqs[i]
		switch r.state {
		case reqNeedBuffer:
			ch.rx.bufWait.remove(r)
			ch.dropResponse(r)
		case reqWaitSQ:
			if !r.wrSig {
				ch.dropResponse(r)
			}
		case reqFetchTable, reqReading:
			r.aborted = true
			if r.reads == 0 {
				ch.dropResponse(r)
			}
		}
	}
	if logout && ch.sqFree > 0 && len(ch.sendWRs) < cap(ch.sendWRs) {
		l := srp.TLogout{Reason: reason}
		b := ch.ctl[1]
		n := l.Put(b)
		ch.sqFree--
		ch.ctlOut++
		ch.post(verbs.SendWR{ID: wrID(wcCtl, 1), Op: verbs.OpSend, Flags: verbs.SendSignaled}, (addrOf(b, 0)), n, ch.lkey)
		return // disconnect once it is sent
	}
	ch.disconnect()
}

// disconnect ends the connection from the control plane: the QP goes to
// the error state and everything outstanding flushes into the CQ.
func (ch *channel) disconnect() {
	if ch.discReq {
		return
	}
	ch.discReq = true
	go func() { _ = ch.conn.Disconnect() }()
}

// drained reports whether a closing channel has nothing outstanding.
func (ch *channel) drained() bool {
	return ch.state == chClosing && ch.discReq && ch.recvPosted == 0 && ch.ctlOut == 0 &&
		len(ch.free) == len(ch.reqs) && len(ch.sendWRs) == 0
}

// maybeCredReq returns accumulated credits with SRP_CRED_REQ when no
// response is coming to carry them (at most one outstanding, as the Linux
// initiator assumes).
func (ch *channel) maybeCredReq() {
	if ch.delta == 0 || ch.credReqOut || ch.state != chLive || len(ch.free) != len(ch.reqs) ||
		ch.sqFree == 0 || len(ch.sendWRs) == cap(ch.sendWRs) {
		return
	}
	c := srp.CredReq{Tag: srp.TagOf(ch.stats.CredReqs), ReqLimDelta: ch.delta}
	b := ch.ctl[0]
	n := c.Put(b)
	ch.credits += int(ch.delta)
	ch.delta = 0
	ch.credReqOut = true
	ch.stats.CredReqs++
	ch.sqFree--
	ch.ctlOut++
	ch.post(verbs.SendWR{ID: wrID(wcCtl, 0), Op: verbs.OpSend, Flags: verbs.SendSignaled}, (addrOf(b, 0)), n, ch.lkey)
}

// tlogoutOf is the SRP_T_LOGOUT reason for a parse error.
func tlogoutOf(err error) srp.TLogoutReason {
	if e, ok := err.(srp.Error); ok {
		return e.TLogout()
	}
	return srp.LogoutNone
}

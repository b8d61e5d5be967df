package initiator

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/verbs"
)

// Sizes of a channel's queues beyond its command slots.
const (
	// extraRecvs are the receives posted beyond one per slot, so that an
	// SRP_CRED_REQ, SRP_AER_REQ or SRP_T_LOGOUT always finds one: a
	// conforming target has at most one such request unanswered (ib_srp.c,
	// srp_response_common), and ib_srp likewise sizes its receive ring
	// queue_size + SRP_RSP_SQ_SIZE.
	extraRecvs = 4
	// answers are the send IUs kept for SRP_CRED_RSP and SRP_AER_RSP,
	// which consume no credit (SRP r16a 6.10, ib_srp SRP_RSP_SQ_SIZE).
	answers   = 4
	answerLen = 64 // stride of an answer IU (16 bytes used)
	wcBatch   = 32 // completions reaped per CQ poll
	iuAlign   = 64 // IU buffers start on cache lines
	maxTIIU   = 1 << 20
)

// Work request IDs carry what they complete in their top bits: error
// completions report only the ID.
const (
	idSlot   = 0 << 32
	idAnswer = 1 << 32
	idRecv   = 2 << 32
	idKind   = 3 << 32
)

type chanState uint8

const (
	stateDown   chanState = iota // not connected yet, or reconnecting: Submit takes nothing
	stateLive                    // logged in
	stateClosed                  // ended: Submit fails commands with Err()
)

// ChannelStats are a channel's counters since Login, kept across Reconnect.
type ChannelStats struct {
	Commands     uint64 // SRP_CMDs sent
	TMFs         uint64 // SRP_TSK_MGMTs sent
	ImmCmds      uint64 // SRP_CMDs that carried their data-out as immediate data
	BytesOut     uint64 // data-out bytes of commands answered by an SRP_RSP, less residuals
	BytesIn      uint64 // data-in bytes likewise
	CreditStalls uint64 // Submits cut short by credits (ib_srp's zero_req_lim)
	CredReqs     uint64 // SRP_CRED_REQs answered
	AerReqs      uint64 // SRP_AER_REQs answered
	Errors       uint64 // commands completed with Err set
	UnknownTags  uint64 // SRP_RSPs for no outstanding command (counted, credits taken, ignored)
	BadIUs       uint64 // receives that were no valid T→I IU (ignored)
}

// slot is one command's send IU and, while it is outstanding, the command.
type slot struct {
	cmd     *Command // nil when no response is awaited
	gen     uint32   // bumped at each use: stale tags do not match
	sending bool     // the SEND has not completed yet
	sge     [1]verbs.SGE
	iu      []byte // it_iu_len bytes of IU memory
	addr    uint64 // its address, for indirect table descriptors
	outLen  uint32
	inLen   uint32
}

// conn is what one login of a channel holds; Reconnect replaces it whole.
type chanConn struct {
	conn     verbs.Conn
	connDone <-chan struct{}
	qp       verbs.QP
	cq       verbs.CQ
	reg      *hugemem.Region
	mr       verbs.MR
	rsp      srp.LoginRsp
	immOK    bool // immediate data agreed
	itLen    int  // IU bytes we may send
	queue    int  // command slots: min(QueueSize, credits−1)
	credits  int64
	nCmds    int // commands (not TMFs) awaiting a response
	slots    []slot
	free     []uint32 // free slot indices, a stack
	recvWRs  []verbs.RecvWR
	recvBufs [][]byte
	ansIU    [answers][]byte
	ansSGE   [answers][1]verbs.SGE
	ansBusy  [answers]bool
	ansWR    [1]verbs.SendWR
	batch    []verbs.SendWR // Submit's chain
	repost   []verbs.RecvWR // Poll's receives to post again
}

// Channel is one RDMA channel of a session. It is used by one goroutine
// (one reactor) at a time; Submit and Poll allocate nothing. A mutex,
// uncontended in steady state, lets Logout and Reconnect run from another
// goroutine.
type Channel struct {
	mu    sync.Mutex
	s     *Session
	id    int
	state chanState
	err   error
	stats ChannelStats
	chanConn

	// done holds finished commands until Poll hands them out: a ring
	// sized so that it never overflows (inflight ≤ len(done), see Submit).
	done      []*Command
	doneHead  int
	doneN     int
	inflight  int // taken by Submit and not yet returned by Poll
	scratch   [2][MaxCmdSGEntries * srp.DirectDescLen]byte
	wcs       [wcBatch]verbs.WC
	closedErr error // ErrChannelClosed wrapped with the cause, set once
	lastRsp   srp.LoginRsp
}

func newChannel(s *Session, id int) *Channel {
	return &Channel{s: s, id: id, done: make([]*Command, 2*(s.cfg.QueueSize+1))}
}

// connect logs the channel in and builds everything the data path needs,
// without touching the Channel's live fields (Reconnect builds while the
// reactor keeps polling).
func (c *Channel) connect(ctx context.Context) (cc *chanConn, err error) {
	s := c.s
	cfg := &s.cfg
	maxSlots := cfg.QueueSize + 1 // one more than commands: task management
	sendDepth, recvDepth := maxSlots+answers, maxSlots+extraRecvs
	cc = &chanConn{}
	defer func() {
		if err != nil {
			_ = cc.release(cfg.LoginTimeout)
			if _, ok := err.(*LoginError); !ok {
				err = fmt.Errorf("initiator: channel %d: %w", c.id, err)
			}
		}
	}()
	if cc.cq, err = s.dev.CreateCQ(sendDepth + recvDepth + wcBatch); err != nil {
		return cc, fmt.Errorf("create CQ: %w", err)
	}
	cc.qp, err = s.pd.CreateQP(verbs.QPConfig{SendCQ: cc.cq, RecvCQ: cc.cq, MaxSendWR: sendDepth, MaxRecvWR: recvDepth, MaxSendSGE: 1, MaxRecvSGE: 1})
	if err != nil {
		return cc, fmt.Errorf("create QP: %w", err)
	}
	// SRP_LOGIN_REQ as ib_srp's srp_send_req builds it (tag 0).
	req := srp.LoginReq{
		ReqITIULen:      uint32(cfg.itIULen(!cfg.NoImmData)),
		BufFmt:          srp.BufDirect | srp.BufIndirect,
		Flags:           srp.MultiChanSingle,
		InitiatorPortID: cfg.InitiatorPortID,
		TargetPortID:    cfg.TargetPortID,
	}
	if c.id > 0 {
		req.Flags = srp.MultiChanMulti
	}
	if !cfg.NoImmData {
		req.Flags |= srp.LoginImmRequested
		req.ImmDataOffset = srp.LinuxImmDataOffset
	}
	var priv [srp.LoginReqRDMALen]byte
	req.PutRDMA(priv[:])
	cctx, cancel := context.WithTimeout(ctx, cfg.LoginTimeout)
	cc.conn, err = s.dev.Connect(cctx, s.addr, cc.qp, verbs.ConnParam{
		PrivateData:        priv[:],
		ResponderResources: uint8(cfg.ResponderResources),
		InitiatorDepth:     uint8(cfg.InitiatorDepth),
		RetryCount:         7, // tl_retry_count default
		RNRRetryCount:      7, // infinite, as ib_srp
	})
	cancel()
	if err != nil {
		if rej, ok := errors.AsType[*verbs.RejectError](err); ok {
			if lr, perr := srp.ParseLoginRej(rej.PrivateData); perr == nil {
				return cc, &LoginError{Channel: c.id, Reason: lr.Reason}
			}
		}
		return cc, fmt.Errorf("connect %s: %w", s.addr, err)
	}
	cc.connDone = cc.conn.Done()
	rsp, err := srp.ParseLoginRsp(cc.conn.PrivateData())
	if err != nil {
		return cc, fmt.Errorf("LOGIN_RSP: %w", err)
	}
	cc.rsp = rsp
	switch {
	case rsp.ReqLimDelta < 2:
		return cc, fmt.Errorf("target granted %d credits: need 2, one kept for task management", rsp.ReqLimDelta)
	case rsp.MaxTIIULen < srp.RspLen || rsp.MaxTIIULen > maxTIIU:
		return cc, fmt.Errorf("LOGIN_RSP max_ti_iu_len %d: want %d to %d", rsp.MaxTIIULen, srp.RspLen, maxTIIU)
	case rsp.MaxITIULen < srp.MinITIULen:
		return cc, fmt.Errorf("LOGIN_RSP max_it_iu_len %d below %d", rsp.MaxITIULen, srp.MinITIULen)
	}
	// As srp_cm_rep_handler: immediate data only when the target set
	// IMMED_SUPPORTED; the IU length recomputed for what was agreed and
	// never beyond what the target takes; can_queue = min(req_lim − 1,
	// queue size).
	cc.immOK = !cfg.NoImmData && rsp.Flags&srp.LoginImmSupp != 0
	cc.itLen = min(cfg.itIULen(cc.immOK), int(rsp.MaxITIULen))
	cc.credits = int64(rsp.ReqLimDelta)
	cc.queue = min(cfg.QueueSize, int(min(rsp.ReqLimDelta-1, 1<<20)))
	nslots, nrecv := cc.queue+1, cc.queue+1+extraRecvs
	itStride := (cc.itLen + iuAlign - 1) &^ (iuAlign - 1)
	tiLen := int(rsp.MaxTIIULen)
	tiStride := (tiLen + iuAlign - 1) &^ (iuAlign - 1)
	size := nslots*itStride + answers*answerLen + nrecv*tiStride
	if cc.reg, err = hugemem.Map(hugemem.RegionConfig{Size: size, Node: -1}); err != nil {
		return cc, fmt.Errorf("IU memory: %w", err)
	}
	mem := cc.reg.Bytes()[:size]
	// Remote read: an indirect descriptor table lives in the SRP_CMD's IU
	// and its table descriptor points there (SRP r16a 5.5.3.3).
	if cc.mr, err = s.pd.RegMR(mem, verbs.AccessLocalWrite|verbs.AccessRemoteRead); err != nil {
		return cc, fmt.Errorf("register IU memory: %w", err)
	}
	base, lkey := cc.mr.Addr(), cc.mr.LKey()
	off := 0
	cc.slots = make([]slot, nslots)
	cc.free = make([]uint32, 0, nslots)
	for i := range cc.slots {
		sl := &cc.slots[i]
		sl.iu = mem[off : off+cc.itLen : off+cc.itLen]
		sl.addr = base + uint64(off)
		sl.sge[0] = verbs.SGE{Addr: sl.addr, LKey: lkey}
		off += itStride
	}
	for i := nslots - 1; i >= 0; i-- {
		cc.free = append(cc.free, uint32(i))
	}
	for i := range cc.ansIU {
		cc.ansIU[i] = mem[off : off+answerLen : off+answerLen]
		cc.ansSGE[i][0] = verbs.SGE{Addr: base + uint64(off), LKey: lkey}
		off += answerLen
	}
	cc.recvWRs = make([]verbs.RecvWR, nrecv)
	cc.recvBufs = make([][]byte, nrecv)
	sges := make([]verbs.SGE, nrecv)
	for i := range cc.recvWRs {
		cc.recvBufs[i] = mem[off : off+tiLen : off+tiLen]
		sges[i] = verbs.SGE{Addr: base + uint64(off), Len: uint32(tiLen), LKey: lkey}
		cc.recvWRs[i] = verbs.RecvWR{ID: idRecv | uint64(i), SGL: sges[i : i+1 : i+1]}
		off += tiStride
	}
	cc.batch = make([]verbs.SendWR, 0, nslots)
	cc.repost = make([]verbs.RecvWR, 0, nrecv)
	if _, err = cc.qp.PostRecv(cc.recvWRs); err != nil {
		return cc, fmt.Errorf("post receives: %w", err)
	}
	return cc, nil
}

// install makes cc the channel's live connection. c.mu is held.
func (c *Channel) install(cc *chanConn) {
	c.chanConn = *cc
	c.lastRsp = cc.rsp
	c.state, c.err, c.closedErr = stateLive, nil, nil
}

// release frees what a connection holds, in the order the verbs require:
// the connection, then the QP before its CQ, the MR before its memory.
func (cc *chanConn) release(timeout time.Duration) error {
	var errs []error
	if cc.conn != nil {
		errs = append(errs, cc.conn.Disconnect(), waitDone(cc.conn, timeout))
	}
	if cc.qp != nil {
		errs = append(errs, cc.qp.Close())
	}
	if cc.cq != nil {
		errs = append(errs, cc.cq.Close())
	}
	if cc.mr != nil {
		errs = append(errs, cc.mr.Dereg())
	}
	if cc.reg != nil {
		errs = append(errs, cc.reg.Close())
	}
	*cc = chanConn{}
	return errors.Join(errs...)
}

// shutdown ends the channel's connection: what is in flight completes with
// cause, the state becomes st, and the resources are freed outside the
// lock so that a reactor in Poll waits only for the bookkeeping.
func (c *Channel) shutdown(cause error, st chanState, timeout time.Duration) error {
	c.mu.Lock()
	c.failInflight(cause)
	c.state = st
	if st == stateClosed && c.err == nil {
		c.err = cause
	}
	cc := c.chanConn
	c.chanConn = chanConn{}
	c.mu.Unlock()
	return cc.release(timeout)
}

// failInflight completes every command awaiting a response with err.
func (c *Channel) failInflight(err error) {
	for i := range c.slots {
		sl := &c.slots[i]
		if sl.cmd != nil {
			c.finish(sl.cmd, err)
			sl.cmd = nil
		}
	}
	c.nCmds = 0
}

// end closes the channel from the data path (T_LOGOUT, an error
// completion, a disconnect): its commands complete with err, which must
// wrap ErrChannelClosed. The connection is disconnected so that the
// target sees it; Logout or Reconnect frees the rest.
func (c *Channel) end(err error) {
	if c.state != stateLive {
		return
	}
	c.state, c.err = stateClosed, err
	c.failInflight(err)
	if c.conn != nil {
		_ = c.conn.Disconnect()
	}
}

// finish queues cmd for Poll with err.
func (c *Channel) finish(cmd *Command, err error) {
	cmd.Err = err
	if err != nil {
		c.stats.Errors++
	}
	i := c.doneHead + c.doneN
	if i >= len(c.done) {
		i -= len(c.done)
	}
	c.done[i] = cmd
	c.doneN++
}

// drain moves finished commands into out.
func (c *Channel) drain(out []*Command) int {
	n := 0
	for n < len(out) && c.doneN > 0 {
		out[n] = c.done[c.doneHead]
		c.done[c.doneHead] = nil
		c.doneHead++
		if c.doneHead == len(c.done) {
			c.doneHead = 0
		}
		c.doneN--
		n++
	}
	c.inflight -= n
	return n
}

// Inflight is the number of commands Submit took that Poll has not
// returned yet.
func (c *Channel) Inflight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight
}

// Credits is the credits the channel holds now (REQ_LIM).
func (c *Channel) Credits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.credits)
}

// QueueSize is the commands the channel may have in flight: Config's
// QueueSize capped by the login's credits − 1.
func (c *Channel) QueueSize() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queue
}

// Err says why the channel ended; nil while it is live or reconnecting.
func (c *Channel) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stats returns the channel's counters.
func (c *Channel) Stats() ChannelStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Submit sends up to len(cmds) commands (SRP_CMD, or SRP_TSK_MGMT when
// cmd.TMF != 0), limited by free slots and credits, batched into one
// PostSend, and returns how many it took. Commands keep one credit in
// reserve; task management may use it (ib_srp's SRP_TSK_MGMT_SQ_SIZE).
// A command it cannot describe (data outside registered memory, more
// segments than CmdSGEntries, a bad CDB length) is taken and completes
// with a CommandError at the next Poll, without using a credit. On a
// closed channel commands are taken and fail with Err(); while Reconnect
// runs none is taken.
func (c *Channel) Submit(cmds []*Command) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	taken := 0
	switch c.state {
	case stateDown:
		return 0
	case stateClosed:
		for _, cmd := range cmds {
			if c.inflight >= len(c.done) {
				break
			}
			c.inflight++
			c.finish(cmd, c.err)
			taken++
		}
		return taken
	}
	c.batch = c.batch[:0]
	stalled := false
	for _, cmd := range cmds {
		if c.inflight >= len(c.done) || len(c.free) == 0 {
			break
		}
		tmf := cmd.TMF != 0
		if !tmf && c.nCmds >= c.queue {
			break
		}
		if c.credits < 1 || !tmf && c.credits < 2 {
			stalled = true
			break
		}
		idx := c.free[len(c.free)-1]
		sl := &c.slots[idx]
		sl.gen++
		cmd.Tag = srp.TagOf(uint64(idx) | uint64(sl.gen)<<32)
		n, err := c.build(sl, cmd)
		c.inflight++
		taken++
		if err != nil {
			cmd.Tag = srp.Tag{}
			c.finish(cmd, err)
			continue
		}
		c.free = c.free[:len(c.free)-1]
		c.credits--
		if tmf {
			c.stats.TMFs++
		} else {
			c.nCmds++
			c.stats.Commands++
		}
		sl.cmd, sl.sending = cmd, true
		sl.sge[0].Len = uint32(n)
		c.batch = append(c.batch, verbs.SendWR{ID: idSlot | uint64(idx), Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: sl.sge[:]})
	}
	if stalled {
		c.stats.CreditStalls++
	}
	if len(c.batch) > 0 {
		if n, err := c.qp.PostSend(c.batch); err != nil {
			for _, wr := range c.batch[n:] {
				c.slots[wr.ID&^idKind].sending = false
			}
			c.end(c.closeErr(err))
		}
	}
	return taken
}

// closeErr is ErrChannelClosed with cause, built once per channel end (the
// error path may allocate).
func (c *Channel) closeErr(cause any) error {
	if c.closedErr == nil {
		c.closedErr = fmt.Errorf("initiator: channel %d: %v: %w", c.id, cause, ErrChannelClosed)
	}
	return c.closedErr
}

// lookup finds the registered region holding b.
func lookup(mrs []memRegion, b []byte) (srp.Desc, bool) {
	a := addrOf(b)
	for i := range mrs {
		m := &mrs[i]
		if a >= m.start && a <= m.end && uint64(len(b)) <= m.end-a {
			return srp.Desc{VA: a, Key: m.rkey, Len: uint32(len(b))}, true
		}
	}
	return srp.Desc{}, false
}

// describe fills d for the segments segs: none, one direct descriptor, or
// an indirect table in scratch with the whole table in the IU (as ib_srp,
// which never makes the target fetch a partial table). listOff is where
// the table will sit in the IU, for the table descriptor.
func (c *Channel) describe(d *srp.DataBuf, segs [][]byte, scratch []byte, sl *slot, listOff int, mrs []memRegion) (uint32, error) {
	var total uint64
	n := 0
	for _, b := range segs {
		if len(b) == 0 {
			continue
		}
		if n == c.s.cfg.CmdSGEntries {
			return 0, ErrTooManySegments
		}
		desc, ok := lookup(mrs, b)
		if !ok {
			return 0, ErrNotRegistered
		}
		desc.Put(scratch[n*srp.DirectDescLen:])
		total += uint64(len(b))
		n++
	}
	if total > uint64(^uint32(0)) {
		return 0, ErrTooLong
	}
	switch n {
	case 0:
		*d = srp.DataBuf{}
	case 1:
		*d = srp.DataBuf{Format: srp.FmtDirect, Desc: srp.DescAt(scratch)}
	default:
		tl := uint32(n * srp.DirectDescLen)
		*d = srp.DataBuf{
			Format: srp.FmtIndirect,
			Desc:   srp.Desc{VA: sl.addr + uint64(listOff), Key: c.mr.RKey(), Len: tl},
			Total:  uint32(total),
			List:   scratch[:tl],
		}
	}
	return uint32(total), nil
}

// descLen is the bytes d takes in an SRP_CMD.
func descLen(d *srp.DataBuf) int {
	switch d.Format {
	case srp.FmtDirect:
		return srp.DirectDescLen
	case srp.FmtIndirect:
		return srp.IndirectHdrLen + len(d.List)
	case srp.FmtImmediate:
		return srp.ImmHdrLen
	}
	return 0
}

// build writes cmd's IU into sl and returns its length.
func (c *Channel) build(sl *slot, cmd *Command) (int, error) {
	sl.outLen, sl.inLen = 0, 0
	if cmd.TMF != 0 {
		if len(cmd.DataOut) != 0 || len(cmd.DataIn) != 0 {
			return 0, ErrTMFData
		}
		t := srp.TskMgmt{Tag: cmd.Tag, LUN: cmd.LUN, Func: cmd.TMF, TaskTag: cmd.RefTag}
		return t.Put(sl.iu), nil
	}
	cdb := len(cmd.CDB)
	if cdb == 0 || cdb > 16 && cdb%4 != 0 || cdb > 16+srp.MaxAddCDBLen {
		return 0, ErrCDBLen
	}
	add := max(cdb-16, 0)
	mrs := *c.s.mrs.Load()
	sc := srp.Cmd{Tag: cmd.Tag, LUN: cmd.LUN, Attr: cmd.Attr, CDB: cmd.CDB}
	outLen, err := c.describe(&sc.DataOut, cmd.DataOut, c.scratch[0][:], sl, srp.CmdLen+add+srp.IndirectHdrLen, mrs)
	if err != nil {
		return 0, err
	}
	// Immediate data (SRP-2) as ib_srp: agreed at login, no longer than
	// max_imm_data, inside the IU at offset 68, and the descriptors before
	// it (a data-in descriptor with an additional CDB would overlap).
	imm := c.immOK && outLen > 0 && int(outLen) <= c.s.cfg.MaxImmData &&
		srp.LinuxImmDataOffset+int(outLen) <= c.itLen
	if imm {
		sc.DataOut = srp.DataBuf{Format: srp.FmtImmediate}
	}
	inLen, err := c.describe(&sc.DataIn, cmd.DataIn, c.scratch[1][:], sl, srp.CmdLen+add+descLen(&sc.DataOut)+srp.IndirectHdrLen, mrs)
	if err != nil {
		return 0, err
	}
	if imm && srp.CmdLen+add+srp.ImmHdrLen+descLen(&sc.DataIn) > srp.LinuxImmDataOffset {
		imm = false
		// Describe data-out again; the data-in table moves behind it.
		if _, err = c.describe(&sc.DataOut, cmd.DataOut, c.scratch[0][:], sl, srp.CmdLen+add+srp.IndirectHdrLen, mrs); err != nil {
			return 0, err
		}
		if _, err = c.describe(&sc.DataIn, cmd.DataIn, c.scratch[1][:], sl, srp.CmdLen+add+descLen(&sc.DataOut)+srp.IndirectHdrLen, mrs); err != nil {
			return 0, err
		}
	}
	n := sc.Put(sl.iu, srp.LinuxImmDataOffset)
	if n == 0 {
		if add > 0 {
			return 0, ErrCDBLen
		}
		return 0, ErrTooManySegments
	}
	if imm {
		if srp.LinuxImmDataOffset+int(outLen) > len(sl.iu) {
			return 0, ErrTooLong
		}
		binary.BigEndian.PutUint32(sl.iu[srp.CmdLen+add:], outLen)
		off := srp.LinuxImmDataOffset
		for _, b := range cmd.DataOut {
			off += copy(sl.iu[off:], b)
		}
		n = off
		c.stats.ImmCmds++
	}
	sl.outLen, sl.inLen = outLen, inLen
	return n, nil
}

// Poll reaps completions and returns the finished commands in out: an
// SRP_RSP completes its command (status, sense, residuals) and adds its
// REQ_LIM_DELTA; SRP_CRED_REQ and SRP_AER_REQ add theirs and are answered
// with SRP_CRED_RSP / SRP_AER_RSP, which consume no credit; SRP_T_LOGOUT,
// a disconnect or an error completion ends the channel: its commands
// complete with ErrChannelClosed (a *LogoutError for a T_LOGOUT) and Err
// says why. Receive buffers are posted again in one batch.
func (c *Channel) Poll(out []*Command) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateLive && c.doneN < len(out) {
		select {
		case <-c.connDone:
			c.end(c.closeErr("disconnected"))
		default:
			c.reap()
		}
	}
	return c.drain(out)
}

// reap handles one batch of completions.
func (c *Channel) reap() {
	k := c.cq.Poll(c.wcs[:])
	c.repost = c.repost[:0]
	for i := range c.wcs[:k] {
		wc := &c.wcs[i]
		if c.state != stateLive {
			break
		}
		if wc.Status != verbs.WCSuccess {
			c.end(c.closeErr(wc.Status))
			break
		}
		idx := int(wc.ID &^ idKind)
		switch wc.ID & idKind {
		case idSlot:
			if idx < len(c.slots) {
				sl := &c.slots[idx]
				sl.sending = false
				if sl.cmd == nil {
					c.free = append(c.free, uint32(idx))
				}
			}
		case idAnswer:
			if idx < answers {
				c.ansBusy[idx] = false
			}
		case idRecv:
			if idx < len(c.recvWRs) {
				c.recv(c.recvBufs[idx][:min(int(wc.Len), len(c.recvBufs[idx]))])
				c.repost = append(c.repost, c.recvWRs[idx])
			}
		}
	}
	if len(c.repost) > 0 && c.state == stateLive {
		if _, err := c.qp.PostRecv(c.repost); err != nil {
			c.end(c.closeErr(err))
		}
	}
}

// recv handles one T→I IU.
func (c *Channel) recv(b []byte) {
	op, err := srp.Peek(b)
	if err != nil {
		c.stats.BadIUs++
		return
	}
	switch op {
	case srp.OpRsp:
		rsp, err := srp.ParseRsp(b)
		if err != nil {
			if len(b) < srp.RspLen {
				c.stats.BadIUs++
				return
			}
			// The header is there: complete the command with the rule
			// the rest broke rather than leave it waiting forever.
			rsp = srp.Rsp{Tag: srp.Tag(b[8:16]), ReqLimDelta: binary.BigEndian.Uint32(b[4:])}
		}
		c.credits += int64(rsp.ReqLimDelta)
		c.response(&rsp, err)
	case srp.OpCredReq:
		r, err := srp.ParseCredReq(b)
		if err != nil {
			c.stats.BadIUs++
			return
		}
		c.credits += int64(r.ReqLimDelta)
		c.stats.CredReqs++
		c.answer(srp.OpCredRsp, r.Tag)
	case srp.OpAerReq:
		r, err := srp.ParseAerReq(b)
		if err != nil {
			c.stats.BadIUs++
			return
		}
		// As ib_srp: take the credits, answer, ignore the event.
		c.credits += int64(r.ReqLimDelta)
		c.stats.AerReqs++
		c.answer(srp.OpAerRsp, r.Tag)
	case srp.OpTLogout:
		l, err := srp.ParseTLogout(b)
		if err != nil {
			c.stats.BadIUs++
			return
		}
		c.end(&LogoutError{Channel: c.id, Reason: l.Reason})
	default:
		c.stats.BadIUs++
	}
}

// response completes the command rsp answers. perr is the rule a
// malformed SRP_RSP broke, which becomes the command's error.
func (c *Channel) response(rsp *srp.Rsp, perr error) {
	u := rsp.Tag.Uint64()
	idx, gen := u&0xFFFFFFFF, uint32(u>>32)
	if idx >= uint64(len(c.slots)) || c.slots[idx].cmd == nil || c.slots[idx].gen != gen {
		c.stats.UnknownTags++
		return
	}
	sl := &c.slots[idx]
	cmd := sl.cmd
	c.release(sl, uint32(idx))
	if perr != nil {
		c.finish(cmd, perr)
		return
	}
	cmd.Status = rsp.Status
	cmd.Flags = rsp.Flags
	cmd.SenseLen = copy(cmd.Sense[:], rsp.Sense)
	cmd.DataOutResid, cmd.DataInResid = rsp.DataOutResCnt, rsp.DataInResCnt
	if cmd.TMF != 0 {
		code, ok := rsp.TMRspCode()
		if !ok {
			code = srp.TMFFailed
		}
		cmd.RspCode = code
		c.finish(cmd, nil)
		if code == srp.TMFComplete {
			c.aborted(cmd)
		}
		return
	}
	out, in := uint64(sl.outLen), uint64(sl.inLen)
	if rsp.Flags&srp.DOUnder != 0 {
		out -= min(out, uint64(rsp.DataOutResCnt))
	}
	if rsp.Flags&srp.DIUnder != 0 {
		in -= min(in, uint64(rsp.DataInResCnt))
	}
	c.stats.BytesOut += out
	c.stats.BytesIn += in
	c.finish(cmd, nil)
}

// release gives slot idx back once its SEND has completed too.
func (c *Channel) release(sl *slot, idx uint32) {
	if sl.cmd.TMF == 0 {
		c.nCmds--
	}
	sl.cmd = nil
	if !sl.sending {
		c.free = append(c.free, idx)
	}
}

// aborted finishes, with ErrAborted, the commands a completed task
// management function ended without an SRP_RSP: the task ABORT TASK
// named, or every command for the LUN, as ib_srp's srp_abort and
// srp_reset_device finish theirs.
func (c *Channel) aborted(tmf *Command) {
	if tmf.TMF == srp.TMFClearACA {
		return
	}
	for i := range c.slots {
		sl := &c.slots[i]
		cmd := sl.cmd
		if cmd == nil || cmd.TMF != 0 {
			continue
		}
		if tmf.TMF == srp.TMFAbortTask && cmd.Tag == tmf.RefTag || tmf.TMF != srp.TMFAbortTask && cmd.LUN == tmf.LUN {
			c.release(sl, uint32(i))
			c.finish(cmd, ErrAborted)
		}
	}
}

// answer sends an initiator response (SRP_CRED_RSP or SRP_AER_RSP) for
// tag from a free answer IU. Answers consume no credit.
func (c *Channel) answer(op srp.Opcode, tag srp.Tag) {
	for i := range c.ansBusy {
		if c.ansBusy[i] {
			continue
		}
		var n int
		if op == srp.OpCredRsp {
			r := srp.CredRsp{Tag: tag}
			n = r.Put(c.ansIU[i])
		} else {
			r := srp.AerRsp{Tag: tag}
			n = r.Put(c.ansIU[i])
		}
		c.ansSGE[i][0].Len = uint32(n)
		c.ansWR[0] = verbs.SendWR{ID: idAnswer | uint64(i), Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: c.ansSGE[i][:]}
		if _, err := c.qp.PostSend(c.ansWR[:]); err != nil {
			c.end(c.closeErr(err))
			return
		}
		c.ansBusy[i] = true
		return
	}
	// A conforming target has one request unanswered at a time.
	c.stats.BadIUs++
}

package initiator

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/verbs"
	"github.com/usrpt/usrpt/verbs/loop"
)

// The fake target: enough of an SRP target port on a loop fabric to drive
// the initiator — logins (accepted or rejected as configured), SRP_CMD
// with direct, indirect and immediate data-out, READ(16)/WRITE(16) against
// a RAM disk, SRP_TSK_MGMT, and hooks to send whatever IU a test needs.

const (
	fakeBlock    = 512
	fakeRAMBytes = 1 << 20
	fakeRecvLen  = 8276 // ib_srpt's default srp_max_req_size
	fakeSends    = 256
)

type fakeOpts struct {
	rej      srp.RejReason // non-zero: answer every login with LOGIN_REJ
	credits  uint32        // initial REQ_LIM_DELTA; 0: 16
	maxITIU  uint32        // 0: fakeRecvLen
	maxTIIU  uint32        // 0: 256 (ib_srpt's srp_max_rsp_size)
	noImm    bool          // never set IMMED_SUPPORTED
	tmfCode  srp.RspCode   // answer to every TMF
	extraLim uint32        // added to every SRP_RSP's REQ_LIM_DELTA
}

type fakeTarget struct {
	t    testing.TB
	opts fakeOpts
	fab  *loop.Fabric
	dev  verbs.Device // the target's
	idev verbs.Device // the initiator's
	addr string
	ln   verbs.Listener
	pd   verbs.PD
	ram  *hugemem.Region
	rmr  verbs.MR

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	logins []srp.LoginReq
	chans  []*fakeChan
	// onCmd may change the SRP_RSP for a command, after the data moved.
	// hold keeps commands unanswered until release.
	onCmd func(c *srp.Cmd, rsp *srp.Rsp)
	hold  bool
	// manual stops the channel reactors from polling: the test steps
	// them itself (fakeChan.step), on its own goroutine.
	manual atomic.Bool

	cmds     atomic.Int64 // SRP_CMDs received
	tmfs     atomic.Int64
	credRsps atomic.Int64
	aerRsps  atomic.Int64
	lastAns  atomic.Uint64 // tag of the last CRED_RSP / AER_RSP
	maxSeen  atomic.Int64  // most commands held at once
	errs     atomic.Int64  // errors seen when ft.t is no *testing.T
}

type fakeChan struct {
	ft      *fakeTarget
	req     srp.LoginReq
	immOff  int
	conn    verbs.Conn
	qp      verbs.QP
	cq      verbs.CQ
	reg     *hugemem.Region
	mr      verbs.MR
	recvWRs []verbs.RecvWR
	sendBuf [][]byte
	sendAt  []uint64
	next    int
	chain   []verbs.SendWR
	sges    [][1]verbs.SGE
	nsge    int
	held    [][]byte
	ctl     chan func(*fakeChan)
	wcs     [16]verbs.WC
	cmd     srp.Cmd
	rsp     srp.Rsp
}

func newFakeTarget(t testing.TB, opts fakeOpts) *fakeTarget {
	t.Helper()
	if opts.credits == 0 {
		opts.credits = 16
	}
	if opts.maxITIU == 0 {
		opts.maxITIU = fakeRecvLen
	}
	if opts.maxTIIU == 0 {
		opts.maxTIIU = 256
	}
	ft := &fakeTarget{t: t, opts: opts, fab: loop.NewFabric(), addr: "192.0.2.1:5000"}
	var err error
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ft.dev, err = ft.fab.NewDevice("target")
	must(err)
	ft.idev, err = ft.fab.NewDevice("initiator")
	must(err)
	ft.pd, err = ft.dev.AllocPD()
	must(err)
	ft.ram, err = hugemem.Map(hugemem.RegionConfig{Size: fakeRAMBytes, Node: -1, Pages: hugemem.PagesSmall})
	must(err)
	ft.rmr, err = ft.pd.RegMR(ft.ram.Bytes()[:fakeRAMBytes], verbs.AccessLocalWrite)
	must(err)
	ft.ln, err = ft.dev.Listen(ft.addr)
	must(err)
	ft.ctx, ft.cancel = context.WithCancel(context.Background())
	ft.wg.Add(1)
	go ft.acceptLoop()
	t.Cleanup(ft.close)
	return ft
}

// errorf reports what the fake target cannot handle: a test error, or for
// a fuzz target (whose *F may not be used from here) a count.
func (ft *fakeTarget) errorf(format string, args ...any) {
	if t, ok := ft.t.(*testing.T); ok {
		t.Errorf(format, args...)
		return
	}
	ft.errs.Add(1)
}

func (ft *fakeTarget) close() {
	ft.cancel()
	_ = ft.ln.Close()
	ft.wg.Wait()
	_ = ft.rmr.Dereg()
	_ = ft.pd.Close()
	_ = ft.ram.Close()
}

func (ft *fakeTarget) acceptLoop() {
	defer ft.wg.Done()
	for {
		req, err := ft.ln.Accept(ft.ctx)
		if err != nil {
			return
		}
		ft.handleLogin(req)
	}
}

func (ft *fakeTarget) handleLogin(req *verbs.ConnRequest) {
	lr, err := srp.ParseLoginReqRDMA(req.PrivateData)
	ft.mu.Lock()
	if err == nil {
		ft.logins = append(ft.logins, lr)
	}
	opts := ft.opts
	ft.mu.Unlock()
	reject := func(reason srp.RejReason) {
		rej := srp.LoginRej{Tag: lr.Tag, Reason: reason, BufFmt: srp.BufDirect | srp.BufIndirect}
		var b [srp.LoginRejLen]byte
		rej.Put(b[:])
		_ = req.Reject(b[:])
	}
	switch {
	case err != nil:
		reject(err.(srp.Error).LoginRej())
		return
	case opts.rej != 0:
		reject(opts.rej)
		return
	case lr.ReqITIULen > fakeRecvLen:
		reject(srp.RejITIULenTooLarge)
		return
	}
	fc := &fakeChan{ft: ft, req: lr, ctl: make(chan func(*fakeChan), 16)}
	if err := fc.setup(opts); err != nil {
		ft.errorf("fake target: %v", err)
		reject(srp.RejNoResources)
		return
	}
	rsp := srp.LoginRsp{Tag: lr.Tag, ReqLimDelta: opts.credits, MaxITIULen: opts.maxITIU, MaxTIIULen: opts.maxTIIU,
		BufFmt: srp.BufDirect | srp.BufIndirect, Flags: srp.ChanMaintained}
	if lr.MultiChan() == srp.MultiChanSingle {
		rsp.Flags = srp.ChanNone
	}
	if lr.ImmRequested() && !opts.noImm {
		rsp.Flags |= srp.LoginImmSupp
		fc.immOff = int(lr.ImmDataOffset)
	}
	var b [srp.LoginRspLen]byte
	rsp.Put(b[:])
	fc.conn, err = req.Accept(fc.qp, verbs.ConnParam{PrivateData: b[:], ResponderResources: 16, InitiatorDepth: 16, RetryCount: 7, RNRRetryCount: 7})
	if err == nil {
		_, err = fc.qp.PostRecv(fc.recvWRs)
	}
	if err != nil {
		// The initiator may be gone again already (its Connect returns
		// before Accept reaches RTS).
		if t, ok := ft.t.(*testing.T); ok {
			t.Logf("fake target: accept: %v", err)
		}
		fc.free()
		return
	}
	ft.mu.Lock()
	ft.chans = append(ft.chans, fc)
	ft.mu.Unlock()
	ft.wg.Add(1)
	go fc.run()
}

func (fc *fakeChan) setup(opts fakeOpts) error {
	ft := fc.ft
	nrecv := int(opts.credits) + 8
	var err error
	if fc.cq, err = ft.dev.CreateCQ(8192); err != nil {
		return err
	}
	if fc.qp, err = ft.pd.CreateQP(verbs.QPConfig{SendCQ: fc.cq, RecvCQ: fc.cq, MaxSendWR: 4096, MaxRecvWR: nrecv, MaxSendSGE: 1, MaxRecvSGE: 1}); err != nil {
		return err
	}
	size := nrecv*fakeRecvLen + fakeSends*int(opts.maxTIIU)
	if fc.reg, err = hugemem.Map(hugemem.RegionConfig{Size: size, Node: -1, Pages: hugemem.PagesSmall}); err != nil {
		return err
	}
	mem := fc.reg.Bytes()[:size]
	if fc.mr, err = ft.pd.RegMR(mem, verbs.AccessLocalWrite); err != nil {
		return err
	}
	off := 0
	for i := 0; i < nrecv; i++ {
		fc.recvWRs = append(fc.recvWRs, verbs.RecvWR{ID: uint64(i), SGL: []verbs.SGE{{Addr: fc.mr.Addr() + uint64(off), Len: fakeRecvLen, LKey: fc.mr.LKey()}}})
		off += fakeRecvLen
	}
	for i := 0; i < fakeSends; i++ {
		fc.sendBuf = append(fc.sendBuf, mem[off:off+int(opts.maxTIIU)])
		fc.sendAt = append(fc.sendAt, fc.mr.Addr()+uint64(off))
		off += int(opts.maxTIIU)
	}
	fc.sges = make([][1]verbs.SGE, 4096)
	return nil
}

func (fc *fakeChan) free() {
	for _, c := range []interface{ Close() error }{fc.qp, fc.cq} {
		if c != nil {
			_ = c.Close()
		}
	}
	if fc.mr != nil {
		_ = fc.mr.Dereg()
	}
	if fc.reg != nil {
		_ = fc.reg.Close()
	}
}

func (fc *fakeChan) recvBuf(i uint64, n uint32) []byte {
	sge := fc.recvWRs[i].SGL[0]
	off := sge.Addr - fc.mr.Addr()
	return fc.reg.Bytes()[off : off+uint64(n)]
}

// run is the channel's reactor: it polls until the connection ends.
func (fc *fakeChan) run() {
	defer fc.ft.wg.Done()
	defer fc.free()
	idle := 0
	for {
		select {
		case <-fc.ft.ctx.Done():
			_ = fc.conn.Disconnect()
			return
		case <-fc.conn.Done():
			return
		case f := <-fc.ctl:
			f(fc)
			continue
		default:
		}
		k := 0
		if !fc.ft.manual.Load() {
			k = fc.step()
		}
		if k == 0 {
			if idle++; idle > 100 {
				time.Sleep(20 * time.Microsecond)
			} else {
				runtime.Gosched()
			}
		} else {
			idle = 0
		}
	}
}

// step handles one batch of completions and returns how many.
func (fc *fakeChan) step() int {
	k := fc.cq.Poll(fc.wcs[:])
	for _, wc := range fc.wcs[:k] {
		if wc.Status != verbs.WCSuccess || wc.Op != verbs.WCRecv {
			continue
		}
		fc.handle(fc.recvBuf(wc.ID, wc.Len))
		_, _ = fc.qp.PostRecv(fc.recvWRs[wc.ID : wc.ID+1])
	}
	return k
}

// sendIU sends b (a T→I IU) after the chain built so far, signaled.
func (fc *fakeChan) sendIU(b []byte) {
	i := fc.next % fakeSends
	fc.next++
	n := copy(fc.sendBuf[i], b)
	fc.addWR(verbs.SendWR{Op: verbs.OpSend, Flags: verbs.SendSignaled}, verbs.SGE{Addr: fc.sendAt[i], Len: uint32(n), LKey: fc.mr.LKey()})
	fc.post()
}

func (fc *fakeChan) addWR(wr verbs.SendWR, sge verbs.SGE) {
	fc.sges[fc.nsge][0] = sge
	wr.SGL = fc.sges[fc.nsge][:]
	fc.nsge++
	fc.chain = append(fc.chain, wr)
}

func (fc *fakeChan) post() {
	if _, err := fc.qp.PostSend(fc.chain); err != nil {
		fc.ft.errorf("fake target: post: %v", err)
	}
	fc.chain, fc.nsge = fc.chain[:0], 0
}

func (fc *fakeChan) handle(b []byte) {
	ft := fc.ft
	op, _ := srp.Peek(b)
	switch op {
	case srp.OpCredRsp:
		ft.lastAns.Store(srp.Tag(b[8:16]).Uint64()) // before the count the test waits for
		ft.credRsps.Add(1)
		return
	case srp.OpAerRsp:
		ft.lastAns.Store(srp.Tag(b[8:16]).Uint64())
		ft.aerRsps.Add(1)
		return
	case srp.OpTskMgmt:
		ft.tmfs.Add(1)
		tm, err := srp.ParseTskMgmt(b)
		if err != nil {
			ft.errorf("fake target: %v", err)
			return
		}
		var rb [srp.RspLen + srp.TMRespLen]byte
		ft.mu.Lock()
		code := ft.opts.tmfCode
		ft.mu.Unlock()
		n := srp.PutTMRsp(rb[:], tm.Tag, 1, code)
		fc.sendIU(rb[:n])
		return
	case srp.OpCmd:
	default:
		ft.errorf("fake target: unexpected IU %v", op)
		return
	}
	ft.cmds.Add(1)
	ft.mu.Lock()
	hold := ft.hold
	ft.mu.Unlock()
	if hold {
		fc.held = append(fc.held, append([]byte(nil), b...))
		ft.maxSeen.Store(max(ft.maxSeen.Load(), int64(len(fc.held))))
		return
	}
	fc.execute(b)
}

// release answers the held commands.
func (fc *fakeChan) release() {
	held := fc.held
	fc.held = nil
	for _, b := range held {
		fc.execute(b)
	}
}

func (fc *fakeChan) execute(b []byte) {
	ft := fc.ft
	// cmd and rsp live in fc so that handing them to the hook does not
	// move them to the heap (TestZeroAllocs counts the target's too).
	cmd, rsp := &fc.cmd, &fc.rsp
	var err error
	if *cmd, err = srp.ParseCmd(b, fc.immOff); err != nil {
		ft.errorf("fake target: SRP_CMD: %v", err)
		return
	}
	*rsp = srp.Rsp{Tag: cmd.Tag, ReqLimDelta: 1 + ft.opts.extraLim}
	var lba uint64
	var blocks uint32
	isRW := len(cmd.CDB) >= 16 && (cmd.CDB[0] == 0x88 || cmd.CDB[0] == 0x8A)
	if isRW {
		lba = binary.BigEndian.Uint64(cmd.CDB[2:])
		blocks = binary.BigEndian.Uint32(cmd.CDB[10:])
	}
	off := lba * fakeBlock
	length := uint64(blocks) * fakeBlock
	if isRW && off+length > fakeRAMBytes {
		rsp.Status = 0x02
		rsp.Sense = []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0x00, 0, 0, 0, 0}
		isRW = false
	}
	ram := ft.ram.Bytes()
	if isRW && cmd.CDB[0] == 0x8A {
		d := &cmd.DataOut
		switch d.Format {
		case srp.FmtImmediate:
			copy(ram[off:off+length], d.List)
		case srp.FmtDirect, srp.FmtIndirect:
			o := off
			for i := range d.NumDesc() {
				desc := d.ListDesc(i)
				n := min(uint64(desc.Len), off+length-o)
				fc.addWR(verbs.SendWR{Op: verbs.OpRDMARead, RemoteAddr: desc.VA, RKey: desc.Key}, verbs.SGE{Addr: ft.rmr.Addr() + o, Len: uint32(n), LKey: ft.rmr.LKey()})
				o += n
			}
		}
		if got := uint64(d.Len()); got < length {
			rsp.Flags |= srp.DOUnder
			rsp.DataOutResCnt = uint32(length - got)
		}
	}
	if isRW && cmd.CDB[0] == 0x88 {
		d := &cmd.DataIn
		o := off
		for i := range d.NumDesc() {
			desc := d.ListDesc(i)
			n := min(uint64(desc.Len), off+length-o)
			fc.addWR(verbs.SendWR{Op: verbs.OpRDMAWrite, RemoteAddr: desc.VA, RKey: desc.Key}, verbs.SGE{Addr: ft.rmr.Addr() + o, Len: uint32(n), LKey: ft.rmr.LKey()})
			o += n
		}
		if got := uint64(d.Len()); got > length {
			rsp.Flags |= srp.DIUnder
			rsp.DataInResCnt = uint32(got - length)
		}
	}
	ft.mu.Lock()
	hook := ft.onCmd
	ft.mu.Unlock()
	if hook != nil {
		hook(cmd, rsp)
	}
	var rb [256]byte
	n := rsp.Put(rb[:ft.opts.maxTIIU])
	fc.sendIU(rb[:n])
}

// do runs f on channel i's reactor and waits for it.
func (ft *fakeTarget) do(i int, f func(fc *fakeChan)) {
	ft.t.Helper()
	var fc *fakeChan
	for deadline := time.Now().Add(10 * time.Second); fc == nil; {
		ft.mu.Lock()
		if i < len(ft.chans) {
			fc = ft.chans[i]
		}
		ft.mu.Unlock()
		if time.Now().After(deadline) {
			ft.t.Fatal("fake target: no channel", i)
		}
		runtime.Gosched()
	}
	done := make(chan struct{})
	fc.ctl <- func(fc *fakeChan) { f(fc); close(done) }
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		ft.t.Fatal("fake target: channel reactor stuck")
	}
}

func (ft *fakeTarget) setHold(h bool) { ft.mu.Lock(); ft.hold = h; ft.mu.Unlock() }
func (ft *fakeTarget) setHook(f func(*srp.Cmd, *srp.Rsp)) {
	ft.mu.Lock()
	ft.onCmd = f
	ft.mu.Unlock()
}

func (ft *fakeTarget) loginReqs() []srp.LoginReq {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]srp.LoginReq(nil), ft.logins...)
}

// Initiator-side helpers.

// testCfg is a Config for the fake target.
func testCfg() Config {
	return Config{
		TargetPortID:       [16]byte{0: 0x01, 15: 0x02},
		ResponderResources: 16,
		InitiatorDepth:     16,
		LoginTimeout:       5 * time.Second,
	}
}

func login(t *testing.T, ft *fakeTarget, cfg Config) *Session {
	t.Helper()
	s, err := Login(context.Background(), ft.idev, ft.addr, cfg)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	t.Cleanup(func() { _ = s.Logout() })
	return s
}

// dataMem maps and registers n bytes of data memory.
func dataMem(t *testing.T, s *Session, n int) []byte {
	t.Helper()
	r, err := hugemem.Map(hugemem.RegionConfig{Size: n, Node: -1, Pages: hugemem.PagesSmall})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	b := r.Bytes()[:n]
	if _, err := s.RegMR(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// wait polls ch until n commands came back.
func wait(t *testing.T, ch *Channel, n int) []*Command {
	t.Helper()
	var got []*Command
	out := make([]*Command, 8)
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < n {
		k := ch.Poll(out)
		got = append(got, out[:k]...)
		if k == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d commands came back; channel err %v, stats %+v", len(got), n, ch.Err(), ch.Stats())
			}
			runtime.Gosched()
		}
	}
	return got
}

// roundTrip submits cmds (all must be taken) and waits for them.
func roundTrip(t *testing.T, ch *Channel, cmds ...*Command) {
	t.Helper()
	if n := ch.Submit(cmds); n != len(cmds) {
		t.Fatalf("Submit took %d of %d", n, len(cmds))
	}
	wait(t, ch, len(cmds))
}

func rw16(op byte, lba uint64, blocks uint32) []byte {
	cdb := make([]byte, 16)
	cdb[0] = op
	binary.BigEndian.PutUint64(cdb[2:], lba)
	binary.BigEndian.PutUint32(cdb[10:], blocks)
	return cdb
}

func isClosed(err error) bool { return errors.Is(err, ErrChannelClosed) }

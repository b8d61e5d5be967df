package target

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/verbs"
	"github.com/usrpt/usrpt/verbs/loop"
)

// testGUID is the rig target's GUID.
const testGUID = 0x0002c90300a1b2c3

// rig is a target on a loop fabric with one mem LU at LUN 0 and an ACL
// that admits everyone, plus an initiator-side device for raw clients.
type rig struct {
	t      testing.TB
	fab    *loop.Fabric
	idev   verbs.Device
	tgt    *Target
	addr   string
	lu     *scsi.LU
	cancel context.CancelFunc
	served chan error
}

const rigLUBytes = 16 << 20

func testCPUs(n int) []int {
	cpus := make([]int, n)
	for i := range cpus {
		cpus[i] = i % runtime.NumCPU()
	}
	return cpus
}

func newRig(t testing.TB, opts ...func(*Config)) *rig {
	t.Helper()
	return newRigWith(t, nil, opts...)
}

// newRigWith is newRig with the LU's engine wrapped by wrap (fault
// injection), when wrap is not nil.
func newRigWith(t testing.TB, wrap func(ioengine.Device) ioengine.Device, opts ...func(*Config)) *rig {
	t.Helper()
	fab := loop.NewFabric()
	tdev, err := fab.NewDevice("tgt")
	if err != nil {
		t.Fatal(err)
	}
	idev, err := fab.NewDevice("ini")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		GUID: testGUID, CPUs: testCPUs(2), Idle: poller.IdlePolicy{Mode: poller.IdleAdaptive, SpinFor: 5 * time.Millisecond, MaxSleep: 200 * time.Microsecond},
		ACLs:      []ACL{{Name: "all", Initiators: []string{"*"}}},
		SmallBufs: 64, LargeBufs: 4, Pages: hugemem.PagesSmall,
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	tgt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var eng ioengine.Device
	eng, err = mem.Open(rigLUBytes, 512)
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		eng = wrap(eng)
	}
	lu, err := scsi.NewLU(scsi.Config{Engine: eng, BlockSize: 512, Serial: "rig0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tgt.AddLUN(0, lu); err != nil {
		t.Fatal(err)
	}
	ln, err := tdev.Listen("srpt")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, fab: fab, idev: idev, tgt: tgt, addr: "srpt", lu: lu, cancel: cancel, served: make(chan error, 1)}
	go func() { r.served <- tgt.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		_ = ln.Close()
		<-r.served
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := tgt.Close(cctx); err != nil {
			t.Errorf("target close: %v", err)
		}
		_ = eng.Close()
	})
	return r
}

// client is a raw SRP initiator channel for tests: it sends any IU the
// test builds and hands back what the target sends, so that tests can
// break every rule on purpose.
type client struct {
	t       testing.TB
	r       *rig
	pd      verbs.PD
	cq      verbs.CQ
	qp      verbs.QP
	conn    verbs.Conn
	reg     *hugemem.Region
	mr      verbs.MR
	rsp     srp.LoginRsp
	nrecv   int
	recvLen int
	imm     int // immediate data offset, 0: off

	// Data memory the target reads and writes: mr covers it.
	data []byte
	sent int
	wcs  [16]verbs.WC
}

const (
	clientIULen   = 8260
	clientRecvLen = 512
	clientRecvs   = 160
	clientData    = 4 << 20
)

type loginOpt struct {
	req   srp.LoginReq
	param verbs.ConnParam
	raw   []byte // private data as is, when set
	nrecv int
}

func defaultLogin(iid byte) loginOpt {
	var o loginOpt
	o.req = srp.LoginReq{
		Tag: srp.TagOf(0), ReqITIULen: clientIULen, BufFmt: srp.BufDirect | srp.BufIndirect,
		Flags: srp.MultiChanSingle | srp.LoginImmRequested, ImmDataOffset: srp.LinuxImmDataOffset,
	}
	o.req.InitiatorPortID[15] = iid
	binary.BigEndian.PutUint64(o.req.TargetPortID[0:], testGUID)
	binary.BigEndian.PutUint64(o.req.TargetPortID[8:], testGUID)
	o.param = verbs.ConnParam{ResponderResources: 16, InitiatorDepth: 4, RNRRetryCount: 7, RetryCount: 7}
	o.nrecv = clientRecvs
	return o
}

// dial logs in; a LOGIN_REJ comes back as the error *rejected.
func (r *rig) dial(o loginOpt) (*client, error) {
	t := r.t
	c := &client{t: t, r: r, nrecv: o.nrecv, recvLen: clientRecvLen}
	var err error
	if c.reg, err = hugemem.Map(hugemem.RegionConfig{Size: clientData + c.nrecv*clientRecvLen + 64*clientIULen, Pages: hugemem.PagesSmall, Node: -1}); err != nil {
		t.Fatal(err)
	}
	if c.pd, err = r.idev.AllocPD(); err != nil {
		t.Fatal(err)
	}
	if c.mr, err = c.pd.RegMR(c.reg.Bytes(), verbs.AccessLocalWrite|verbs.AccessRemoteRead|verbs.AccessRemoteWrite); err != nil {
		t.Fatal(err)
	}
	c.data = c.reg.Bytes()[:clientData]
	if c.cq, err = r.idev.CreateCQ(1024); err != nil {
		t.Fatal(err)
	}
	if c.qp, err = c.pd.CreateQP(verbs.QPConfig{SendCQ: c.cq, RecvCQ: c.cq, MaxSendWR: 256, MaxRecvWR: c.nrecv, MaxSendSGE: 1, MaxRecvSGE: 1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	if err := c.qp.Modify(verbs.QPAttr{State: verbs.QPInit}); err != nil {
		t.Fatal(err)
	}
	for i := range c.nrecv {
		c.postRecv(i)
	}
	pd := o.raw
	if pd == nil {
		var b [srp.LoginReqRDMALen]byte
		o.req.PutRDMA(b[:])
		pd = b[:]
	}
	o.param.PrivateData = pd
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.conn, err = r.idev.Connect(ctx, r.addr, c.qp, o.param)
	if err != nil {
		var re *verbs.RejectError
		if errors.As(err, &re) {
			rej, perr := srp.ParseLoginRej(re.PrivateData)
			if perr != nil {
				return nil, fmt.Errorf("reject without LOGIN_REJ: %v", perr)
			}
			return nil, &rejected{rej}
		}
		return nil, err
	}
	if c.rsp, err = srp.ParseLoginRsp(c.conn.PrivateData()); err != nil {
		t.Fatalf("LOGIN_RSP: %v", err)
	}
	if c.rsp.Flags&srp.LoginImmSupp != 0 {
		c.imm = int(o.req.ImmDataOffset)
	}
	return c, nil
}

type rejected struct{ srp.LoginRej }

func (e *rejected) Error() string { return "LOGIN_REJ " + e.Reason.String() }

func (r *rig) login(iid byte) *client {
	r.t.Helper()
	c, err := r.dial(defaultLogin(iid))
	if err != nil {
		r.t.Fatalf("login: %v", err)
	}
	c.clearUA()
	return c
}

func (c *client) close() {
	if c.conn != nil {
		_ = c.conn.Disconnect()
	}
	_ = c.qp.Close()
	_ = c.cq.Close()
	_ = c.mr.Dereg()
	_ = c.pd.Close()
	_ = c.reg.Close()
}

func (c *client) recvBuf(i int) []byte {
	off := clientData + i*clientRecvLen
	return c.reg.Bytes()[off : off+clientRecvLen]
}

func (c *client) postRecv(i int) {
	b := c.recvBuf(i)
	sge := []verbs.SGE{{Addr: addrOf(b, 0), Len: uint32(len(b)), LKey: c.mr.LKey()}}
	if _, err := c.qp.PostRecv([]verbs.RecvWR{{ID: uint64(i), SGL: sge}}); err != nil {
		c.t.Fatalf("post recv: %v", err)
	}
}

// sendSlot is the memory of send slot k.
func (c *client) sendSlot(k int) []byte {
	off := clientData + c.nrecv*clientRecvLen + (k%64)*clientIULen
	return c.reg.Bytes()[off : off+clientIULen]
}

// send sends iu (copied into a registered send slot).
func (c *client) send(iu []byte) {
	c.t.Helper()
	b := c.sendSlot(c.sent)
	c.sent++
	n := copy(b, iu)
	sge := []verbs.SGE{{Addr: addrOf(b, 0), Len: uint32(n), LKey: c.mr.LKey()}}
	if _, err := c.qp.PostSend([]verbs.SendWR{{ID: 1 << 40, Op: verbs.OpSend, Flags: verbs.SendSignaled, SGL: sge}}); err != nil {
		c.t.Fatalf("post send: %v", err)
	}
}

// sendBatch sends ius as one chain of SENDs (one PostSend): on the loop
// fabric they reach the target's CQ together.
func (c *client) sendBatch(ius ...[]byte) {
	c.t.Helper()
	wrs := make([]verbs.SendWR, len(ius))
	for i, iu := range ius {
		b := c.sendSlot(c.sent)
		c.sent++
		n := copy(b, iu)
		wrs[i] = verbs.SendWR{ID: 1 << 40, Op: verbs.OpSend, SGL: []verbs.SGE{{Addr: addrOf(b, 0), Len: uint32(n), LKey: c.mr.LKey()}}}
	}
	wrs[len(wrs)-1].Flags = verbs.SendSignaled
	if _, err := c.qp.PostSend(wrs); err != nil {
		c.t.Fatalf("post sends: %v", err)
	}
}

// recv waits for the next IU from the target; nil when the channel ended
// or nothing came within d.
func (c *client) recv(d time.Duration) []byte {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n := c.cq.Poll(c.wcs[:1])
		if n == 0 {
			time.Sleep(20 * time.Microsecond)
			continue
		}
		wc := c.wcs[0]
		if wc.ID == 1<<40 {
			if wc.Status != verbs.WCSuccess {
				return nil
			}
			continue // our send completed
		}
		if wc.Status != verbs.WCSuccess {
			return nil
		}
		b := append([]byte(nil), c.recvBuf(int(wc.ID))[:wc.Len]...)
		c.postRecv(int(wc.ID))
		return b
	}
	return nil
}

func (c *client) mustRecv() []byte {
	c.t.Helper()
	b := c.recv(5 * time.Second)
	if b == nil {
		c.t.Fatal("no IU from the target")
	}
	return b
}

// desc is a descriptor of data[off:off+n].
func (c *client) desc(off, n int) srp.Desc {
	return srp.Desc{VA: addrOf(c.data, off), Key: c.mr.RKey(), Len: uint32(n)}
}

// cmd builds an SRP_CMD IU.
func (c *client) cmd(tag uint64, cdb []byte, out, in srp.DataBuf) []byte {
	cm := srp.Cmd{Tag: srp.TagOf(tag), CDB: cdb, DataOut: out, DataIn: in}
	b := make([]byte, clientIULen)
	n := cm.Put(b, c.imm)
	if n == 0 {
		c.t.Fatal("cannot encode SRP_CMD")
	}
	return b[:n]
}

func direct(d srp.Desc) srp.DataBuf {
	return srp.DataBuf{Format: srp.FmtDirect, Desc: d, Total: d.Len}
}

// indirect describes ds with the whole table in the IU.
func indirect(ds ...srp.Desc) srp.DataBuf {
	list := make([]byte, 16*len(ds))
	var total uint32
	for i, d := range ds {
		d.Put(list[16*i:])
		total += d.Len
	}
	return srp.DataBuf{Format: srp.FmtIndirect, Count: uint8(len(ds)), Desc: srp.Desc{Len: uint32(len(list))}, Total: total, List: list}
}

func rw16(write bool, lba uint64, blocks uint32) []byte {
	c := make([]byte, 16)
	c[0] = byte(scsi.Read16)
	if write {
		c[0] = byte(scsi.Write16)
	}
	binary.BigEndian.PutUint64(c[2:], lba)
	binary.BigEndian.PutUint32(c[10:], blocks)
	return c
}

// rsp waits for an SRP_RSP and decodes it.
func (c *client) rspFor(tag uint64) srp.Rsp {
	c.t.Helper()
	{
		b := c.mustRecv()
		op, _ := srp.Peek(b)
		if op != srp.OpRsp {
			c.t.Fatalf("got %v, want SRP_RSP", op)
		}
		r, err := srp.ParseRsp(b)
		if err != nil {
			c.t.Fatalf("SRP_RSP: %v", err)
		}
		if r.Tag.Uint64() != tag {
			c.t.Fatalf("SRP_RSP tag %v, want %#x", r.Tag, tag)
		}
		return r
	}
}

// do sends a command and waits for its response.
func (c *client) do(tag uint64, cdb []byte, out, in srp.DataBuf) srp.Rsp {
	c.t.Helper()
	c.send(c.cmd(tag, cdb, out, in))
	return c.rspFor(tag)
}

// clearUA sends TEST UNIT READY until GOOD.
func (c *client) clearUA() {
	c.t.Helper()
	for range 8 {
		r := c.do(0xfff0, make([]byte, 6), srp.DataBuf{}, srp.DataBuf{})
		if r.Status == 0 {
			return
		}
	}
	c.t.Fatal("unit attentions do not clear")
}

func senseKey(r srp.Rsp) (scsi.Key, uint8, uint8) {
	k, asc, ascq, _ := scsi.ParseSense(r.Sense)
	return k, asc, ascq
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

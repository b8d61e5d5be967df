package target

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/verbs"
)

// ErrClosed is returned once the target is closed.
var ErrClosed = errors.New("target: closed")

// callTimeout bounds a control-plane call into a reactor.
const callTimeout = 5 * time.Second

// Target is an SRP target port: its reactors, LUNs, ACLs, the I_T nexuses
// logged in and their channels. Its methods are control plane and safe
// for concurrent use.
type Target struct {
	cfg    Config
	portID [16]byte
	g      *poller.Group
	rs     []*reactor

	mu      sync.Mutex
	cond    *sync.Cond // signalled when a channel is gone
	luns    map[uint16]*scsi.LU
	nexuses map[[32]byte]*nexus
	chans   map[uint64]*channel
	devs    map[verbs.Device]*devState
	nextID  uint64
	closing bool
	closed  bool

	wg         sync.WaitGroup
	logins     atomic.Uint64
	rejects    [8]atomic.Uint64 // by RejReason - RejUnable; 7: other
	tmfDropped atomic.Uint64
}

// nexus is an I_T nexus at the SRP level: an initiator port logged in to
// this target port, with one or more channels.
type nexus struct {
	key    [32]byte // initiator port ID ‖ target port ID (ib_srpt's nexus key)
	iid    [16]byte
	id     uint64
	sn     *scsi.Nexus
	acl    *ACL
	peer   verbs.Peer
	chans  []*channel
	closed bool // superseded by a SINGLE login: takes no new channels
}

// devState is what the target keeps per verbs device: a protection domain
// and each reactor's data buffers registered in it.
type devState struct {
	pd  verbs.PD
	mrs []verbs.MR
}

// New starts a target's reactors. Add LUNs with AddLUN and serve
// listeners with Serve.
func New(cfg Config) (*Target, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g, err := poller.NewGroup(poller.Config{CPUs: c.CPUs, Idle: c.Idle, Logger: c.Logger})
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	t := &Target{
		cfg: c, portID: c.TargetPortID(), g: g,
		luns: map[uint16]*scsi.LU{}, nexuses: map[[32]byte]*nexus{},
		chans: map[uint64]*channel{}, devs: map[verbs.Device]*devState{},
	}
	t.cond = sync.NewCond(&t.mu)
	for _, pr := range g.Reactors() {
		rx, err := newReactor(t, pr)
		if err != nil {
			t.freeReactors()
			return nil, err
		}
		t.rs = append(t.rs, rx)
	}
	if err := g.Start(); err != nil {
		t.freeReactors()
		return nil, fmt.Errorf("target: %w", err)
	}
	return t, nil
}

func (t *Target) freeReactors() {
	for _, rx := range t.rs {
		_ = rx.region.Close()
	}
}

// Config is the configuration in effect, defaults filled in.
func (t *Target) Config() Config { return t.cfg }

// Group is the target's reactors, for statistics.
func (t *Target) Group() *poller.Group { return t.g }

// PortID is the target port identifier initiators must name.
func (t *Target) PortID() [16]byte { return t.portID }

// LoginString is what an initiator writes to ib_srp's add_target to log
// in through a listener at addr ("IP:port"), in the RDMA/CM form.
func (t *Target) LoginString(addr string) string {
	return fmt.Sprintf("id_ext=%016x,ioc_guid=%016x,dest=%s", t.cfg.IDExt, t.cfg.GUID, addr)
}

// LoginStringIB is the add_target string for native InfiniBand (IB CM):
// the port's GID and the service ID, which is the target GUID as ib_srpt
// uses it.
func (t *Target) LoginStringIB(gid [16]byte) string {
	return fmt.Sprintf("id_ext=%016x,ioc_guid=%016x,dgid=%032x,pkey=ffff,service_id=%016x",
		t.cfg.IDExt, t.cfg.GUID, gid[:], t.cfg.GUID)
}

// --- LUNs -----------------------------------------------------------------

// AddLUN exports lu at LUN number n: each reactor opens a queue on its
// engine. Initiators whose ACL covers n see it at once (REPORTED LUNS
// DATA HAS CHANGED, and POWER ON for the new LUN).
func (t *Target) AddLUN(n uint16, lu *scsi.LU) error {
	if _, ok := scsi.EncodeLUN(n); !ok {
		return fmt.Errorf("target: LUN %d: want 0 to 16383", n)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return ErrClosed
	}
	if _, ok := t.luns[n]; ok {
		return fmt.Errorf("target: LUN %d exists", n)
	}
	eng := lu.Config().Engine
	var attached []*reactor
	for _, rx := range t.rs {
		var err error
		cerr := t.g.Call(rx.id, callTimeout, func(*poller.Reactor) {
			var q ioengine.Queue
			q, err = eng.NewQueue(ioengine.QueueConfig{Depth: t.cfg.ReactorDepth, Buffers: [][]byte{rx.region.Bytes()}})
			if err != nil {
				return
			}
			if err = rx.exec.Attach(lu, q); err != nil {
				_ = q.Close()
				return
			}
			if int(n) >= len(rx.lunStats) {
				rx.lunStats = append(rx.lunStats, make([]LUNStats, int(n)+1-len(rx.lunStats))...)
			}
		})
		if err == nil {
			err = cerr
		}
		if err != nil {
			for _, a := range attached {
				t.detach(a, lu)
			}
			return fmt.Errorf("target: LUN %d on reactor %d: %w", n, rx.id, err)
		}
		attached = append(attached, rx)
	}
	t.luns[n] = lu
	t.remapLocked()
	return nil
}

// RemoveLUN stops exporting LUN n. Initiators get REPORTED LUNS DATA HAS
// CHANGED; commands already started on it finish first.
func (t *Target) RemoveLUN(n uint16) error {
	t.mu.Lock()
	lu, ok := t.luns[n]
	if !ok {
		t.mu.Unlock()
		return fmt.Errorf("target: no LUN %d", n)
	}
	delete(t.luns, n)
	t.remapLocked()
	t.mu.Unlock()
	var errs []error
	for _, rx := range t.rs {
		errs = append(errs, t.detach(rx, lu))
	}
	return errors.Join(errs...)
}

// detach takes lu off rx once its tasks there are done.
func (t *Target) detach(rx *reactor, lu *scsi.LU) error {
	deadline := time.Now().Add(callTimeout)
	for {
		var q ioengine.Queue
		var err error
		if cerr := t.g.Call(rx.id, callTimeout, func(*poller.Reactor) { q, err = rx.exec.Detach(lu) }); cerr != nil {
			return cerr
		}
		if err == nil {
			return q.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("target: reactor %d: %w", rx.id, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// LUNs returns the exported LUNs.
func (t *Target) LUNs() map[uint16]*scsi.LU {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[uint16]*scsi.LU, len(t.luns))
	for k, v := range t.luns {
		m[k] = v
	}
	return m
}

// lunMap is the LUN map of an ACL group.
func (t *Target) lunMap(acl *ACL) []scsi.Mapping {
	var m []scsi.Mapping
	for n, lu := range t.luns {
		if acl.LUNs == nil || slices.Contains(acl.LUNs, n) {
			m = append(m, scsi.Mapping{LUN: n, LU: lu})
		}
	}
	slices.SortFunc(m, func(a, b scsi.Mapping) int { return int(a.LUN) - int(b.LUN) })
	return m
}

func (t *Target) remapLocked() {
	for _, nx := range t.nexuses {
		if err := nx.sn.SetLUNs(t.lunMap(nx.acl)); err != nil {
			t.cfg.Logger.Error("LUN map", "nexus", nx.id, "err", err)
		}
	}
}

// SetACLs replaces the ACL groups. Logged-in nexuses keep their channels;
// their LUN maps follow their group's new LUN list (by name), and a nexus
// whose group is gone keeps its map until it logs out.
func (t *Target) SetACLs(acls []ACL) error {
	c := t.cfg
	c.ACLs = slices.Clone(acls)
	for i := range c.ACLs {
		if err := c.ACLs[i].compile(); err != nil {
			return fmt.Errorf("%w: ACL %q: %v", ErrConfig, c.ACLs[i].Name, err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cfg.ACLs = c.ACLs
	for _, nx := range t.nexuses {
		for i := range t.cfg.ACLs {
			if t.cfg.ACLs[i].Name == nx.acl.Name {
				nx.acl = &t.cfg.ACLs[i]
			}
		}
	}
	t.remapLocked()
	return nil
}

// --- login ----------------------------------------------------------------

// Serve answers the connection requests of ln until ctx ends or ln is
// closed. Several listeners may be served at once.
func (t *Target) Serve(ctx context.Context, ln verbs.Listener) error {
	for {
		req, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, verbs.ErrClosed) {
				return nil
			}
			return fmt.Errorf("target: accept on %s: %w", ln.Addr(), err)
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.login(req)
		}()
	}
}

// Rejects counts login rejects by reason.
func (t *Target) reject(req *verbs.ConnRequest, tag srp.Tag, reason srp.RejReason, why string) {
	i := int(reason - srp.RejUnable)
	if i < 0 || i >= len(t.rejects)-1 {
		i = len(t.rejects) - 1
	}
	t.rejects[i].Add(1)
	t.cfg.Logger.Info("login rejected", "peer", peerString(req.Peer), "reason", reason, "why", why)
	rej := srp.LoginRej{Tag: tag, Reason: reason, BufFmt: srp.BufDirect | srp.BufIndirect}
	var b [srp.LoginRejLen]byte
	rej.Put(b[:])
	_ = req.Reject(b[:])
}

func peerString(p verbs.Peer) string {
	if p.Addr.IsValid() {
		return p.Addr.String()
	}
	return fmt.Sprintf("%032x", p.GID[:])
}

func (t *Target) parseLogin(b []byte) (srp.LoginReq, error) {
	if t.cfg.Form == LoginIBCM {
		return srp.ParseLoginReq(b)
	}
	return srp.ParseLoginReqRDMA(b)
}

// login answers one connection request: the checks ib_srpt makes, in its
// order, then ACL, nexus and channel set-up, then accept with LOGIN_RSP.
func (t *Target) login(req *verbs.ConnRequest) {
	lr, err := t.parseLogin(req.PrivateData)
	if err != nil {
		reason := srp.RejUnable
		if e, ok := err.(srp.Error); ok {
			reason = e.LoginRej()
		}
		t.reject(req, lr.Tag, reason, err.Error())
		return
	}
	cfg := &t.cfg
	switch {
	case lr.ReqITIULen > uint32(cfg.MaxITIULen):
		t.reject(req, lr.Tag, srp.RejITIULenTooLarge, fmt.Sprintf("IT IU length %d over %d", lr.ReqITIULen, cfg.MaxITIULen))
		return
	case lr.TargetPortID != t.portID:
		t.reject(req, lr.Tag, srp.RejUnableAssociate, fmt.Sprintf("target port ID %x is not ours (%x)", lr.TargetPortID, t.portID))
		return
	case lr.BufFmt&^(srp.BufDirect|srp.BufIndirect) != 0:
		t.reject(req, lr.Tag, srp.RejUnsupportedDescFmt, fmt.Sprintf("required buffer formats %#x", uint16(lr.BufFmt)))
		return
	case req.Param.ResponderResources == 0:
		t.reject(req, lr.Tag, srp.RejNoResources, "the initiator allows no RDMA READ (responder resources 0)")
		return
	}
	var addr netip.Addr
	if req.Peer.Addr.IsValid() {
		addr = req.Peer.Addr.Addr()
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		t.reject(req, lr.Tag, srp.RejUnable, "the target is shutting down")
		return
	}
	var acl *ACL
	for i := range cfg.ACLs {
		if cfg.ACLs[i].Match(lr.InitiatorPortID, addr) {
			acl = &cfg.ACLs[i]
			break
		}
	}
	if acl == nil {
		t.reject(req, lr.Tag, srp.RejUnableAssociate, fmt.Sprintf("no ACL admits initiator %x", lr.InitiatorPortID))
		return
	}
	var key [32]byte
	copy(key[:16], lr.InitiatorPortID[:])
	copy(key[16:], lr.TargetPortID[:])
	nx := t.nexuses[key]
	flags := srp.ChanMaintained // ib_srpt answers MULTI so even when no channel existed
	if lr.MultiChan() == srp.MultiChanSingle {
		flags = srp.ChanNone
		if nx != nil {
			if len(nx.chans) > 0 {
				flags = srp.ChanTerminated
			}
			t.terminateLocked(nx, srp.LogoutMultiChan)
			nx = nil
		}
	} else if nx != nil && len(nx.chans) >= cfg.MaxChannels {
		t.reject(req, lr.Tag, srp.RejChanLimit, fmt.Sprintf("nexus has %d channels", len(nx.chans)))
		return
	}
	fresh := nx == nil
	if fresh {
		sn, err := scsi.NewNexus(scsi.NexusConfig{
			TransportID: scsi.SRPTransportID(lr.InitiatorPortID), RelPort: cfg.RelPort, LUNs: t.lunMap(acl),
		})
		if err != nil {
			t.reject(req, lr.Tag, srp.RejNoResources, err.Error())
			return
		}
		t.nextID++
		nx = &nexus{key: key, iid: lr.InitiatorPortID, id: t.nextID, sn: sn, acl: acl, peer: req.Peer}
	}
	immOff := 0
	if lr.ImmRequested() && !cfg.NoImmData && int(lr.ImmDataOffset) >= srp.CmdLen && int(lr.ImmDataOffset) < cfg.MaxITIULen {
		immOff = int(lr.ImmDataOffset)
		flags |= srp.LoginImmSupp
	}
	rx := t.place(nx)
	ch, err := t.newChannel(req.Device, rx, nx, immOff)
	if err != nil {
		if fresh {
			sn := nx.sn
			sn.Close()
		}
		t.reject(req, lr.Tag, srp.RejNoResources, err.Error())
		return
	}
	rsp := srp.LoginRsp{
		Tag: lr.Tag, ReqLimDelta: uint32(cfg.Credits), MaxITIULen: uint32(cfg.MaxITIULen),
		MaxTIIULen: uint32(cfg.MaxTIIULen), BufFmt: srp.BufDirect | srp.BufIndirect, Flags: flags,
	}
	var b [srp.LoginRspLen]byte
	rsp.Put(b[:])
	depth := min(int(req.Param.ResponderResources), cfg.RDMAReads, max(req.Device.Attr().MaxQPInitRdAtom, 1))
	// Receives go up before the accept, as ib_srpt posts them: the
	// initiator may send its first SRP_CMD the moment it has LOGIN_RSP.
	if err := ch.qp.Modify(verbs.QPAttr{State: verbs.QPInit}); err != nil {
		ch.free1()
		if fresh {
			nx.sn.Close()
		}
		t.reject(req, lr.Tag, srp.RejNoResources, fmt.Sprintf("QP to INIT: %v", err))
		return
	}
	for i := range ch.recvs {
		ch.repost(int32(i))
	}
	ch.flush()
	conn, err := req.Accept(ch.qp, verbs.ConnParam{PrivateData: b[:], InitiatorDepth: uint8(depth), RNRRetryCount: 7, RetryCount: 7})
	if err != nil {
		ch.free1()
		if fresh {
			nx.sn.Close()
		}
		t.cfg.Logger.Info("login: accept failed", "peer", peerString(req.Peer), "err", err)
		return
	}
	ch.conn = conn
	ch.rdFree = max(1, min(depth, int(conn.Param().InitiatorDepth)))
	if fresh {
		t.nexuses[key] = nx
	}
	nx.chans = append(nx.chans, ch)
	t.chans[ch.id] = ch
	rx.nchan++
	t.logins.Add(1)
	for !rx.pr.Send(addChannel, ch) {
		time.Sleep(time.Millisecond)
	}
	rx.pr.Wake()
	go func() {
		<-conn.Done()
		for range 1000 {
			if rx.pr.Send(peerGone, ch) {
				rx.pr.Wake()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	t.cfg.Logger.Info("login", "peer", peerString(req.Peer), "initiator", fmt.Sprintf("%x", lr.InitiatorPortID),
		"acl", acl.Name, "channel", ch.id, "reactor", rx.id, "nexus", nx.id, "imm", immOff, "result", flags&srp.ChanResultMask)
}

// terminateLocked ends every channel of nx with SRP_T_LOGOUT and takes nx
// out of the table; its scsi nexus closes when its last channel is gone.
func (t *Target) terminateLocked(nx *nexus, reason srp.TLogoutReason) {
	nx.closed = true
	if t.nexuses[nx.key] == nx {
		delete(t.nexuses, nx.key)
	}
	for _, ch := range nx.chans {
		m := &closeMsg{ch: ch, reason: reason}
		for !ch.rx.pr.Send(closeChannel, m) {
			time.Sleep(time.Millisecond)
		}
		ch.rx.pr.Wake()
	}
	if len(nx.chans) == 0 {
		nx.sn.Close()
	}
}

// place picks the reactor for a new channel of nx: the one with the
// fewest channels of nx, then the fewest channels.
func (t *Target) place(nx *nexus) *reactor {
	var best *reactor
	bestOwn, bestAll := 0, 0
	for _, rx := range t.rs {
		own := 0
		for _, ch := range nx.chans {
			if ch.rx == rx {
				own++
			}
		}
		if best == nil || own < bestOwn || own == bestOwn && rx.nchan < bestAll {
			best, bestOwn, bestAll = rx, own, rx.nchan
		}
	}
	return best
}

// devStateLocked returns the PD and data MRs for dev, registering the
// reactors' buffers the first time a channel uses dev.
func (t *Target) devStateLocked(dev verbs.Device) (*devState, error) {
	if ds, ok := t.devs[dev]; ok {
		return ds, nil
	}
	pd, err := dev.AllocPD()
	if err != nil {
		return nil, fmt.Errorf("allocate PD: %w", err)
	}
	ds := &devState{pd: pd}
	for _, rx := range t.rs {
		mr, err := pd.RegMR(rx.region.Bytes(), verbs.AccessLocalWrite)
		if err != nil {
			for _, m := range ds.mrs {
				_ = m.Dereg()
			}
			_ = pd.Close()
			return nil, fmt.Errorf("register reactor %d buffers: %w", rx.id, err)
		}
		ds.mrs = append(ds.mrs, mr)
	}
	t.devs[dev] = ds
	return ds, nil
}

// newChannel makes a channel's memory, CQ and QP on dev for reactor rx.
func (t *Target) newChannel(dev verbs.Device, rx *reactor, nx *nexus, immOff int) (*channel, error) {
	ds, err := t.devStateLocked(dev)
	if err != nil {
		return nil, err
	}
	cfg := &t.cfg
	attr := dev.Attr()
	nRecv := cfg.Credits + extraRecvs
	sqDepth := 4*cfg.Credits + 16
	if attr.MaxQPWR > 0 {
		sqDepth = min(sqDepth, attr.MaxQPWR)
		if nRecv > attr.MaxQPWR {
			return nil, fmt.Errorf("%d credits need %d receives; the device allows %d", cfg.Credits, nRecv, attr.MaxQPWR)
		}
	}
	nReq := nRecv + sqDepth
	recvStride := roundUp(cfg.MaxITIULen, 64)
	sendStride := roundUp(cfg.MaxTIIULen, 64)
	size := nRecv*recvStride + (nReq+ctlBufs)*sendStride
	region, err := hugemem.Map(hugemem.RegionConfig{Size: size, Pages: hugemem.PagesSmall, Node: -1})
	if err != nil {
		return nil, err
	}
	t.nextID++
	ch := &channel{
		t: t, rx: rx, nx: nx, id: t.nextID, region: region,
		maxITIU: cfg.MaxITIULen, maxTIIU: cfg.MaxTIIULen, immOff: immOff, sqDepth: sqDepth,
		credits0: cfg.Credits, credits: cfg.Credits, sqFree: sqDepth,
		dataLKey: ds.mrs[rx.id].LKey(),
		recvs:    make([][]byte, nRecv),
		rsp:      make([][]byte, nReq),
		reqs:     make([]request, nReq),
		free:     make([]int32, 0, nReq),
		sent:     make([]int32, nReq),
		lastRsp:  -1,
		wcs:      make([]verbs.WC, 64),
		sendWRs:  make([]verbs.SendWR, 0, sqDepth),
		sendSGEs: make([]verbs.SGE, sqDepth),
		recvWRs:  make([]verbs.RecvWR, 0, nRecv),
		recvSGEs: make([]verbs.SGE, nRecv),
	}
	mem := region.Bytes()
	off := 0
	for i := range ch.recvs {
		ch.recvs[i] = mem[off : off+cfg.MaxITIULen : off+cfg.MaxITIULen]
		off += recvStride
	}
	for i := range ch.rsp {
		ch.rsp[i] = mem[off : off+cfg.MaxTIIULen : off+cfg.MaxTIIULen]
		off += sendStride
	}
	for i := range ch.ctl {
		ch.ctl[i] = mem[off : off+cfg.MaxTIIULen : off+cfg.MaxTIIULen]
		off += sendStride
	}
	for i := range ch.reqs {
		r := &ch.reqs[i]
		r.ch, r.idx, r.recv = ch, int32(i), -1
		ch.free = append(ch.free, int32(nReq-1-i))
	}
	fail := func(err error) (*channel, error) {
		ch.free1()
		return nil, err
	}
	if ch.mr, err = ds.pd.RegMR(mem, verbs.AccessLocalWrite); err != nil {
		return fail(fmt.Errorf("register channel memory: %w", err))
	}
	ch.lkey = ch.mr.LKey()
	if ch.cq, err = dev.CreateCQ(sqDepth + nRecv); err != nil {
		return fail(fmt.Errorf("create CQ: %w", err))
	}
	ch.qp, err = ds.pd.CreateQP(verbs.QPConfig{
		SendCQ: ch.cq, RecvCQ: ch.cq, MaxSendWR: sqDepth, MaxRecvWR: nRecv, MaxSendSGE: 1, MaxRecvSGE: 1,
	})
	if err != nil {
		return fail(fmt.Errorf("create QP: %w", err))
	}
	return ch, nil
}

// free1 releases a channel's verbs objects and memory (control plane,
// once the reactor is done with it or never had it).
func (ch *channel) free1() {
	if ch.conn != nil {
		_ = ch.conn.Disconnect()
	}
	if ch.qp != nil {
		_ = ch.qp.Close()
	}
	if ch.cq != nil {
		_ = ch.cq.Close()
	}
	if ch.mr != nil {
		_ = ch.mr.Dereg()
	}
	if ch.region != nil {
		_ = ch.region.Close()
	}
}

// channelGone is the control plane's half of a channel's end.
func (t *Target) channelGone(ch *channel, stats ChannelStats) {
	ch.free1()
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.chans, ch.id)
	ch.rx.nchan--
	nx := ch.nx
	nx.chans = slices.DeleteFunc(nx.chans, func(c *channel) bool { return c == ch })
	if len(nx.chans) == 0 {
		if t.nexuses[nx.key] == nx {
			delete(t.nexuses, nx.key)
		}
		nx.sn.Close()
	}
	t.cfg.Logger.Info("channel gone", "channel", ch.id, "nexus", nx.id, "commands", stats.Commands)
	t.cond.Broadcast()
}

func (s *ChannelStats) add(o *ChannelStats) {
	s.Commands += o.Commands
	s.TaskMgmt += o.TaskMgmt
	s.ReadBytes += o.ReadBytes
	s.WriteBytes += o.WriteBytes
	s.CheckCond += o.CheckCond
	s.Aborted += o.Aborted
	s.BufferWaits += o.BufferWaits
	s.SendWaits += o.SendWaits
	s.CreditOverrun += o.CreditOverrun
	s.ProtocolErrs += o.ProtocolErrs
	s.CredReqs += o.CredReqs
	s.TransportErrs += o.TransportErrs
}

// --- shutdown -------------------------------------------------------------

// Close logs every channel out (SRP_T_LOGOUT), waits until their commands
// are done or ctx ends, stops the reactors and releases everything.
func (t *Target) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closing = true
	for _, nx := range t.nexuses {
		t.terminateLocked(nx, srp.LogoutNone)
	}
	stop := context.AfterFunc(ctx, func() {
		t.mu.Lock()
		t.cond.Broadcast()
		t.mu.Unlock()
	})
	for len(t.chans) > 0 && ctx.Err() == nil {
		t.cond.Wait()
	}
	stop()
	left := len(t.chans)
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
	t.g.Stop()
	var errs []error
	if left > 0 {
		errs = append(errs, fmt.Errorf("target: %d channels still draining at shutdown: %w", left, ctx.Err()))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ch := range t.chans {
		ch.free1()
	}
	for _, lu := range t.luns {
		for _, rx := range t.rs {
			if q, err := rx.exec.Detach(lu); err == nil {
				errs = append(errs, q.Close())
			} else {
				errs = append(errs, err)
			}
		}
	}
	for _, ds := range t.devs {
		for _, mr := range ds.mrs {
			errs = append(errs, mr.Dereg())
		}
		errs = append(errs, ds.pd.Close())
	}
	t.freeReactors()
	return errors.Join(errs...)
}

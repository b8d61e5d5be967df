package target

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usrpt/usrpt/ioengine/mem"
	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/verbs/loop"
)

// The hostile-initiator suite: an initiator that breaks the protocol on
// purpose. In every case the target must answer as the protocol says (an
// SRP_T_LOGOUT with the reason and the end of the channel, a CHECK
// CONDITION with the sense, a task management RSP_CODE, or, for RDMA to
// memory the initiator never registered, the end of that channel), a
// well-behaved initiator logged in beside it must go on being served, and
// once the hostile channel is gone nothing of it may be left: buffers,
// requests, credits, task management parts, goroutines, verbs memory.

// hostile is one case. attack sends what the attacker sends and checks the
// answer; good is the well-behaved initiator logged in before it.
type hostile struct {
	name      string
	cfg       func(*Config)
	setup     func(r *rig)    // before anyone logs in
	login     func(*loginOpt) // the attacker's login
	goodLogin func(*loginOpt) // the good initiator's
	attack    func(r *rig, a, good *hc)
	dies      bool // the attacked channel ends; else it must go on serving
}

const (
	goodIID     = 1
	attackerIID = 2
)

func runHostile(t *testing.T, tc hostile) {
	var opts []func(*Config)
	if tc.cfg != nil {
		opts = append(opts, tc.cfg)
	}
	r := newRig(t, opts...)
	if tc.setup != nil {
		tc.setup(r)
	}
	var gm, am []func(*loginOpt)
	if tc.goodLogin != nil {
		gm = append(gm, tc.goodLogin)
	}
	if tc.login != nil {
		am = append(am, tc.login)
	}
	good := r.hlogin(goodIID, gm...)
	good.roundTrip()
	g0 := runtime.NumGoroutine()
	a := r.hlogin(attackerIID, am...)
	chs := r.chansOf(attackerIID)
	tc.attack(r, a, good)
	if !tc.dies {
		// A refused command leaves the channel as it was.
		a.roundTrip()
		a.checkCredits()
		r.checkNoLeak(t, 2, -1)
		a.iLogout()
	}
	good.roundTrip()
	good.checkCredits()
	r.checkNoLeak(t, 1, g0)
	checkFreed(t, chs)
}

// logoutOn: the IU build returns ends the channel with SRP_T_LOGOUT reason.
func logoutOn(name string, reason srp.TLogoutReason, build func(a *hc) []byte) hostile {
	return hostile{name: name, dies: true, attack: func(_ *rig, a, _ *hc) {
		a.send(build(a))
		a.expectLogout(reason)
	}}
}

// checkOn: the command build returns is answered with CHECK CONDITION,
// ILLEGAL REQUEST, asc/ascq, and the channel serves on.
func checkOn(name string, asc, ascq uint8, build func(a *hc, tag uint64) []byte) hostile {
	return hostile{name: name, attack: func(_ *rig, a, _ *hc) {
		tag := a.tag()
		a.send(build(a, tag))
		a.expectCheck(tag, asc, ascq)
	}}
}

// invalidIU is INVALID FIELD IN COMMAND INFORMATION UNIT.
func invalidIU(name string, build func(a *hc, tag uint64) []byte) hostile {
	return checkOn(name, 0x0e, 0x03, build)
}

// rdmaFault: the command build returns makes the target touch initiator
// memory outside what the key registers: the RDMA operation fails, which
// ends that channel (the QP is in error: no T_LOGOUT can be sent).
func rdmaFault(name string, build func(a, good *hc, tag uint64) []byte) hostile {
	return hostile{name: name, dies: true, attack: func(_ *rig, a, good *hc) {
		a.send(build(a, good, a.tag()))
		a.expectGone()
	}}
}

func tmfAnswer(name string, lun uint16, fn srp.TMFunc, taskTag uint64, want srp.RspCode) hostile {
	return hostile{name: name, attack: func(_ *rig, a, _ *hc) {
		if got := a.tmf(lun, fn, taskTag); got != want {
			a.t.Fatalf("%v: RSP_CODE %#x, want %#x", fn, got, want)
		}
	}}
}

var none srp.DataBuf

// write4K and read4K are 4 KiB commands at LBA 0 with the data buffers
// given.
func write4K(a *hc, tag uint64, out srp.DataBuf) []byte {
	return a.cmdIU(tag, 0, rw16(true, 0, 8), out, none)
}

func read4K(a *hc, tag uint64, in srp.DataBuf) []byte {
	return a.cmdIU(tag, 0, rw16(false, 0, 8), none, in)
}

func noImm(o *loginOpt) { o.req.Flags &^= srp.LoginImmRequested }

// extTable writes descs as a descriptor table into the client's data at
// off and returns the indirect buffer that names it without carrying it:
// the target must fetch it (the Linux initiator's allow_ext_sg).
func extTable(c *hc, off int, total uint32, descs ...srp.Desc) srp.DataBuf {
	for i, d := range descs {
		d.Put(c.data[off+16*i:])
	}
	return srp.DataBuf{Format: srp.FmtIndirect, Desc: c.desc(off, 16*len(descs)), Total: total}
}

const tableOff = 3 << 20 // where extTable puts tables in c.data

func hostileCases() []hostile {
	lun0Only := func(c *Config) { c.ACLs = []ACL{{Name: "lun0", Initiators: []string{"*"}, LUNs: []uint16{0}}} }
	addLUN1 := func(r *rig) {
		eng, err := mem.Open(1<<20, 512)
		if err != nil {
			r.t.Fatal(err)
		}
		lu, err := scsi.NewLU(scsi.Config{Engine: eng, BlockSize: 512, Serial: "hidden1"})
		if err != nil {
			r.t.Fatal(err)
		}
		if err := r.tgt.AddLUN(1, lu); err != nil {
			r.t.Fatal(err)
		}
		r.t.Cleanup(func() { _ = r.tgt.RemoveLUN(1); _ = eng.Close() })
	}
	cases := []hostile{
		// --- IU lengths: SRP_T_LOGOUT, invalid IU length (8) ---
		logoutOn("empty IU", srp.LogoutInvalidIULen, func(*hc) []byte { return []byte{} }),
		logoutOn("SRP_CMD shorter than its header", srp.LogoutInvalidIULen, func(a *hc) []byte {
			return read4K(a, 7, direct(a.desc(0, 4096)))[:srp.CmdLen-8]
		}),
		logoutOn("SRP_TSK_MGMT shorter than 48", srp.LogoutInvalidIULen, func(a *hc) []byte {
			return tmfIU(7, 0, srp.TMFAbortTask, 1)[:32]
		}),
		logoutOn("SRP_I_LOGOUT shorter than 16", srp.LogoutInvalidIULen, func(a *hc) []byte {
			return []byte{byte(srp.OpILogout), 0, 0, 0, 0, 0, 0, 0}
		}),
		logoutOn("SRP_CRED_RSP shorter than 16", srp.LogoutInvalidIULen, func(a *hc) []byte {
			return []byte{byte(srp.OpCredRsp), 0, 0, 0}
		}),
		logoutOn("ADDITIONAL CDB LENGTH past the IU", srp.LogoutInvalidIULen, func(a *hc) []byte {
			b := a.cmdIU(7, 0, make([]byte, 6), none, none)
			b[31] = 0xfc // 252 more CDB bytes in a 48-byte IU
			return b
		}),
		logoutOn("direct descriptor past the IU", srp.LogoutInvalidIULen, func(a *hc) []byte {
			return write4K(a, 7, direct(a.desc(0, 4096)))[:srp.CmdLen+8]
		}),
		logoutOn("indirect descriptor list past the IU", srp.LogoutInvalidIULen, func(a *hc) []byte {
			b := write4K(a, 7, indirect(a.desc(0, 1024), a.desc(8192, 1024), a.desc(16384, 2048)))
			return b[:len(b)-20]
		}),
		logoutOn("immediate data past the IU", srp.LogoutInvalidIULen, func(a *hc) []byte {
			imm := bytes.Repeat([]byte{0x5a}, 4096)
			b := write4K(a, 7, srp.DataBuf{Format: srp.FmtImmediate, Total: 4096, List: imm})
			return b[:srp.LinuxImmDataOffset+100]
		}),
		// --- IU types: invalid IU type (2), unexpected response (3) ---
		logoutOn("unknown IU type 0x07", srp.LogoutInvalidIUType, func(a *hc) []byte {
			b := make([]byte, 64)
			b[0] = 0x07
			return b
		}),
		logoutOn("unknown IU type 0xff", srp.LogoutInvalidIUType, func(a *hc) []byte {
			b := make([]byte, 16)
			b[0] = 0xff
			return b
		}),
		logoutOn("target IU type SRP_RSP sent to the target", srp.LogoutInvalidIUType, func(a *hc) []byte {
			rsp := srp.Rsp{Tag: srp.TagOf(7), ReqLimDelta: 1000}
			b := make([]byte, 64)
			return b[:rsp.Put(b)]
		}),
		logoutOn("target IU type SRP_T_LOGOUT sent to the target", srp.LogoutInvalidIUType, func(a *hc) []byte {
			l := srp.TLogout{Reason: srp.LogoutNone}
			b := make([]byte, srp.TLogoutLen)
			l.Put(b)
			return b
		}),
		logoutOn("SRP_LOGIN_REQ on a live channel", srp.LogoutInvalidIUType, func(a *hc) []byte {
			o := defaultLogin(attackerIID)
			b := make([]byte, srp.LoginReqLen)
			o.req.Put(b)
			return b
		}),
		logoutOn("SRP_CRED_RSP with no SRP_CRED_REQ outstanding", srp.LogoutUnexpectedRsp, func(a *hc) []byte {
			c := srp.CredRsp{Tag: srp.TagOf(0)}
			b := make([]byte, srp.CredRspLen)
			c.Put(b)
			return b
		}),
		logoutOn("SRP_AER_RSP with no SRP_AER_REQ", srp.LogoutUnexpectedRsp, func(a *hc) []byte {
			c := srp.AerRsp{Tag: srp.TagOf(0)}
			b := make([]byte, srp.AerRspLen)
			c.Put(b)
			return b
		}),
		// --- descriptor formats: DATA-OUT (5), DATA-IN (6) ---
		logoutOn("reserved DATA-OUT format", srp.LogoutDataOutFmt, func(a *hc) []byte {
			b := write4K(a, 7, direct(a.desc(0, 4096)))
			b[5] = 0x40
			return b
		}),
		logoutOn("reserved DATA-IN format", srp.LogoutDataInFmt, func(a *hc) []byte {
			b := read4K(a, 7, direct(a.desc(0, 4096)))
			b[5] = 0x0f
			return b
		}),
		logoutOn("immediate DATA-IN", srp.LogoutDataInFmt, func(a *hc) []byte {
			b := read4K(a, 7, direct(a.desc(0, 4096)))
			b[5] = byte(srp.FmtImmediate)
			return b
		}),
		func() hostile {
			c := logoutOn("immediate data not negotiated", srp.LogoutDataOutFmt, func(a *hc) []byte {
				if a.imm != 0 {
					a.t.Fatal("immediate data granted")
				}
				cm := srp.Cmd{Tag: srp.TagOf(7), CDB: rw16(true, 0, 1), DataOut: srp.DataBuf{Format: srp.FmtImmediate, Total: 512, List: make([]byte, 512)}}
				b := make([]byte, 1024)
				return b[:cm.Put(b, srp.LinuxImmDataOffset)]
			})
			c.login = noImm
			return c
		}(),

		// --- descriptor counts and lengths: CHECK CONDITION 0E/03 ---
		invalidIU("direct DATA-OUT with descriptor count 2", func(a *hc, tag uint64) []byte {
			d := direct(a.desc(0, 4096))
			d.Count = 2
			return write4K(a, tag, d)
		}),
		invalidIU("direct DATA-IN with descriptor count 3", func(a *hc, tag uint64) []byte {
			d := direct(a.desc(0, 4096))
			d.Count = 3
			return read4K(a, tag, d)
		}),
		invalidIU("indirect lengths short of TOTAL LENGTH", func(a *hc, tag uint64) []byte {
			d := indirect(a.desc(0, 2048), a.desc(8192, 2048))
			d.Total += 512
			return write4K(a, tag, d)
		}),
		invalidIU("indirect lengths past TOTAL LENGTH", func(a *hc, tag uint64) []byte {
			d := indirect(a.desc(0, 2048), a.desc(8192, 2048))
			d.Total -= 512
			return read4K(a, tag, d)
		}),
		invalidIU("indirect table length not a multiple of 16", func(a *hc, tag uint64) []byte {
			d := indirect(a.desc(0, 2048), a.desc(8192, 2048))
			d.Desc.Len = 40
			return write4K(a, tag, d)
		}),
		invalidIU("partial list longer than the table", func(a *hc, tag uint64) []byte {
			d := indirect(a.desc(0, 2048), a.desc(8192, 2048))
			d.Desc.Len = 16
			return read4K(a, tag, d)
		}),
		invalidIU("bidirectional command", func(a *hc, tag uint64) []byte {
			return a.cmdIU(tag, 0, rw16(true, 0, 8), direct(a.desc(0, 4096)), direct(a.desc(8192, 4096)))
		}),
		invalidIU("direct transfer over MaxDataLen", func(a *hc, tag uint64) []byte {
			return a.cmdIU(tag, 0, rw16(true, 0, DefaultMaxDataLen/512+1), direct(a.desc(0, DefaultMaxDataLen+512)), none)
		}),
		invalidIU("indirect TOTAL LENGTH over MaxDataLen", func(a *hc, tag uint64) []byte {
			return a.cmdIU(tag, 0, rw16(false, 0, DefaultMaxDataLen/512+8), none,
				indirect(a.desc(0, DefaultMaxDataLen), a.desc(DefaultMaxDataLen, 4096)))
		}),
		invalidIU("immediate data starting inside the descriptors", func(a *hc, tag uint64) []byte {
			// A 36-byte CDB puts the immediate header at 68..72, after
			// the negotiated data offset 68.
			b := make([]byte, srp.LinuxImmDataOffset+512)
			b[0] = byte(srp.OpCmd)
			b[5] = byte(srp.FmtImmediate) << 4
			binary.LittleEndian.PutUint64(b[8:], tag)
			b[31] = 20
			copy(b[32:], rw16(true, 0, 1))
			binary.BigEndian.PutUint32(b[68:], 512)
			return b
		}),
		invalidIU("external descriptor table longer than a small buffer", func(a *hc, tag uint64) []byte {
			d := srp.DataBuf{Format: srp.FmtIndirect, Desc: a.desc(tableOff, DefaultSmallBuf+16), Total: 4096}
			return write4K(a, tag, d)
		}),
		invalidIU("external descriptor table that does not add up to TOTAL LENGTH", func(a *hc, tag uint64) []byte {
			d := extTable(a, tableOff, 4096+512, a.desc(0, 2048), a.desc(8192, 2048))
			return a.cmdIU(tag, 0, rw16(true, 0, 9), d, none)
		}),
		func() hostile {
			c := checkOn("LUN not mapped to the initiator", 0x25, 0x00, func(a *hc, tag uint64) []byte {
				return a.cmdIU(tag, 1, rw16(false, 0, 8), none, direct(a.desc(0, 4096)))
			})
			c.cfg, c.setup = lun0Only, addLUN1
			return c
		}(),

		// --- RDMA outside registered memory: the channel ends ---
		rdmaFault("DATA-OUT rkey not registered", func(a, _ *hc, tag uint64) []byte {
			d := a.desc(0, 4096)
			d.Key++
			return write4K(a, tag, direct(d))
		}),
		rdmaFault("DATA-OUT past the end of the region", func(a, _ *hc, tag uint64) []byte {
			d := a.desc(0, 4096)
			d.VA = a.mr.Addr() + uint64(len(a.reg.Bytes())) - 1024
			return write4K(a, tag, direct(d))
		}),
		rdmaFault("DATA-IN rkey not registered", func(a, _ *hc, tag uint64) []byte {
			d := a.desc(0, 4096)
			d.Key ^= 0xffff00
			return read4K(a, tag, direct(d))
		}),
		rdmaFault("DATA-IN address that wraps", func(a, _ *hc, tag uint64) []byte {
			d := a.desc(0, 4096)
			d.VA = ^uint64(0) - 511
			return read4K(a, tag, direct(d))
		}),
		rdmaFault("DATA-IN into another initiator's memory", func(a, good *hc, tag uint64) []byte {
			return read4K(a, tag, direct(good.desc(0, 4096)))
		}),
		rdmaFault("second indirect descriptor with a bad rkey", func(a, _ *hc, tag uint64) []byte {
			d := a.desc(8192, 2048)
			d.Key += 7
			return write4K(a, tag, indirect(a.desc(0, 2048), d))
		}),
		rdmaFault("external descriptor table with a bad rkey", func(a, _ *hc, tag uint64) []byte {
			d := extTable(a, tableOff, 4096, a.desc(0, 2048), a.desc(8192, 2048))
			d.Desc.Key++
			return write4K(a, tag, d)
		}),
		rdmaFault("external table naming memory past the region", func(a, _ *hc, tag uint64) []byte {
			bad := a.desc(0, 2048)
			bad.VA = a.mr.Addr() + uint64(len(a.reg.Bytes()))
			return read4K(a, tag, extTable(a, tableOff, 4096, a.desc(0, 2048), bad))
		}),

		// --- task management ---
		tmfAnswer("ABORT TASK of an unknown tag", 0, srp.TMFAbortTask, 0xabcdef, srp.TMFComplete),
		tmfAnswer("ABORT TASK SET with nothing running", 0, srp.TMFAbortTaskSet, 0, srp.TMFComplete),
		tmfAnswer("CLEAR ACA", 0, srp.TMFClearACA, 0, srp.TMFNotSupported),
		tmfAnswer("unknown function 0x80", 0, srp.TMFunc(0x80), 0, srp.TMFNotSupported),
		tmfAnswer("unknown function 0x00", 0, srp.TMFunc(0), 0, srp.TMFNotSupported),
		tmfAnswer("ABORT TASK on a LUN that does not exist", 7, srp.TMFAbortTask, 1, srp.TMFFailed),

		// --- logouts ---
		{name: "SRP_I_LOGOUT", dies: true, attack: func(_ *rig, a, _ *hc) { a.iLogout() }},
		func() hostile {
			var held *atomic.Bool
			return hostile{
				name: "SRP_I_LOGOUT with commands in the engine", dies: true,
				setup: func(r *rig) { held = r.addGatedLUN(1) },
				attack: func(r *rig, a, _ *hc) {
					held.Store(false)
					a.clearUA(1)
					held.Store(true)
					for i := range 4 {
						a.send(a.cmdIU(a.tag(), 1, rw16(true, uint64(i)*256, 256), direct(a.desc(i<<17, 128<<10)), none))
					}
					waitFor(a.t, "four writes in the engine", func() bool { return r.countState(attackerIID, reqExecuting) == 4 })
					a.iLogout()
					held.Store(false)
				},
			}
		}(),
		{
			// The target's receives hold MaxITIULen bytes: a longer SEND
			// fails at the target (local length error), so the channel
			// ends without a word.
			name: "IU longer than the target's max IT IU length", dies: true,
			cfg:       func(c *Config) { c.MaxITIULen = 4096 },
			login:     func(o *loginOpt) { o.req.ReqITIULen = 4096 },
			goodLogin: func(o *loginOpt) { o.req.ReqITIULen = 4096 },
			attack: func(_ *rig, a, _ *hc) {
				imm := bytes.Repeat([]byte{0x33}, 4096)
				cm := srp.Cmd{Tag: srp.TagOf(a.tag()), CDB: rw16(true, 0, 8), DataOut: srp.DataBuf{Format: srp.FmtImmediate, Total: 4096, List: imm}}
				b := make([]byte, 8192)
				a.sendRaw(tableOff, b[:cm.Put(b, a.imm)])
				a.expectGone()
			},
		},
		func() hostile {
			// Credits 8: eight commands held in the engine use them all;
			// a ninth is an overrun.
			var held *atomic.Bool
			return hostile{
				name: "credit overrun", dies: true,
				cfg:   func(c *Config) { c.Credits = 8 },
				setup: func(r *rig) { held = r.addGatedLUN(1) },
				attack: func(r *rig, a, _ *hc) {
					held.Store(false)
					a.clearUA(1)
					held.Store(true)
					if a.client.rsp.ReqLimDelta != 8 {
						a.t.Fatalf("LOGIN_RSP grants %d credits", a.client.rsp.ReqLimDelta)
					}
					for i := range 9 {
						a.send(a.cmdIU(a.tag(), 1, rw16(true, uint64(i)*8, 8), direct(a.desc(i*4096, 4096)), none))
					}
					a.expectLogout(srp.LogoutNone)
					// The overrun is counted once, also while the channel
					// drains and moves from the live to the gone counters.
					held.Store(false)
					for gone := false; !gone; {
						gone = len(r.chansOf(attackerIID)) == 0
						if st := r.tgt.Stats(); st.Total.CreditOverrun != 1 {
							a.t.Fatalf("%d credit overruns counted", st.Total.CreditOverrun)
						}
					}
				},
			}
		}(),
	}
	return cases
}

func TestHostile(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) { runHostile(t, tc) })
	}
}

// An external descriptor table (the initiator's allow_ext_sg) is fetched
// by RDMA READ and used: a write and a read through scattered tables move
// the right bytes.
func TestHostileExternalTable(t *testing.T) {
	r := newRig(t)
	good := r.hlogin(goodIID)
	g0 := runtime.NumGoroutine()
	a := r.hlogin(attackerIID)
	const n = 96 << 10 // over a small buffer: a large one, several RDMA segments
	src := a.data[:1<<20]
	for i := range src {
		src[i] = byte(i*31 + i>>9)
	}
	// Four pieces in a scrambled order in initiator memory.
	pieces := []srp.Desc{a.desc(512<<10, 40<<10), a.desc(0, 8<<10), a.desc(256<<10, 32<<10), a.desc(900<<10, 16<<10)}
	want := make([]byte, 0, n)
	for _, d := range pieces {
		off := int(d.VA - a.desc(0, 0).VA)
		want = append(want, src[off:off+int(d.Len)]...)
	}
	rsp := a.do(0, rw16(true, 2048, n/512), extTable(a, tableOff, n, pieces...), none)
	if rsp.Status != 0 {
		t.Fatalf("write through an external table: %+v", rsp)
	}
	// Read back through another table into other memory.
	back := []srp.Desc{a.desc(2<<20, 50<<10), a.desc(2<<20+64<<10, 46<<10)}
	clear(a.data[2<<20 : 2<<20+128<<10])
	rsp = a.do(0, rw16(false, 2048, n/512), none, extTable(a, tableOff+4096, n, back...))
	if rsp.Status != 0 || rsp.Flags != 0 {
		t.Fatalf("read through an external table: %+v", rsp)
	}
	got := append(append([]byte{}, a.data[2<<20:2<<20+50<<10]...), a.data[2<<20+64<<10:2<<20+110<<10]...)
	if !bytes.Equal(got, want) {
		t.Fatal("data moved through external tables differ")
	}
	// The table in the IU's partial list is ignored in favour of the
	// whole one in memory.
	ext := extTable(a, tableOff, n, back...)
	ext.List = make([]byte, 16)
	a.desc(0, 512).Put(ext.List)
	clear(a.data[2<<20 : 2<<20+128<<10])
	if rsp = a.do(0, rw16(false, 2048, n/512), none, ext); rsp.Status != 0 {
		t.Fatalf("read with a partial list: %+v", rsp)
	}
	got = append(append([]byte{}, a.data[2<<20:2<<20+50<<10]...), a.data[2<<20+64<<10:2<<20+110<<10]...)
	if !bytes.Equal(got, want) {
		t.Fatal("read with a partial list differs")
	}
	a.checkCredits()
	chs := r.chansOf(attackerIID)
	a.iLogout()
	good.roundTrip()
	good.checkCredits()
	r.checkNoLeak(t, 1, g0)
	checkFreed(t, chs)
}

// countState counts iid's requests in state s.
func (r *rig) countState(iid byte, s reqState) int {
	n := 0
	for _, ch := range r.chansOf(iid) {
		_ = r.tgt.g.Call(ch.rx.id, time.Second, func(*poller.Reactor) {
			for i := range ch.reqs {
				if ch.reqs[i].state == s {
					n++
				}
			}
		})
	}
	return n
}

// ABORT TASK of a command in flight: the command ends with or without its
// SRP_RSP, the function is answered FUNCTION COMPLETE, and the aborted
// command's credit comes back in a later REQ_LIM_DELTA.
func TestHostileAbortInFlight(t *testing.T) {
	for _, inEngine := range []bool{false, true} {
		name := "right behind it"
		if inEngine {
			name = "held in the engine"
		}
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			held := r.addGatedLUN(1)
			held.Store(false)
			good := r.hlogin(goodIID)
			g0 := runtime.NumGoroutine()
			a := r.hlogin(attackerIID)
			a.clearUA(1)
			for i := range 1 << 20 {
				a.data[i] = byte(i >> 3)
			}
			held.Store(inEngine)
			tag := a.tag()
			a.send(a.cmdIU(tag, 1, rw16(true, 0, 2048), direct(a.desc(0, 1<<20)), none))
			if inEngine {
				waitFor(t, "the write in the engine", func() bool { return r.countState(attackerIID, reqExecuting) == 1 })
			}
			tmTag := a.tag()
			a.send(tmfIU(tmTag, 1, srp.TMFAbortTask, tag))
			if inEngine {
				// The answer must not overtake the aborted write, which the
				// engine still has.
				if b := a.next(50 * time.Millisecond); b != nil {
					t.Fatalf("%s while the aborted write is in the engine", srp.Summary(b, a.imm))
				}
				held.Store(false)
			}
			answered, cmdRsp := false, false
			for !answered {
				b := a.next(5 * time.Second)
				if b == nil {
					t.Fatal("no answer to ABORT TASK")
				}
				rsp, err := srp.ParseRsp(b)
				if err != nil {
					t.Fatalf("%s: %v", srp.Summary(b, a.imm), err)
				}
				switch rsp.Tag.Uint64() {
				case tag:
					if cmdRsp {
						t.Fatal("two responses to the write")
					}
					cmdRsp = true
				case tmTag:
					code, ok := rsp.TMRspCode()
					if !ok || code != srp.TMFComplete {
						t.Fatalf("ABORT TASK: %+v", rsp)
					}
					answered = true
				default:
					t.Fatalf("response for tag %#x", rsp.Tag.Uint64())
				}
			}
			if b := a.next(20 * time.Millisecond); b != nil {
				t.Fatalf("%s after the TMF answer", srp.Summary(b, a.imm))
			}
			t.Logf("write answered: %v", cmdRsp)
			if inEngine && cmdRsp {
				t.Fatal("the write aborted in the engine was answered")
			}
			a.checkCredits()
			a.roundTrip()
			a.checkCredits()
			r.checkNoLeak(t, 2, -1)
			chs := r.chansOf(attackerIID)
			a.iLogout()
			good.roundTrip()
			good.checkCredits()
			r.checkNoLeak(t, 1, g0)
			checkFreed(t, chs)
		})
	}
}

// An initiator that goes away while its large writes are being read and
// executed: the channel drains (the RDMA READs flush or complete, the
// engine gives its writes back, the buffers come back), and what the
// target acknowledged before stays as written.
func TestHostileLogoutMidTransfer(t *testing.T) {
	r := newRig(t, func(c *Config) { c.RDMAReads = 1 })
	held := r.addGatedLUN(1)
	held.Store(false)
	good := r.hlogin(goodIID)
	g0 := runtime.NumGoroutine()
	a := r.hlogin(attackerIID)
	a.clearUA(1)
	pattern := func(b []byte, seed byte) {
		for i := range b {
			b[i] = byte(i*7+i>>11) ^ seed
		}
	}
	const acked = 8 << 11 // LBA of the acknowledged megabyte
	pattern(a.data[:1<<20], 0x3c)
	for lun := range uint16(2) {
		if rsp := a.do(lun, rw16(true, acked, 2048), direct(a.desc(0, 1<<20)), none); rsp.Status != 0 {
			t.Fatalf("write: %+v", rsp)
		}
	}
	chs := r.chansOf(attackerIID)
	// The channel's completions come late: its RDMA READs are still
	// outstanding when the initiator leaves; LUN 1 holds what it gets.
	if err := loop.DelayCompletions(chs[0].cq, 2000); err != nil {
		t.Fatal(err)
	}
	held.Store(true)
	pattern(a.data[1<<20:4<<20], 0xc3)
	for i := range 3 {
		a.send(a.cmdIU(a.tag(), 0, rw16(true, uint64(i)*2048, 2048), direct(a.desc((i+1)<<20, 1<<20)), none))
		a.send(a.cmdIU(a.tag(), 1, rw16(true, uint64(i)*2048, 2048), direct(a.desc((i+1)<<20, 1<<20)), none))
	}
	// Four writes have the reactor's large buffers and read their data
	// one RDMA READ at a time, slowly; two wait for a buffer. (Each
	// megabyte takes 16 delayed READs: this holds for a good while.)
	waitFor(t, "writes reading and waiting for buffers", func() bool {
		return r.countState(attackerIID, reqReading) > 0 && r.countState(attackerIID, reqNeedBuffer) > 0
	})
	_ = a.conn.Disconnect()
	waitFor(t, "the channel closing", func() bool {
		n := 0
		_ = r.tgt.g.Call(chs[0].rx.id, time.Second, func(*poller.Reactor) {
			if chs[0].state != chLive {
				n++
			}
		})
		return n == 1
	})
	held.Store(false)
	r.checkNoLeak(t, 1, g0)
	checkFreed(t, chs)
	// The acknowledged megabytes read back intact.
	want := make([]byte, 1<<20)
	pattern(want, 0x3c)
	good.clearUA(1)
	for lun := range uint16(2) {
		clear(good.data[1<<20 : 2<<20])
		rsp := good.do(lun, rw16(false, acked, 2048), none, direct(good.desc(1<<20, 1<<20)))
		if rsp.Status != 0 {
			t.Fatalf("read back: %+v", rsp)
		}
		if !bytes.Equal(good.data[1<<20:2<<20], want) {
			t.Fatalf("LUN %d: acknowledged data changed", lun)
		}
	}
	good.roundTrip()
	good.checkCredits()
}

// A SINGLE login of an initiator whose two channels are busy: both get
// SRP_T_LOGOUT reason 4 (multi-channel action) and end, the new login is
// answered TERMINATED and serves, and nothing of the old channels stays.
func TestHostileSingleReconnectWhileBusy(t *testing.T) {
	r := newRig(t)
	held := r.addGatedLUN(1)
	held.Store(false)
	good := r.hlogin(goodIID)
	g0 := runtime.NumGoroutine()
	a1 := r.hlogin(attackerIID)
	a1.clearUA(1)
	a2 := r.hlogin(attackerIID, multi)
	if f := a2.client.rsp.Flags & srp.ChanResultMask; f != srp.ChanMaintained {
		t.Fatalf("MULTI login answered %#x", f)
	}
	old := r.chansOf(attackerIID)
	if len(old) != 2 {
		t.Fatalf("%d channels", len(old))
	}
	held.Store(true)
	for _, a := range []*hc{a1, a2} {
		for i := range 4 {
			a.send(a.cmdIU(a.tag(), 1, rw16(true, uint64(i)*256, 256), direct(a.desc(i<<17, 128<<10)), none))
			a.send(a.cmdIU(a.tag(), 0, rw16(false, uint64(i)*256, 256), none, direct(a.desc(1<<20+i<<17, 128<<10))))
		}
	}
	waitFor(t, "eight writes in the engine", func() bool { return r.countState(attackerIID, reqExecuting) == 8 })
	n := r.hlogin(attackerIID)
	if f := n.client.rsp.Flags & srp.ChanResultMask; f != srp.ChanTerminated {
		t.Fatalf("SINGLE login over two channels answered %#x, want TERMINATED", f)
	}
	for _, a := range []*hc{a1, a2} {
		// The reads' responses may come before the logout.
		for {
			b := a.next(5 * time.Second)
			if b == nil {
				t.Fatal("no SRP_T_LOGOUT")
			}
			if op, _ := srp.Peek(b); op == srp.OpRsp {
				continue
			}
			l, err := srp.ParseTLogout(b)
			if err != nil || l.Reason != srp.LogoutMultiChan {
				t.Fatalf("got %s, want SRP_T_LOGOUT reason 4", srp.Summary(b, 0))
			}
			break
		}
		a.expectGone()
	}
	// The old channels stay until the engine gives their writes back.
	if got := len(r.chansOf(attackerIID)); got != 3 {
		t.Fatalf("%d channels of the initiator while its old writes are in the engine, want 3", got)
	}
	n.roundTrip()
	held.Store(false)
	n.checkCredits()
	good.roundTrip()
	good.checkCredits()
	r.checkNoLeak(t, 2, -1)
	checkFreed(t, old)
	if ss := r.tgt.Sessions(); len(ss) != 2 {
		t.Fatalf("%d sessions, want 2", len(ss))
	}
	n.iLogout()
	r.checkNoLeak(t, 1, g0)
}

// A command aborted by a task management function from another channel of
// the nexus gets no SRP_RSP, and no response of its own channel is coming
// to carry its credit back: SRP_CRED_REQ does, once; the initiator's
// SRP_CRED_RSP to it is expected, a second one is not (reason 3).
func TestHostileCredReqAfterAbortFromOtherChannel(t *testing.T) {
	r := newRig(t)
	held := r.addGatedLUN(1)
	held.Store(false)
	good := r.hlogin(goodIID)
	g0 := runtime.NumGoroutine()
	a1 := r.hlogin(attackerIID)
	a1.clearUA(1)
	a2 := r.hlogin(attackerIID, multi)
	chs := r.chansOf(attackerIID)
	if len(chs) != 2 || chs[0].rx == chs[1].rx {
		t.Fatal("the two channels should be on different reactors")
	}
	held.Store(true)
	tag := a1.tag()
	a1.send(a1.cmdIU(tag, 1, rw16(true, 0, 256), direct(a1.desc(0, 128<<10)), none))
	waitFor(t, "the write in the engine", func() bool { return r.countState(attackerIID, reqExecuting) == 1 })
	tm := a2.tag()
	a2.send(tmfIU(tm, 1, srp.TMFAbortTaskSet, 0))
	if b := a2.next(50 * time.Millisecond); b != nil {
		t.Fatalf("%s while the aborted write is in the engine", srp.Summary(b, 0))
	}
	held.Store(false)
	tr := a2.rsp(tm)
	if code, ok := tr.TMRspCode(); !ok || code != srp.TMFComplete {
		t.Fatalf("ABORT TASK SET: RSP_CODE %#x", code)
	}
	// a1's credit comes back by SRP_CRED_REQ (which next answers).
	waitFor(t, "the credit of the aborted write", func() bool {
		if b := a1.next(time.Millisecond); b != nil {
			t.Fatalf("%s on the aborted write's channel", srp.Summary(b, a1.imm))
		}
		return a1.deltas == a1.cmds
	})
	if st := r.tgt.Stats(); st.Total.CredReqs != 1 {
		t.Fatalf("%d SRP_CRED_REQs", st.Total.CredReqs)
	}
	for _, a := range []*hc{a1, a2} {
		a.roundTrip()
		a.checkCredits()
	}
	r.checkNoLeak(t, 3, -1)
	// Nothing is outstanding now: another SRP_CRED_RSP is unexpected.
	c := srp.CredRsp{Tag: srp.TagOf(0)}
	b := make([]byte, srp.CredRspLen)
	c.Put(b)
	a1.send(b)
	a1.expectLogout(srp.LogoutUnexpectedRsp)
	a2.iLogout()
	good.roundTrip()
	good.checkCredits()
	r.checkNoLeak(t, 1, g0)
	checkFreed(t, chs)
}

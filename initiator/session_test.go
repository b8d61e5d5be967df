package initiator

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/srp"
)

func TestLoginOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      func(*Config)
		opts     fakeOpts
		itLen    uint32
		imm      bool // requested
		immAgree bool
		queue    int
	}{
		{name: "defaults", itLen: 8260, imm: true, immAgree: true, queue: 15},
		{name: "no immediate data", cfg: func(c *Config) { c.NoImmData = true }, itLen: 276, queue: 15},
		{name: "target refuses immediate data", opts: fakeOpts{noImm: true}, itLen: 8260, imm: true, queue: 15},
		{name: "255 descriptors", cfg: func(c *Config) { c.CmdSGEntries = 255; c.NoImmData = true }, itLen: 4164, queue: 15},
		{name: "max_it_iu_size", cfg: func(c *Config) { c.MaxITIUSize = 1024 }, itLen: 1024, imm: true, immAgree: true, queue: 15},
		{name: "queue below credits", cfg: func(c *Config) { c.QueueSize = 4 }, itLen: 8260, imm: true, immAgree: true, queue: 4},
		{name: "credits cap the queue", opts: fakeOpts{credits: 128}, itLen: 8260, imm: true, immAgree: true, queue: 62},
		{name: "four channels", cfg: func(c *Config) { c.Channels = 4 }, itLen: 8260, imm: true, immAgree: true, queue: 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := newFakeTarget(t, tc.opts)
			cfg := testCfg()
			cfg.InitiatorPortID[0] = 0x11
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			s := login(t, ft, cfg)
			reqs := ft.loginReqs()
			if len(reqs) != len(s.Channels()) || len(reqs) != max(cfg.Channels, 1) {
				t.Fatalf("%d logins for %d channels", len(reqs), len(s.Channels()))
			}
			gid := ft.idev.Attr().GID
			for i, r := range reqs {
				wantMC := srp.MultiChanMulti
				if i == 0 {
					wantMC = srp.MultiChanSingle
				}
				if r.ReqITIULen != tc.itLen || r.BufFmt != srp.BufDirect|srp.BufIndirect || r.MultiChan() != wantMC || r.ImmRequested() != tc.imm {
					t.Errorf("channel %d login %+v", i, r)
				}
				if tc.imm && r.ImmDataOffset != 68 || !tc.imm && r.ImmDataOffset != 0 {
					t.Errorf("channel %d immediate data offset %d", i, r.ImmDataOffset)
				}
				if r.TargetPortID != cfg.TargetPortID || r.InitiatorPortID[0] != 0x11 || !bytes.Equal(r.InitiatorPortID[8:], gid[8:]) {
					t.Errorf("channel %d port IDs %x %x", i, r.InitiatorPortID, r.TargetPortID)
				}
				if r.Tag != (srp.Tag{}) {
					t.Errorf("channel %d login tag %v, want 0 as ib_srp", i, r.Tag)
				}
			}
			for i, ch := range s.Channels() {
				if ch.QueueSize() != tc.queue {
					t.Errorf("channel %d queue %d, want %d", i, ch.QueueSize(), tc.queue)
				}
				if got := s.LoginRsp(i).Flags&srp.LoginImmSupp != 0; got != tc.immAgree || ch.immOK != tc.immAgree {
					t.Errorf("channel %d immediate data agreed %v", i, got)
				}
				if ch.Credits() != int(s.LoginRsp(i).ReqLimDelta) {
					t.Errorf("channel %d credits %d", i, ch.Credits())
				}
			}
		})
	}
}

func TestLoginRejected(t *testing.T) {
	for _, reason := range []srp.RejReason{srp.RejUnableAssociate, srp.RejChanLimit, srp.RejNoResources} {
		ft := newFakeTarget(t, fakeOpts{rej: reason})
		_, err := Login(context.Background(), ft.idev, ft.addr, testCfg())
		le, ok := errors.AsType[*LoginError](err)
		if !ok || le.Reason != reason || le.Channel != 0 {
			t.Fatalf("Login: %v, want a *LoginError with %v", err, reason)
		}
		if want := reason.String(); !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// The target's own check: an IT IU length it cannot take.
	ft := newFakeTarget(t, fakeOpts{})
	cfg := testCfg()
	cfg.ITIULen = fakeRecvLen + 1
	_, err := Login(context.Background(), ft.idev, ft.addr, cfg)
	if le, ok := errors.AsType[*LoginError](err); !ok || le.Reason != srp.RejITIULenTooLarge {
		t.Fatalf("Login: %v", err)
	}
	// Too few credits to keep one for task management.
	ft = newFakeTarget(t, fakeOpts{credits: 1})
	if _, err := Login(context.Background(), ft.idev, ft.addr, testCfg()); err == nil {
		t.Fatal("login with 1 credit succeeded")
	}
	// Nobody listening.
	if _, err := Login(context.Background(), ft.idev, "192.0.2.9:1", testCfg()); err == nil {
		t.Fatal("login to nowhere succeeded")
	}
}

// TestReadWrite writes through direct, indirect and immediate data-out
// and reads back through direct and indirect data-in.
func TestReadWrite(t *testing.T) {
	for _, noImm := range []bool{false, true} {
		ft := newFakeTarget(t, fakeOpts{})
		cfg := testCfg()
		cfg.NoImmData = noImm
		s := login(t, ft, cfg)
		ch := s.Channels()[0]
		mem := dataMem(t, s, 1<<20)
		for i := range mem[:256<<10] {
			mem[i] = byte(i*7 + i>>9)
		}
		// 4 KiB direct (immediate when agreed), 8 KiB direct (beyond
		// max_imm_data), 12 KiB in three segments (indirect).
		w1 := &Command{CDB: rw16(0x8A, 0, 8), DataOut: [][]byte{mem[0:4096]}}
		w2 := &Command{CDB: rw16(0x8A, 8, 24), DataOut: [][]byte{mem[4096 : 4096+12288]}}
		w3 := &Command{CDB: rw16(0x8A, 32, 24), DataOut: [][]byte{mem[65536 : 65536+4096], mem[100000 : 100000+4096], mem[200000 : 200000+4096]}}
		roundTrip(t, ch, w1, w2, w3)
		for _, c := range []*Command{w1, w2, w3} {
			if c.Err != nil || c.Status != 0 || c.Flags != 0 {
				t.Fatalf("write: err %v status %#x flags %#x", c.Err, c.Status, c.Flags)
			}
		}
		ram := ft.ram.Bytes()
		want := append(append(append(append([]byte(nil), mem[0:16384]...), mem[65536:65536+4096]...), mem[100000:100000+4096]...), mem[200000:200000+4096]...)
		if !bytes.Equal(ram[:len(want)], want) {
			t.Fatal("target RAM differs from what was written")
		}
		st := ch.Stats()
		if wantImm := uint64(1); !noImm && st.ImmCmds != wantImm || noImm && st.ImmCmds != 0 {
			t.Errorf("noImm %v: %d immediate commands", noImm, st.ImmCmds)
		}
		// Read it back: one direct, then an indirect of 5 uneven segments.
		in := mem[512<<10:]
		r1 := &Command{CDB: rw16(0x88, 0, 32), DataIn: [][]byte{in[:16384]}}
		r2 := &Command{CDB: rw16(0x88, 32, 24), DataIn: [][]byte{in[20000:21000], in[30000:33072], in[40000:44000], {}, in[50000:54216]}}
		roundTrip(t, ch, r1, r2)
		if r1.Err != nil || r2.Err != nil || r1.Status != 0 || r2.Status != 0 {
			t.Fatalf("read: %v %v", r1.Err, r2.Err)
		}
		got := append(append(append(append(append([]byte(nil), in[:16384]...), in[20000:21000]...), in[30000:33072]...), in[40000:44000]...), in[50000:54216]...)
		if !bytes.Equal(got, want) {
			t.Fatal("read back differs")
		}
		st = ch.Stats()
		if st.Commands != 5 || st.BytesOut != 28672 || st.BytesIn != 28672 || st.Errors != 0 {
			t.Errorf("stats %+v", st)
		}
	}
}

func TestBadCommands(t *testing.T) {
	ft := newFakeTarget(t, fakeOpts{})
	cfg := testCfg()
	cfg.CmdSGEntries = 2
	s := login(t, ft, cfg)
	ch := s.Channels()[0]
	mem := dataMem(t, s, 1<<16)
	heap := make([]byte, 4096)
	segs := [][]byte{mem[:512], mem[1024:1536], mem[2048:2560]}
	for _, tc := range []struct {
		name string
		cmd  *Command
		want error
	}{
		{"heap memory", &Command{CDB: rw16(0x88, 0, 8), DataIn: [][]byte{heap}}, ErrNotRegistered},
		{"runs past the region", &Command{CDB: rw16(0x88, 0, 8), DataIn: [][]byte{mem[len(mem)-512 : len(mem) : len(mem)][:512]}}, nil},
		{"too many segments", &Command{CDB: rw16(0x88, 0, 3), DataIn: segs}, ErrTooManySegments},
		{"empty CDB", &Command{}, ErrCDBLen},
		{"CDB of 17", &Command{CDB: make([]byte, 17)}, ErrCDBLen},
		{"CDB of 300", &Command{CDB: make([]byte, 300)}, ErrCDBLen},
		{"data on a TMF", &Command{TMF: srp.TMFLUNReset, DataIn: segs[:1]}, ErrTMFData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roundTrip(t, ch, tc.cmd)
			if !errors.Is(tc.cmd.Err, tc.want) || tc.want != nil && !errors.Is(tc.cmd.Err, ErrBadCommand) {
				t.Errorf("err %v, want %v", tc.cmd.Err, tc.want)
			}
		})
	}
	// A 32-byte CDB (16 bytes of additional CDB) goes through.
	long := &Command{CDB: make([]byte, 32)}
	roundTrip(t, ch, long)
	if long.Err != nil {
		t.Errorf("32-byte CDB: %v", long.Err)
	}
	if ch.Credits() != 16 {
		t.Errorf("bad commands used credits: %d left", ch.Credits())
	}
}

func TestSenseAndResiduals(t *testing.T) {
	ft := newFakeTarget(t, fakeOpts{})
	s := login(t, ft, testCfg())
	ch := s.Channels()[0]
	mem := dataMem(t, s, 1<<16)
	sense := []byte{0x72, 0x05, 0x24, 0x00, 0, 0, 0, 0}
	ft.setHook(func(c *srp.Cmd, r *srp.Rsp) {
		if c.CDB[0] == 0x12 {
			r.Status, r.Sense = 0x02, sense
		}
	})
	cc := &Command{CDB: []byte{0x12, 0, 0, 0, 36, 0}}
	roundTrip(t, ch, cc)
	if cc.Err != nil || cc.Status != 0x02 || cc.SenseLen != len(sense) || !bytes.Equal(cc.Sense[:cc.SenseLen], sense) || cc.Flags&srp.SnsValid == 0 {
		t.Errorf("CHECK CONDITION: err %v status %#x sense % x flags %#x", cc.Err, cc.Status, cc.Sense[:cc.SenseLen], cc.Flags)
	}
	// A read of 4 blocks into 8 blocks of buffer: data-in underflow 2048.
	r := &Command{CDB: rw16(0x88, 0, 4), DataIn: [][]byte{mem[:4096]}}
	roundTrip(t, ch, r)
	if r.Flags != srp.DIUnder || r.DataInResid != 2048 || r.DataOutResid != 0 {
		t.Errorf("underflow: flags %#x resid %d/%d", r.Flags, r.DataOutResid, r.DataInResid)
	}
	// Data-out overflow reported by the target.
	ft.setHook(func(c *srp.Cmd, r *srp.Rsp) { r.Flags |= srp.DOOver; r.DataOutResCnt = 512 })
	w := &Command{CDB: rw16(0x8A, 0, 1), DataOut: [][]byte{mem[:512]}}
	roundTrip(t, ch, w)
	if w.Flags != srp.DOOver || w.DataOutResid != 512 {
		t.Errorf("overflow: flags %#x resid %d", w.Flags, w.DataOutResid)
	}
	// Sense longer than 96 bytes is cut to the field.
	long := bytes.Repeat([]byte{0x70}, 200)
	ft.setHook(func(c *srp.Cmd, r *srp.Rsp) { r.Status, r.Sense = 0x02, long })
	l := &Command{CDB: []byte{0}}
	roundTrip(t, ch, l)
	if l.SenseLen != 96 {
		t.Errorf("long sense: %d bytes", l.SenseLen)
	}
}

// TestCredits: commands never take the last credit, a TMF may, a Submit cut
// short by credits is counted, and credits come back with the responses.
func TestCredits(t *testing.T) {
	ft := newFakeTarget(t, fakeOpts{credits: 4})
	s := login(t, ft, testCfg())
	ch := s.Channels()[0]
	if ch.QueueSize() != 3 {
		t.Fatalf("queue %d with 4 credits", ch.QueueSize())
	}
	ft.setHold(true)
	cmds := make([]*Command, 6)
	for i := range cmds {
		cmds[i] = &Command{CDB: []byte{0}, User: uint64(i)}
	}
	if n := ch.Submit(cmds); n != 3 {
		t.Fatalf("Submit took %d with 4 credits, want 3", n)
	}
	if ch.Credits() != 1 || ch.Inflight() != 3 {
		t.Fatalf("credits %d inflight %d", ch.Credits(), ch.Inflight())
	}
	if n := ch.Submit(cmds[3:]); n != 0 {
		t.Fatalf("Submit took %d with one credit left", n)
	}
	if st := ch.Stats(); st.CreditStalls != 0 {
		// The queue (3) was full before credits ran out: not a credit stall.
		t.Errorf("credit stalls %d with a full queue", st.CreditStalls)
	}
	// The reserved credit goes to task management.
	tmf := &Command{TMF: srp.TMFAbortTask, RefTag: cmds[0].Tag}
	if n := ch.Submit([]*Command{tmf}); n != 1 {
		t.Fatal("TMF could not use the reserved credit")
	}
	if ch.Credits() != 0 {
		t.Fatalf("credits %d after the TMF", ch.Credits())
	}
	got := wait(t, ch, 2) // the TMF response, and the aborted command
	if got[0] != tmf || tmf.Err != nil || tmf.RspCode != srp.TMFComplete {
		t.Fatalf("TMF: %+v", got[0])
	}
	if got[1] != cmds[0] || !errors.Is(cmds[0].Err, ErrAborted) {
		t.Fatalf("aborted command: %v", got[1].Err)
	}
	// Now 1 credit (the TMF's delta), 2 commands held: a command would
	// need 2. This stall is a credit stall.
	if n := ch.Submit(cmds[3:4]); n != 0 {
		t.Fatal("command took the reserved credit")
	}
	if st := ch.Stats(); st.CreditStalls != 1 {
		t.Errorf("credit stalls %d, want 1", st.CreditStalls)
	}
	if max := ft.maxSeen.Load(); max != 3 {
		t.Errorf("target saw %d commands at once, want 3", max)
	}
	ft.setHold(false)
	ft.do(0, (*fakeChan).release)
	// The aborted command's late SRP_RSP (the fake target does not abort)
	// has a stale tag: counted, credit taken.
	got = wait(t, ch, 2)
	if got[0].Err != nil || got[1].Err != nil {
		t.Fatal(got[0].Err, got[1].Err)
	}
	if st := ch.Stats(); st.UnknownTags != 1 {
		t.Errorf("unknown tags %d, want 1", st.UnknownTags)
	}
	if ch.Credits() != 4 || ch.Inflight() != 0 {
		t.Errorf("credits %d inflight %d at the end", ch.Credits(), ch.Inflight())
	}
	// Extra REQ_LIM_DELTA grows the credits.
	ft.opts.extraLim = 2
	roundTrip(t, ch, cmds[4])
	if ch.Credits() != 6 {
		t.Errorf("credits %d after a delta of 3", ch.Credits())
	}
}

func TestCredReqAerReq(t *testing.T) {
	ft := newFakeTarget(t, fakeOpts{credits: 4})
	s := login(t, ft, testCfg())
	ch := s.Channels()[0]
	send := func(iu interface{ Put([]byte) int }) {
		var b [64]byte
		n := iu.Put(b[:])
		ft.do(0, func(fc *fakeChan) { fc.sendIU(b[:n]) })
	}
	send(&srp.CredReq{Tag: srp.TagOf(0xC0FFEE), ReqLimDelta: 10})
	deadline := time.Now().Add(5 * time.Second)
	for ft.credRsps.Load() == 0 && time.Now().Before(deadline) {
		ch.Poll(nil)
		ch.Poll(make([]*Command, 1))
		runtime.Gosched()
	}
	if ft.credRsps.Load() != 1 || ft.lastAns.Load() != 0xC0FFEE {
		t.Fatalf("CRED_RSP: %d, tag %#x", ft.credRsps.Load(), ft.lastAns.Load())
	}
	if ch.Credits() != 14 {
		t.Errorf("credits %d after CRED_REQ +10", ch.Credits())
	}
	send(&srp.AerReq{Tag: srp.TagOf(0xAE), ReqLimDelta: 1, LUN: 0, Sense: []byte{0x70, 0, 6}})
	for ft.aerRsps.Load() == 0 && time.Now().Before(deadline) {
		ch.Poll(make([]*Command, 1))
		runtime.Gosched()
	}
	if ft.aerRsps.Load() != 1 || ft.lastAns.Load() != 0xAE || ch.Credits() != 15 {
		t.Fatalf("AER_RSP %d tag %#x credits %d", ft.aerRsps.Load(), ft.lastAns.Load(), ch.Credits())
	}
	// The answers consumed no credit, and the commands still work.
	roundTrip(t, ch, &Command{CDB: []byte{0}})
	if st := ch.Stats(); st.CredReqs != 1 || st.AerReqs != 1 || ch.Credits() != 15 {
		t.Errorf("stats %+v credits %d", st, ch.Credits())
	}
	// An SRP_RSP for no command, and garbage: counted and ignored.
	send(&srp.Rsp{Tag: srp.TagOf(0xDEAD), ReqLimDelta: 1})
	ft.do(0, func(fc *fakeChan) { fc.sendIU([]byte{0x7F, 1, 2}) })
	roundTrip(t, ch, &Command{CDB: []byte{0}})
	if st := ch.Stats(); st.UnknownTags != 1 || st.BadIUs != 1 || ch.Credits() != 16 {
		t.Errorf("stats %+v credits %d", st, ch.Credits())
	}
}

func TestTLogout(t *testing.T) {
	ft := newFakeTarget(t, fakeOpts{})
	s := login(t, ft, testCfg())
	ch := s.Channels()[0]
	ft.setHold(true)
	cmds := []*Command{{CDB: []byte{0}}, {CDB: []byte{0}}}
	roundTripN := ch.Submit(cmds)
	if roundTripN != 2 {
		t.Fatal("Submit")
	}
	ft.do(0, func(fc *fakeChan) {
		var b [srp.TLogoutLen]byte
		l := srp.TLogout{Reason: srp.LogoutInactive}
		fc.sendIU(b[:l.Put(b[:])])
	})
	got := wait(t, ch, 2)
	for _, c := range got {
		le, ok := errors.AsType[*LogoutError](c.Err)
		if !ok || le.Reason != srp.LogoutInactive || !isClosed(c.Err) {
			t.Errorf("command err %v", c.Err)
		}
	}
	if le, ok := errors.AsType[*LogoutError](ch.Err()); !ok || le.Channel != 0 {
		t.Errorf("channel err %v", ch.Err())
	}
	// A closed channel fails what it is given.
	late := &Command{CDB: []byte{0}}
	roundTrip(t, ch, late)
	if !isClosed(late.Err) {
		t.Errorf("late command: %v", late.Err)
	}
}

func TestDisconnect(t *testing.T) {
	ft := newFakeTarget(t, fakeOpts{})
	s := login(t, ft, testCfg())
	ch := s.Channels()[0]
	ft.setHold(true)
	c := &Command{CDB: []byte{0}}
	if ch.Submit([]*Command{c}) != 1 {
		t.Fatal("Submit")
	}
	ft.do(0, func(fc *fakeChan) { _ = fc.conn.Disconnect() })
	wait(t, ch, 1)
	if !isClosed(c.Err) || !isClosed(ch.Err()) {
		t.Errorf("command %v, channel %v", c.Err, ch.Err())
	}
}

func TestLogoutIdempotentNoLeak(t *testing.T) {
	ft := newFakeTarget(t, fakeOpts{})
	base := runtime.NumGoroutine()
	cfg := testCfg()
	cfg.Channels = 3
	for range 3 {
		s, err := Login(context.Background(), ft.idev, ft.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mem := dataMem(t, s, 4096)
		for _, ch := range s.Channels() {
			roundTrip(t, ch, &Command{CDB: rw16(0x8A, 0, 8), DataOut: [][]byte{mem}})
		}
		ft.setHold(true)
		held := &Command{CDB: []byte{0}}
		if s.Channels()[1].Submit([]*Command{held}) != 1 {
			t.Fatal("Submit")
		}
		if err := s.Logout(); err != nil {
			t.Fatal(err)
		}
		if err := s.Logout(); err != nil {
			t.Fatalf("second Logout: %v", err)
		}
		ft.setHold(false)
		wait(t, s.Channels()[1], 1)
		if !isClosed(held.Err) {
			t.Errorf("held command: %v", held.Err)
		}
		if _, err := s.RegMR(mem); !errors.Is(err, ErrSessionClosed) {
			t.Errorf("RegMR after Logout: %v", err)
		}
		if err := s.Reconnect(context.Background()); !errors.Is(err, ErrSessionClosed) {
			t.Errorf("Reconnect after Logout: %v", err)
		}
		if n := s.Channels()[0].Poll(make([]*Command, 4)); n != 0 {
			t.Errorf("Poll after Logout returned %d", n)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("%d goroutines after Logout, %d before Login", n, base)
	}
}

func TestReconnect(t *testing.T) {
	ft := newFakeTarget(t, fakeOpts{})
	cfg := testCfg()
	cfg.Channels = 2
	s := login(t, ft, cfg)
	mem := dataMem(t, s, 8192)
	copy(mem, "before reconnect")
	ch := s.Channels()[0]
	roundTrip(t, ch, &Command{CDB: rw16(0x8A, 0, 1), DataOut: [][]byte{mem[:512]}})
	ft.setHold(true)
	held := &Command{CDB: []byte{0}}
	if ch.Submit([]*Command{held}) != 1 {
		t.Fatal("Submit")
	}
	if err := s.Reconnect(context.Background()); err != nil {
		t.Fatal(err)
	}
	ft.setHold(false)
	got := wait(t, ch, 1)
	if got[0] != held || !errors.Is(held.Err, ErrReset) {
		t.Fatalf("in-flight command: %v", held.Err)
	}
	reqs := ft.loginReqs()
	if len(reqs) != 4 || reqs[2].MultiChan() != srp.MultiChanSingle || reqs[3].MultiChan() != srp.MultiChanMulti {
		t.Fatalf("logins %+v", reqs)
	}
	// Same Channels, same registered memory, working again.
	if s.Channels()[0] != ch || ch.Err() != nil || ch.Credits() != 16 {
		t.Fatalf("after reconnect: err %v credits %d", ch.Err(), ch.Credits())
	}
	r := &Command{CDB: rw16(0x88, 0, 1), DataIn: [][]byte{mem[4096 : 4096+512]}}
	roundTrip(t, s.Channels()[1], r)
	if r.Err != nil || string(mem[4096:4096+16]) != "before reconnect" {
		t.Fatalf("read after reconnect: %v %q", r.Err, mem[4096:4096+16])
	}
}

// TestChannelsInParallel runs one reactor goroutine per channel, each
// writing and reading back its own blocks, while memory is registered on
// another goroutine (run with -race).
func TestChannelsInParallel(t *testing.T) {
	ft := newFakeTarget(t, fakeOpts{})
	cfg := testCfg()
	cfg.Channels = 4
	s := login(t, ft, cfg)
	mem := dataMem(t, s, 1<<20)
	done := make(chan error, len(s.Channels())+1)
	extra := make([][]byte, 8)
	for i := range extra {
		r, err := hugemem.Map(hugemem.RegionConfig{Size: 4096, Node: -1, Pages: hugemem.PagesSmall})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		extra[i] = r.Bytes()[:4096]
	}
	go func() {
		for _, b := range extra {
			if _, err := s.RegMR(b); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i, ch := range s.Channels() {
		go func() {
			mine := mem[i*(256<<10) : (i+1)*(256<<10)]
			out := make([]*Command, 8)
			for round := range 50 {
				w, r := mine[:4096], mine[8192:12288]
				for j := range w {
					w[j] = byte(i + round + j)
				}
				lba := uint64(i*64 + round%8*8)
				for _, c := range []*Command{
					{CDB: rw16(0x8A, lba, 8), DataOut: [][]byte{w}},
					{CDB: rw16(0x88, lba, 8), DataIn: [][]byte{r[:1024], r[1024:]}},
				} {
					if ch.Submit([]*Command{c}) != 1 {
						done <- errors.New("Submit took nothing")
						return
					}
					deadline := time.Now().Add(10 * time.Second)
					for ch.Poll(out) == 0 {
						if time.Now().After(deadline) {
							done <- errors.New("stuck")
							return
						}
						runtime.Gosched()
					}
					if c.Err != nil || c.Status != 0 {
						done <- c.Err
						return
					}
				}
				if !bytes.Equal(w, r) {
					done <- errors.New("read back differs")
					return
				}
			}
			done <- nil
		}()
	}
	for range len(s.Channels()) + 1 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

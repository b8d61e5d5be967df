package target

import (
	"bytes"
	"syscall"
	"testing"

	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/scsi"
	"github.com/usrpt/usrpt/srp"
)

func TestLoginAndIO(t *testing.T) {
	r := newRig(t)
	c := r.login(1)
	if c.rsp.ReqLimDelta != DefaultCredits || c.rsp.MaxITIULen != DefaultMaxITIULen || c.rsp.MaxTIIULen != DefaultMaxTIIULen {
		t.Fatalf("LOGIN_RSP %+v", c.rsp)
	}
	if c.rsp.Flags&srp.LoginImmSupp == 0 {
		t.Fatal("immediate data not granted")
	}
	// Write 8 KiB by RDMA READ (direct), read it back (direct).
	for i := range 8192 {
		c.data[i] = byte(i*7 + 1)
	}
	rsp := c.do(1, rw16(true, 8, 16), direct(c.desc(0, 8192)), srp.DataBuf{})
	if rsp.Status != 0 {
		t.Fatalf("write: status %#x sense %x", rsp.Status, rsp.Sense)
	}
	rsp = c.do(2, rw16(false, 8, 16), srp.DataBuf{}, direct(c.desc(65536, 8192)))
	if rsp.Status != 0 || rsp.Flags != 0 {
		t.Fatalf("read: %+v", rsp)
	}
	if !bytes.Equal(c.data[65536:65536+8192], c.data[:8192]) {
		t.Fatal("read back differs")
	}
	// Immediate data, then an indirect read split over three segments.
	imm := bytes.Repeat([]byte{0xA5}, 4096)
	rsp = c.do(3, rw16(true, 100, 8), srp.DataBuf{Format: srp.FmtImmediate, Total: 4096, List: imm}, srp.DataBuf{})
	if rsp.Status != 0 {
		t.Fatalf("immediate write: %+v", rsp)
	}
	clear(c.data[1<<20 : 1<<20+8192])
	rsp = c.do(4, rw16(false, 100, 8), srp.DataBuf{}, indirect(c.desc(1<<20, 1000), c.desc(1<<20+4096, 3000), c.desc(1<<20+8000, 96)))
	if rsp.Status != 0 {
		t.Fatalf("indirect read: %+v", rsp)
	}
	got := append(append(append([]byte{}, c.data[1<<20:1<<20+1000]...), c.data[1<<20+4096:1<<20+7096]...), c.data[1<<20+8000:1<<20+8096]...)
	if !bytes.Equal(got, imm) {
		t.Fatal("indirect read differs")
	}
	// Residual: a 4 KiB read into an 8 KiB buffer is DIUNDER 4096.
	rsp = c.do(5, rw16(false, 0, 8), srp.DataBuf{}, direct(c.desc(0, 8192)))
	if rsp.Flags&srp.DIUnder == 0 || rsp.DataInResCnt != 4096 {
		t.Fatalf("residual: %+v", rsp)
	}
	// Out of range: CHECK CONDITION, LBA OUT OF RANGE.
	rsp = c.do(6, rw16(false, rigLUBytes/512, 1), srp.DataBuf{}, direct(c.desc(0, 512)))
	if k, asc, _ := senseKey(rsp); rsp.Status != uint8(scsi.StatusCheckCondition) || k != scsi.KeyIllegalRequest || asc != 0x21 {
		t.Fatalf("out of range: %+v", rsp)
	}
	st := r.tgt.Stats()
	if st.Logins != 1 || st.Total.Commands < 6 || st.LUNs[0].Commands < 6 {
		t.Fatalf("stats %+v", st)
	}
}

// TestLargeTransfersAndWaits moves 1 MiB transfers (16 RDMA operations of
// 64 KiB each) with more in flight than the reactor has large buffers, so
// that requests wait for buffers, read slots and send slots.
func TestLargeTransfersAndWaits(t *testing.T) {
	r := newRig(t, func(c *Config) { c.LargeBufs = 2; c.RDMAReads = 2 })
	c := r.login(1)
	const n = 1 << 20
	for i := range 2 * n {
		c.data[i] = byte(i ^ i>>11)
	}
	for k := range 2 {
		c.send(c.cmd(uint64(10+k), rw16(true, uint64(k)*n/512, n/512), direct(c.desc(k*n, n)), srp.DataBuf{}))
	}
	for range 2 {
		b := c.mustRecv()
		rsp, err := srp.ParseRsp(b)
		if err != nil || rsp.Status != 0 {
			t.Fatalf("write: %v %+v", err, rsp)
		}
	}
	// Read both back, three at once (one chain: they reach the target
	// together, so the third waits for a buffer).
	clear(c.data[2*n : 4*n])
	var reads [][]byte
	for k := range 3 {
		reads = append(reads, c.cmd(uint64(20+k), rw16(false, uint64(k%2)*n/512, n/512), srp.DataBuf{}, direct(c.desc(2*n+(k%2)*n, n))))
	}
	c.sendBatch(reads...)
	for range 3 {
		rsp, err := srp.ParseRsp(c.mustRecv())
		if err != nil || rsp.Status != 0 {
			t.Fatalf("read: %v %+v", err, rsp)
		}
	}
	if !bytes.Equal(c.data[:2*n], c.data[2*n:4*n]) {
		t.Fatal("1 MiB read back differs")
	}
	st := r.tgt.Stats()
	if st.Total.BufferWaits == 0 {
		t.Errorf("no buffer waits with 3 large reads and 2 buffers: %+v", st.Total)
	}
}

func TestManyInFlight(t *testing.T) {
	r := newRig(t)
	c := r.login(1)
	// Fill the credits with 4 KiB reads and writes, all at once.
	const k = DefaultCredits
	for i := range k {
		if i%2 == 0 {
			c.send(c.cmd(uint64(i), rw16(true, uint64(i)*8, 8), direct(c.desc(i*4096, 4096)), srp.DataBuf{}))
		} else {
			c.send(c.cmd(uint64(i), rw16(false, uint64(i)*8, 8), srp.DataBuf{}, direct(c.desc(i*4096, 4096))))
		}
	}
	var delta uint32
	seen := map[uint64]bool{}
	for range k {
		rsp, err := srp.ParseRsp(c.mustRecv())
		if err != nil || rsp.Status != 0 {
			t.Fatalf("%v %+v", err, rsp)
		}
		if seen[rsp.Tag.Uint64()] {
			t.Fatalf("tag %v answered twice", rsp.Tag)
		}
		seen[rsp.Tag.Uint64()] = true
		delta += rsp.ReqLimDelta
	}
	if delta != k {
		t.Fatalf("credits returned %d, want %d", delta, k)
	}
}

func TestMultichannel(t *testing.T) {
	r := newRig(t)
	a := r.login(1)
	o := defaultLogin(1)
	o.req.Flags = srp.MultiChanMulti
	b, err := r.dial(o)
	if err != nil {
		t.Fatal(err)
	}
	if b.rsp.Flags&srp.ChanResultMask != srp.ChanMaintained {
		t.Fatalf("MULTI: flags %#x", b.rsp.Flags)
	}
	if b.rsp.Flags&srp.LoginImmSupp != 0 {
		t.Fatal("immediate data granted without being asked for")
	}
	ss := r.tgt.Sessions()
	if len(ss) != 1 || len(ss[0].Channels) != 2 || ss[0].Channels[0].Reactor == ss[0].Channels[1].Reactor {
		t.Fatalf("sessions %+v: want one nexus with two channels on two reactors", ss)
	}
	// Both channels work on the same nexus: b has no unit attention left.
	if rsp := b.do(1, make([]byte, 6), srp.DataBuf{}, srp.DataBuf{}); rsp.Status != 0 {
		t.Fatalf("TUR on the second channel: %+v", rsp)
	}
	// A SINGLE login of the same initiator terminates both.
	o = defaultLogin(1)
	c, err := r.dial(o)
	if err != nil {
		t.Fatal(err)
	}
	if c.rsp.Flags&srp.ChanResultMask != srp.ChanTerminated {
		t.Fatalf("SINGLE: flags %#x", c.rsp.Flags)
	}
	for _, old := range []*client{a, b} {
		iu := old.mustRecv()
		lo, err := srp.ParseTLogout(iu)
		if err != nil || lo.Reason != srp.LogoutMultiChan {
			t.Fatalf("old channel got %x (%v), want T_LOGOUT reason 4", iu, err)
		}
	}
	waitFor(t, "old channels gone", func() bool {
		ss := r.tgt.Sessions()
		return len(ss) == 1 && len(ss[0].Channels) == 1
	})
	c.clearUA()
	// Another initiator is a separate nexus and unaffected.
	d := r.login(2)
	if rsp := d.do(1, make([]byte, 6), srp.DataBuf{}, srp.DataBuf{}); rsp.Status != 0 {
		t.Fatalf("TUR: %+v", rsp)
	}
	if len(r.tgt.Sessions()) != 2 {
		t.Fatal("want two sessions")
	}
}

func TestLoginRejects(t *testing.T) {
	r := newRig(t, func(c *Config) {
		c.ACLs = []ACL{{Name: "one", Initiators: []string{"000000000000000000000000000000??"}}}
		c.MaxChannels = 1
	})
	for _, tc := range []struct {
		name string
		mod  func(*loginOpt)
		want srp.RejReason
	}{
		{"IU too long", func(o *loginOpt) { o.req.ReqITIULen = DefaultMaxITIULen + 1 }, srp.RejITIULenTooLarge},
		{"IU too short", func(o *loginOpt) { o.req.ReqITIULen = 63 }, srp.RejITIULenTooLarge},
		{"wrong target", func(o *loginOpt) { o.req.TargetPortID[3] ^= 1 }, srp.RejUnableAssociate},
		{"format", func(o *loginOpt) { o.req.BufFmt |= 1 }, srp.RejUnsupportedDescFmt},
		{"ACL", func(o *loginOpt) { o.req.InitiatorPortID[0] = 1 }, srp.RejUnableAssociate},
		{"no reads", func(o *loginOpt) { o.param.ResponderResources = 0 }, srp.RejNoResources},
		{"reserved multichannel", func(o *loginOpt) { o.req.Flags |= 3 }, srp.RejUnable},
		{"short", func(o *loginOpt) { o.raw = make([]byte, 20) }, srp.RejUnable},
	} {
		o := defaultLogin(1)
		tc.mod(&o)
		_, err := r.dial(o)
		rej, ok := err.(*rejected)
		if !ok || rej.Reason != tc.want {
			t.Errorf("%s: %v, want LOGIN_REJ %v", tc.name, err, tc.want)
		}
	}
	r.login(1)
	o := defaultLogin(1)
	o.req.Flags = srp.MultiChanMulti
	if _, err := r.dial(o); err == nil || err.(*rejected).Reason != srp.RejChanLimit {
		t.Errorf("second channel over the limit: %v", err)
	}
	if st := r.tgt.Stats(); st.Rejects[srp.RejUnableAssociate.String()] != 2 {
		t.Errorf("rejects %v", st.Rejects)
	}
}

func TestLoginStrings(t *testing.T) {
	r := newRig(t, func(c *Config) { c.IDExt = 0x1122334455667788 })
	if got, want := r.tgt.LoginString("192.0.2.7:5555"), "id_ext=1122334455667788,ioc_guid=0002c90300a1b2c3,dest=192.0.2.7:5555"; got != want {
		t.Errorf("LoginString = %q, want %q", got, want)
	}
	gid := [16]byte{0: 0xfe, 1: 0x80, 15: 0x01}
	if got, want := r.tgt.LoginStringIB(gid), "id_ext=1122334455667788,ioc_guid=0002c90300a1b2c3,dgid=fe800000000000000000000000000001,pkey=ffff,service_id=0002c90300a1b2c3"; got != want {
		t.Errorf("LoginStringIB = %q, want %q", got, want)
	}
	// The port ID the strings name is the one logins must carry.
	o := defaultLogin(1)
	if _, err := r.dial(o); err == nil {
		t.Error("login with id_ext = GUID accepted by a target whose id_ext differs")
	}
	copy(o.req.TargetPortID[:8], []byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88})
	if _, err := r.dial(o); err != nil {
		t.Errorf("login naming IDExt ‖ GUID: %v", err)
	}
}

func TestLatencyBuckets(t *testing.T) {
	bounds := LatencyBounds()
	for _, tc := range []struct {
		ns     int64
		bucket int
	}{
		{-5, 0}, {0, 0}, {1, 0}, {1024, 0}, {1025, 1}, {2048, 1}, {2049, 2},
		{1 << 20, 10}, {1<<32 - 1, 22}, {1 << 32, 22}, {1<<32 + 1, 23}, {1 << 62, 23},
	} {
		var s LUNStats
		s.observe(tc.ns)
		got := -1
		for i, n := range s.Latency {
			if n == 1 {
				got = i
			}
		}
		if got != tc.bucket {
			t.Errorf("%d ns in bucket %d, want %d", tc.ns, got, tc.bucket)
		}
		if tc.ns > 0 && (uint64(tc.ns) > bounds[got] || got > 0 && uint64(tc.ns) <= bounds[got-1]) {
			t.Errorf("%d ns in bucket %d of bounds (%d, %d]", tc.ns, got, bounds[max(got-1, 0)], bounds[got])
		}
	}
}

func TestSessionLogoutAndLatency(t *testing.T) {
	r := newRig(t)
	c := r.login(1)
	d := r.login(2)
	for i := range 10 {
		c.do(uint64(i), rw16(false, 0, 8), srp.DataBuf{}, direct(c.desc(0, 4096)))
	}
	st := r.tgt.Stats()
	var n uint64
	for _, b := range st.LUNs[0].Latency {
		n += b
	}
	if n != st.LUNs[0].Commands || n < 10 || st.LUNs[0].LatencyNs == 0 {
		t.Fatalf("latency histogram counts %d of %d commands, sum %d ns", n, st.LUNs[0].Commands, st.LUNs[0].LatencyNs)
	}
	ss := r.tgt.Sessions()
	if len(ss) != 2 {
		t.Fatalf("sessions %+v", ss)
	}
	if err := r.tgt.Logout(ss[0].ID); err != nil {
		t.Fatal(err)
	}
	if lo, err := srp.ParseTLogout(c.mustRecv()); err != nil || lo.Reason != srp.LogoutNone {
		t.Fatalf("T_LOGOUT %+v %v", lo, err)
	}
	waitFor(t, "the session to go", func() bool { return len(r.tgt.Sessions()) == 1 })
	if rsp := d.do(1, make([]byte, 6), srp.DataBuf{}, srp.DataBuf{}); rsp.Status != 0 {
		t.Fatalf("the other session: %+v", rsp)
	}
	if err := r.tgt.Logout(ss[0].ID); err == nil {
		t.Error("logout of a session that is gone succeeded")
	}
}

func TestACLValidate(t *testing.T) {
	for _, tc := range []struct {
		initiators []string
		ok         bool
	}{
		{[]string{"*"}, true},
		{[]string{"10.0.0.0/8", "192.168.1.7"}, true},
		{[]string{"0x0002c903000000000002c90300a1b2c3"}, true},
		{[]string{"fe80*"}, true},
		{nil, false},
		{[]string{"10.0.0.0/33"}, false},
		{[]string{"0002c903"}, false},
		{[]string{"zz*"}, false},
	} {
		a := ACL{Name: "g", Initiators: tc.initiators}
		if err := a.Validate(); (err == nil) != tc.ok {
			t.Errorf("%q: Validate() = %v, want ok %v", tc.initiators, err, tc.ok)
		}
		if a.all || a.ids != nil || a.prefixes != nil {
			t.Errorf("%q: Validate changed the ACL", tc.initiators)
		}
	}
}

// directDevice is a mem engine that behaves as O_DIRECT does: it says it
// is direct, and a read or write whose buffer is not aligned to its block
// fails with EINVAL.
type directDevice struct{ ioengine.Device }

func (d directDevice) Info() ioengine.Info {
	i := d.Device.Info()
	i.Direct = true
	return i
}

func (d directDevice) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	q, err := d.Device.NewQueue(cfg)
	return &directQueue{Queue: q, bs: d.Device.Info().BlockSize}, err
}

type directQueue struct {
	ioengine.Queue
	bs   int
	done []*ioengine.Request
}

func (q *directQueue) Submit(reqs []*ioengine.Request) int {
	for i, r := range reqs {
		if (r.Op == ioengine.OpRead || r.Op == ioengine.OpWrite) && len(r.Buf) > 0 && addrOf(r.Buf, 0)%uint64(q.bs) != 0 {
			r.Complete(0, syscall.EINVAL)
			q.done = append(q.done, r)
			continue
		}
		if q.Queue.Submit(reqs[i:i+1]) != 1 {
			return i
		}
	}
	return len(reqs)
}

func (q *directQueue) Poll(out []*ioengine.Request) int {
	n := copy(out, q.done)
	q.done = q.done[:copy(q.done, q.done[n:])]
	return n + q.Queue.Poll(out[n:])
}

func (q *directQueue) Inflight() int { return q.Queue.Inflight() + len(q.done) }

// Immediate data sits at offset 68 of the IU, which O_DIRECT refuses: the
// target copies it into an aligned buffer for such an LU, and writes
// straight from the IU otherwise.
func TestImmediateDataOnDirectLU(t *testing.T) {
	r := newRigWith(t, func(d ioengine.Device) ioengine.Device { return directDevice{d} })
	c := r.login(1)
	imm := bytes.Repeat([]byte{0x5A}, 4096)
	rsp := c.do(1, rw16(true, 40, 8), srp.DataBuf{Format: srp.FmtImmediate, Total: 4096, List: imm}, srp.DataBuf{})
	if rsp.Status != 0 {
		k, asc, ascq := senseKey(rsp)
		t.Fatalf("immediate write to an O_DIRECT LU: status %#x sense %v %02x/%02x", rsp.Status, k, asc, ascq)
	}
	clear(c.data[:4096])
	if rsp := c.do(2, rw16(false, 40, 8), srp.DataBuf{}, direct(c.desc(0, 4096))); rsp.Status != 0 || !bytes.Equal(c.data[:4096], imm) {
		t.Fatalf("read back: %+v", rsp)
	}
	if st := r.tgt.Stats(); st.Total.BufferWaits != 0 || r.tgt.Stats().Total.WriteBytes < 4096 {
		t.Fatalf("stats %+v", st.Total)
	}
}

// Package verbstest is the conformance suite every verbs backend must pass,
// and the helpers it is built from.
//
// A backend adds one test file that hands Run a Fabric: a way to make
// devices that can reach each other and addresses to listen on.
//
//	func TestConformance(t *testing.T) {
//		verbstest.Run(t, func(t *testing.T) verbstest.Fabric {
//			return myFabric{...} // fresh per subtest
//		})
//	}
//
// Run calls newFabric once per subtest, so subtests share nothing. The
// suite follows libibverbs and, where implementations differ, the Linux
// soft-RoCE driver (rxe): the completion statuses it expects are the ones
// rxe reports, and where a real HCA reports something else the suite
// accepts both and says so. It drives the backend only through the verbs
// API, from the test goroutine except in the concurrency subtest, and it
// never sleeps to make progress: it polls the CQs, as a reactor would,
// until a deadline (WaitTimeout).
//
// The helpers are exported for a backend's own tests: Connect gives a
// connected queue pair with its CQs and a registered buffer on each side,
// Mem gives off-heap memory to register, and PollN, PollOne and
// ExpectNoWC poll a CQ.
package verbstest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/usrpt/usrpt/internal/hugemem"
	"github.com/usrpt/usrpt/verbs"
)

// WaitTimeout bounds every wait of the suite: a completion, a connection,
// Done. It is long so that a backend with real RNR timers (0.64 ms × 2^n)
// or a loaded machine still passes; a correct backend never comes near it.
var WaitTimeout = 10 * time.Second

// Fabric is what a backend gives the suite.
type Fabric interface {
	// NewDevice returns a fresh device that can reach every other device
	// of this fabric. The fabric closes it (say with t.Cleanup).
	NewDevice(t testing.TB) verbs.Device
	// ListenAddr returns a fresh address that a listener on dev can use and
	// other devices of the fabric Connect to.
	ListenAddr(t testing.TB, dev verbs.Device) string
}

// Mem returns size bytes of off-heap memory (internal/hugemem, base
// pages) for registration, unmapped when the test ends. It skips the test
// where hugemem cannot map (not Linux).
func Mem(t testing.TB, size int) []byte {
	t.Helper()
	r, err := hugemem.Map(hugemem.RegionConfig{Size: size, Pages: hugemem.PagesSmall, Node: -1})
	if errors.Is(err, hugemem.ErrNotSupported) {
		t.Skipf("verbstest: no off-heap memory here: %v", err)
	}
	if err != nil {
		t.Fatalf("verbstest: map %d bytes: %v", size, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("verbstest: unmap: %v", err)
		}
	})
	return r.Bytes()[:size]
}

// AllAccess is what the suite's default memory regions allow.
const AllAccess = verbs.AccessLocalWrite | verbs.AccessRemoteWrite | verbs.AccessRemoteRead

// Side is one end of a connected pair.
type Side struct {
	Dev    verbs.Device
	Attr   verbs.DeviceAttr
	PD     verbs.PD
	SendCQ verbs.CQ
	RecvCQ verbs.CQ
	QP     verbs.QP
	Conn   verbs.Conn
	MR     verbs.MR  // all of Mem, AllAccess
	SRQ    verbs.SRQ // with PairConfig.SRQ
}

// Buf is the side's registered buffer.
func (s *Side) Buf() []byte { return s.MR.Buf() }

// SGE is n bytes at off in the side's registered buffer.
func (s *Side) SGE(off, n int) verbs.SGE {
	return verbs.SGE{Addr: s.MR.Addr() + uint64(off), Len: uint32(n), LKey: s.MR.LKey()}
}

// Addr is the address of off in the side's registered buffer, for RDMA.
func (s *Side) Addr(off int) uint64 { return s.MR.Addr() + uint64(off) }

// Pair is a connected pair of queue pairs on two devices.
type Pair struct {
	Client, Server *Side
	// Request is the connection request as the server saw it.
	Request *verbs.ConnRequest
}

// PairConfig says how Connect builds a pair. Connect fills it with
// defaults that suit the devices, then applies the options.
type PairConfig struct {
	QP        verbs.QPConfig // the CQ fields are Connect's
	Client    verbs.ConnParam
	Server    verbs.ConnParam
	MemSize   int
	CQEntries int
	// SRQ > 0 gives the server's QP a shared receive queue of that many
	// WRs (Side.SRQ), made on its PD; the client never has one.
	SRQ int
	// BeforeConnect and BeforeAccept, when set, run on each side's fresh
	// Side just before Connect and Accept: to move the QP to INIT and
	// post receives first, as rdma_cm users do.
	BeforeConnect, BeforeAccept func(*Side)
}

// Connect builds two devices of fab with a PD, a send and a receive CQ, a
// QP and a buffer registered with AllAccess on each, and connects the
// client's QP to the server's through a listener. It fails the test if
// any step fails. Everything is released when the test ends.
func Connect(t testing.TB, fab Fabric, opts ...func(*PairConfig)) *Pair {
	t.Helper()
	cdev, sdev := fab.NewDevice(t), fab.NewDevice(t)
	ca, sa := cdev.Attr(), sdev.Attr()
	cfg := PairConfig{
		QP: verbs.QPConfig{
			MaxSendWR:  min(32, ca.MaxQPWR, sa.MaxQPWR),
			MaxRecvWR:  min(32, ca.MaxQPWR, sa.MaxQPWR),
			MaxSendSGE: min(4, ca.MaxSGE, sa.MaxSGE),
			MaxRecvSGE: min(4, ca.MaxSGE, sa.MaxSGE),
			MaxInline:  min(64, ca.MaxInline, sa.MaxInline),
		},
		MemSize:   64 << 10,
		CQEntries: min(256, ca.MaxCQE, sa.MaxCQE),
	}
	rd := uint8(min(4, ca.MaxQPRdAtom, sa.MaxQPRdAtom, ca.MaxQPInitRdAtom, sa.MaxQPInitRdAtom))
	cfg.Client = verbs.ConnParam{ResponderResources: rd, InitiatorDepth: rd, RetryCount: 7, RNRRetryCount: 7}
	cfg.Server = cfg.Client
	for _, o := range opts {
		o(&cfg)
	}
	ccfg := cfg
	ccfg.SRQ = 0
	client := NewSide(t, cdev, ccfg)
	server := NewSide(t, sdev, cfg)

	addr := fab.ListenAddr(t, sdev)
	l, err := sdev.Listen(addr)
	if err != nil {
		t.Fatalf("verbstest: Listen(%q): %v", addr, err)
	}
	t.Cleanup(func() { _ = l.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	type accepted struct {
		req  *verbs.ConnRequest
		conn verbs.Conn
		err  error
	}
	ch := make(chan accepted, 1)
	go func() {
		req, err := l.Accept(ctx)
		if err != nil {
			ch <- accepted{err: fmt.Errorf("listener accept: %w", err)}
			return
		}
		if cfg.BeforeAccept != nil {
			cfg.BeforeAccept(server)
		}
		conn, err := req.Accept(server.QP, cfg.Server)
		if err != nil {
			err = fmt.Errorf("accept the request: %w", err)
		}
		ch <- accepted{req, conn, err}
	}()
	if cfg.BeforeConnect != nil {
		cfg.BeforeConnect(client)
	}
	cconn, cerr := cdev.Connect(ctx, addr, client.QP, cfg.Client)
	if cerr != nil {
		cancel()
	}
	a := <-ch
	if cerr != nil {
		t.Fatalf("verbstest: Connect(%q): %v (server: %v)", addr, cerr, a.err)
	}
	if a.err != nil {
		t.Fatalf("verbstest: server: %v", a.err)
	}
	client.Conn, server.Conn = cconn, a.conn
	t.Cleanup(func() { _ = cconn.Disconnect(); _ = a.conn.Disconnect() })
	return &Pair{Client: client, Server: server, Request: a.req}
}

// NewSide makes a PD, two CQs, an unconnected QP (in RESET), a registered
// buffer and, if cfg.SRQ > 0, a shared receive queue on dev as cfg says.
func NewSide(t testing.TB, dev verbs.Device, cfg PairConfig) *Side {
	t.Helper()
	s := &Side{Dev: dev, Attr: dev.Attr()}
	var err error
	if s.PD, err = dev.AllocPD(); err != nil {
		t.Fatalf("verbstest: AllocPD: %v", err)
	}
	t.Cleanup(func() { _ = s.PD.Close() })
	for _, cq := range []*verbs.CQ{&s.SendCQ, &s.RecvCQ} {
		c, err := dev.CreateCQ(cfg.CQEntries)
		if err != nil {
			t.Fatalf("verbstest: CreateCQ(%d): %v", cfg.CQEntries, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		*cq = c
	}
	s.MR, err = s.PD.RegMR(Mem(t, cfg.MemSize), AllAccess)
	if err != nil {
		t.Fatalf("verbstest: RegMR(%d bytes): %v", cfg.MemSize, err)
	}
	t.Cleanup(func() { _ = s.MR.Dereg() })
	qc := cfg.QP
	qc.SendCQ, qc.RecvCQ = s.SendCQ, s.RecvCQ
	if cfg.SRQ > 0 {
		if s.SRQ, err = s.PD.CreateSRQ(cfg.SRQ, cfg.QP.MaxRecvSGE); err != nil {
			t.Fatalf("verbstest: CreateSRQ(%d, %d): %v", cfg.SRQ, cfg.QP.MaxRecvSGE, err)
		}
		t.Cleanup(func() { _ = s.SRQ.Close() })
		qc.SRQ = s.SRQ
	}
	if s.QP, err = s.PD.CreateQP(qc); err != nil {
		t.Fatalf("verbstest: CreateQP(%+v): %v", qc, err)
	}
	t.Cleanup(func() { _ = s.QP.Close() })
	return s
}

// PollN polls cq until it has n completions and returns them; it fails the
// test if they do not come within WaitTimeout. It does not look for more.
func PollN(t testing.TB, cq verbs.CQ, n int) []verbs.WC {
	t.Helper()
	wcs := make([]verbs.WC, n)
	got := 0
	deadline := time.Now().Add(WaitTimeout)
	for got < n {
		k := cq.Poll(wcs[got:])
		if k < 0 || k > n-got {
			t.Fatalf("verbstest: Poll of %d entries returned %d", n-got, k)
		}
		got += k
		if k == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("verbstest: %d of %d completions after %v: %s", got, n, WaitTimeout, FormatWCs(wcs[:got]))
			}
			time.Sleep(10 * time.Microsecond)
		}
	}
	return wcs
}

// PollOne is PollN for one completion.
func PollOne(t testing.TB, cq verbs.CQ) verbs.WC {
	t.Helper()
	return PollN(t, cq, 1)[0]
}

// ExpectNoWC polls cq for d and fails the test if a completion appears.
func ExpectNoWC(t testing.TB, cq verbs.CQ, d time.Duration, why string) {
	t.Helper()
	var wc [4]verbs.WC
	deadline := time.Now().Add(d)
	for {
		if n := cq.Poll(wc[:]); n > 0 {
			t.Errorf("verbstest: %s: unexpected completions %s", why, FormatWCs(wc[:n]))
			return
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// FormatWCs prints completions for failure messages.
func FormatWCs(wcs []verbs.WC) string {
	s := "["
	for i, wc := range wcs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("{id %d %v op %d len %d flags %#x imm %#x inv %#x qpn %d}", wc.ID, wc.Status, wc.Op, wc.Len, wc.Flags, wc.Imm, wc.InvRKey, wc.QPN)
	}
	return s + "]"
}

// PostSend posts wrs and fails the test unless all were taken.
func PostSend(t testing.TB, qp verbs.QP, wrs ...verbs.SendWR) {
	t.Helper()
	if n, err := qp.PostSend(wrs); err != nil || n != len(wrs) {
		t.Fatalf("verbstest: PostSend of %d: took %d, %v", len(wrs), n, err)
	}
}

// PostRecv posts wrs and fails the test unless all were taken.
func PostRecv(t testing.TB, qp verbs.QP, wrs ...verbs.RecvWR) {
	t.Helper()
	if n, err := qp.PostRecv(wrs); err != nil || n != len(wrs) {
		t.Fatalf("verbstest: PostRecv of %d: took %d, %v", len(wrs), n, err)
	}
}

// Fill writes a pattern derived from seed into b.
func Fill(b []byte, seed byte) {
	for i := range b {
		b[i] = seed + byte(i*7) + byte(i>>8)
	}
}

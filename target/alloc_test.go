package target

import (
	"runtime"
	"testing"

	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/verbs"
)

// lean drives prebuilt IUs through a client without allocating, so that
// allocation counts measure the target.
type lean struct {
	c     *client
	wrs   [1]verbs.SendWR
	sge   [1]verbs.SGE
	rwr   [1]verbs.RecvWR
	rsge  [1]verbs.SGE
	wcs   [8]verbs.WC
	ius   [][]byte // in registered send slots
	sends int
}

func newLean(c *client, ius ...[]byte) *lean {
	l := &lean{c: c}
	for i, iu := range ius {
		b := c.sendSlot(i)
		n := copy(b, iu)
		l.ius = append(l.ius, b[:n])
	}
	return l
}

// roundTrip sends IU k and waits for its response; it reports whether the
// response was GOOD.
func (l *lean) roundTrip(k int) bool {
	c := l.c
	iu := l.ius[k]
	l.sge[0] = verbs.SGE{Addr: addrOf(iu, 0), Len: uint32(len(iu)), LKey: c.mr.LKey()}
	l.wrs[0] = verbs.SendWR{ID: 1 << 40, Op: verbs.OpSend, SGL: l.sge[:]}
	if l.sends++; l.sends%16 == 0 {
		l.wrs[0].Flags = verbs.SendSignaled // unsignaled sends hold slots until one is signaled
	}
	if _, err := c.qp.PostSend(l.wrs[:]); err != nil {
		return false
	}
	for {
		n := c.cq.Poll(l.wcs[:])
		for _, wc := range l.wcs[:n] {
			if wc.ID == 1<<40 {
				continue
			}
			if wc.Status != verbs.WCSuccess {
				return false
			}
			b := c.recvBuf(int(wc.ID))
			good := b[0] == byte(srp.OpRsp) && b[19] == 0
			l.rsge[0] = verbs.SGE{Addr: addrOf(b, 0), Len: uint32(len(b)), LKey: c.mr.LKey()}
			l.rwr[0] = verbs.RecvWR{ID: wc.ID, SGL: l.rsge[:]}
			if _, err := c.qp.PostRecv(l.rwr[:]); err != nil {
				return false
			}
			return good
		}
	}
}

func TestZeroAllocsPerCommand(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := newRig(t)
	c := r.login(1)
	l := newLean(c,
		c.cmd(1, rw16(false, 8, 8), srp.DataBuf{}, direct(c.desc(0, 4096))),
		c.cmd(2, rw16(true, 16, 8), direct(c.desc(8192, 4096)), srp.DataBuf{}),
		c.cmd(3, rw16(true, 24, 8), srp.DataBuf{Format: srp.FmtImmediate, Total: 4096, List: make([]byte, 4096)}, srp.DataBuf{}),
		c.cmd(4, rw16(false, 8, 64), srp.DataBuf{}, indirect(c.desc(0, 16384), c.desc(65536, 16384))),
	)
	for k, name := range []string{"READ 4K direct", "WRITE 4K RDMA READ", "WRITE 4K immediate", "READ 32K indirect"} {
		for range 200 { // warm up: pools, rings, the engine
			if !l.roundTrip(k) {
				t.Fatalf("%s: not GOOD", name)
			}
		}
		// A stray allocation elsewhere in the process is not one per command.
		if a := allocsPerRun(2000, func() { l.roundTrip(k) }); a >= 0.05 {
			t.Errorf("%s: %.2f allocations per command, want 0", name, a)
		}
	}
}

// allocsPerRun is testing.AllocsPerRun without its GOMAXPROCS(1), which
// would leave the target's spinning reactors and the test one P to share.
// It counts every goroutine's allocations, the reactors' included.
func allocsPerRun(runs int, f func()) float64 {
	f()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / float64(runs)
}

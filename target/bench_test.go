package target

import (
	"fmt"
	"testing"
	"time"

	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/srp"
	"github.com/usrpt/usrpt/verbs"
)

// BenchmarkRead4K runs 4 KiB READs through the target at several queue
// depths with a raw client on the benchmark goroutine. ns/op is the
// client-observed time per command; busy-ns/cmd is the target reactor's
// busy time per command.
func BenchmarkRead4K(b *testing.B) {
	for _, qd := range []int{1, 32} {
		b.Run(fmt.Sprintf("QD%d", qd), func(b *testing.B) {
			r := newRig(b, func(c *Config) {
				c.CPUs = testCPUs(1)
				c.Idle = poller.IdlePolicy{Mode: poller.IdleBusy}
			})
			c := r.login(1)
			ius := make([][]byte, qd)
			for i := range ius {
				ius[i] = c.cmd(uint64(i), rw16(false, uint64(i)*8, 8), srp.DataBuf{}, direct(c.desc(i*4096, 4096)))
			}
			l := newLean(c, ius...)
			for range 100 {
				l.roundTrip(0)
			}
			s0, _ := r.tgt.Group().Stats(time.Second)
			b.ReportAllocs()
			b.ResetTimer()
			l.pipeline(b.N, qd)
			b.StopTimer()
			s1, _ := r.tgt.Group().Stats(time.Second)
			b.ReportMetric(float64(s1[0].Busy-s0[0].Busy)/float64(b.N), "busy-ns/cmd")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
		})
	}
}

// pipeline sends n commands keeping qd in flight.
func (l *lean) pipeline(n, qd int) {
	c := l.c
	sent, done := 0, 0
	post := func(k int) {
		iu := l.ius[k]
		l.sge[0] = verbs.SGE{Addr: addrOf(iu, 0), Len: uint32(len(iu)), LKey: c.mr.LKey()}
		l.wrs[0] = verbs.SendWR{ID: 1 << 40, Op: verbs.OpSend, SGL: l.sge[:]}
		if l.sends++; l.sends%16 == 0 {
			l.wrs[0].Flags = verbs.SendSignaled
		}
		_, _ = c.qp.PostSend(l.wrs[:])
		sent++
	}
	for sent < min(qd, n) {
		post(sent % qd)
	}
	for done < n {
		m := c.cq.Poll(l.wcs[:])
		for _, wc := range l.wcs[:m] {
			if wc.ID == 1<<40 {
				continue
			}
			b := c.recvBuf(int(wc.ID))
			tag := b[8] // the IU index: tags are 0..qd-1
			l.rsge[0] = verbs.SGE{Addr: addrOf(b, 0), Len: uint32(len(b)), LKey: c.mr.LKey()}
			l.rwr[0] = verbs.RecvWR{ID: wc.ID, SGL: l.rsge[:]}
			_, _ = c.qp.PostRecv(l.rwr[:])
			done++
			if sent < n {
				post(int(tag))
			}
		}
	}
}

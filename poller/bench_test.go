package poller_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usrpt/usrpt/internal/ring"
	"github.com/usrpt/usrpt/poller"
	"golang.org/x/sys/cpu"
)

// twoReactors starts busy-polling reactors on the first two online CPUs (or
// one, on a single-CPU machine, where the numbers mean little).
func twoReactors(b *testing.B, setup func(a, c *poller.Reactor)) *poller.Group {
	cpus := onlineCPUs(b)
	if len(cpus) > 2 {
		cpus = cpus[:2]
	}
	g, err := poller.NewGroup(poller.Config{CPUs: cpus})
	if err != nil {
		b.Fatal(err)
	}
	setup(g.Reactor(0), g.Reactor(g.Len()-1))
	return g
}

// BenchmarkRingTransfer moves b.N items through an SPSC ring from a poller on
// one pinned reactor to a poller on another, batch items per push and pop.
// ns/op is per item.
func BenchmarkRingTransfer(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			q := ring.NewSPSC[uint64](4096)
			n := uint64(b.N)
			var done atomic.Bool
			finished := make(chan struct{})
			// Each side's state on its own cache lines: captured variables
			// are separate small heap objects the allocator packs together,
			// and sharing a line would measure false sharing, not the ring.
			type side struct {
				_   cpu.CacheLinePad
				buf []uint64
				n   uint64
				_   cpu.CacheLinePad
			}
			p, c := &side{buf: make([]uint64, batch)}, &side{buf: make([]uint64, batch)}
			g := twoReactors(b, func(prod, cons *poller.Reactor) {
				prod.Register("produce", func() poller.Status {
					if p.n >= n {
						return poller.Idle
					}
					k := min(uint64(batch), n-p.n)
					for i := range k {
						p.buf[i] = p.n + i
					}
					pushed := q.PushBatch(p.buf[:k])
					if pushed == 0 {
						return poller.Idle
					}
					p.n += uint64(pushed)
					return poller.Busy
				})
				cons.Register("consume", func() poller.Status {
					got := q.PopBatch(c.buf)
					if got == 0 {
						return poller.Idle
					}
					if c.buf[0] != c.n {
						panic(fmt.Sprintf("ring reordered: got %d, want %d", c.buf[0], c.n))
					}
					c.n += uint64(got)
					if c.n == n && !done.Swap(true) {
						close(finished)
					}
					return poller.Busy
				})
			})
			b.ReportAllocs()
			b.ResetTimer()
			if err := g.Start(); err != nil {
				b.Fatal(err)
			}
			select {
			case <-finished:
			case <-time.After(time.Minute):
				b.Fatal("transfer stalled")
			}
			b.StopTimer()
			g.Stop()
		})
	}
}

var (
	rtA, rtB       *poller.Reactor
	rtCount, rtMax int64
	rtDone         chan struct{}
)

func rtPing(any) { // on B
	for !rtA.Send(rtPong, nil) {
	}
}

func rtPong(any) { // on A
	rtCount++
	if rtCount == rtMax {
		close(rtDone)
		return
	}
	for !rtB.Send(rtPing, nil) {
	}
}

// BenchmarkMessageRoundTrip sends a message from reactor A to reactor B,
// whose handler sends one back; ns/op is one round trip.
func BenchmarkMessageRoundTrip(b *testing.B) {
	g := twoReactors(b, func(a, c *poller.Reactor) { rtA, rtB = a, c })
	rtCount, rtMax, rtDone = 0, int64(b.N), make(chan struct{})
	b.ReportAllocs()
	if err := g.Start(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	rtB.Send(rtPing, nil)
	select {
	case <-rtDone:
	case <-time.After(time.Minute):
		b.Fatal("round trips stalled")
	}
	b.StopTimer()
	g.Stop()
}

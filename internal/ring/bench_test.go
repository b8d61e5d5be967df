package ring

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/cpu"
)

// The benchmarks move b.N items (or b.N round trips) between goroutines that
// are locked to OS threads and pinned to distinct CPUs, the way reactors run,
// so ns/op is the cost per item (or per round trip) including the cache-line
// transfers between cores.

const benchRingSize = 1024

// oversubscribed is set by runPinned, before it starts the goroutines that
// read it, when they outnumber the usable CPUs.
var oversubscribed bool

// idle is the benchmarks' back-off when a ring is full or empty. With a CPU
// for every goroutine it only spins: the other side is running, and any yield
// would cost far more than the wait (runtime.Gosched on a locked thread hands
// its P to another thread and back, tens of microseconds). When goroutines
// share CPUs it gives the CPU to the kernel now and then, so the side being
// waited for gets to run before the time slice ends.
func idle(spins *int) {
	*spins++
	if oversubscribed && *spins&63 == 0 {
		yieldThread()
	}
}

// runPinned runs consumer and each producer on its own goroutine, pinned when
// the machine allows: the consumer to the first usable CPU, producers spread
// over the others. It starts the timer when all are pinned and stops it when
// all have returned.
func runPinned(b *testing.B, consumer func(), producers ...func()) {
	b.Helper()
	cpus := usableCPUs()
	cpuOf := func(i int) int { return -1 } // i == 0: consumer; i > 0: producer i-1
	if len(cpus) >= 2 {
		cpuOf = func(i int) int {
			if i == 0 {
				return cpus[0]
			}
			return cpus[1+(i-1)%(len(cpus)-1)]
		}
	} else {
		b.Logf("%d usable CPUs: running unpinned", len(cpus))
	}
	all := append([]func(){consumer}, producers...)
	oversubscribed = len(all) > len(cpus)
	// Every pinned goroutine holds a P while it spins; leave one more for the
	// runtime and this goroutine, as a server leaves room for its control plane.
	if procs := runtime.GOMAXPROCS(0); procs <= len(all) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(len(all) + 1))
	}
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, len(all))
	for i, f := range all {
		ready.Add(1)
		done.Go(func() {
			// As a reactor does. Never unlocked: when the goroutine
			// exits the runtime destroys the thread, so a narrowed
			// affinity does not leak into the thread pool.
			runtime.LockOSThread()
			if c := cpuOf(i); c >= 0 {
				if err := pin(c); err != nil {
					errs <- fmt.Errorf("pin to CPU %d: %w", c, err)
				}
			}
			ready.Done()
			<-start
			f()
		})
	}
	ready.Wait()
	select {
	case err := <-errs:
		b.Logf("%v: timings are unpinned", err)
	default:
	}
	b.ResetTimer()
	close(start)
	done.Wait()
	b.StopTimer()
}

// share splits n items over p producers.
func share(n, p, i int) int {
	s := n / p
	if i < n%p {
		s++
	}
	return s
}

func BenchmarkSPSC(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			b.ReportAllocs()
			r := NewSPSC[uint64](benchRingSize)
			n := b.N
			produce := func() {
				buf := make([]uint64, batch)
				spins := 0
				for i := 0; i < n; {
					if batch == 1 {
						if r.Push(uint64(i)) {
							i++
						} else {
							idle(&spins)
						}
						continue
					}
					k := r.PushBatch(buf[:min(batch, n-i)])
					if k == 0 {
						idle(&spins)
					}
					i += k
				}
			}
			consume := func() {
				out := make([]uint64, batch)
				spins := 0
				for got := 0; got < n; {
					if batch == 1 {
						if _, ok := r.Pop(); ok {
							got++
						} else {
							idle(&spins)
						}
						continue
					}
					k := r.PopBatch(out)
					if k == 0 {
						idle(&spins)
					}
					got += k
				}
			}
			runPinned(b, consume, produce)
		})
	}
}

func BenchmarkMPSC(b *testing.B) {
	for _, producers := range []int{1, 2} {
		for _, batch := range []int{1, 32} {
			b.Run(fmt.Sprintf("producers=%d/batch=%d", producers, batch), func(b *testing.B) {
				b.ReportAllocs()
				r := NewMPSC[uint64](benchRingSize)
				n := b.N
				prods := make([]func(), producers)
				for p := range prods {
					mine := share(n, producers, p)
					prods[p] = func() {
						buf := make([]uint64, batch)
						spins := 0
						for i := 0; i < mine; {
							if batch == 1 {
								if r.Push(uint64(i)) {
									i++
								} else {
									idle(&spins)
								}
								continue
							}
							k := r.PushBatch(buf[:min(batch, mine-i)])
							if k == 0 {
								idle(&spins)
							}
							i += k
						}
					}
				}
				consume := func() {
					out := make([]uint64, batch)
					spins := 0
					for got := 0; got < n; {
						if batch == 1 {
							if _, ok := r.Pop(); ok {
								got++
							} else {
								idle(&spins)
							}
							continue
						}
						k := r.PopBatch(out)
						if k == 0 {
							idle(&spins)
						}
						got += k
					}
				}
				runPinned(b, consume, prods...)
			})
		}
	}
}

// BenchmarkPingPong bounces one value between two pinned goroutines through a
// pair of size-2 SPSC rings; ns/op is one round trip, i.e. two one-way
// cross-core handoffs, the latency floor of a reactor-to-reactor message.
func BenchmarkPingPong(b *testing.B) {
	b.ReportAllocs()
	ping, pong := NewSPSC[uint64](2), NewSPSC[uint64](2)
	n := b.N
	runPinned(b,
		func() { // the echo side
			spins := 0
			for range n {
				v, ok := ping.Pop()
				for !ok {
					idle(&spins)
					v, ok = ping.Pop()
				}
				for !pong.Push(v) {
					idle(&spins)
				}
			}
		},
		func() { // the initiating side
			spins := 0
			for i := range n {
				for !ping.Push(uint64(i)) {
					idle(&spins)
				}
				v, ok := pong.Pop()
				for !ok {
					idle(&spins)
					v, ok = pong.Pop()
				}
				if v != uint64(i) {
					panic(fmt.Sprintf("ping-pong: got %d, want %d", v, i))
				}
			}
		},
	)
}

// BenchmarkCacheLineRoundTrip is the hardware floor for BenchmarkPingPong: two
// pinned goroutines take turns storing to one padded word, so ns/op is one
// cache line moving to the other core and back. A ring's one-way handoff moves
// at least two lines in sequence (the index, then the slot it guards), so a
// ring round trip costs about twice this.
func BenchmarkCacheLineRoundTrip(b *testing.B) {
	b.ReportAllocs()
	var line struct {
		_    cpu.CacheLinePad
		turn atomic.Uint64
		_    cpu.CacheLinePad
	}
	n := uint64(b.N)
	runPinned(b,
		func() {
			spins := 0
			for i := range n {
				// Acquire: wait for the other side's store of its turn.
				for line.turn.Load() != 2*i+1 {
					idle(&spins)
				}
				// Release: hand the turn back.
				line.turn.Store(2*i + 2)
			}
		},
		func() {
			spins := 0
			for i := range n {
				// Release: hand the turn over.
				line.turn.Store(2*i + 1)
				// Acquire: wait for it to come back.
				for line.turn.Load() != 2*i+2 {
					idle(&spins)
				}
			}
		},
	)
}

package poller_test

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The peer: Go channels between two goroutines locked to threads pinned to
// the same two CPUs the reactor benchmarks use. This is what the runtime
// replaces, measured in the same run for docs/benchmarks.md.

func pinned(b *testing.B, cpu int, fn func()) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			b.Error(err)
			return
		}
		fn()
	}()
	return done
}

func peerCPUs(b *testing.B) (int, int) {
	cpus := onlineCPUs(b)
	return cpus[0], cpus[len(cpus)-1]
}

// BenchmarkPeerChanTransfer: chan uint64 with 4096 slots; ns/op per item.
func BenchmarkPeerChanTransfer(b *testing.B) {
	c0, c1 := peerCPUs(b)
	ch := make(chan uint64, 4096)
	n := b.N
	b.ReportAllocs()
	b.ResetTimer()
	prod := pinned(b, c0, func() {
		for i := range n {
			ch <- uint64(i)
		}
	})
	cons := pinned(b, c1, func() {
		for i := range n {
			if v := <-ch; v != uint64(i) {
				b.Errorf("got %d, want %d", v, i)
				return
			}
		}
	})
	<-prod
	<-cons
}

// BenchmarkPeerChanRoundTrip: two unbuffered channels; ns/op per round trip.
func BenchmarkPeerChanRoundTrip(b *testing.B) {
	c0, c1 := peerCPUs(b)
	ping, pong := make(chan struct{}), make(chan struct{})
	n := b.N
	b.ReportAllocs()
	b.ResetTimer()
	echo := pinned(b, c1, func() {
		for range n {
			<-ping
			pong <- struct{}{}
		}
	})
	send := pinned(b, c0, func() {
		for range n {
			ping <- struct{}{}
			<-pong
		}
	})
	<-send
	<-echo
}

package loop

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/usrpt/usrpt/verbs"
)

// pin locks the goroutine to its thread and the thread to cpu (best
// effort: a machine with one CPU runs both sides on it).
func pin(b *testing.B, cpu int) {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu % runtime.NumCPU())
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		b.Logf("pin to CPU %d: %v", cpu, err)
	}
}

// BenchmarkPingPong bounces a 64-byte SEND between two goroutines, each
// busy-polling its own CQs; ns/op is one round trip.
func BenchmarkPingPong(b *testing.B) {
	for _, pinned := range []bool{false, true} {
		b.Run(fmt.Sprintf("pinned=%v", pinned), func(b *testing.B) {
			o := defaultOpts()
			o.qp.SigAll = false
			a, c := connectPair(b, o)
			var wg sync.WaitGroup
			run := func(s *side, cpu int, first bool, n int) {
				defer wg.Done()
				if pinned {
					// Exits locked: the runtime ends the pinned thread
					// rather than reuse it with our affinity.
					pin(b, cpu)
				}
				wcs := make([]verbs.WC, 16)
				recv := []verbs.RecvWR{{SGL: []verbs.SGE{s.sge(1024, 64)}}}
				send := []verbs.SendWR{{Op: verbs.OpSend, SGL: []verbs.SGE{s.sge(0, 64)}}}
				sent := 0
				if first {
					s.qp.PostSend(send)
					sent++
				}
				for got := 0; got < n; {
					k := s.rcq.Poll(wcs)
					if k == 0 {
						// The send CQ's Poll drives RNR retries and
						// frees send slots: keep it turning.
						s.scq.Poll(wcs)
						continue
					}
					got += k
					s.qp.PostRecv(recv)
					if sent < n {
						// Every 8th send signaled, so its slots come back.
						send[0].Flags = 0
						if sent%8 == 7 {
							send[0].Flags = verbs.SendSignaled
						}
						if _, err := s.qp.PostSend(send); err != nil {
							b.Error(err)
							return
						}
						sent++
					}
					s.scq.Poll(wcs)
				}
			}
			// Both sides' receives are posted before either sends, so the
			// first SEND never meets an empty receive queue.
			for _, s := range []*side{a, c} {
				for range 16 {
					if _, err := s.qp.PostRecv([]verbs.RecvWR{{SGL: []verbs.SGE{s.sge(1024, 64)}}}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			wg.Add(2)
			go run(a, 0, true, b.N)
			go run(c, 1, false, b.N)
			wg.Wait()
		})
	}
}

// BenchmarkRDMAWrite posts batches of 16 RDMA WRITEs (the last signaled)
// from one goroutine; the bytes per second are the copy bandwidth.
func BenchmarkRDMAWrite(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			const batch = 16
			o := defaultOpts()
			o.bufSize = batch * size
			a, c := connectPair(b, o)
			wrs := make([]verbs.SendWR, batch)
			sges := make([]verbs.SGE, batch)
			for i := range wrs {
				sges[i] = a.sge(i*size, size)
				wrs[i] = verbs.SendWR{ID: uint64(i), Op: verbs.OpRDMAWrite, SGL: sges[i : i+1], RemoteAddr: c.mr.Addr() + uint64(i*size), RKey: c.mr.RKey()}
			}
			wrs[batch-1].Flags = verbs.SendSignaled
			wcs := make([]verbs.WC, 4)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n += batch {
				k := min(batch, b.N-n)
				w := wrs[:k]
				w[k-1].Flags = verbs.SendSignaled
				if _, err := a.qp.PostSend(w); err != nil {
					b.Fatal(err)
				}
				if k < batch {
					w[k-1].Flags = 0
				}
				for a.scq.Poll(wcs) == 0 {
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(size)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

package ring

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// The stress tests run on machines with as few as two cores and under the
// race detector, so every spin loop yields with runtime.Gosched and the counts
// are chosen to finish in a few seconds with -race on two cores: each test
// moves its total (1M items through SPSC, 4 producers x 200k through MPSC)
// as two halves, one with single operations and one with mixed batches.

// producerBackoff returns the producers' back-off for a full ring: it yields
// and reports whether to keep going. It says stop once the test has ended, so
// the producers of a failed test give up instead of spinning on a ring that
// nobody drains any more; the test's cleanup waits for them.
func producerBackoff(t *testing.T, wg *sync.WaitGroup) func() bool {
	var stop atomic.Bool
	t.Cleanup(func() {
		stop.Store(true)
		wg.Wait()
	})
	return func() bool {
		runtime.Gosched()
		return !stop.Load()
	}
}

// item carries a producer id, a per-producer sequence number and a pointer
// into memory the producer wrote just before pushing, so the race detector
// checks that the push happens-before the pop.
type item struct {
	producer int
	seq      int
	payload  *int
}

func TestSPSCStress(t *testing.T) {
	n := 500_000
	if testing.Short() {
		n = 50_000
	}
	for _, batched := range []bool{false, true} {
		name := "single"
		if batched {
			name = "batch"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := NewSPSC[uint64](64)
			var wg sync.WaitGroup
			backoff := producerBackoff(t, &wg)
			wg.Go(func() {
				buf := make([]uint64, 13)
				for i := 0; i < n; {
					if !batched || i%3 == 0 {
						if r.Push(uint64(i)) {
							i++
						} else if !backoff() {
							return
						}
						continue
					}
					m := min(len(buf), n-i, 1+i%len(buf))
					for j := range m {
						buf[j] = uint64(i + j)
					}
					k := r.PushBatch(buf[:m])
					i += k
					if k == 0 && !backoff() {
						return
					}
				}
			})
			out := make([]uint64, 17)
			for want := 0; want < n; {
				if !batched || want%2 == 0 {
					v, ok := r.Pop()
					if !ok {
						runtime.Gosched()
						continue
					}
					if v != uint64(want) {
						t.Fatalf("Pop() = %d, want %d", v, want)
					}
					want++
					continue
				}
				k := r.PopBatch(out[:1+want%len(out)])
				if k == 0 {
					runtime.Gosched()
				}
				for _, v := range out[:k] {
					if v != uint64(want) {
						t.Fatalf("PopBatch gave %d, want %d", v, want)
					}
					want++
				}
			}
			wg.Wait()
			if r.Len() != 0 {
				t.Fatalf("Len() = %d after draining", r.Len())
			}
		})
	}
}

func TestMPSCStress(t *testing.T) {
	const producers = 4
	per := 100_000
	if testing.Short() {
		per = 10_000
	}
	for _, batched := range []bool{false, true} {
		name := "single"
		if batched {
			name = "batch"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := NewMPSC[item](64)
			var wg sync.WaitGroup
			backoff := producerBackoff(t, &wg)
			for p := range producers {
				payload := make([]int, per)
				wg.Go(func() {
					buf := make([]item, 7)
					for i := 0; i < per; {
						if !batched || i%4 == 0 {
							payload[i] = i
							if r.Push(item{p, i, &payload[i]}) {
								i++
							} else if !backoff() {
								return
							}
							continue
						}
						m := min(len(buf), per-i, 1+i%len(buf))
						for j := range m {
							payload[i+j] = i + j
							buf[j] = item{p, i + j, &payload[i+j]}
						}
						k := r.PushBatch(buf[:m])
						i += k
						if k == 0 && !backoff() {
							return
						}
					}
				})
			}
			var next [producers]int
			check := func(it item) {
				if it.seq != next[it.producer] {
					t.Fatalf("producer %d: got seq %d, want %d", it.producer, it.seq, next[it.producer])
				}
				if *it.payload != it.seq {
					t.Fatalf("producer %d seq %d: payload %d", it.producer, it.seq, *it.payload)
				}
				next[it.producer]++
			}
			out := make([]item, 19)
			for got := 0; got < producers*per; {
				if !batched || got%2 == 0 {
					it, ok := r.Pop()
					if !ok {
						runtime.Gosched()
						continue
					}
					check(it)
					got++
					continue
				}
				k := r.PopBatch(out[:1+got%len(out)])
				if k == 0 {
					runtime.Gosched()
				}
				for _, it := range out[:k] {
					check(it)
				}
				got += k
			}
			wg.Wait()
			for p, n := range next {
				if n != per {
					t.Errorf("producer %d: got %d items, want %d", p, n, per)
				}
			}
			if _, ok := r.Pop(); ok || r.Len() != 0 {
				t.Fatalf("ring not empty after all items: Len() = %d", r.Len())
			}
		})
	}
}

package ring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// queue is the API both rings share, so one table drives both.
type queue[T any] interface {
	Push(T) bool
	PushBatch([]T) int
	Pop() (T, bool)
	PopBatch([]T) int
	Len() int
	Cap() int
}

// at moves an empty ring's free-running indices to start, so tests can run
// the index arithmetic across the uint64 wrap without 2^64 pushes.
func (r *SPSC[T]) at(start uint64) *SPSC[T] {
	r.tail.Store(start)
	r.head.Store(start)
	r.headCache, r.tailCache = start, start
	return r
}

func (r *MPSC[T]) at(start uint64) *MPSC[T] {
	r.tail.Store(start)
	r.head.Store(start)
	for i := range uint64(len(r.slots)) {
		p := start + i
		r.slots[p&r.mask].seq.Store(p)
	}
	return r
}

var kinds = []struct {
	name string
	make func(size int, start uint64) queue[uint64]
}{
	{"SPSC", func(size int, start uint64) queue[uint64] { return NewSPSC[uint64](size).at(start) }},
	{"MPSC", func(size int, start uint64) queue[uint64] { return NewMPSC[uint64](size).at(start) }},
}

// starts are initial index values: zero, and just short of the uint64 wrap
// so that the table's laps cross it.
var starts = []uint64{0, 1, math.MaxUint64 - 2, math.MaxUint64 - 5}

type opKind int

const (
	opPush opKind = iota
	opPushBatch
	opPop
	opPopBatch
	opLen
)

type step struct {
	op   opKind
	vals []uint64 // pushed values, or the popped values wanted
	n    int      // PushBatch count wanted, PopBatch len(out), Len wanted
	ok   bool     // Push/Pop result wanted
}

func push(v uint64, ok bool) step           { return step{op: opPush, vals: []uint64{v}, ok: ok} }
func pushBatch(want int, vs ...uint64) step { return step{op: opPushBatch, vals: vs, n: want} }
func pop(v uint64) step                     { return step{op: opPop, vals: []uint64{v}, ok: true} }
func popEmpty() step                        { return step{op: opPop} }
func popBatch(n int, want ...uint64) step   { return step{op: opPopBatch, vals: want, n: n} }
func length(n int) step                     { return step{op: opLen, n: n} }

func seq(from, to uint64) []uint64 {
	var vs []uint64
	for v := from; v < to; v++ {
		vs = append(vs, v)
	}
	return vs
}

func TestRingTable(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		steps []step
	}{
		{"empty", 4, []step{length(0), popEmpty(), popBatch(4), length(0)}},
		{"one", 2, []step{push(7, true), length(1), pop(7), popEmpty(), length(0)}},
		{"full", 4, []step{
			push(1, true), push(2, true), push(3, true), push(4, true),
			length(4), push(5, false), pushBatch(0, 5, 6), length(4),
			pop(1), push(5, true), push(6, false), length(4),
			pop(2), pop(3), pop(4), pop(5), popEmpty(), length(0),
		}},
		{"wraparound", 4, []step{
			// Three laps of a size-4 ring, offset by one each lap.
			push(1, true), push(2, true), push(3, true), pop(1), pop(2),
			push(4, true), push(5, true), push(6, true), pop(3), pop(4), pop(5),
			push(7, true), push(8, true), push(9, true), length(4), push(10, false),
			pop(6), pop(7), pop(8), pop(9), popEmpty(),
			push(10, true), pop(10), popEmpty(),
		}},
		{"batch partial push", 4, []step{
			push(1, true),
			pushBatch(3, 2, 3, 4, 5, 6), length(4),
			popBatch(2, 1, 2),
			pushBatch(2, 7, 8, 9), length(4),
			popBatch(8, 3, 4, 7, 8), length(0),
		}},
		{"batch partial pop", 8, []step{
			pushBatch(3, 1, 2, 3),
			popBatch(8, 1, 2, 3), popBatch(8), length(0),
			pushBatch(5, 4, 5, 6, 7, 8), popBatch(2, 4, 5), length(3),
			popBatch(1, 6), pop(7), popBatch(4, 8), popEmpty(),
		}},
		{"batch across the mask boundary", 8, []step{
			pushBatch(6, seq(0, 6)...), popBatch(6, seq(0, 6)...),
			// Indices 6..13: the batch splits at 8.
			pushBatch(8, seq(10, 20)...), length(8),
			popBatch(3, 10, 11, 12), popBatch(5, 13, 14, 15, 16, 17),
			pushBatch(2, 18, 19), popBatch(8, 18, 19),
		}},
		{"empty batches", 4, []step{
			pushBatch(0), popBatch(0), push(1, true), pushBatch(0), popBatch(0), length(1), pop(1),
		}},
		{"batch larger than ring", 2, []step{
			pushBatch(2, seq(0, 9)...), popBatch(9, 0, 1), pushBatch(2, 2, 3), popBatch(1, 2), popBatch(1, 3),
		}},
	}
	for _, k := range kinds {
		for _, tc := range tests {
			for _, start := range starts {
				t.Run(fmt.Sprintf("%s/%s/start=%#x", k.name, tc.name, start), func(t *testing.T) {
					r := k.make(tc.size, start)
					if r.Cap() != tc.size {
						t.Fatalf("Cap() = %d, want %d", r.Cap(), tc.size)
					}
					for i, s := range tc.steps {
						runStep(t, i, r, s)
					}
				})
			}
		}
	}
}

func runStep(t *testing.T, i int, r queue[uint64], s step) {
	t.Helper()
	switch s.op {
	case opPush:
		if got := r.Push(s.vals[0]); got != s.ok {
			t.Fatalf("step %d: Push(%d) = %v, want %v", i, s.vals[0], got, s.ok)
		}
	case opPushBatch:
		if got := r.PushBatch(s.vals); got != s.n {
			t.Fatalf("step %d: PushBatch(%v) = %d, want %d", i, s.vals, got, s.n)
		}
	case opPop:
		v, ok := r.Pop()
		if ok != s.ok || (ok && v != s.vals[0]) {
			t.Fatalf("step %d: Pop() = %d, %v, want %v, %v", i, v, ok, s.vals, s.ok)
		}
	case opPopBatch:
		out := make([]uint64, s.n)
		n := r.PopBatch(out)
		if !slices.Equal(out[:n], s.vals) {
			t.Fatalf("step %d: PopBatch(len %d) = %v, want %v", i, s.n, out[:n], s.vals)
		}
	case opLen:
		if got := r.Len(); got != s.n {
			t.Fatalf("step %d: Len() = %d, want %d", i, got, s.n)
		}
	}
}

// TestRingModel runs long random operation sequences against a slice model.
func TestRingModel(t *testing.T) {
	for _, k := range kinds {
		for _, size := range []int{2, 8, 64} {
			for _, start := range starts {
				t.Run(fmt.Sprintf("%s/size=%d/start=%#x", k.name, size, start), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(size), start))
					r := k.make(size, start)
					var model []uint64
					next := uint64(0)
					in := make([]uint64, 2*size)
					out := make([]uint64, 2*size)
					for i := range 5000 {
						switch rng.IntN(4) {
						case 0:
							ok := r.Push(next)
							if ok != (len(model) < size) {
								t.Fatalf("op %d: Push with %d/%d = %v", i, len(model), size, ok)
							}
							if ok {
								model = append(model, next)
								next++
							}
						case 1:
							m := rng.IntN(len(in) + 1)
							for j := range m {
								in[j] = next + uint64(j)
							}
							n := r.PushBatch(in[:m])
							if want := min(m, size-len(model)); n != want {
								t.Fatalf("op %d: PushBatch(%d) with %d/%d = %d, want %d", i, m, len(model), size, n, want)
							}
							model = append(model, in[:n]...)
							next += uint64(n)
						case 2:
							v, ok := r.Pop()
							if ok != (len(model) > 0) || (ok && v != model[0]) {
								t.Fatalf("op %d: Pop() = %d, %v; model %v", i, v, ok, model)
							}
							if ok {
								model = model[1:]
							}
						case 3:
							m := rng.IntN(len(out) + 1)
							n := r.PopBatch(out[:m])
							want := model[:min(m, len(model))]
							if !slices.Equal(out[:n], want) {
								t.Fatalf("op %d: PopBatch(%d) = %v, want %v", i, m, out[:n], want)
							}
							model = model[n:]
						}
						if r.Len() != len(model) {
							t.Fatalf("op %d: Len() = %d, want %d", i, r.Len(), len(model))
						}
					}
				})
			}
		}
	}
}

func TestNewBadSize(t *testing.T) {
	for _, size := range []int{-4, -1, 0, 1, 3, 6, 100, 1<<20 + 1} {
		for _, k := range kinds {
			t.Run(fmt.Sprintf("%s/%d", k.name, size), func(t *testing.T) {
				defer func() {
					msg, _ := recover().(string)
					if !strings.Contains(msg, "power of two") || !strings.Contains(msg, fmt.Sprint(size)) {
						t.Fatalf("panic = %q, want a message naming the size and power of two", msg)
					}
				}()
				k.make(size, 0)
				t.Fatalf("New%s(%d) did not panic", k.name, size)
			})
		}
	}
}

// msg is a typical control message: a pointer and a callback. The rings must
// not retain either after a pop.
type msg struct {
	fn  func()
	arg *int
}

func TestPopZeroesSlots(t *testing.T) {
	x := 42
	m := msg{fn: func() {}, arg: &x}
	ms := []msg{m, m, m, m, m}
	out := make([]msg, 8)
	isZero := func(v msg) bool { return v.fn == nil && v.arg == nil }

	t.Run("SPSC", func(t *testing.T) {
		r := NewSPSC[msg](4).at(math.MaxUint64 - 1) // batches split at the wrap
		r.Push(m)
		r.Pop()
		if n := r.PushBatch(ms); n != 4 {
			t.Fatalf("PushBatch = %d, want 4", n)
		}
		r.PopBatch(out)
		for i, v := range r.slots {
			if !isZero(v) {
				t.Errorf("slot %d not zeroed after pop", i)
			}
		}
	})
	t.Run("MPSC", func(t *testing.T) {
		r := NewMPSC[msg](4).at(math.MaxUint64 - 1)
		r.Push(m)
		r.Pop()
		if n := r.PushBatch(ms); n != 4 {
			t.Fatalf("PushBatch = %d, want 4", n)
		}
		r.PopBatch(out)
		for i := range r.slots {
			if !isZero(r.slots[i].val) {
				t.Errorf("slot %d not zeroed after pop", i)
			}
		}
	})
}

// TestMPSCReservedNotSkipped stands in for a producer that has won its CAS
// but not yet written and published its cell: the consumer must wait for it,
// not deliver a later producer's element first.
func TestMPSCReservedNotSkipped(t *testing.T) {
	r := NewMPSC[uint64](4)
	// The slow producer reserves position 0 and stalls.
	if !r.tail.CompareAndSwap(0, 1) {
		t.Fatal("reserve failed")
	}
	// A fast producer takes position 1 and publishes it.
	if !r.Push(2) {
		t.Fatal("Push(2) failed")
	}
	if v, ok := r.Pop(); ok {
		t.Fatalf("Pop() = %d, true past an unpublished reservation", v)
	}
	if n := r.PopBatch(make([]uint64, 4)); n != 0 {
		t.Fatalf("PopBatch = %d past an unpublished reservation", n)
	}
	if r.Len() != 2 {
		t.Fatalf("Len() = %d, want 2 (reservations count)", r.Len())
	}
	// The slow producer publishes.
	r.slots[0].val = 1
	r.slots[0].seq.Store(1)
	out := make([]uint64, 4)
	if n := r.PopBatch(out); !slices.Equal(out[:n], []uint64{1, 2}) {
		t.Fatalf("PopBatch = %v, want [1 2]", out[:n])
	}
}

// TestZeroAllocs proves the hot path does not allocate, for a plain value and
// for a message holding a func and a pointer.
func TestZeroAllocs(t *testing.T) {
	x := 1
	testZeroAllocs(t, "uint64", func(i int) uint64 { return uint64(i) })
	testZeroAllocs(t, "msg", func(int) msg { return msg{fn: func() {}, arg: &x} })
}

func testZeroAllocs[T any](t *testing.T, name string, mk func(int) T) {
	in := make([]T, 32)
	for i := range in {
		in[i] = mk(i)
	}
	v := mk(0)
	out := make([]T, 32)
	check := func(what string, f func()) {
		t.Helper()
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s/%s: %v allocs per run, want 0", what, name, a)
		}
	}
	s := NewSPSC[T](64)
	check("SPSC Push+Pop", func() { s.Push(v); s.Pop() })
	check("SPSC PushBatch+PopBatch", func() { s.PushBatch(in); s.PopBatch(out) })
	m := NewMPSC[T](64)
	check("MPSC Push+Pop", func() { m.Push(v); m.Pop() })
	check("MPSC PushBatch+PopBatch", func() { m.PushBatch(in); m.PopBatch(out) })
}

func TestSPSCPushBounded(t *testing.T) {
	r := NewSPSC[int](8)
	for i := range 5 {
		if !r.PushBounded(i, 5) {
			t.Fatalf("push %d refused below the bound", i)
		}
	}
	if r.PushBounded(5, 5) {
		t.Fatal("push past the bound of 5 accepted")
	}
	if v, ok := r.Pop(); !ok || v != 0 {
		t.Fatalf("pop: %d %v", v, ok)
	}
	// The producer's cached head is stale; the bound refreshes it.
	if !r.PushBounded(5, 5) {
		t.Fatal("push refused after a pop freed a place")
	}
	if r.PushBounded(6, 5) || r.Len() != 5 {
		t.Fatalf("bound not kept: len %d", r.Len())
	}
	// A bound over the capacity is the capacity.
	for r.PushBounded(7, 100) {
	}
	if r.Len() != 8 {
		t.Fatalf("len %d with bound 100 on a ring of 8", r.Len())
	}
	for i := range 8 {
		v, _ := r.Pop()
		if want := []int{1, 2, 3, 4, 5, 7, 7, 7}[i]; v != want {
			t.Fatalf("pop %d: %d, want %d", i, v, want)
		}
	}
}

func TestSPSCPushWithPopWith(t *testing.T) {
	type big struct {
		n int
		_ [7]int // a multi-line element, as the loop fabric's receives
	}
	r := NewSPSC[big](4)
	for i := range 3 {
		if !r.PushWith(3, func(b *big) { b.n = i }) {
			t.Fatalf("push %d refused", i)
		}
	}
	if r.PushWith(3, func(*big) { t.Fatal("fill called past the bound") }) {
		t.Fatal("push past the bound accepted")
	}
	for i := range 3 {
		got := -1
		if !r.PopWith(func(b *big) { got = b.n }) || got != i {
			t.Fatalf("pop %d: got %d", i, got)
		}
	}
	if r.PopWith(func(*big) { t.Fatal("use called on an empty ring") }) {
		t.Fatal("pop from an empty ring")
	}
	// PopWith leaves the slot as it was: the next lap's fill sees it.
	var seen int
	r.PushWith(4, func(b *big) { seen = b.n; b.n = 9 })
	if seen != 0 && seen != 1 && seen != 2 {
		t.Fatalf("fill saw %d", seen)
	}
}

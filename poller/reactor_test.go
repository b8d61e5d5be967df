package poller_test

import (
	"testing"
	"time"

	"github.com/usrpt/usrpt/poller"
	"github.com/usrpt/usrpt/poller/pollertest"
)

func TestMessagesCrossReactors(t *testing.T) {
	d := pollertest.New(3)
	var got []int
	// A token passes 0 → 1 → 2 → 0 … ten hops; every hop runs on the
	// receiving reactor, recorded in order.
	var hop func(arg any)
	hops := 0
	hop = func(arg any) {
		r := arg.(*poller.Reactor)
		got = append(got, r.ID())
		hops++
		if hops < 10 {
			next := d.Reactor((r.ID() + 1) % d.Len())
			if !next.Send(hop, next) {
				t.Fatal("inbox full")
			}
		}
	}
	d.Reactor(0).Send(hop, d.Reactor(0))
	if _, err := d.RunUntilIdle(100); err != nil {
		t.Fatal(err)
	}
	want := []int{0, 1, 2, 0, 1, 2, 0, 1, 2, 0}
	if len(got) != len(want) {
		t.Fatalf("hops %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("hops %v, want %v", got, want)
		}
	}
}

func TestMessageBatchIsBounded(t *testing.T) {
	d := pollertest.New(1)
	r := d.Reactor(0)
	n := 0
	count := func(any) { n++ }
	for range poller.MsgBatch*2 + 5 {
		if !r.Send(count, nil) {
			t.Fatal("inbox full")
		}
	}
	// Each iteration drains at most MsgBatch messages, so data-path pollers
	// run between batches even under a flood of control messages.
	polled := 0
	r.Register("data", func() poller.Status { polled++; return poller.Idle })
	for i, want := range []int{poller.MsgBatch, 2 * poller.MsgBatch, 2*poller.MsgBatch + 5} {
		if st := r.RunOnce(); st != poller.Busy {
			t.Fatalf("iteration %d: status %v, want busy", i, st)
		}
		if n != want || polled != i+1 {
			t.Fatalf("iteration %d: %d messages, %d polls; want %d, %d", i, n, polled, want, i+1)
		}
	}
	if st := r.RunOnce(); st != poller.Idle {
		t.Fatalf("empty inbox: status %v, want idle", st)
	}
}

func TestInboxFull(t *testing.T) {
	r, err := poller.NewReactor(poller.ReactorConfig{ID: 0, CPU: -1, InboxSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	nop := func(any) {}
	for i := range 4 {
		if !r.Send(nop, nil) {
			t.Fatalf("send %d refused before the inbox was full", i)
		}
	}
	if r.Send(nop, nil) {
		t.Fatal("send accepted into a full inbox")
	}
	r.RunOnce()
	if !r.Send(nop, nil) {
		t.Fatal("send refused after the inbox drained")
	}
}

func TestNewReactorRejectsBadInbox(t *testing.T) {
	for _, size := range []int{1, 3, 1000, -8} {
		if _, err := poller.NewReactor(poller.ReactorConfig{InboxSize: size}); err == nil {
			t.Errorf("inbox size %d accepted", size)
		}
	}
}

func TestTimers(t *testing.T) {
	d := pollertest.New(1)
	r := d.Reactor(0)
	var periodic, oneshot []int64
	r.RegisterTimer("tick", 10*time.Millisecond, func() poller.Status {
		periodic = append(periodic, d.Now())
		return poller.Busy
	})
	r.After("once", 25*time.Millisecond, func() poller.Status {
		oneshot = append(oneshot, d.Now())
		return poller.Busy
	})
	if next, ok := r.NextDeadline(); !ok || next != int64(10*time.Millisecond) {
		t.Fatalf("next deadline %d %v, want 10ms", next, ok)
	}
	if err := d.AdvanceAndRun(55*time.Millisecond, time.Millisecond, 10); err != nil {
		t.Fatal(err)
	}
	ms := int64(time.Millisecond)
	wantP := []int64{10 * ms, 20 * ms, 30 * ms, 40 * ms, 50 * ms}
	if len(periodic) != len(wantP) {
		t.Fatalf("periodic fired at %v, want %v", periodic, wantP)
	}
	for i := range wantP {
		if periodic[i] != wantP[i] {
			t.Fatalf("periodic fired at %v, want %v", periodic, wantP)
		}
	}
	if len(oneshot) != 1 || oneshot[0] != 25*ms {
		t.Fatalf("one-shot fired at %v, want [25ms] once", oneshot)
	}
	st := r.Snapshot()
	if len(st.Pollers) != 1 || st.Pollers[0].Name != "tick" {
		t.Fatalf("after the one-shot fired, pollers = %+v; want only tick", st.Pollers)
	}
}

func TestTimerSkipsMissedTicks(t *testing.T) {
	d := pollertest.New(1)
	r := d.Reactor(0)
	fired := 0
	r.RegisterTimer("tick", 10*time.Millisecond, func() poller.Status { fired++; return poller.Busy })
	// The reactor was away for 95 ms (a descheduled vCPU): one late tick,
	// not nine in a burst, then back on period from the late one.
	d.Advance(95 * time.Millisecond)
	d.Step()
	d.Step()
	if fired != 1 {
		t.Fatalf("fired %d times after a long gap, want 1", fired)
	}
	if next, _ := r.NextDeadline(); next != int64(105*time.Millisecond) {
		t.Fatalf("next deadline %v, want 105ms", time.Duration(next))
	}
}

func TestUnregisterAndRegisterInsideLoop(t *testing.T) {
	d := pollertest.New(1)
	r := d.Reactor(0)
	var order []string
	var self *poller.Poller
	self = r.Register("selfremove", func() poller.Status {
		order = append(order, "selfremove")
		r.Unregister(self)
		r.Register("added", func() poller.Status { order = append(order, "added"); return poller.Idle })
		return poller.Busy
	})
	r.Register("steady", func() poller.Status { order = append(order, "steady"); return poller.Idle })
	r.RunOnce()
	r.RunOnce()
	want := []string{"selfremove", "steady", "steady", "added"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	// Unregistering twice, or a poller of another reactor, is harmless.
	r.Unregister(self)
	other := pollertest.New(1).Reactor(0)
	p := other.Register("x", func() poller.Status { return poller.Idle })
	r.Unregister(p)
	if got := len(other.Snapshot().Pollers); got != 1 {
		t.Fatalf("foreign Unregister removed a poller: %d left", got)
	}
}

// Accounting is honest: time in calls that found work is busy, time in calls
// that found none is idle, and an iteration is busy only if some call was.
func TestBusyIdleAccounting(t *testing.T) {
	d := pollertest.New(1)
	r := d.Reactor(0)
	work := 0
	r.Register("worker", func() poller.Status {
		if work > 0 {
			work--
			d.Advance(3 * time.Microsecond)
			return poller.Busy
		}
		d.Advance(time.Microsecond)
		return poller.Idle
	})
	r.Register("spinner", func() poller.Status {
		d.Advance(2 * time.Microsecond)
		return poller.Idle
	})
	work = 4
	for range 10 {
		r.RunOnce()
	}
	s := r.Snapshot()
	if s.Iterations != 10 || s.BusyIterations != 4 {
		t.Fatalf("iterations %d busy %d, want 10 and 4", s.Iterations, s.BusyIterations)
	}
	// Busy iterations: 3 µs + 2 µs each; idle ones: 1 µs + 2 µs each.
	if s.Busy != 4*5*time.Microsecond || s.Idle != 6*3*time.Microsecond {
		t.Fatalf("busy %v idle %v, want 20µs and 18µs", s.Busy, s.Idle)
	}
	if got := s.BusyPercent(); got < 52.6 || got > 52.7 {
		t.Fatalf("busy%% = %.2f, want 52.63", got)
	}
	w, sp := s.Pollers[0], s.Pollers[1]
	if w.Runs != 10 || w.BusyRuns != 4 || w.Busy != 12*time.Microsecond || w.Idle != 6*time.Microsecond {
		t.Fatalf("worker stats %+v", w)
	}
	if sp.BusyRuns != 0 || sp.Busy != 0 || sp.Idle != 20*time.Microsecond {
		t.Fatalf("spinner stats %+v: spinning with nothing to do must be idle", sp)
	}
}

var sinkCount int

func countMsg(any) { sinkCount++ }

// The message path allocates nothing: Send with a top-level function and a
// pointer argument, and the drain in RunOnce.
func TestSendAndRunOnceAllocateNothing(t *testing.T) {
	d := pollertest.New(2)
	a, b := d.Reactor(0), d.Reactor(1)
	arg := &struct{ n int }{}
	a.Register("p", func() poller.Status { return poller.Idle })
	allocs := testing.AllocsPerRun(1000, func() {
		for range 8 {
			b.Send(countMsg, arg)
		}
		a.RunOnce()
		b.RunOnce()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per round, want 0", allocs)
	}
	if sinkCount == 0 {
		t.Fatal("messages were not delivered")
	}
}

func TestParseIdleMode(t *testing.T) {
	for in, want := range map[string]poller.IdleMode{"busy": poller.IdleBusy, "": poller.IdleBusy, "adaptive": poller.IdleAdaptive} {
		got, err := poller.ParseIdleMode(in)
		if err != nil || got != want {
			t.Errorf("ParseIdleMode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := poller.ParseIdleMode("sleepy"); err == nil {
		t.Error("ParseIdleMode(sleepy) accepted")
	}
}

package poller

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes a group of reactors, one per CPU.
type Config struct {
	// CPUs to run reactors on, in reactor order (see ParseCoreMask).
	CPUs      []int
	Idle      IdlePolicy
	InboxSize int // per reactor; 0 means DefaultInboxSize
	Logger    *slog.Logger
}

// Pin reports where a started reactor's thread landed.
type Pin struct {
	Reactor  int `json:"reactor"`
	CPU      int `json:"cpu"`      // asked for
	Observed int `json:"observed"` // sched_getcpu right after pinning
	TID      int `json:"tid"`
}

// Group is a set of reactors, each on its own locked and pinned OS thread.
type Group struct {
	cfg      Config
	log      *slog.Logger
	reactors []*Reactor
	stops    []atomic.Bool // one per reactor: each polls only its own flag
	pins     []Pin
	wg       sync.WaitGroup

	state     atomic.Int32 // groupNew → groupRunning → groupStopped
	prevProcs int
}

const (
	groupNew int32 = iota
	groupRunning
	groupStopped
)

// NewGroup makes the reactors of cfg without starting them, so pollers can
// be registered on them first.
func NewGroup(cfg Config) (*Group, error) {
	if len(cfg.CPUs) == 0 {
		return nil, errors.New("poller: no CPUs for reactors")
	}
	seen := make(map[int]bool, len(cfg.CPUs))
	for _, c := range cfg.CPUs {
		if seen[c] {
			return nil, fmt.Errorf("poller: CPU %d given twice", c)
		}
		seen[c] = true
	}
	cfg.Idle = cfg.Idle.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	g := &Group{
		cfg:   cfg,
		log:   log.With("component", "poller"),
		stops: make([]atomic.Bool, len(cfg.CPUs)),
		pins:  make([]Pin, len(cfg.CPUs)),
	}
	for i, cpu := range cfg.CPUs {
		r, err := NewReactor(ReactorConfig{ID: i, CPU: cpu, InboxSize: cfg.InboxSize})
		if err != nil {
			return nil, err
		}
		if cfg.Idle.Mode == IdleAdaptive {
			if err := r.enableWaker(); err != nil {
				return nil, fmt.Errorf("poller: reactor %d: %w", i, err)
			}
		}
		g.reactors = append(g.reactors, r)
	}
	return g, nil
}

// Len is the number of reactors.
func (g *Group) Len() int { return len(g.reactors) }

// Reactor returns reactor i (0 ≤ i < Len).
func (g *Group) Reactor(i int) *Reactor { return g.reactors[i] }

// Reactors returns all reactors in order.
func (g *Group) Reactors() []*Reactor { return g.reactors }

// Pins reports where each reactor's thread runs; valid after Start.
func (g *Group) Pins() []Pin { return append([]Pin(nil), g.pins...) }

// Idle is the group's idle policy, with defaults filled in.
func (g *Group) Idle() IdlePolicy { return g.cfg.Idle }

// Start runs every reactor on its own OS thread pinned to its CPU, and
// returns once all are pinned, or with the first pinning error after
// stopping the others. It raises GOMAXPROCS to at least reactors+2, because
// each spinning reactor holds a P: without spare Ps the control plane, the
// GC and timers would starve behind them. Stop restores the old value.
func (g *Group) Start() error {
	if !g.state.CompareAndSwap(groupNew, groupRunning) {
		return errors.New("poller: group already started")
	}
	g.prevProcs = runtime.GOMAXPROCS(0)
	if want := len(g.reactors) + 2; g.prevProcs < want {
		runtime.GOMAXPROCS(want)
		g.log.Debug("raised GOMAXPROCS so reactors cannot starve the runtime", "from", g.prevProcs, "to", want)
	}
	errs := make([]error, len(g.reactors))
	var ready sync.WaitGroup
	ready.Add(len(g.reactors))
	for i, r := range g.reactors {
		g.wg.Add(1)
		go g.run(i, r, &ready, errs)
	}
	ready.Wait()
	if err := errors.Join(errs...); err != nil {
		g.Stop()
		return err
	}
	for _, p := range g.pins {
		g.log.Debug("reactor pinned", "reactor", p.Reactor, "cpu", p.CPU, "observed", p.Observed, "tid", p.TID)
	}
	return nil
}

func (g *Group) run(i int, r *Reactor, ready *sync.WaitGroup, errs []error) {
	defer g.wg.Done()
	// The thread stays locked until the goroutine exits, and a goroutine
	// that exits locked takes its thread with it: the pinned thread never
	// goes back to the runtime's pool to run unrelated goroutines.
	runtime.LockOSThread()
	observed, tid, err := pinThread(r.cpu)
	if err == nil && observed != r.cpu {
		err = fmt.Errorf("reactor %d: pinned to CPU %d but runs on CPU %d", i, r.cpu, observed)
	}
	g.pins[i] = Pin{Reactor: i, CPU: r.cpu, Observed: observed, TID: tid}
	errs[i] = err
	ready.Done()
	if err != nil {
		return
	}
	r.loop(&g.stops[i], g.cfg.Idle)
}

// loop runs iterations until stop is set, idling as policy says.
func (r *Reactor) loop(stop *atomic.Bool, policy IdlePolicy) {
	adaptive := policy.Mode == IdleAdaptive && r.waker.efd >= 0
	spinNs := int64(policy.SpinFor)
	lastBusy := r.now()
	pending := func() bool { return r.inbox.Len() > 0 || stop.Load() }
	// The stop flag is read once per iteration; it lives in its own slot
	// of the group's array and is written once, so the load hits a clean
	// shared cache line almost always.
	for !stop.Load() {
		st := r.RunOnce()
		if !adaptive {
			continue
		}
		now := r.now()
		if st == Busy {
			lastBusy = now
			continue
		}
		if now-lastBusy < spinNs {
			continue
		}
		d := int64(policy.MaxSleep)
		if next, ok := r.NextDeadline(); ok {
			d = max(0, min(d, next-now))
		}
		if d == 0 {
			continue
		}
		if slept := r.waker.sleep(time.Duration(d), pending, r.now); slept > 0 {
			r.sleeps++
			r.sleepNs += slept
		}
		lastBusy = r.now()
	}
}

// Stop ends every reactor's loop, waits for the threads to exit and restores
// GOMAXPROCS. Pollers are not called after Stop returns; messages sent
// afterwards are never run. Stop must not be called from a reactor (it waits
// for that reactor's own thread to exit).
func (g *Group) Stop() {
	// The CAS makes Stop idempotent and safe from several goroutines: only
	// the caller that moves running → stopped waits for the threads.
	if !g.state.CompareAndSwap(groupRunning, groupStopped) {
		g.state.CompareAndSwap(groupNew, groupStopped)
		return
	}
	for i, r := range g.reactors {
		// Store before notify: a reactor woken by the eventfd re-reads
		// its flag at the top of the loop and sees the store.
		g.stops[i].Store(true)
		r.waker.notify()
	}
	g.wg.Wait()
	if runtime.GOMAXPROCS(0) != g.prevProcs {
		runtime.GOMAXPROCS(g.prevProcs)
	}
}

// Stats snapshots every reactor's counters. Running reactors copy their own
// counters in a message (so no counter is shared between threads); a reactor
// that does not answer within timeout is reported as an error.
func (g *Group) Stats(timeout time.Duration) ([]ReactorStats, error) {
	out := make([]ReactorStats, len(g.reactors))
	if g.state.Load() != groupRunning {
		for i, r := range g.reactors {
			out[i] = r.Snapshot()
		}
		return out, nil
	}
	type req struct {
		r    *Reactor
		out  *ReactorStats
		done chan struct{}
	}
	reqs := make([]*req, len(g.reactors))
	for i, r := range g.reactors {
		q := &req{r: r, out: &out[i], done: make(chan struct{})}
		reqs[i] = q
		if !r.Send(func(a any) {
			q := a.(*req)
			*q.out = q.r.Snapshot()
			close(q.done)
		}, q) {
			return nil, fmt.Errorf("poller: reactor %d inbox full", i)
		}
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for i, q := range reqs {
		select {
		case <-q.done:
		case <-deadline.C:
			return nil, fmt.Errorf("poller: reactor %d did not answer a stats request within %v", i, timeout)
		}
	}
	return out, nil
}

// Call runs fn on reactor i and waits for it to finish (control plane only:
// it allocates and blocks). Use it to register pollers on a running reactor.
func (g *Group) Call(i int, timeout time.Duration, fn func(r *Reactor)) error {
	if g.state.Load() != groupRunning {
		fn(g.reactors[i])
		return nil
	}
	done := make(chan struct{})
	r := g.reactors[i]
	if !r.Send(func(any) { fn(r); close(done) }, nil) {
		return fmt.Errorf("poller: reactor %d inbox full", i)
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("poller: reactor %d did not run a call within %v", i, timeout)
	}
}

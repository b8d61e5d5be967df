package poller

import (
	"fmt"
	"time"

	"github.com/usrpt/usrpt/internal/ring"
	"golang.org/x/sys/cpu"
)

// Status is what a poller reports for one call.
type Status int8

const (
	// Idle: the poller found nothing to do.
	Idle Status = iota
	// Busy: the poller did work (completions reaped, requests moved on).
	Busy
)

func (s Status) String() string {
	if s == Busy {
		return "busy"
	}
	return "idle"
}

// PollFunc does a bounded amount of work and reports whether it found any.
type PollFunc func() Status

// Msg is a cross-reactor message: Fn(Arg) runs on the receiving reactor.
// Sending allocates nothing when Fn is a preexisting function value and Arg
// is pointer-shaped (a pointer, map, chan or func), since neither needs boxing.
type Msg struct {
	Fn  func(arg any)
	Arg any
}

// Defaults for a reactor's configuration.
const (
	DefaultInboxSize = 4096
	// MsgBatch bounds how many messages one loop iteration drains, so a
	// flood of control messages cannot starve the data-path pollers.
	MsgBatch = 64
)

// ReactorConfig describes one reactor. Reactors made by Group get theirs from
// the group's Config; pollertest makes them directly with a fake clock.
type ReactorConfig struct {
	ID        int
	CPU       int // the CPU the reactor is pinned to; -1 when not pinned
	InboxSize int // power of two; 0 means DefaultInboxSize
	// Clock returns monotonic nanoseconds; nil means Monotonic.
	Clock func() int64
}

type pollerKind uint8

const (
	kindActive pollerKind = iota
	kindPeriodic
	kindOneShot
)

// Poller is a registered poll function, timer or one-shot timer.
type Poller struct {
	name   string
	fn     PollFunc
	kind   pollerKind
	period int64 // ns, for kindPeriodic
	next   int64 // deadline in clock ns, for timers
	dead   bool  // unregistered; removed at the end of the iteration
	r      *Reactor

	runs, busyRuns uint64
	busyNs, idleNs int64

	// Pollers of different reactors are small and often allocated back to
	// back; without padding two of them share a cache line, and the
	// counters each reactor writes on every call bounce that line between
	// cores (measured: 520 ns per ring item instead of ~70).
	_ cpu.CacheLinePad
}

// Name is the name given at registration.
func (p *Poller) Name() string { return p.name }

// Reactor runs pollers on one goroutine. See the package comment for which
// methods may be called from where.
type Reactor struct {
	_ cpu.CacheLinePad // keep another object's hot fields off our first line

	id, cpu int
	now     func() int64

	inbox  *ring.MPSC[Msg]
	msgBuf [MsgBatch]Msg

	active   []*Poller // run every iteration
	timers   []*Poller // periodic and one-shot, scanned when nextTimer passes
	pending  []*Poller // registered during an iteration, merged after it
	inLoop   bool
	changed  bool  // some poller was unregistered during the iteration
	nextTime int64 // earliest timer deadline; maxInt64 when none

	waker waker // eventfd and wait set for the adaptive idle policy

	// Counters, written only by the reactor's goroutine. Other goroutines
	// read them through a Stats message or after the reactor stopped.
	iterations, busyIterations uint64
	messages                   uint64
	busyNs, idleNs, sleepNs    int64
	sleeps                     uint64

	_ cpu.CacheLinePad // and ours off the next object's line
}

const maxInt64 = int64(^uint64(0) >> 1)

// NewReactor makes a reactor that is not running. Group starts reactors on
// pinned threads; pollertest steps them from a test.
func NewReactor(cfg ReactorConfig) (*Reactor, error) {
	size := cfg.InboxSize
	if size == 0 {
		size = DefaultInboxSize
	}
	if size < 2 || size&(size-1) != 0 {
		return nil, fmt.Errorf("reactor %d: inbox size %d is not a power of two >= 2", cfg.ID, size)
	}
	now := cfg.Clock
	if now == nil {
		now = Monotonic
	}
	r := &Reactor{
		id:       cfg.ID,
		cpu:      cfg.CPU,
		now:      now,
		inbox:    ring.NewMPSC[Msg](size),
		nextTime: maxInt64,
	}
	r.waker.efd = -1
	return r, nil
}

// ID is the reactor's index in its group.
func (r *Reactor) ID() int { return r.id }

// CPU is the CPU the reactor is pinned to, or -1.
func (r *Reactor) CPU() int { return r.cpu }

// Now reads the reactor's clock (monotonic ns).
func (r *Reactor) Now() int64 { return r.now() }

// Send queues fn(arg) to run on r. It may be called from any goroutine,
// including other reactors, and returns false when r's inbox is full; the
// caller decides whether to retry, drop or fail. It allocates nothing when
// fn and arg are as described for Msg.
func (r *Reactor) Send(fn func(arg any), arg any) bool {
	if !r.inbox.Push(Msg{Fn: fn, Arg: arg}) {
		return false
	}
	r.waker.notify()
	return true
}

// Register adds a poller called on every loop iteration.
func (r *Reactor) Register(name string, fn PollFunc) *Poller {
	return r.add(&Poller{name: name, fn: fn, kind: kindActive, r: r})
}

// RegisterTimer adds a periodic poller, first called one period from now.
func (r *Reactor) RegisterTimer(name string, period time.Duration, fn PollFunc) *Poller {
	if period <= 0 {
		panic(fmt.Sprintf("poller: timer %q with non-positive period %v", name, period))
	}
	p := &Poller{name: name, fn: fn, kind: kindPeriodic, period: int64(period), r: r}
	p.next = r.now() + p.period
	return r.add(p)
}

// After adds a one-shot poller called once, d from now, then unregistered.
func (r *Reactor) After(name string, d time.Duration, fn PollFunc) *Poller {
	p := &Poller{name: name, fn: fn, kind: kindOneShot, r: r}
	p.next = r.now() + int64(d)
	return r.add(p)
}

func (r *Reactor) add(p *Poller) *Poller {
	if r.inLoop {
		r.pending = append(r.pending, p)
		return p
	}
	r.insert(p)
	return p
}

func (r *Reactor) insert(p *Poller) {
	if p.dead {
		return
	}
	if p.kind == kindActive {
		r.active = append(r.active, p)
		return
	}
	r.timers = append(r.timers, p)
	r.nextTime = min(r.nextTime, p.next)
}

// Unregister removes p; it is not called again. Safe from inside p itself.
func (r *Reactor) Unregister(p *Poller) {
	if p == nil || p.r != r || p.dead {
		return
	}
	p.dead = true
	if r.inLoop {
		r.changed = true
		return
	}
	r.compact()
}

func (r *Reactor) compact() {
	r.active = removeDead(r.active)
	r.timers = removeDead(r.timers)
	r.nextTime = maxInt64
	for _, t := range r.timers {
		r.nextTime = min(r.nextTime, t.next)
	}
	r.changed = false
}

func removeDead(ps []*Poller) []*Poller {
	out := ps[:0]
	for _, p := range ps {
		if !p.dead {
			out = append(out, p)
		}
	}
	clear(ps[len(out):])
	return out
}

// RunOnce runs one loop iteration: drain up to MsgBatch messages, call every
// active poller once, fire the timers that are due. It returns Busy when any
// of them did work. Group's loop calls it; pollertest calls it directly.
func (r *Reactor) RunOnce() Status {
	r.inLoop = true
	t0 := r.now()
	st := Idle

	if n := r.inbox.PopBatch(r.msgBuf[:]); n > 0 {
		for i := range n {
			m := r.msgBuf[i]
			r.msgBuf[i] = Msg{} // drop references so the GC can free them
			m.Fn(m.Arg)
		}
		r.messages += uint64(n)
		st = Busy
	}

	t := r.now()
	for _, p := range r.active {
		if p.dead {
			continue
		}
		s := p.fn()
		t1 := r.now()
		p.account(s, t1-t)
		t = t1
		st |= s
	}

	if t >= r.nextTime {
		t, st = r.fireTimers(t, st)
	}

	if len(r.pending) > 0 {
		for i, p := range r.pending {
			r.insert(p)
			r.pending[i] = nil
		}
		r.pending = r.pending[:0]
	}
	if r.changed {
		r.compact()
	}
	r.inLoop = false

	r.iterations++
	if st == Busy {
		r.busyIterations++
		r.busyNs += t - t0
	} else {
		r.idleNs += t - t0
	}
	return st
}

func (r *Reactor) fireTimers(t int64, st Status) (int64, Status) {
	next := maxInt64
	for _, p := range r.timers {
		if p.dead {
			continue
		}
		if p.next > t {
			next = min(next, p.next)
			continue
		}
		s := p.fn()
		t1 := r.now()
		p.account(s, t1-t)
		switch p.kind {
		case kindOneShot:
			p.dead = true
			r.changed = true
		case kindPeriodic:
			p.next += p.period
			if p.next <= t1 {
				// Fell behind by more than a period (a long poller, a
				// descheduled vCPU): skip the missed ticks instead of
				// firing a burst to catch up.
				p.next = t1 + p.period
			}
			next = min(next, p.next)
		}
		t = t1
		st |= s
	}
	r.nextTime = next
	return t, st
}

func (p *Poller) account(s Status, ns int64) {
	p.runs++
	if s == Busy {
		p.busyRuns++
		p.busyNs += ns
	} else {
		p.idleNs += ns
	}
}

// NextDeadline is the earliest timer deadline in clock ns, or false when no
// timer is registered.
func (r *Reactor) NextDeadline() (int64, bool) {
	if r.nextTime == maxInt64 {
		return 0, false
	}
	return r.nextTime, true
}

// PendingMessages is the number of messages waiting in r's inbox (racy when
// read from another goroutine).
func (r *Reactor) PendingMessages() int { return r.inbox.Len() }

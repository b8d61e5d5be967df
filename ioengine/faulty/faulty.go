package faulty

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/usrpt/usrpt/ioengine"
)

// Rule selects requests and says what to inject into them. The selectors
// are ANDed; zero values select everything. A rule with no effect fires
// all the same: it counts the requests it selects and shields them from the
// rules after it.
type Rule struct {
	// Ops are the operations selected; the empty set selects every one.
	Ops ioengine.OpSet
	// Offset and Len select requests that overlap the bytes
	// [Offset, Offset+Len); a request that covers no bytes (a flush, an
	// empty read) is taken as the single byte at its Offset. Len 0 selects
	// every offset, and flushes with it.
	Offset, Len int64
	// Every fires on every Every-th selected request (the Every-th, the
	// 2×Every-th, …); 0 and 1 fire on each.
	Every uint64
	// Probability, when above 0, fires on that fraction of the requests
	// that pass the selectors above, drawn from a PCG seeded with Seed, so
	// a run is reproducible. 0 (the zero value) does not filter.
	Probability float64
	Seed        uint64
	// Limit stops the rule after it has fired Limit times; 0 is no limit.
	Limit uint64

	// Errno completes the request with this errno and N = 0, without
	// passing it to the device.
	Errno syscall.Errno
	// Short reports a read or write as half done: it is carried out in full
	// by the device, then N is set to half its length, so Err wraps
	// ioengine.ErrShort. A Short rule selects only reads and writes. (Doing
	// the whole transfer keeps O_DIRECT engines happy; a caller must not
	// trust the bytes past N either way.) A failure from the device wins.
	Short bool
	// Delay holds the completion back: the request is returned Delay Polls
	// later than it would have been. It combines with Errno and Short.
	Delay int
}

func (r *Rule) validate() error {
	switch {
	case r.Offset < 0 || r.Len < 0 || r.Len > math.MaxInt64-r.Offset:
		return fmt.Errorf("range [%d, +%d) is not a range of bytes", r.Offset, r.Len)
	case !(r.Probability >= 0 && r.Probability <= 1): // and not NaN
		return fmt.Errorf("probability %v: want 0 to 1", r.Probability)
	case r.Delay < 0:
		return fmt.Errorf("delay %d: want 0 or more polls", r.Delay)
	case r.Errno != 0 && r.Short:
		return fmt.Errorf("both errno %d and short: pick one", r.Errno)
	}
	return nil
}

// effect is what a fired rule does to one request.
type effect struct {
	errno syscall.Errno
	short bool
	delay int
}

// rule is a Rule with its running state, shared by the Device's queues.
type rule struct {
	Rule
	effect effect
	end    int64 // Offset+Len, when Len > 0

	// seen and fired are atomics shared by the Device's queues: Add hands
	// each request a distinct sequence number, so every-Nth stays exact
	// across reactors (which request gets which number is up to timing).
	seen  atomic.Uint64 // requests that passed the op and range selectors
	fired atomic.Uint64

	mu  sync.Mutex // guards rng: draws from queues on several reactors
	rng *rand.Rand
}

// fires reports whether the rule fires on r, advancing its state.
func (ru *rule) fires(r *ioengine.Request) bool {
	if ru.Ops != 0 && !ru.Ops.Has(r.Op) {
		return false
	}
	if ru.Short && r.Op != ioengine.OpRead && r.Op != ioengine.OpWrite {
		return false
	}
	if ru.Len > 0 && !overlaps(r, ru.Offset, ru.end) {
		return false
	}
	if n := ru.seen.Add(1); ru.Every > 1 && n%ru.Every != 0 {
		return false
	}
	if ru.rng != nil {
		ru.mu.Lock()
		x := ru.rng.Float64()
		ru.mu.Unlock()
		if x >= ru.Probability {
			return false
		}
	}
	if ru.Limit == 0 {
		ru.fired.Add(1)
		return true
	}
	for {
		// A CAS loop, not Add: queues on several reactors may race for the
		// last firings, and the rule must not exceed Limit.
		f := ru.fired.Load()
		if f >= ru.Limit {
			return false
		}
		if ru.fired.CompareAndSwap(f, f+1) {
			return true
		}
	}
}

// overlaps reports whether r touches [from, to), overflow-safe for any
// Offset and Len a caller may have put in r.
func overlaps(r *ioengine.Request, from, to int64) bool {
	off, n := r.Offset, r.Size()
	if n <= 0 {
		n = 1
	}
	if off >= to {
		return false
	}
	if off < 0 {
		return off+n > from // a negative plus a positive cannot overflow
	}
	return n > from-off // both non-negative: cannot overflow
}

// Device is a Device with fault injection. Its methods are safe for
// concurrent use.
type Device struct {
	inner ioengine.Device
	rules []rule

	// The counters are atomics because the queues of several reactors
	// update them; each is a plain count, read by Stats with no ordering
	// against the others.
	requests atomic.Uint64
	errors   atomic.Uint64
	shorts   atomic.Uint64
	delays   atomic.Uint64
}

var _ ioengine.Device = (*Device)(nil)

// Wrap wraps d with rules, tried in order. The Device owns d from here on:
// closing it closes d. A rule that makes no sense (a negative range or delay,
// a probability outside [0, 1], both Errno and Short) is a bug in the test
// that wrote it, and Wrap panics.
func Wrap(d ioengine.Device, rules ...Rule) *Device {
	if d == nil {
		panic("faulty: Wrap of a nil device")
	}
	w := &Device{inner: d, rules: make([]rule, len(rules))}
	for i, r := range rules {
		if err := r.validate(); err != nil {
			panic(fmt.Sprintf("faulty: rule %d: %v", i, err))
		}
		ru := &w.rules[i]
		ru.Rule = r
		ru.effect = effect{errno: r.Errno, short: r.Short, delay: r.Delay}
		ru.end = r.Offset + r.Len
		if r.Probability > 0 {
			ru.rng = rand.New(rand.NewPCG(r.Seed, uint64(i)))
		}
	}
	return w
}

// Stats counts what a Device has seen and injected.
type Stats struct {
	Requests uint64   // requests accepted by Submit
	Errors   uint64   // completed with an injected errno
	Shorts   uint64   // reported short
	Delays   uint64   // held back
	Fired    []uint64 // times each rule fired, in Wrap's order
}

// Stats returns the counters. Counts are taken as a rule fires; in the rare
// case that the inner queue then refuses the request, it is counted although
// Submit did not accept it.
func (d *Device) Stats() Stats {
	s := Stats{
		Requests: d.requests.Load(),
		Errors:   d.errors.Load(),
		Shorts:   d.shorts.Load(),
		Delays:   d.delays.Load(),
		Fired:    make([]uint64, len(d.rules)),
	}
	for i := range d.rules {
		s.Fired[i] = d.rules[i].fired.Load()
	}
	return s
}

// Unwrap is the wrapped device.
func (d *Device) Unwrap() ioengine.Device { return d.inner }

// Info is the inner device's, with "+faulty" after the engine's name.
func (d *Device) Info() ioengine.Info {
	info := d.inner.Info()
	info.Engine += "+faulty"
	return info
}

// Supports is the inner device's.
func (d *Device) Supports(op ioengine.Op) bool { return d.inner.Supports(op) }

// Close closes the inner device.
func (d *Device) Close() error { return d.inner.Close() }

// decide runs the rules on r and counts what the first that fires does.
func (d *Device) decide(r *ioengine.Request) effect {
	for i := range d.rules {
		ru := &d.rules[i]
		if !ru.fires(r) {
			continue
		}
		e := ru.effect
		if e.errno != 0 {
			d.errors.Add(1)
		}
		if e.short {
			d.shorts.Add(1)
		}
		if e.delay > 0 {
			d.delays.Add(1)
		}
		return e
	}
	return effect{}
}

// NewQueue opens a queue of the inner device with the same configuration
// and wraps it.
func (d *Device) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	if cfg.Depth < 1 {
		return nil, fmt.Errorf("faulty: new queue: depth %d: want at least 1", cfg.Depth)
	}
	in, err := d.inner.NewQueue(cfg)
	if err != nil {
		return nil, fmt.Errorf("faulty: %w", err)
	}
	return &queue{
		dev:    d,
		inner:  in,
		depth:  cfg.Depth,
		polled: make([]*ioengine.Request, cfg.Depth),
		ready:  make([]*ioengine.Request, cfg.Depth),
		held:   make([]held, 0, cfg.Depth),
		marks:  make([]mark, 0, cfg.Depth),
	}, nil
}

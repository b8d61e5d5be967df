// Package pollertest steps several poller.Reactors deterministically from one
// goroutine, on a fake clock, for tests of cross-reactor flows: messages sent
// between reactors, timers, pollers that hand work to each other. Nothing is
// pinned and nothing sleeps; a test decides when each iteration runs and
// when time moves.
package pollertest

import (
	"fmt"
	"time"

	"github.com/usrpt/usrpt/poller"
)

// Driver owns n reactors with IDs 0..n-1 and the clock they read.
type Driver struct {
	now      int64
	reactors []*poller.Reactor
}

// New makes a driver with n reactors; the clock starts at 0 and moves only
// when Advance is called.
func New(n int) *Driver {
	d := &Driver{}
	for i := range n {
		r, err := poller.NewReactor(poller.ReactorConfig{ID: i, CPU: -1, InboxSize: 1024, Clock: d.Now})
		if err != nil {
			panic(err) // the config above is valid by construction
		}
		d.reactors = append(d.reactors, r)
	}
	return d
}

// Now is the fake clock in nanoseconds.
func (d *Driver) Now() int64 { return d.now }

// Advance moves the fake clock forward.
func (d *Driver) Advance(dt time.Duration) {
	if dt < 0 {
		panic("pollertest: clock moved backwards")
	}
	d.now += int64(dt)
}

// Reactor returns reactor i.
func (d *Driver) Reactor(i int) *poller.Reactor { return d.reactors[i] }

// Len is the number of reactors.
func (d *Driver) Len() int { return len(d.reactors) }

// Step runs one iteration on every reactor, in ID order, and reports Busy
// if any of them did work.
func (d *Driver) Step() poller.Status {
	st := poller.Idle
	for _, r := range d.reactors {
		if r.RunOnce() == poller.Busy {
			st = poller.Busy
		}
	}
	return st
}

// RunUntilIdle steps until a whole round is idle and no messages wait, and
// returns the number of rounds. It fails after maxRounds, which catches
// pollers that never settle (a livelock in the flow under test).
func (d *Driver) RunUntilIdle(maxRounds int) (int, error) {
	for i := 1; i <= maxRounds; i++ {
		if d.Step() == poller.Idle && d.quiet() {
			return i, nil
		}
	}
	return maxRounds, fmt.Errorf("pollertest: still busy after %d rounds", maxRounds)
}

func (d *Driver) quiet() bool {
	for _, r := range d.reactors {
		if r.PendingMessages() > 0 {
			return false
		}
	}
	return true
}

// AdvanceAndRun moves the clock by dt in steps of tick, running the reactors
// until idle after each step, so timers fire at the right fake times.
func (d *Driver) AdvanceAndRun(dt, tick time.Duration, maxRounds int) error {
	if tick <= 0 {
		return fmt.Errorf("pollertest: tick %v must be positive", tick)
	}
	for moved := time.Duration(0); moved < dt; {
		step := min(tick, dt-moved)
		d.Advance(step)
		moved += step
		if _, err := d.RunUntilIdle(maxRounds); err != nil {
			return err
		}
	}
	return nil
}

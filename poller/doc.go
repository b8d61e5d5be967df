// Package poller is the runtime every data-path component of usrpt runs on:
// one reactor per core of a core mask, each a goroutine locked to its own OS
// thread and pinned to its CPU, repeatedly calling the pollers registered on it.
//
// The model is SPDK's: a poller does a bounded amount of work and says whether
// it found any (Busy) or not (Idle); the reactor accounts busy and idle time
// per poller and per reactor, so spinning with nothing to do shows up as idle.
// Reactors share nothing. The only traffic between them is control traffic —
// messages carried over lock-free MPSC rings (internal/ring) and drained in
// bounded batches — never Go channels or locks.
//
// Timers are pollers with a period (periodic) or a deadline (one-shot). The
// idle policy chooses between spinning forever (IdleBusy, the default, for
// dedicated cores) and spinning for a while and then sleeping on an eventfd
// until a message, a timer or a registered file descriptor wakes the reactor
// (IdleAdaptive, for shared machines).
//
// Ownership: a Reactor's pollers and timers are owned by its goroutine.
// Register, RegisterTimer, After and Unregister must run on that goroutine
// (inside a poller or a message) or before the reactor starts; Send may be
// called from anywhere.
//
// This package knows nothing about storage; the graph test in internal/archtest
// keeps it so. Package pollertest steps several reactors deterministically
// from one goroutine for tests of cross-reactor flows.
package poller

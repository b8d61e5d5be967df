package poller

import (
	_ "unsafe" // for go:linkname
)

// nanotime is the runtime's monotonic clock in nanoseconds. It is one vDSO
// read, about half the cost of time.Now (which also reads the wall clock),
// and the reactor reads it once per poller per loop. The runtime keeps this
// symbol reachable by linkname for exactly such uses (see runtime/stubs.go).
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

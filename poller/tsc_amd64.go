package poller

// rdtsc reads the time-stamp counter. It is not serializing: a read may be
// reordered with the instructions around it by a few cycles, which is far
// below what the reactor's accounting and per-I/O latencies resolve.
//
//go:noescape
func rdtsc() uint64

const haveTSC = true

// Package bench generates load and reports it the way fio users expect:
// IOPS or operations per second, bandwidth, and latency percentiles from
// per-core HdrHistograms, as text or JSON.
//
// Today it holds the reactor benchmark: the cost of the poller runtime's
// cross-core primitives (ring transfer and message round trips between
// pinned reactors). Later workloads drive ioengine and the SRP initiator.
// It is a leaf: nothing in usrpt imports it but cmd/usrpt.
package bench

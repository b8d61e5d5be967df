// Package bench generates load and reports it the way fio users expect:
// IOPS or operations per second, bandwidth, and latency percentiles from
// HdrHistograms, as text or JSON, with an HdrHistogram interval log and
// plots.
//
// RunIO is the block I/O benchmark (usrpt bench): jobs, each a poller on a
// pinned reactor with its own ioengine.Queue, requests and hugemem buffers,
// issue fio's workloads (read, write, randread, randwrite, randrw, rw) at a
// queue depth. The per-I/O path (job.poll) allocates nothing and takes no
// lock: it records each latency once, into the job's current interval
// histogram, and publishes counters with one atomic store per batch. The
// control plane reads jobs through messages on their reactors
// (poller.Group.Call) and through those atomics, merges histograms for
// totals (never averaging percentiles), and writes the reports. Verify mode
// stamps every written block with a CRC32C, its LBA and a generation and
// checks reads against what the run wrote.
//
// With Layer LayerSCSI (usrpt bench --layer scsi) the same jobs send their
// I/O through the SCSI target core instead (scsi.go): each job's queue is
// an adapter that turns a Request into a CDB (READ(16), WRITE(16),
// SYNCHRONIZE CACHE(16), UNMAP, WRITE SAME(16)) on a preallocated Task,
// started on the job's own scsi.Executor over one LU and one I_T nexus
// that every job shares, and maps the status and sense back to N and an
// errno. It allocates nothing per I/O either, so the difference between
// the two layers is what a command costs the target core.
//
// RunReactor is the reactor benchmark (usrpt bench reactor): the cost of
// the poller runtime's cross-core primitives (ring transfer and message
// round trips between pinned reactors).
//
// It is a leaf: nothing in usrpt imports it but cmd/usrpt.
package bench

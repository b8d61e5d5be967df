package uring

import (
	"errors"
	"time"

	"github.com/usrpt/usrpt/ioengine/blockfile"
)

// Config says what Open opens and how its rings are set up. Path, Direct,
// ReadOnly, SizeBytes and Create mean what they mean in blockfile.Config,
// which opens the file.
type Config struct {
	// Path is a regular file or a block device.
	Path string
	// Direct opens with O_DIRECT, bypassing the page cache. Callers are
	// expected to set it; a filesystem that refuses O_DIRECT makes Open fail
	// with an error wrapping ErrDirectUnsupported.
	Direct bool
	// ReadOnly opens O_RDONLY; the device then supports read and flush
	// only. Otherwise a block device is opened O_EXCL, so one in use (a
	// mounted file system, swap, dm, md, loop) is refused. ReadOnly and
	// Create exclude each other.
	ReadOnly bool
	// SizeBytes is the device's capacity, a whole number of logical blocks,
	// or 0 for the whole file or block device (whose size must then be a
	// whole number of blocks). A regular file smaller than SizeBytes (or
	// missing) is an error unless Create is set, in which case it is
	// created and extended with ftruncate (sparse). A larger file or device
	// exposes only its first SizeBytes.
	SizeBytes int64
	// Create creates or extends a regular file to SizeBytes.
	Create bool

	// SQPoll gives each queue a kernel submission thread (IORING_SETUP_SQPOLL)
	// that polls the SQ so Poll needs no system call while it is awake. It
	// costs a busy CPU per queue; see the package comment before using it.
	SQPoll bool
	// SQPollCPU pins the SQPOLL thread (IORING_SETUP_SQ_AFF), or -1 leaves it
	// unpinned. Read only when SQPoll is set; note that 0 means CPU 0.
	SQPollCPU int
	// SQPollIdle is how long the SQPOLL thread spins before it sleeps and
	// needs a wakeup; 0 uses the kernel default (1 s).
	SQPollIdle time.Duration
	// IOPoll busy-polls the device for completions (IORING_SETUP_IOPOLL).
	// Only devices with poll queues (NVMe with poll_queues > 0) support it;
	// elsewhere every read and write completes with EOPNOTSUPP. An IOPOLL
	// device supports read and write only: the kernel refuses fsync and
	// fallocate on a polled ring.
	IOPoll bool
	// NoSingleIssuer leaves out IORING_SETUP_SINGLE_ISSUER,
	// DEFER_TASKRUN and COOP_TASKRUN, so a queue may be used from any OS
	// thread (one goroutine at a time) and the kernel interrupts whichever
	// thread submitted a request to complete it. Reactors on locked OS
	// threads leave it false.
	NoSingleIssuer bool
}

var (
	// ErrNotSupported is wrapped by Probe's and Open's errors when io_uring
	// cannot be used here: another operating system, a kernel without it, or
	// io_uring disabled by sysctl or seccomp.
	ErrNotSupported = errors.New("io_uring not available")

	// ErrDirectUnsupported is wrapped by Open's error when the filesystem
	// refuses O_DIRECT (the error also wraps EINVAL); opening with Direct
	// false avoids it. It is blockfile.ErrDirectUnsupported, so either
	// matches with errors.Is.
	ErrDirectUnsupported = blockfile.ErrDirectUnsupported

	// ErrWrongThread is wrapped by Queue.Err after the kernel refused a
	// SINGLE_ISSUER ring used from an OS thread other than the one that
	// called NewQueue (EEXIST).
	ErrWrongThread = errors.New("io_uring ring used from a thread other than the one that created it " +
		"(SINGLE_ISSUER: lock the reactor's OS thread before NewQueue, or open with NoSingleIssuer)")
)

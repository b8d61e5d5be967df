package uring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// ring is one io_uring instance: the fd and the three shared mappings, seen
// through pointers into them. It knows the ABI; Queue knows requests.
//
// Indices are free-running uint32s, as the kernel keeps them: tail-head is
// the number of entries in use even across wrap-around, and an index becomes
// an array position only when masked (i & mask) at the moment of access.
type ring struct {
	fd       int
	flags    uint32 // the setup flags the kernel accepted
	features uint32 // IORING_FEAT_*

	sqMem, cqMem, sqeMem []byte // cqMem is nil when the CQ shares sqMem (SINGLE_MMAP)

	sqHead  *uint32 // written by the kernel: next SQE it will consume
	sqTail  *uint32 // written by us: one past the last SQE we published
	sqFlags *uint32 // written by the kernel: IORING_SQ_*
	sqMask  uint32
	sqes    []sqe
	tail    uint32 // our SQ tail; *sqTail lags it until publish

	cqHead *uint32 // written by us: next CQE we will read
	cqTail *uint32 // written by the kernel: one past the last CQE it posted
	cqMask uint32
	cqes   []cqe
	head   uint32 // our CQ head; *cqHead lags it until we store it
}

// ringConfig is what setupRing needs from Config.
type ringConfig struct {
	entries      uint32 // SQ entries, a power of two
	sqPoll       bool
	sqPollCPU    int
	sqPollIdleMs uint32
	ioPoll       bool
	singleIssuer bool
}

// ladder is the list of optional setup flags to try, best first. The kernel
// answers EINVAL to a flag it does not know, so each step drops what the
// previous step's kernel might lack: NO_SQARRAY (6.6), then the
// SINGLE_ISSUER|DEFER_TASKRUN pair (6.1), then COOP_TASKRUN|TASKRUN_FLAG
// (5.19) and SUBMIT_ALL (5.18), ending with none.
//
// COOP_TASKRUN is for single-thread users only. The kernel runs a request's
// completion as task work of the thread that submitted it, and COOP_TASKRUN
// stops it from interrupting or waking that thread to do so: the work waits
// until the thread next enters the kernel. A queue that moves between OS
// threads (NoSingleIssuer) could leave it waiting on a thread the Go
// scheduler has parked, so it gets a plain ring, where the kernel signals the
// submitting thread.
func (c ringConfig) ladder() []uint32 {
	var l []uint32
	if c.singleIssuer && !c.sqPoll {
		// (The kernel rejects COOP_TASKRUN, TASKRUN_FLAG and
		// DEFER_TASKRUN with SQPOLL, whose thread runs the task work, and
		// SINGLE_ISSUER would only constrain that thread.)
		l = append(l,
			setupSingleIssuer|setupDeferTaskrun|setupTaskrunFlag|setupSubmitAll|setupNoSQArray,
			setupSingleIssuer|setupDeferTaskrun|setupTaskrunFlag|setupSubmitAll,
			setupCoopTaskrun|setupTaskrunFlag|setupSubmitAll|setupNoSQArray,
			setupCoopTaskrun|setupTaskrunFlag|setupSubmitAll)
	}
	return append(l, setupSubmitAll|setupNoSQArray, setupSubmitAll, 0)
}

// base is the setup flags Config demands, which no fallback drops.
func (c ringConfig) base(p *params) {
	if c.sqPoll {
		p.flags |= setupSQPoll
		p.sqThreadIdle = c.sqPollIdleMs
		if c.sqPollCPU >= 0 {
			p.flags |= setupSQAff
			p.sqThreadCPU = uint32(c.sqPollCPU)
		}
	}
	if c.ioPoll {
		p.flags |= setupIOPoll
	}
}

// setupFD runs io_uring_setup down the ladder and returns the ring fd and
// the params of the first set of flags the kernel took.
func setupFD(c ringConfig) (int, params, error) {
	var errno syscall.Errno
	for _, opt := range c.ladder() {
		var p params
		c.base(&p)
		p.flags |= opt
		var fd int
		fd, errno = ioUringSetup(c.entries, &p)
		if errno == 0 {
			return fd, p, nil
		}
		if errno != unix.EINVAL {
			break
		}
	}
	return -1, params{}, setupError(errno)
}

// setupRing makes a ring and maps it.
func setupRing(c ringConfig) (*ring, error) {
	fd, p, err := setupFD(c)
	if err != nil {
		return nil, err
	}
	r := &ring{fd: fd, flags: p.flags, features: p.features}
	if err := r.mapRings(&p); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// mapRings maps the SQ ring, the CQ ring (the same mapping under
// IORING_FEAT_SINGLE_MMAP) and the SQE array, and finds the fields in them
// at the offsets the kernel reported in p.
func (r *ring) mapRings(p *params) error {
	const prot = unix.PROT_READ | unix.PROT_WRITE
	const flags = unix.MAP_SHARED | unix.MAP_POPULATE
	sqSize := uint64(p.sqOff.flags) + 4
	if p.flags&setupNoSQArray == 0 {
		sqSize = max(sqSize, uint64(p.sqOff.array)+uint64(p.sqEntries)*4)
	}
	cqSize := uint64(p.cqOff.cqes) + uint64(p.cqEntries)*16
	single := p.features&featSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	if r.sqMem, err = unix.Mmap(r.fd, offSQRing, int(sqSize), prot, flags); err != nil {
		return fmt.Errorf("mmap SQ ring (%d bytes): %w", sqSize, err)
	}
	cq := r.sqMem
	if !single {
		if r.cqMem, err = unix.Mmap(r.fd, offCQRing, int(cqSize), prot, flags); err != nil {
			return fmt.Errorf("mmap CQ ring (%d bytes): %w", cqSize, err)
		}
		cq = r.cqMem
	}
	sqeSize := int(p.sqEntries) * 64
	if r.sqeMem, err = unix.Mmap(r.fd, offSQEs, sqeSize, prot, flags); err != nil {
		return fmt.Errorf("mmap SQEs (%d bytes): %w", sqeSize, err)
	}

	var sqMask, cqMask *uint32
	for _, f := range []struct {
		dst **uint32
		mem []byte
		off uint32
	}{
		{&r.sqHead, r.sqMem, p.sqOff.head},
		{&r.sqTail, r.sqMem, p.sqOff.tail},
		{&r.sqFlags, r.sqMem, p.sqOff.flags},
		{&sqMask, r.sqMem, p.sqOff.ringMask},
		{&r.cqHead, cq, p.cqOff.head},
		{&r.cqTail, cq, p.cqOff.tail},
		{&cqMask, cq, p.cqOff.ringMask},
	} {
		if *f.dst, err = u32At(f.mem, f.off); err != nil {
			return err
		}
	}
	// The masks are constants the kernel wrote before io_uring_setup
	// returned; the syscall orders that write before these plain reads.
	r.sqMask, r.cqMask = *sqMask, *cqMask
	if r.sqes, err = sqeSlice(r.sqeMem, p.sqEntries); err != nil {
		return err
	}
	if r.cqes, err = cqeSlice(cq, p.cqOff.cqes, p.cqEntries); err != nil {
		return err
	}
	if r.sqMask != p.sqEntries-1 || r.cqMask != p.cqEntries-1 {
		return fmt.Errorf("ring masks %#x/%#x do not match %d/%d entries", r.sqMask, r.cqMask, p.sqEntries, p.cqEntries)
	}
	if p.flags&setupNoSQArray == 0 {
		// The SQ index array maps ring positions to SQE slots. We fill it
		// once with the identity, as liburing does, so SQE i is always
		// at ring position i and never needs rewriting. Plain stores are
		// enough: the kernel reads an entry only after a later SQ tail
		// store-release publishes it.
		for i := range p.sqEntries {
			e, err := u32At(r.sqMem, p.sqOff.array+4*i)
			if err != nil {
				return err
			}
			*e = i
		}
	}
	// The kernel starts both rings at zero, but take what it says.
	r.tail = atomic.LoadUint32(r.sqTail)
	r.head = atomic.LoadUint32(r.cqHead)
	return nil
}

// enter is io_uring_enter(2) with no extra argument. It goes through
// unix.Syscall6 rather than RawSyscall6 because submission may block in the
// block layer (tag exhaustion, filesystem locks) and GETEVENTS with
// minComplete > 0 sleeps; the runtime must be told so it can run other
// goroutines on this P.
func (r *ring) enter(toSubmit, minComplete, flags uint32) (int, syscall.Errno) {
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(minComplete), uintptr(flags), 0, 0)
	return int(n), errno
}

// close unmaps the rings and closes the fd; the kernel then cancels and
// reaps anything still in flight on its own.
func (r *ring) close() error {
	var errs []error
	for _, m := range [][]byte{r.sqeMem, r.cqMem, r.sqMem} {
		if m != nil {
			if err := unix.Munmap(m); err != nil {
				errs = append(errs, fmt.Errorf("munmap ring: %w", err))
			}
		}
	}
	r.sqeMem, r.cqMem, r.sqMem, r.sqes, r.cqes = nil, nil, nil, nil, nil
	if r.fd >= 0 {
		if err := unix.Close(r.fd); err != nil {
			errs = append(errs, fmt.Errorf("close ring: %w", err))
		}
		r.fd = -1
	}
	return errors.Join(errs...)
}

// flagNames lists the setup flags in f for Info.Options.
func flagNames(f uint32) []string {
	var out []string
	for _, n := range setupFlagNames {
		if f&n.flag != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

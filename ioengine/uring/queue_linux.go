package uring

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/usrpt/usrpt/ioengine"
)

// Queue is one reactor's io_uring: a ring, its registered file and buffers,
// and a table that maps each CQE's user_data (a slot index, never a Go
// pointer) back to its *ioengine.Request.
//
// Threading contract. Unless the device was opened with NoSingleIssuer, the
// ring is set up with IORING_SETUP_SINGLE_ISSUER|DEFER_TASKRUN, and Linux
// then lets only the OS thread that created it submit, and run its
// completions. A reactor therefore calls runtime.LockOSThread, then
// NewQueue, then Submit and Poll, all on that thread; Close belongs there
// too, since it waits for requests in flight. A goroutine that is not locked
// migrates between threads, and the kernel answers EEXIST: the requests the
// Poll was sending then complete with EEXIST, and Err reports
// ErrWrongThread. Tests and tools that cannot lock a thread open the device
// with NoSingleIssuer.
//
// Submit only writes SQEs. Poll makes at most one io_uring_enter, and none
// when there is nothing to send and the kernel has flagged no work for us
// (IORING_SQ_TASKRUN, IORING_SQ_CQ_OVERFLOW); completions are read from the
// mapped CQ without a system call.
type Queue struct {
	dev   *device
	r     *ring
	depth int

	sqeFD    int32 // the fd in each SQE: 0 (the registered file) or the real fd
	sqeFlags uint8 // IOSQE_FIXED_FILE when the file is registered

	bufs    []bufRegion // registered regions, in registration order
	bufMem  [][]byte    // the caller's regions, kept reachable while registered
	regOpts string      // "fixedfiles,fixedbufs" or why not

	ioPoll   bool   // IOPOLL: completions happen only inside io_uring_enter
	sqPoll   bool   // SQPOLL: a kernel thread submits; enter only to wake it
	wokeTail uint32 // the SQ tail at the last SQPOLL wakeup

	slots    []*ioengine.Request // by slot index; nil when free
	free     []int32             // stack of free slots
	done     []int32             // FIFO of slots finished without the kernel
	doneHead int
	doneLen  int
	inflight int // accepted and not yet returned by Poll
	inKernel int // SQEs written and not yet reaped from the CQ

	efd int // eventfd registered for completions; -1 if none

	wrongThread bool          // the kernel said EEXIST (SINGLE_ISSUER misuse)
	lastErrno   syscall.Errno // the last unexpected io_uring_enter error
	closed      bool

	stats queueStats
}

// queueStats are counters for tests and reports; only the owner touches them.
type queueStats struct {
	enters  uint64 // io_uring_enter calls from Poll
	busy    uint64 // enters answered EAGAIN, EBUSY or EINTR
	fixed   uint64 // reads and writes sent as READ_FIXED/WRITE_FIXED
	unfixed uint64 // reads and writes sent as plain READ/WRITE
}

// bufRegion is one caller region registered as consecutive 1 GiB iovecs.
type bufRegion struct {
	base, end uintptr
	first     uint16 // buf_index of its first iovec
}

func newQueue(d *device, cfg ioengine.QueueConfig) (*Queue, error) {
	if cfg.Depth <= 0 || cfg.Depth > maxEntries {
		return nil, fmt.Errorf("depth %d: want 1..%d", cfg.Depth, maxEntries)
	}
	rc := d.rc
	// One SQ entry per request in flight means the SQ never fills, and
	// the kernel's default CQ of twice the SQ means the CQ cannot overflow
	// with CQEs for at most Depth requests.
	rc.entries = uint32(1) << bits.Len32(uint32(cfg.Depth-1))
	r, err := setupRing(rc)
	if err != nil {
		return nil, err
	}
	q := &Queue{
		dev:    d,
		r:      r,
		depth:  cfg.Depth,
		ioPoll: r.flags&setupIOPoll != 0,
		sqPoll: r.flags&setupSQPoll != 0,
		slots:  make([]*ioengine.Request, cfg.Depth),
		free:   make([]int32, cfg.Depth),
		done:   make([]int32, cfg.Depth),
		efd:    -1,
	}
	for i := range q.free {
		q.free[i] = int32(cfg.Depth - 1 - i)
	}

	var opts []string
	if errno := registerFileTable(r.fd, []int32{int32(d.f.Fd)}); errno == 0 {
		q.sqeFD, q.sqeFlags = 0, sqeFixedFile
		opts = append(opts, "fixedfiles")
	} else {
		q.sqeFD = int32(d.f.Fd)
		opts = append(opts, "fixedfiles=off: "+errnoName(errno))
	}
	opts = append(opts, q.registerBuffers(cfg.Buffers))
	q.regOpts = strings.Join(opts, ",")

	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = r.close()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if errno := registerEventFD(r.fd, int32(efd)); errno != 0 {
		_ = unix.Close(efd)
		_ = r.close()
		return nil, fmt.Errorf("register eventfd: %w", errno)
	}
	q.efd = efd
	return q, nil
}

// registerBuffers registers the caller's regions as fixed buffers and says
// what happened, for Options. A failure is not an error: requests then use
// plain READ/WRITE.
func (q *Queue) registerBuffers(regions [][]byte) string {
	spans := make([]span, 0, len(regions))
	for _, b := range regions {
		if len(b) > 0 {
			spans = append(spans, span{sliceAddr(b), sliceAddr(b) + uintptr(len(b))})
		}
	}
	if len(spans) == 0 {
		return "fixedbufs=off: no QueueConfig.Buffers"
	}
	plan, err := planBuffers(spans)
	if err != nil {
		return "fixedbufs=off: " + err.Error()
	}
	iovs := make([]unix.Iovec, 0, plan.iovecs)
	for _, b := range regions {
		for off := 0; off < len(b); off += maxBufLen {
			iovs = append(iovs, iovecFor(b[off:min(len(b), off+maxBufLen)]))
		}
	}
	if errno := registerBufferTable(q.r.fd, iovs); errno != 0 {
		why := errnoName(errno)
		if errno == unix.ENOMEM {
			var lim unix.Rlimit
			if unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim) == nil {
				why += fmt.Sprintf(" (RLIMIT_MEMLOCK %d KiB: raise ulimit -l or grant CAP_IPC_LOCK)", lim.Cur/1024)
			}
		}
		return fmt.Sprintf("fixedbufs=off: register %d buffers: %s", len(iovs), why)
	}
	q.bufs, q.bufMem = plan.regions, regions
	return "fixedbufs"
}

// span is an address range [base, end).
type span struct{ base, end uintptr }

// bufPlan is how regions become registered iovecs.
type bufPlan struct {
	regions []bufRegion
	iovecs  int
}

// planBuffers splits each span into iovecs of at most 1 GiB, the most the
// kernel registers as one buffer, and numbers them.
func planBuffers(spans []span) (bufPlan, error) {
	var p bufPlan
	for _, s := range spans {
		if s.end <= s.base {
			continue
		}
		n := int((s.end - s.base + maxBufLen - 1) / maxBufLen)
		if p.iovecs+n > maxBuffers {
			return bufPlan{}, fmt.Errorf("more than %d buffers of 1 GiB", maxBuffers)
		}
		p.regions = append(p.regions, bufRegion{base: s.base, end: s.end, first: uint16(p.iovecs)})
		p.iovecs += n
	}
	return p, nil
}

// fixedIndex finds the registered buffer that holds [addr, addr+n) whole,
// for READ_FIXED/WRITE_FIXED.
func fixedIndex(regions []bufRegion, addr uintptr, n int) (uint16, bool) {
	if n <= 0 {
		return 0, false
	}
	for _, g := range regions {
		if addr < g.base || addr >= g.end || uintptr(n) > g.end-addr {
			continue
		}
		k := (addr - g.base) / maxBufLen
		iovEnd := g.base + (k+1)*maxBufLen // the iovec's end; g.end bounds the last one
		if uintptr(n) > iovEnd-addr {
			return 0, false // straddles two iovecs: no single buf_index covers it
		}
		return g.first + uint16(k), true
	}
	return 0, false
}

// Submit queues requests up to the free depth and returns how many it took.
// It writes one SQE per request and publishes them with one SQ tail store;
// the kernel hears of them at the next Poll. A request that fails
// CheckRange, or needs no I/O (a discard or write-zeroes of length 0),
// completes at the next Poll without reaching the kernel.
func (q *Queue) Submit(reqs []*ioengine.Request) int {
	if q.closed {
		return 0
	}
	ops := q.dev.opSet()
	size := q.dev.f.SizeBytes
	tail := q.r.tail
	n := 0
	for _, req := range reqs {
		if q.inflight == q.depth {
			break
		}
		slot := q.free[len(q.free)-1]
		q.free = q.free[:len(q.free)-1]
		q.slots[slot] = req
		req.Slot = slot
		req.N, req.Errno = 0, 0
		q.inflight++
		n++
		if errno := ioengine.CheckRange(req, size, ops); errno != 0 {
			q.finish(slot, 0, errno)
			continue
		}
		q.prep(req, slot)
	}
	if q.r.tail != tail {
		// Store-release of the SQ tail: the SQE writes above must be
		// visible to the kernel before it can see the new tail and read
		// them (pairs with the kernel's smp_load_acquire of sq.tail in
		// io_sqring_entries). Go's atomic store is sequentially
		// consistent, which is at least release.
		atomic.StoreUint32(q.r.sqTail, q.r.tail)
	}
	return n
}

// prep writes the SQE for a checked request, or finishes it at once.
func (q *Queue) prep(req *ioengine.Request, slot int32) {
	s := sqe{fd: q.sqeFD, flags: q.sqeFlags, off: uint64(req.Offset), userData: uint64(slot)}
	switch req.Op {
	case ioengine.OpRead, ioengine.OpWrite:
		if uint64(len(req.Buf)) > math.MaxUint32 {
			q.finish(slot, 0, unix.EINVAL) // an SQE length is 32 bits
			return
		}
		addr := sliceAddr(req.Buf)
		s.addr, s.len = uint64(addr), uint32(len(req.Buf))
		idx, fixed := fixedIndex(q.bufs, addr, len(req.Buf))
		switch {
		case req.Op == ioengine.OpRead && fixed:
			s.opcode, s.bufIndex = opReadFixed, idx
		case req.Op == ioengine.OpRead:
			s.opcode = opRead
		case fixed:
			s.opcode, s.bufIndex = opWriteFixed, idx
		default:
			s.opcode = opWrite
		}
		if fixed {
			q.stats.fixed++
		} else {
			q.stats.unfixed++
		}
		if req.Op == ioengine.OpWrite && req.Flags&ioengine.FlagFUA != 0 {
			s.opFlags = unix.RWF_DSYNC
		}
	case ioengine.OpFlush:
		// off 0 and len 0: the whole file (vfs_fsync_range to LLONG_MAX).
		s.opcode, s.off, s.opFlags = opFsync, 0, fsyncDatasync
	case ioengine.OpDiscard, ioengine.OpWriteZeroes:
		if req.Len == 0 {
			q.finish(slot, 0, 0) // fallocate refuses length 0; nothing to do
			return
		}
		s.opcode, s.addr = opFallocate, uint64(req.Len) // FALLOCATE takes the length in addr
		if req.Op == ioengine.OpDiscard {
			s.len = unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE // and the mode in len
		} else {
			s.len = unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE
		}
	default:
		q.finish(slot, 0, unix.EOPNOTSUPP) // CheckRange lets through only known ops
		return
	}
	// This ring position is free: the SQEs the kernel has not consumed
	// (tail - head) belong to requests in flight before this one, fewer
	// than depth, and the SQ has depth entries rounded up to a power of two.
	q.r.sqes[q.r.tail&q.r.sqMask] = s
	q.r.tail++
	q.inKernel++
}

// finish completes a request without the kernel; the next Poll returns it.
func (q *Queue) finish(slot int32, n int64, errno syscall.Errno) {
	q.slots[slot].Complete(n, errno)
	i := q.doneHead + q.doneLen
	if i >= len(q.done) {
		i -= len(q.done)
	}
	q.done[i] = slot
	q.doneLen++
}

// take frees a slot and returns its request.
func (q *Queue) take(slot int32) *ioengine.Request {
	req := q.slots[slot]
	q.slots[slot] = nil
	q.free = append(q.free, slot) // within capacity: at most depth slots
	q.inflight--
	return req
}

// Poll sends what Submit queued with at most one io_uring_enter, then fills
// out with finished requests, those that never reached the kernel first.
func (q *Queue) Poll(out []*ioengine.Request) int {
	if q.closed {
		return 0
	}
	q.flush()
	n := 0
	for ; n < len(out) && q.doneLen > 0; n++ {
		out[n] = q.take(q.done[q.doneHead])
		q.doneLen--
		if q.doneHead++; q.doneHead == len(q.done) {
			q.doneHead = 0
		}
	}
	return n + q.reap(out[n:])
}

// flush makes the one io_uring_enter of a Poll if there is a reason to.
func (q *Queue) flush() {
	// Load-acquire of the SQ head (written by the kernel, or by the SQPOLL
	// thread with smp_store_release as it consumes SQEs): everything from
	// it to our tail is still ours to submit.
	pending := q.r.tail - atomic.LoadUint32(q.r.sqHead)
	// The SQ flags word is written by the kernel with atomic_or/andnot.
	// This load follows the tail store-release in Submit, and Go's atomics
	// are sequentially consistent, so it also serves as the full barrier
	// liburing puts between publishing the tail and testing
	// IORING_SQ_NEED_WAKEUP: either the SQPOLL thread sees our tail before
	// it sleeps, or we see it asleep.
	kflags := atomic.LoadUint32(q.r.sqFlags)
	var flags uint32
	if q.sqPoll {
		// One wakeup per new tail: a woken SQPOLL thread consumes the whole
		// SQ before it sleeps again (it rechecks the SQ after setting
		// NEED_WAKEUP), so waking it again while it gets going would only
		// cost system calls.
		if pending > 0 && kflags&sqNeedWakeup != 0 && q.r.tail != q.wokeTail {
			flags |= enterSQWakeup
		}
		pending = 0 // the SQPOLL thread submits; to_submit is ignored
	}
	if q.inKernel > int(pending) {
		// Requests are in flight: their completions may need us in the
		// kernel. IOPOLL rings complete only when polled from enter.
		// With TASKRUN_FLAG the kernel sets IORING_SQ_TASKRUN when it has
		// queued completion work for this task (always the case under
		// DEFER_TASKRUN, which runs it only inside GETEVENTS, at most 20
		// items per call, flagging again what it leaves for the next).
		// Without the flag the kernel interrupts the task to run the work
		// itself.
		if q.ioPoll || kflags&sqTaskrun != 0 {
			flags |= enterGetEvents
		}
	}
	if kflags&sqCQOverflow != 0 {
		// CQEs wait in the kernel's overflow list (IORING_FEAT_NODROP);
		// GETEVENTS moves them into the CQ once we make room.
		flags |= enterGetEvents
	}
	if pending == 0 && flags == 0 {
		return
	}
	q.stats.enters++
	_, errno := q.r.enter(pending, 0, flags)
	switch errno {
	case 0:
		if flags&enterSQWakeup != 0 {
			q.wokeTail = q.r.tail
		}
	case unix.EAGAIN, unix.EBUSY, unix.EINTR:
		// Back-pressure (no request memory, or CQ overflow): the SQEs
		// stay in the SQ and the next Poll, after reaping, sends them.
		q.stats.busy++
	case unix.EEXIST:
		q.wrongThread = true
		q.unsend(errno)
	default:
		q.lastErrno = errno
		q.unsend(errno)
	}
}

// unsend takes back the SQEs the kernel refused to consume and completes
// their requests with errno, so no request is lost. The kernel reads the SQ
// only inside io_uring_enter (this is never called under SQPOLL), so moving
// the tail back is safe.
func (q *Queue) unsend(errno syscall.Errno) {
	if q.sqPoll {
		return
	}
	head := atomic.LoadUint32(q.r.sqHead)
	for i := head; i != q.r.tail; i++ {
		q.inKernel--
		q.finish(int32(q.r.sqes[i&q.r.sqMask].userData), 0, errno)
	}
	q.r.tail = head
	// Store-release as in Submit; the kernel has no SQEs beyond head now.
	atomic.StoreUint32(q.r.sqTail, head)
}

// reap moves CQEs into out and returns how many.
func (q *Queue) reap(out []*ioengine.Request) int {
	if len(out) == 0 || q.inKernel == 0 {
		return 0
	}
	head := q.r.head
	// Load-acquire of the CQ tail: the kernel writes each CQE and then
	// the tail with smp_store_release, so the CQEs up to this tail are
	// complete when we read them below.
	tail := atomic.LoadUint32(q.r.cqTail)
	n := 0
	for ; head != tail && n < len(out); head++ {
		c := &q.r.cqes[head&q.r.cqMask]
		slot := c.userData
		if slot >= uint64(len(q.slots)) || q.slots[slot] == nil {
			panic(fmt.Sprintf("uring: CQE for slot %d, which has no request", slot))
		}
		req := q.take(int32(slot))
		q.inKernel--
		q.complete(req, c.res)
		out[n] = req
		n++
	}
	if n > 0 {
		q.r.head = head
		// Store-release of the CQ head: our reads of the CQEs above are
		// done before the kernel can see the slots free and overwrite
		// them (pairs with its acquire read of cq.head when posting).
		atomic.StoreUint32(q.r.cqHead, head)
	}
	return n
}

// complete sets a request's result from its CQE's res.
func (q *Queue) complete(req *ioengine.Request, res int32) {
	switch {
	case res < 0:
		errno := syscall.Errno(-res)
		if errno == unix.EOPNOTSUPP && (req.Op == ioengine.OpDiscard || req.Op == ioengine.OpWriteZeroes) {
			q.dev.learnUnsupported(req.Op)
		}
		req.Complete(0, errno)
	case req.Op == ioengine.OpDiscard || req.Op == ioengine.OpWriteZeroes:
		req.Complete(req.Len, 0)
	default:
		// A read or write may move less than asked (EOF, a signal, a
		// partial device); N says how much and Request.Err reports it.
		req.Complete(int64(res), 0)
	}
}

// Inflight is the number of requests accepted and not yet returned.
func (q *Queue) Inflight() int { return q.inflight }

// WaitFD is an eventfd registered with the ring (IORING_REGISTER_EVENTFD):
// it turns readable when the kernel posts completions, or, under
// DEFER_TASKRUN, when completion work is queued that the next Poll will run.
// The sleeper reads it to reset it; it is non-blocking.
func (q *Queue) WaitFD() int { return q.efd }

// Err reports a misuse the data path could only answer per request: an
// error wrapping ErrWrongThread after the kernel refused this ring from
// another thread, or the last unexpected io_uring_enter errno. nil if none.
func (q *Queue) Err() error {
	switch {
	case q.wrongThread:
		return fmt.Errorf("uring: io_uring_enter answered EEXIST (%w): %w", unix.EEXIST, ErrWrongThread)
	case q.lastErrno != 0:
		return fmt.Errorf("uring: io_uring_enter: %w", q.lastErrno)
	}
	return nil
}

// Options is this queue's registration state: "fixedfiles,fixedbufs", or
// "fixedbufs=off: <why>" when the buffers could not be registered.
func (q *Queue) Options() string { return q.regOpts }

// Close waits for the requests in flight (dropping their results: they are
// not returned), then closes the ring and the eventfd. Under SINGLE_ISSUER it
// must run on the queue's thread; elsewhere it cannot wait, closes anyway
// (the kernel cancels and reaps what is left), and says so.
func (q *Queue) Close() error {
	if q.closed {
		return nil
	}
	q.closed = true
	var errs []error
	var scratch [64]*ioengine.Request
	for q.inKernel > 0 {
		pending := q.r.tail - atomic.LoadUint32(q.r.sqHead)
		flags := uint32(enterGetEvents)
		if q.sqPoll {
			pending, flags = 0, flags|enterSQWakeup
		}
		if _, errno := q.r.enter(pending, 1, flags); errno != 0 && errno != unix.EINTR && errno != unix.EAGAIN && errno != unix.EBUSY {
			err := error(errno)
			if errno == unix.EEXIST {
				err = fmt.Errorf("EEXIST (%w): %w", errno, ErrWrongThread)
			}
			errs = append(errs, fmt.Errorf("wait for %d requests in flight: %w", q.inKernel, err))
			break
		}
		for q.reap(scratch[:]) > 0 {
		}
	}
	clear(q.slots)
	q.inflight, q.doneLen = 0, 0
	if q.efd >= 0 {
		if err := unix.Close(q.efd); err != nil {
			errs = append(errs, fmt.Errorf("close eventfd: %w", err))
		}
		q.efd = -1
	}
	if err := q.r.close(); err != nil {
		errs = append(errs, err)
	}
	q.bufs, q.bufMem = nil, nil
	q.dev.queues.Add(-1)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("uring: close queue: %w", err)
	}
	return nil
}

// errnoName is an errno's symbol and text, e.g. "ENOMEM (cannot allocate memory)".
func errnoName(errno syscall.Errno) string {
	if name := unix.ErrnoName(errno); name != "" {
		return name + " (" + errno.Error() + ")"
	}
	return errno.Error()
}

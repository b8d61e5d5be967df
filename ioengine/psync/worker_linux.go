package psync

import (
	"runtime"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"

	"github.com/usrpt/usrpt/internal/ring"
	"github.com/usrpt/usrpt/ioengine"
	"github.com/usrpt/usrpt/poller"
)

// worker is one thread of a queue: it pops requests from its own ring,
// carries each out with one blocking system call, and posts it to the
// queue's completion ring.
type worker struct {
	_ cpu.CacheLinePad
	// Read-only after NewQueue.
	q      *queue
	dev    *Device
	sub    *ring.SPSC[*ioengine.Request]
	fd     int
	efd    int // blocking eventfd the worker sleeps on
	spinNs int64

	_ cpu.CacheLinePad
	// sleeping is raised while the worker is about to sleep or sleeps on
	// efd; Poll writes efd only then.
	sleeping atomic.Bool
	stop     atomic.Bool // set by Close once no request is left

	_ cpu.CacheLinePad
	// Worker only.
	iov  [1][]byte // pwritev2's vector, kept here so the call allocates nothing
	rbuf [8]byte
	_    cpu.CacheLinePad
}

// run is the worker's goroutine. It is locked to its OS thread so that a
// request's blocking system call never moves the goroutine, and a sleeping
// worker is a thread blocked in read(2) rather than a parked goroutine; it is
// not pinned, so the scheduler puts it wherever a CPU is free.
func (w *worker) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer w.q.wg.Done()
	for {
		r, ok := w.sub.Pop()
		if !ok {
			if !w.idle() {
				return
			}
			continue
		}
		w.exec(r)
		w.complete(r)
	}
}

// complete posts r to the owner and wakes it if it may sleep on WaitFD.
func (w *worker) complete(r *ioengine.Request) {
	q := w.q
	if !q.comp.Push(r) {
		panic("psync: the completion ring is full below the queue depth")
	}
	// Load waiting after the push: see queue.arm for the handshake. The
	// plain Load keeps the common case (owner busy) free of a CAS.
	if q.waiting.Load() && q.waiting.CompareAndSwap(true, false) {
		// Count the write before making it: see queue.kicks.
		q.kicks.Add(1)
		_, _ = unix.Write(q.efd, one)
	}
}

// idle waits for work: it polls the ring for spinNs, then sleeps on efd. It
// returns false when the worker must exit.
func (w *worker) idle() bool {
	if w.spinNs > 0 {
		start := poller.Monotonic()
		for i := 1; ; i++ {
			if w.sub.Len() > 0 {
				return true
			}
			// Reading the clock costs more than looking at the ring;
			// look at the ring 64 times per reading.
			if i%64 == 0 {
				if w.stop.Load() {
					return false
				}
				if poller.Monotonic()-start > w.spinNs {
					break
				}
			}
		}
	}
	// Raise the flag before the last look at the ring: Dekker's order, the
	// mirror of queue.wakeWorkers.
	w.sleeping.Store(true)
	if w.sub.Len() > 0 {
		w.sleeping.Store(false)
		return true
	}
	if w.stop.Load() {
		return false
	}
	// Blocks until Poll or Close writes efd. EINTR: look again. A wakeup
	// written while we were not asleep makes this return at once, one
	// spurious round, never a lost one.
	_, _ = unix.Read(w.efd, w.rbuf[:])
	w.sleeping.Store(false)
	return true
}

// exec carries out r with blocking system calls and completes it.
func (w *worker) exec(r *ioengine.Request) {
	switch r.Op {
	case ioengine.OpRead:
		n, e := w.pread(r.Buf, r.Offset)
		r.Complete(n, e)
	case ioengine.OpWrite:
		if r.Flags&ioengine.FlagFUA != 0 {
			n, e := w.pwriteFUA(r.Buf, r.Offset)
			r.Complete(n, e)
			return
		}
		n, e := w.pwrite(r.Buf, r.Offset)
		r.Complete(n, e)
	case ioengine.OpFlush:
		r.Complete(0, fdatasync(w.fd))
	case ioengine.OpDiscard:
		r.Complete(done(r.Len, w.dev.f.Discard(r.Offset, r.Len)))
	case ioengine.OpWriteZeroes:
		r.Complete(done(r.Len, w.dev.f.WriteZeroes(r.Offset, r.Len)))
	default:
		// CheckRange let through only operations in the device's set.
		r.Complete(0, unix.EOPNOTSUPP)
	}
}

// done is the result of an operation that affects n bytes or none.
func done(n int64, e syscall.Errno) (int64, syscall.Errno) {
	if e != 0 {
		return 0, e
	}
	return n, 0
}

// errno turns a system call's error into its errno without allocating.
func errno(err error) syscall.Errno {
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return unix.EIO
}

// pread reads once, retrying only EINTR: a short read is the request's
// result (N < len(Buf)), not a reason to issue another call.
func (w *worker) pread(b []byte, off int64) (int64, syscall.Errno) {
	for {
		n, err := unix.Pread(w.fd, b, off)
		if err == nil {
			return int64(n), 0
		}
		if e := errno(err); e != unix.EINTR {
			return 0, e
		}
	}
}

// pwrite writes once, retrying only EINTR; see pread.
func (w *worker) pwrite(b []byte, off int64) (int64, syscall.Errno) {
	for {
		n, err := unix.Pwrite(w.fd, b, off)
		if err == nil {
			return int64(n), 0
		}
		if e := errno(err); e != unix.EINTR {
			return 0, e
		}
	}
}

// pwriteFUA writes b durably: pwritev2 with RWF_DSYNC, one system call that
// returns when the data and the metadata needed to read it are stable. On a
// kernel without it (before 4.7: ENOSYS, or EOPNOTSUPP for the flag) it falls
// back, for good, to pwrite and fdatasync.
func (w *worker) pwriteFUA(b []byte, off int64) (int64, syscall.Errno) {
	if !w.dev.noDsync.Load() {
		w.iov[0] = b
		for {
			n, err := unix.Pwritev2(w.fd, w.iov[:], off, unix.RWF_DSYNC)
			if err == nil {
				w.iov[0] = nil
				return int64(n), 0
			}
			e := errno(err)
			if e == unix.EINTR {
				continue
			}
			w.iov[0] = nil
			if e != unix.ENOSYS && e != unix.EOPNOTSUPP {
				return 0, e
			}
			// Racing stores of the same value are harmless.
			w.dev.noDsync.Store(true)
			break
		}
	}
	n, e := w.pwrite(b, off)
	if e != 0 {
		return 0, e
	}
	if e := fdatasync(w.fd); e != 0 {
		return n, e
	}
	return n, 0
}

func fdatasync(fd int) syscall.Errno {
	for {
		err := unix.Fdatasync(fd)
		if err == nil {
			return 0
		}
		if e := errno(err); e != unix.EINTR {
			return e
		}
	}
}

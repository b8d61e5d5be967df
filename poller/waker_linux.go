package poller

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// waker lets a reactor under the adaptive idle policy sleep until there is
// work. The handshake with senders is Dekker's: the reactor stores sleeping
// and then looks at its inbox; a sender pushes to the inbox and then loads
// sleeping. Both are sequentially consistent atomics, so at least one side
// sees the other: either the reactor sees the message and does not sleep, or
// the sender sees the flag and writes the eventfd. No wakeup is lost.
type waker struct {
	efd      int // eventfd; -1 until enabled
	sleeping atomic.Bool
	fds      []unix.PollFd // efd first, then the registered wait fds
}

var wakeValue = func() []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint64(b, 1)
	return b
}()

// enableWaker gives r an eventfd to sleep on. The fd is closed only when r
// itself is garbage: any goroutine holding r may still call Send, and a
// write to an fd closed at Stop could land in an unrelated file that reused
// its number.
func (r *Reactor) enableWaker() error {
	w := &r.waker
	if w.efd >= 0 {
		return nil
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	w.efd = fd
	w.fds = append([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, w.fds...)
	runtime.AddCleanup(r, func(fd int) { unix.Close(fd) }, fd)
	return nil
}

// notify wakes the reactor if it is asleep. The load of sleeping comes after
// the caller's push to the inbox (see the type comment for why that order).
func (w *waker) notify() {
	if w.efd >= 0 && w.sleeping.Load() {
		// A full eventfd counter (EAGAIN) still leaves it readable, which
		// is all a wakeup needs, so the error is ignored.
		_, _ = unix.Write(w.efd, wakeValue)
	}
}

func (w *waker) addFD(fd int) {
	w.fds = append(w.fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
}

// sleep blocks for at most d unless pending reports work after the flag is
// raised. It returns how long it slept (0 when it did not).
func (w *waker) sleep(d time.Duration, pending func() bool, now func() int64) int64 {
	// Raise the flag before the last look at the inbox: Dekker's order.
	w.sleeping.Store(true)
	if pending() {
		w.sleeping.Store(false)
		return 0
	}
	t0 := now()
	ts := unix.NsecToTimespec(int64(d))
	for i := range w.fds {
		w.fds[i].Revents = 0
	}
	_, _ = unix.Ppoll(w.fds, &ts, nil) // EINTR or timeout: just look again
	// Lower the flag before draining: a sender that still sees it raised
	// writes once more, which costs one spurious wakeup, never a lost one.
	w.sleeping.Store(false)
	if w.fds[0].Revents&unix.POLLIN != 0 {
		var buf [8]byte
		_, _ = unix.Read(w.efd, buf[:])
	}
	return now() - t0
}

// AddWaitFD adds fd to the set an adaptive reactor sleeps on: when it is
// readable the reactor wakes and runs its pollers, which must consume
// whatever made it readable (a completion channel, an io_uring eventfd).
// It must be called before Start or on the reactor's goroutine.
func (r *Reactor) AddWaitFD(fd int) { r.waker.addFD(fd) }

// Wake wakes r if it sleeps under the adaptive idle policy. Any goroutine may
// call it after making work visible to one of r's pollers.
func (r *Reactor) Wake() { r.waker.notify() }

package psync

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"

	"github.com/usrpt/usrpt/internal/ring"
	"github.com/usrpt/usrpt/ioengine"
)

// one is the 8-byte counter increment written to an eventfd.
var one = func() []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint64(b, 1)
	return b
}()

// queue is one reactor's queue: the reactor (the owner) on one side, the
// queue's own workers on the other, and nothing but rings between them.
//
//	owner --SPSC per worker--> worker --MPSC, shared by the workers--> owner
//
// A request in a worker's ring or in a worker's hands is "busy"; the owner
// counts busy requests per worker (load) and gives each new one to the
// least loaded worker, lowest index first. At queue depth 1 that keeps one
// worker hot and lets the others sleep; deeper, it spreads the work evenly.
type queue struct {
	dev       *Device
	sizeBytes int64
	ops       ioengine.OpSet
	depth     int
	workers   []*worker
	load      []int  // busy requests per worker; owner only
	wake      uint64 // workers given work since the last Poll; owner only
	comp      *ring.MPSC[*ioengine.Request]
	busy      int // requests pushed to workers and not yet reaped; owner only
	closed    bool
	wg        sync.WaitGroup // the workers, for Close
	scratch   []*ioengine.Request

	// Requests completed by Submit itself (range and operation checks), a
	// ring of depth slots returned by Poll before the workers' completions.
	// Every accepted request holds a slot or a place in a worker until
	// Poll returns it, so neither overflows.
	rejected          []*ioengine.Request
	rejHead, rejCount int

	// Completion wakeups for an owner that sleeps on WaitFD. armed is set
	// once WaitFD has been asked for: an owner that never sleeps on it pays
	// nothing for it.
	efd   int  // eventfd, nonblocking; readable when completions wait
	armed bool // owner only

	_ cpu.CacheLinePad
	// waiting is raised by an owner's Poll that found nothing while
	// requests are busy (the owner may be about to sleep) and taken down by
	// the first worker that then posts a completion, which writes efd.
	waiting atomic.Bool
	// kicks counts efd writes not yet drained: a worker adds 1 before it
	// writes, the owner subtracts what its read of efd returns. Whenever
	// efd is readable kicks is at least its counter, so the owner drains a
	// readable efd at its next Poll and never spins on a stale one, however
	// long the writer is descheduled between its add and its write.
	kicks atomic.Int64
	_     cpu.CacheLinePad
}

// NewQueue makes a queue of cfg.Depth (1 to MaxDepth) requests served by the
// device's number of worker threads, started here. Buffers need no
// registration for pread and pwrite, so cfg.Buffers is not used.
func (d *Device) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	if cfg.Depth < 1 || cfg.Depth > MaxDepth {
		return nil, fmt.Errorf("psync: new queue on %s: depth %d: want 1 to %d", d.f.Path, cfg.Depth, MaxDepth)
	}
	if err := d.addQueue(); err != nil {
		return nil, err
	}
	size := 2
	if cfg.Depth > 1 {
		size = 1 << bits.Len(uint(cfg.Depth-1)) // the next power of two
	}
	q := &queue{
		dev:       d,
		sizeBytes: d.info.SizeBytes,
		ops:       d.info.Ops,
		depth:     cfg.Depth,
		load:      make([]int, d.workers),
		comp:      ring.NewMPSC[*ioengine.Request](size),
		scratch:   make([]*ioengine.Request, min(cfg.Depth, 64)),
		rejected:  make([]*ioengine.Request, cfg.Depth),
		efd:       -1,
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		d.queueClosed()
		return nil, fmt.Errorf("psync: new queue on %s: eventfd: %w", d.f.Path, err)
	}
	q.efd = efd
	for range d.workers {
		// Blocking: a sleeping worker waits in read(2) on it.
		wfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err != nil {
			q.stopWorkers()
			unix.Close(q.efd)
			d.queueClosed()
			return nil, fmt.Errorf("psync: new queue on %s: eventfd: %w", d.f.Path, err)
		}
		w := &worker{
			q:      q,
			dev:    d,
			fd:     d.f.Fd,
			efd:    wfd,
			spinNs: d.spinNs,
			// Each ring holds the whole depth, so Submit's push never
			// fails whichever worker it picks.
			sub: ring.NewSPSC[*ioengine.Request](size),
		}
		q.workers = append(q.workers, w)
		q.wg.Add(1)
		go w.run()
	}
	return q, nil
}

// Submit accepts up to the free depth of reqs and hands each valid one to
// the least loaded worker's ring, where a polling worker sees it at once. A
// sleeping worker is woken by the next Poll, once per Poll however many
// requests it was given.
func (q *queue) Submit(reqs []*ioengine.Request) int {
	if q.closed {
		return 0
	}
	k := min(len(reqs), q.depth-q.busy-q.rejCount)
	for _, r := range reqs[:k] {
		if e := ioengine.CheckRange(r, q.sizeBytes, q.ops); e != 0 {
			r.Complete(0, e)
			i := q.rejHead + q.rejCount
			if i >= len(q.rejected) {
				i -= len(q.rejected)
			}
			q.rejected[i] = r
			q.rejCount++
			continue
		}
		wi := 0
		for i, l := range q.load[1:] {
			if l < q.load[wi] {
				wi = i + 1
			}
		}
		r.Slot = int32(wi)
		if !q.workers[wi].sub.Push(r) {
			panic("psync: a worker's submission ring is full below the queue depth")
		}
		q.load[wi]++
		q.busy++
		q.wake |= 1 << wi
	}
	return k
}

// Poll wakes the workers Submit gave work to if they sleep, then returns
// requests Submit refused and requests the workers finished, in that order.
func (q *queue) Poll(out []*ioengine.Request) int {
	if q.wake != 0 {
		q.wakeWorkers()
	}
	n := 0
	for n < len(out) && q.rejCount > 0 {
		out[n] = q.rejected[q.rejHead]
		q.rejected[q.rejHead] = nil // the caller owns it again
		if q.rejHead++; q.rejHead == len(q.rejected) {
			q.rejHead = 0
		}
		q.rejCount--
		n++
	}
	n += q.reap(out[n:])
	if q.armed {
		n = q.arm(out, n)
	}
	return n
}

// wakeWorkers writes the eventfd of each worker given work since the last
// Poll that sleeps. The load of sleeping comes after Submit's push to the
// worker's ring: the worker raises sleeping and then looks at its ring, so
// with sequentially consistent atomics on both sides at least one sees the
// other (Dekker), and no request is left in the ring of a sleeping worker.
func (q *queue) wakeWorkers() {
	for m := q.wake; m != 0; m &= m - 1 {
		w := q.workers[bits.TrailingZeros64(m)]
		if w.sleeping.Load() {
			// EAGAIN (counter full) still leaves it readable.
			_, _ = unix.Write(w.efd, one)
		}
	}
	q.wake = 0
}

// reap moves finished requests from the completion ring into out.
func (q *queue) reap(out []*ioengine.Request) int {
	if len(out) == 0 || q.busy == 0 {
		return 0
	}
	n := q.comp.PopBatch(out)
	for _, r := range out[:n] {
		q.load[r.Slot]--
	}
	q.busy -= n
	return n
}

// arm keeps efd honest for an owner that sleeps on WaitFD. An owner's empty
// Poll with requests busy raises waiting and looks at the ring once more; a
// worker pushes its completion and then takes waiting down and writes efd.
// Both sides use sequentially consistent atomics, so either the owner's
// second look finds the completion or the worker sees the flag (Dekker):
// an owner that sleeps after an empty Poll is always woken.
func (q *queue) arm(out []*ioengine.Request, n int) int {
	if q.kicks.Load() > 0 {
		// A worker has written efd or is about to. EAGAIN: not yet;
		// kicks stays up and the next Poll reads again.
		var b [8]byte
		if k, _ := unix.Read(q.efd, b[:]); k == len(b) {
			q.kicks.Add(-int64(binary.NativeEndian.Uint64(b[:])))
		}
	}
	switch {
	case n == 0 && q.busy > 0:
		q.waiting.Store(true)
		if n = q.reap(out); n > 0 {
			q.waiting.Store(false)
		}
	case n > 0 && q.waiting.Load():
		// The owner is busy: spare the workers the write.
		q.waiting.Store(false)
	}
	return n
}

// Inflight is the number of requests accepted and not yet returned.
func (q *queue) Inflight() int { return q.busy + q.rejCount }

// WaitFD returns an eventfd that is readable while completions wait to be
// polled, for an owner that sleeps. Asking for it costs: from then on, a
// Poll that finds nothing while requests are busy arms a wakeup, and the
// next completion pays an eventfd write (and the next Poll a read), about a
// microsecond per sleep. A queue whose owner never asks pays nothing.
func (q *queue) WaitFD() int {
	q.armed = true
	return q.efd
}

// Close waits for the requests the workers hold, stops the workers and
// releases the queue. Requests not yet polled are complete; they belong to
// the caller again.
func (q *queue) Close() error {
	if q.closed {
		return nil
	}
	q.closed = true
	q.wakeWorkers()
	for q.busy > 0 {
		if q.reap(q.scratch) == 0 {
			time.Sleep(20 * time.Microsecond)
		}
	}
	clear(q.scratch)
	clear(q.rejected)
	q.rejHead, q.rejCount = 0, 0
	q.stopWorkers()
	unix.Close(q.efd)
	q.dev.queueClosed()
	return nil
}

// stopWorkers stops the started workers, waits for them to exit and closes
// their eventfds.
func (q *queue) stopWorkers() {
	for _, w := range q.workers {
		// The worker checks stop after raising sleeping and before it
		// reads; the write after the store wakes it either way.
		w.stop.Store(true)
		_, _ = unix.Write(w.efd, one)
	}
	q.wg.Wait()
	for _, w := range q.workers {
		unix.Close(w.efd)
	}
}

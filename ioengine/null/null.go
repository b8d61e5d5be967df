package null

import (
	"fmt"
	"sync"

	"github.com/usrpt/usrpt/ioengine"
)

// MaxDepth is the largest QueueConfig.Depth NewQueue accepts.
const MaxDepth = 1 << 16

// Device is an opened null device. Its methods are safe for concurrent use.
type Device struct {
	sizeBytes int64
	blockSize int

	mu     sync.Mutex // guards queues and closed (control plane only)
	queues int
	closed bool
}

// Open makes a null device of sizeBytes with logical blocks of blockSize
// (512 or 4096); sizeBytes must be a positive multiple of blockSize.
func Open(sizeBytes int64, blockSize int) (ioengine.Device, error) {
	if blockSize != 512 && blockSize != 4096 {
		return nil, fmt.Errorf("null: open: block size %d: want 512 or 4096", blockSize)
	}
	if sizeBytes <= 0 || sizeBytes%int64(blockSize) != 0 {
		return nil, fmt.Errorf("null: open %d bytes: want a positive multiple of the %d-byte block", sizeBytes, blockSize)
	}
	return &Device{sizeBytes: sizeBytes, blockSize: blockSize}, nil
}

// Info describes the device.
func (d *Device) Info() ioengine.Info {
	return ioengine.Info{
		Engine:    "null",
		SizeBytes: d.sizeBytes,
		BlockSize: d.blockSize,
		Ops:       ioengine.AllOps,
	}
}

// Supports reports whether op is an operation of ioengine: all of them are.
func (d *Device) Supports(op ioengine.Op) bool { return ioengine.AllOps.Has(op) }

// NewQueue makes a queue of cfg.Depth (1 to MaxDepth) requests. The engine
// moves no data, so cfg.Buffers is ignored.
func (d *Device) NewQueue(cfg ioengine.QueueConfig) (ioengine.Queue, error) {
	if cfg.Depth < 1 || cfg.Depth > MaxDepth {
		return nil, fmt.Errorf("null: new queue: depth %d: want 1 to %d", cfg.Depth, MaxDepth)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("null: new queue: device closed")
	}
	d.queues++
	return &queue{dev: d, done: make([]*ioengine.Request, cfg.Depth)}, nil
}

// Close closes the device. It refuses while queues are open; closing twice
// returns nil.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	if d.queues > 0 {
		return fmt.Errorf("null: close: %d queues still open", d.queues)
	}
	d.closed = true
	return nil
}

func (d *Device) queueClosed() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queues--
}

// exec carries out r at once: nothing to do beyond the range check.
func (d *Device) exec(r *ioengine.Request) {
	if errno := ioengine.CheckRange(r, d.sizeBytes, ioengine.AllOps); errno != 0 {
		r.Complete(0, errno)
		return
	}
	r.Complete(r.Size(), 0)
}

// queue completes every request in Submit and keeps it in done, a ring of
// Depth slots, until Poll hands it back. Every accepted request occupies a
// slot until then, so the ring never overflows.
type queue struct {
	dev    *Device
	done   []*ioengine.Request
	head   int // oldest completed request
	n      int // completed requests not yet returned
	closed bool
}

func (q *queue) Submit(reqs []*ioengine.Request) int {
	if q.closed {
		return 0
	}
	k := min(len(reqs), len(q.done)-q.n)
	tail := q.head + q.n
	if tail >= len(q.done) {
		tail -= len(q.done)
	}
	for _, r := range reqs[:k] {
		q.dev.exec(r)
		q.done[tail] = r
		if tail++; tail == len(q.done) {
			tail = 0
		}
	}
	q.n += k
	return k
}

func (q *queue) Poll(out []*ioengine.Request) int {
	k := min(len(out), q.n)
	for i := range k {
		out[i] = q.done[q.head]
		q.done[q.head] = nil // the caller owns it again; do not keep it alive
		if q.head++; q.head == len(q.done) {
			q.head = 0
		}
	}
	q.n -= k
	return k
}

func (q *queue) Inflight() int { return q.n }

// WaitFD is -1: completions are ready as soon as Submit returns.
func (q *queue) WaitFD() int { return -1 }

// Close drops the queue. Requests not yet polled are complete already; they
// belong to the caller again.
func (q *queue) Close() error {
	if q.closed {
		return nil
	}
	q.closed = true
	clear(q.done)
	q.head, q.n = 0, 0
	q.dev.queueClosed()
	return nil
}
